//! Adaptive jitter buffers for tincan.
//!
//! - [`audio`]: a NetEq-class audio buffer: packets in whenever they arrive, 10 ms of audio
//!   out per pull, with delay estimation, pitch-preserving time stretching, concealment and
//!   recovery from redundancy, comfort noise during DTX, and WebRTC-style statistics.
//! - [`video`]: the video frame buffer: frame assembly, decodable order, NACK and keyframe
//!   requests, render timing and lip sync.
//!
//! Both are sans-IO: time comes in as an argument, nothing reads the clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_codec::opus::OpusDecoder;
//! use tincan_jitter::{AudioJitterBuffer, AudioJitterConfig, AudioPacket, Operation, OpusPacketDecoder};
//! use tincan_media::Channels;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let decoder = OpusPacketDecoder::new(OpusDecoder::new(48_000, Channels::Mono)?);
//! let config = AudioJitterConfig { min_delay: Duration::from_millis(20), ..AudioJitterConfig::default() };
//! let mut buffer = AudioJitterBuffer::new(decoder, config)?;
//! let start = Instant::now();
//! // A packet arrives (here: a 20 ms Opus SILK frame of silence, 3 bytes)...
//! buffer.insert(AudioPacket { ssrc: 9, sequence: 1, timestamp: 960, payload: &[0x08, 0xff, 0xfe] }, start)?;
//! // ...and the audio device pulls 10 ms at a time.
//! let mut out = vec![0i16; buffer.samples_per_pull()];
//! let first = buffer.pull(start, &mut out)?;
//! assert_eq!(first.operation, Operation::Silence); // still waiting for the target delay
//! let later = buffer.pull(start + Duration::from_millis(60), &mut out)?;
//! assert_ne!(later.operation, Operation::Silence);
//! # Ok(())
//! # }
//! ```

pub mod audio;
pub mod error;
pub mod video;

pub use audio::{
    AudioJitterBuffer, AudioJitterConfig, AudioJitterStats, AudioPacket, AudioPacketDecoder,
    InsertOutcome, Operation, OpusPacketDecoder, PullInfo, RecoverySource,
};
pub use error::{JitterError, Result};
pub use video::{
    LipSync, LipSyncConfig, ReadyFrame, StreamObservation, SyncDelays, VideoCodec, VideoError,
    VideoInsertOutcome, VideoJitterBuffer, VideoJitterConfig, VideoJitterStats, VideoMemory,
    VideoOutput, VideoPacket,
};
