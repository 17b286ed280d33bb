//! The one error type of this crate.

use crate::audio::AudioFormat;
use crate::video::Resolution;
use thiserror::Error;

/// What went wrong building a frame or reading/writing a media file.
///
/// Variants carry the values that were wrong, so the message says what to change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A sample rate outside what tincan handles (1 Hz to 384 kHz).
    #[error("unsupported sample rate {rate} Hz")]
    UnsupportedSampleRate {
        /// The rate that was asked for.
        rate: u32,
    },
    /// A channel count that is not 1 or 2.
    #[error("unsupported channel count {channels} (1 or 2 are supported)")]
    UnsupportedChannels {
        /// The count that was asked for.
        channels: u16,
    },
    /// A sample buffer whose length is not a whole number of frames for the channel count.
    #[error("{len} samples is not a whole number of {channels}-channel frames")]
    RaggedSamples {
        /// Number of interleaved samples given.
        len: usize,
        /// Channel count of the format.
        channels: u16,
    },
    /// A video dimension that is zero, odd (I420 needs even sizes) or too large.
    #[error("invalid video size {width}x{height} (even, non-zero, at most 16384 each)")]
    InvalidVideoSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A plane buffer too small for its stride and height.
    #[error("plane {plane} has {len} bytes, needs at least {needed} for its stride and height")]
    PlaneTooSmall {
        /// 0 = Y, 1 = U, 2 = V.
        plane: usize,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A stride narrower than the plane it describes.
    #[error("plane {plane} stride {stride} is narrower than its width {width}")]
    StrideTooSmall {
        /// 0 = Y, 1 = U, 2 = V.
        plane: usize,
        /// Stride given.
        stride: usize,
        /// Width of the plane.
        width: usize,
    },
    /// A clock rate of zero, which no timestamp can be converted with.
    #[error("clock rate must be non-zero")]
    ZeroClockRate,
    /// A container whose bytes do not follow its format.
    #[error("malformed {format} data: {reason}")]
    Malformed {
        /// The container: "WAV", "Y4M", "IVF".
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A container feature that is valid but not supported here (e.g. Y4M 4:4:4).
    #[error("unsupported {format} feature: {feature}")]
    Unsupported {
        /// The container.
        format: &'static str,
        /// The feature.
        feature: String,
    },
    /// A frame rate with a zero numerator or denominator.
    #[error("invalid frame rate {numerator}/{denominator} (both must be non-zero)")]
    InvalidFrameRate {
        /// Frames.
        numerator: u32,
        /// Per this many seconds.
        denominator: u32,
    },
    /// A timebase (seconds per tick, as numerator/denominator) with a zero term.
    #[error("invalid timebase {numerator}/{denominator} (both must be non-zero)")]
    InvalidTimebase {
        /// Seconds.
        numerator: u32,
        /// Per this many ticks.
        denominator: u32,
    },
    /// A video frame whose size differs from the stream it is written to.
    #[error("frame is {actual}, the stream is {expected}")]
    ResolutionMismatch {
        /// The stream's resolution.
        expected: Resolution,
        /// The frame's resolution.
        actual: Resolution,
    },
    /// An audio frame whose format differs from the stream it is written to.
    #[error("frame format {actual:?} differs from the stream's {expected:?}")]
    FormatMismatch {
        /// The stream's format.
        expected: AudioFormat,
        /// The frame's format.
        actual: AudioFormat,
    },
    /// The WAV layer reported an error.
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Result with [`MediaError`].
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
