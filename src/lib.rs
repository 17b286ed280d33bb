//! tincan: an open real-time call media engine.
//!
//! This facade re-exports the engine crates so an application depends on one crate:
//!
//! - [`media`]: audio and video frames, media time, WAV/Y4M/IVF I/O, synthetic sources;
//! - [`codec`]: Opus (with FEC, DTX and DRED), H.264, AV1 decoding, resampling;
//! - [`rtp`]: RTP/RTCP and payload formats;
//! - [`netsim`]: the deterministic, seeded, sans-IO network emulator;
//! - [`jitter`]: adaptive jitter buffers (NetEq-class audio, video frame buffer);
//! - [`fec`]: loss recovery: RTX, FlexFEC, the adaptive audio redundancy policy;
//! - [`denoise`]: voice processing: RNNoise noise suppression, voice activity, levels, AGC;
//! - [`abr`]: congestion control (transport-cc feedback, a GCC-style controller), the
//!   pacer and the audio/video bitrate allocation;
//! - [`pipeline`]: the sans-IO media session of one call participant (1:1 and groups of up
//!   to 16: voice processing, Opus with loss recovery, RTP/RTCP, congestion control,
//!   jitter buffers, mixing, active speaker, statistics);
//! - [`signal`]: the signalling protocol and the sans-IO call state machine per device.
//!
//! The engine API that brings signalling, media sessions and sockets together is still to
//! come (`docs/ARCHITECTURE.md`); the server is the `tincan-server` crate.
//!
//! ```
//! use tincan::media::{AudioFormat, AudioFrame};
//!
//! let frame = AudioFrame::<i16>::silence(AudioFormat::MONO_48K, 960);
//! assert_eq!(frame.duration().as_millis(), 20);
//! ```

pub use tincan_abr as abr;
pub use tincan_codec as codec;
pub use tincan_denoise as denoise;
pub use tincan_fec as fec;
pub use tincan_jitter as jitter;
pub use tincan_media as media;
pub use tincan_netsim as netsim;
pub use tincan_pipeline as pipeline;
pub use tincan_rtp as rtp;
pub use tincan_signal as signal;
