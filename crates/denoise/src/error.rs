//! The crate's error type.

/// What went wrong in voice processing. Every variant names the value that was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DenoiseError {
    /// The sample rate is not one the processor converts from (see
    /// [`SUPPORTED_RATES`](crate::SUPPORTED_RATES)).
    #[error("unsupported sample rate {rate} Hz (supported: 8, 12, 16, 24, 32, 44.1 and 48 kHz)")]
    UnsupportedRate {
        /// The rate asked for, in Hz.
        rate: u32,
    },
    /// A frame did not hold exactly 10 ms of interleaved samples.
    #[error("frame of {got} samples, expected {expected} (10 ms, interleaved)")]
    WrongFrameSize {
        /// Samples given.
        got: usize,
        /// Samples a frame must have.
        expected: usize,
    },
    /// A configuration value outside its range.
    #[error("{parameter} = {value} is outside {range}")]
    OutOfRange {
        /// Which setting.
        parameter: &'static str,
        /// The value given.
        value: f32,
        /// The accepted range, for the message.
        range: &'static str,
    },
    /// The resampler library refused its configuration or a frame.
    #[error("resampler: {reason}")]
    Resampler {
        /// rubato's message.
        reason: String,
    },
}

/// `Result` with [`DenoiseError`].
pub type Result<T, E = DenoiseError> = std::result::Result<T, E>;
