//! The crate's error type.

use thiserror::Error;

/// Errors of `tincan-abr`: bad configuration and bad input from the network, never a panic.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AbrError {
    /// A configuration value is out of its documented range.
    #[error("invalid {field}: {value} ({expected})")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// The value given, formatted.
        value: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// Writing an RTCP packet failed (a value out of the wire format's range).
    #[error("RTCP: {source}")]
    Rtp {
        /// The RTP crate's error.
        #[from]
        source: tincan_rtp::RtpError,
    },
}

/// `Err(InvalidConfig)` for a configuration check: the field, its value and what it accepts.
pub(crate) fn invalid<T>(
    field: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Result<T, AbrError> {
    Err(AbrError::InvalidConfig {
        field,
        value: value.to_string(),
        expected,
    })
}
