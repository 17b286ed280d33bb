//! The pipeline's error type: one `#[non_exhaustive]` enum wrapping the engine crates'.

use thiserror::Error;

/// What went wrong in a [`Session`](crate::Session) call. Nothing here ends the call: the
/// session stays usable after any error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A microphone or playout buffer of the wrong length.
    #[error("audio frame of {got} samples, expected {expected} (10 ms at 48 kHz mono)")]
    WrongFrameSize {
        /// Samples given.
        got: usize,
        /// Samples expected.
        expected: usize,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {field} = {value} ({expected})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A datagram that is neither RTP nor RTCP we can read, or one with a bad header.
    #[error("unreadable datagram of {len} bytes: {reason}")]
    BadDatagram {
        /// Its length.
        len: usize,
        /// Why it was refused.
        reason: String,
    },
    /// An RTP packet of a payload type this session does not receive.
    #[error("RTP payload type {payload_type} is not received by this session")]
    UnknownPayloadType {
        /// The payload type.
        payload_type: u8,
    },
    /// RTP from an SSRC that is no remote, with undeclared remotes refused
    /// ([`SessionConfig::accept_undeclared_remotes`](crate::SessionConfig::accept_undeclared_remotes)),
    /// or a call naming a remote that is not there.
    #[error("SSRC {ssrc:#010x} is no remote of this session")]
    UnknownRemote {
        /// The SSRC.
        ssrc: u32,
    },
    /// A further remote when the session already has `limit`.
    #[error("remote SSRC {ssrc:#010x} refused: the session already has {limit} remotes")]
    TooManyRemotes {
        /// The SSRC refused.
        ssrc: u32,
        /// The most remotes a session holds.
        limit: usize,
    },
    /// An error of the RTP layer.
    #[error(transparent)]
    Rtp(#[from] tincan_rtp::RtpError),
    /// An error of the codec layer.
    #[error(transparent)]
    Codec(#[from] tincan_codec::CodecError),
    /// An error of the jitter buffer.
    #[error(transparent)]
    Jitter(#[from] tincan_jitter::JitterError),
    /// An error of voice processing.
    #[error(transparent)]
    Denoise(#[from] tincan_denoise::DenoiseError),
    /// An error of congestion control.
    #[error(transparent)]
    Abr(#[from] tincan_abr::AbrError),
    /// An error of an RTP payload format (RED).
    #[error(transparent)]
    Payload(#[from] tincan_rtp::payload::PayloadError),
    /// An error of the video send or receive path (a camera frame it cannot encode, a
    /// video packet it refuses, a video configuration out of range).
    #[error(transparent)]
    Video(#[from] crate::video::VideoPathError),
    /// A video call was asked of a session configured without video
    /// ([`SessionConfig::with_video`](crate::SessionConfig::with_video)).
    #[error("video is not configured for this session (SessionConfig::with_video)")]
    VideoNotConfigured,
}

/// The pipeline's result type.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
