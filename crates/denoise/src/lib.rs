//! Voice processing for tincan's sending side: RNNoise noise suppression (through
//! [`nnnoiseless`]), voice activity, audio levels and automatic gain control, composed as
//! one sans-IO [`VoiceProcessor`]: 10 ms frame in, 10 ms frame out, plus a [`FrameReport`].
//!
//! - **Noise suppression** runs RNNoise at 48 kHz on 480-sample frames; other rates of 8 to
//!   48 kHz go through rubato's FFT resampler there and back, which adds 10 ms
//!   ([`VoiceProcessor::latency_samples`] reports the total). RNNoise works in i16 range, the
//!   processor in ±1; its first frame's start-up (which spreads into the time before the
//!   stream) is muted. Mono and stereo (one RNNoise per channel). Strength mixes the
//!   suppressed and the original signal; by default it adapts to the input's estimated SNR
//!   ([`adaptive`]: full in noise, none on clean speech, which RNNoise would only dull);
//!   bypass keeps the delay and measures only. Above the talker's speech, where the input
//!   holds only noise, a low-pass removes what RNNoise leaves ([`bandwidth`]).
//! - **Voice activity** ([`VoiceActivityDetector`]) smooths RNNoise's speech probability and
//!   adds hysteresis and a 200 ms hangover.
//! - **Levels**: the RFC 6464 level per packet ([`VoiceProcessor::take_packet_audio_level`])
//!   and per frame, and the 0-100 volume of call apps every 500 ms ([`FrameReport::volume`]).
//! - **Gain control** ([`AutomaticGainControl`]): towards a target speech level, moving only
//!   on speech frames, with a -1 dBFS limiter.
//!
//! Bad input never panics: frames of the wrong size are [`DenoiseError::WrongFrameSize`];
//! NaN, infinite and out-of-range samples are sanitised and counted; the output is always
//! finite and within full scale. See docs/DENOISE.md for the measurements.
//!
//! ```
//! use tincan_denoise::{VoiceConfig, VoiceProcessor};
//! use tincan_media::Channels;
//!
//! let config = VoiceConfig::new(48_000, Channels::Mono).with_agc(-20.0, 24.0);
//! let mut processor = VoiceProcessor::new(&config)?;
//! let mut speaking_frames = 0;
//! for k in 0..100 {
//!     // 10 ms of a quiet hum.
//!     let mut frame: Vec<f32> = (0..480)
//!         .map(|n| 0.01 * ((k * 480 + n) as f32 * 0.013).sin())
//!         .collect();
//!     let report = processor.process(&mut frame)?;
//!     speaking_frames += usize::from(report.speaking);
//!     if let Some(volume) = report.volume {
//!         assert!(volume <= 100);
//!     }
//! }
//! assert!(speaking_frames < 100);
//! assert!(matches!(
//!     processor.process(&mut [0.0; 100]),
//!     Err(tincan_denoise::DenoiseError::WrongFrameSize { got: 100, expected: 480 })
//! ));
//! # Ok::<(), tincan_denoise::DenoiseError>(())
//! ```

pub mod adaptive;
pub mod agc;
pub mod bandwidth;
pub mod error;
pub mod level;
mod minimum;
pub mod processor;
pub mod vad;

pub use adaptive::{AdaptiveConfig, SuppressionControl};
pub use agc::AutomaticGainControl;
pub use bandwidth::BandwidthDetector;
pub use error::{DenoiseError, Result};
pub use level::audio_level;
pub use processor::{FrameReport, SUPPORTED_RATES, VoiceConfig, VoiceProcessor};
pub use vad::VoiceActivityDetector;
