//! The one error type of this crate.

use thiserror::Error;

/// What went wrong configuring, encoding, decoding or resampling.
///
/// Bad input (corrupt bitstreams, wrong frame sizes, unsupported parameters) always
/// lands here; no codec entry point panics on it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A parameter outside what the codec supports.
    #[error("unsupported {parameter}: {value}")]
    Unsupported {
        /// Which parameter ("sample rate", "frame duration", ...).
        parameter: &'static str,
        /// The value that was asked for.
        value: String,
    },
    /// An input buffer whose length does not match what the codec was configured for.
    #[error("wrong frame size: got {got} samples, expected {expected}")]
    WrongFrameSize {
        /// Samples given (interleaved).
        got: usize,
        /// Samples expected (interleaved).
        expected: usize,
    },
    /// An output buffer too small for the result.
    #[error("output buffer too small: {got} < {needed}")]
    OutputTooSmall {
        /// Space given.
        got: usize,
        /// Space needed.
        needed: usize,
    },
    /// A video frame whose resolution the codec cannot take.
    #[error("unsupported resolution {width}x{height}")]
    UnsupportedResolution {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The bitstream is corrupt or truncated.
    #[error("{codec}: invalid bitstream: {reason}")]
    InvalidBitstream {
        /// Which codec.
        codec: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The underlying library failed in a way not covered above.
    #[error("{codec}: {reason}")]
    Library {
        /// Which codec.
        codec: &'static str,
        /// What the library said.
        reason: String,
    },
    /// A media type could not be built from the codec's output.
    #[error(transparent)]
    Media(#[from] tincan_media::MediaError),
}

/// Result with [`CodecError`].
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
