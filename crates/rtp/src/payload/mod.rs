//! RTP payload formats (in progress).
