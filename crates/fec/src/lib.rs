//! Loss recovery for tincan.
//!
//! - [`rtx`]: retransmission (RFC 4588): the sender's bounded history of sent packets and
//!   the RTX payload format, answering NACKs without retransmission storms.
//! - [`flexfec`]: XOR forward error correction in the FlexFEC-03 format browsers speak.
//! - [`policy`]: the loss-adaptive choice of audio redundancy (in-band FEC, RED, DRED,
//!   NACK, and the jitter buffer delay they need).
//! - [`video_policy`]: the loss-adaptive choice of video protection (FlexFEC per frame
//!   type, NACK by RTT) and the sender's rate limit on keyframe requests (PLI/FIR).
//!
//! Audio recovery itself (in-band FEC, DRED, concealment) happens in the jitter buffer
//! (`tincan-jitter`), which asks its decoder to rebuild a gap before concealing it; RED
//! payloads are in `tincan-rtp`.

pub mod flexfec;
pub mod policy;
pub mod rtx;
pub mod video_policy;
