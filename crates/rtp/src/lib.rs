//! RTP and RTCP for tincan (in progress: see issue 3).

pub mod payload;
