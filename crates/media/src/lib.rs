//! Media types shared by every tincan engine crate.
//!
//! - [`audio`]: sample formats, [`AudioFormat`], [`AudioFrame`] with zero-copy byte views.
//! - [`video`]: [`Resolution`] and I420 [`VideoFrame`] with strides.
//! - [`time`]: RTP timestamps and sequence numbers with wrap-around, media durations at any clock rate.
//! - [`wav`], [`y4m`], [`ivf`]: file I/O for fixtures, labs and demos.
//! - [`source`]: a test tone and a moving test pattern, for demos and tests.
//! - [`quality`]: delay alignment, SNR and correlation of decoded audio against its source.
//!
//! Nothing here reads a clock, opens a socket or spawns a thread.
//!
//! ```
//! use tincan_media::{AudioFormat, AudioFrame};
//!
//! let frame = AudioFrame::<i16>::silence(AudioFormat::MONO_48K, 480);
//! assert_eq!(frame.duration().as_millis(), 10);
//! assert_eq!(frame.as_bytes().len(), 960);
//! ```

pub mod audio;
pub mod error;
pub mod ivf;
pub mod quality;
pub mod source;
pub mod time;
pub mod video;
pub mod wav;
pub mod y4m;

pub use audio::{AudioFormat, AudioFrame, Channels, Sample};
pub use error::{MediaError, Result};
pub use time::{MediaTime, RtpTimestamp, SeqNo, SeqNoExtender, TimestampExtender};
pub use video::{Resolution, VideoFrame};
