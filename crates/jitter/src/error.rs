//! The errors of the jitter buffers.

use thiserror::Error;

/// What went wrong in a jitter buffer call. Bad network input never panics: it is either
/// counted in the statistics (duplicates, late packets, overflow) or returned as one of
/// these, and the buffer stays usable.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JitterError {
    /// A configuration value is outside what the buffer supports.
    #[error("invalid jitter buffer configuration: {field} = {value} ({reason})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The output slice does not hold one pull of audio.
    #[error("output of {got} samples, needs {needed} (one pull, interleaved)")]
    OutputSize {
        /// Interleaved samples given.
        got: usize,
        /// Interleaved samples needed.
        needed: usize,
    },
    /// A payload larger than the configured bound was refused.
    #[error("payload of {len} bytes exceeds the bound of {max}")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// An empty payload was refused (losses are signalled by absence, not by empty packets).
    #[error("empty payload")]
    EmptyPayload,
    /// The decoder failed on something other than packet content.
    #[error("decoder: {0}")]
    Decoder(#[from] tincan_codec::CodecError),
}

/// The result type of this crate.
pub type Result<T, E = JitterError> = std::result::Result<T, E>;
