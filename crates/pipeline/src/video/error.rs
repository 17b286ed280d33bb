//! The video paths' error type.

use thiserror::Error;

/// What went wrong in a [`VideoSendPath`](super::VideoSendPath) or
/// [`VideoReceivePath`](super::VideoReceivePath) call. Nothing here ends the call: both
/// paths stay usable after any error (a bad packet is counted and dropped).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VideoPathError {
    /// A configuration value out of range.
    #[error("invalid video configuration: {field} = {value} ({expected})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// An RTP packet on none of the streams this receive path was configured for.
    #[error("RTP packet of SSRC {ssrc:#x}, payload type {payload_type} is not this remote's video")]
    UnknownStream {
        /// Its SSRC.
        ssrc: u32,
        /// Its payload type.
        payload_type: u8,
    },
    /// A datagram that is not a readable RTP or RTCP packet.
    #[error("unreadable packet of {len} bytes: {reason}")]
    BadPacket {
        /// Its length.
        len: usize,
        /// Why it was refused.
        reason: String,
    },
    /// A camera frame too small to encode.
    #[error("camera frame of {width}x{height} is below the {min}x{min} the encoder needs")]
    FrameTooSmall {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// Smallest side accepted.
        min: u32,
    },
    /// An error of the RTP layer.
    #[error(transparent)]
    Rtp(#[from] tincan_rtp::RtpError),
    /// An error of an RTP payload format (packetizer).
    #[error(transparent)]
    Payload(#[from] tincan_rtp::payload::PayloadError),
    /// An error of the video codecs.
    #[error(transparent)]
    Codec(#[from] tincan_codec::CodecError),
    /// An error of the media types.
    #[error(transparent)]
    Media(#[from] tincan_media::MediaError),
    /// An error of FlexFEC.
    #[error(transparent)]
    Fec(#[from] tincan_fec::flexfec::FlexFecError),
    /// An error of RTX.
    #[error(transparent)]
    Rtx(#[from] tincan_fec::rtx::RtxError),
    /// An error of the video jitter buffer.
    #[error(transparent)]
    Jitter(#[from] tincan_jitter::video::VideoError),
    /// An error of the rate allocation.
    #[error(transparent)]
    Abr(#[from] tincan_abr::AbrError),
}

/// The video paths' result type.
pub type VideoResult<T> = std::result::Result<T, VideoPathError>;
