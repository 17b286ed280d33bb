//! Codecs for tincan behind shared traits.
//!
//! - [`AudioEncoder`]/[`AudioDecoder`]: [`opus`] (in-band FEC, DTX, DRED, deep PLC).
//! - [`VideoEncoder`]/[`VideoDecoder`]: [`h264`] (OpenH264), [`av1`] (dav1d, decode only).
//! - [`resample`]: rubato between 8, 12, 16, 24, 32, 44.1 and 48 kHz, frame by frame,
//!   without allocating per frame.
//!
//! Every entry point returns a [`CodecError`] on bad input; none panics. Encoders write
//! into caller-owned buffers so the real-time path does not allocate.
//!
//! ```
//! use tincan_codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
//! use tincan_codec::{AudioDecoder, AudioEncoder};
//! use tincan_media::Channels;
//!
//! # fn main() -> tincan_codec::Result<()> {
//! let config = OpusConfig::new(48_000, Channels::Mono).with_bitrate(32_000).with_inband_fec(true);
//! let mut encoder = OpusEncoder::new(&config)?;
//! let mut decoder = OpusDecoder::new(48_000, Channels::Mono)?;
//!
//! let pcm = vec![0i16; encoder.frame_samples()]; // 20 ms
//! let mut packet = [0u8; 1500];
//! let len = encoder.encode(&pcm, &mut packet)?;
//!
//! let mut out = vec![0i16; 960];
//! assert_eq!(decoder.decode(&packet[..len], &mut out)?, 960);
//! // A lost packet: conceal it.
//! assert_eq!(decoder.conceal(960, &mut out)?, 960);
//! # Ok(())
//! # }
//! ```

pub mod av1;
pub mod error;
pub mod h264;
pub mod opus;
pub mod resample;
pub mod traits;

pub use error::{CodecError, Result};
pub use traits::{
    AudioDecoder, AudioEncoder, EncodeRequest, EncodedInfo, VideoDecoder, VideoEncoder,
};
