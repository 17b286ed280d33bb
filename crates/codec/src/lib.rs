//! Codecs for tincan behind shared traits.
//!
//! - [`AudioEncoder`]/[`AudioDecoder`]: [`opus`] (in-band FEC, DTX, DRED, deep PLC).
//! - [`VideoEncoder`]/[`VideoDecoder`]: [`h264`] (OpenH264), [`av1`] (dav1d, decode only).
//! - [`resample`]: rubato between 8, 16, 24, 32, 44.1 and 48 kHz, frame by frame.
//!
//! Every entry point returns a [`CodecError`] on bad input; none panics.

pub mod av1;
pub mod error;
pub mod h264;
pub mod opus;
pub mod resample;
pub mod traits;

pub use error::{CodecError, Result};
pub use traits::{AudioDecoder, AudioEncoder, EncodeRequest, EncodedInfo, VideoDecoder, VideoEncoder};
