//! Adaptive jitter buffers for tincan.
//!
//! - [`audio`]: a NetEq-class audio buffer: packets in whenever they arrive, 10 ms of audio
//!   out per pull, with delay estimation, pitch-preserving time stretching, concealment and
//!   recovery from redundancy, comfort noise during DTX, and WebRTC-style statistics.
//! - [`video`]: the video frame buffer: frame assembly, decodable order, NACK and keyframe
//!   requests, render timing and lip sync.
//!
//! Both are sans-IO: time comes in as an argument, nothing reads the clock.

pub mod audio;
pub mod error;
pub mod video;

pub use audio::{
    AudioJitterBuffer, AudioJitterConfig, AudioJitterStats, AudioPacket, AudioPacketDecoder,
    InsertOutcome, Operation, OpusPacketDecoder, PullInfo, RecoverySource,
};
pub use error::{JitterError, Result};
