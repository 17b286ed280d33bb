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
//! [`CallEngine`] (the [`engine`] module) brings them together for an application: log in
//! to a tincan server, place, answer and join calls, with audio from and to WAV files,
//! generators or callbacks, over UDP, and a stream of [`EngineEvent`]s. The server is the
//! `tincan-server` crate (`tincan serve`). `docs/ENGINE.md` describes the engine.
//!
//! ```
//! use tincan::media::{AudioFormat, AudioFrame};
//!
//! let frame = AudioFrame::<i16>::silence(AudioFormat::MONO_48K, 960);
//! assert_eq!(frame.duration().as_millis(), 20);
//! ```

pub mod engine;

pub use engine::{
    AudioInput, AudioOutput, CallEngine, CallOptions, EngineConfig, EngineError, EngineEvent,
};
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
