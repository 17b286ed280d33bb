//! The errors of the video frame buffer.

use thiserror::Error;

/// What went wrong in a [`VideoJitterBuffer`](super::VideoJitterBuffer) call.
///
/// Bad network input never panics: a packet that cannot be used is either counted in
/// [`VideoJitterStats`](super::VideoJitterStats) (duplicate, late, evicted) or refused with
/// one of these, and the buffer stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VideoError {
    /// A configuration value is outside what the buffer supports.
    #[error("invalid video jitter buffer configuration: {field} = {value} ({reason})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// A payload larger than [`VideoJitterConfig::max_payload_bytes`](super::VideoJitterConfig::max_payload_bytes)
    /// was refused.
    #[error("payload of {len} bytes exceeds the bound of {max}")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}
