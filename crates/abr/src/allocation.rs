//! Bitrate allocation between audio and the video ladder (issue 7, in progress).
