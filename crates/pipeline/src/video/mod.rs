//! Video for a call (issue 8): the send path of the local camera and the receive path of
//! each remote's video, sans-IO like the audio [`Session`](crate::Session), which owns them
//! when configured with [`VideoSessionConfig`]
//! ([`SessionConfig::with_video`](crate::SessionConfig::with_video)).
//!
//! - [`VideoSendPath`]: camera pictures → frame-rate decimation and downscale to the rung
//!   the [`Allocator`](tincan_abr::allocation::Allocator) picks from the rate controller's
//!   target → OpenH264 (keyframes on PLI/FIR through the
//!   [`KeyframeGate`](tincan_fec::video_policy::KeyframeGate)) → RFC 6184 packets →
//!   RTX history and FlexFEC from the
//!   [`VideoProtectionPolicy`](tincan_fec::video_policy::VideoProtectionPolicy) →
//!   [`OutgoingPacket`]s for the pacer, each with its [`PacketClass`].
//! - [`VideoReceivePath`]: RTP of one remote (media, RTX, FlexFEC by SSRC and payload type)
//!   → FlexFEC recovery and RTX unwrapping → the video jitter buffer → H.264 or AV1 decoder
//!   → pictures out; NACK and PLI feedback out as RTCP.
//!
//! # Wiring into a session
//!
//! Send: push camera pictures with [`VideoSendPath::push_frame`], hand the controller's
//! target to [`VideoSendPath::set_target`] (it allocates audio first; tell it audio's
//! demand with [`VideoSendPath::set_audio_demand`]), then drain
//! [`VideoSendPath::poll_packet`] into the pacer with each packet's class
//! ([`PacketClass::Video`], [`PacketClass::Retransmission`], [`PacketClass::Fec`]) and
//! length. When the pacer releases a packet, write the transport-wide sequence number
//! with [`OutgoingPacket::set_transport_sequence`] (every packet carries the slot, in a
//! one-byte header extension with [`VideoSendConfig::transport_cc_id`]), send it, tell the
//! controller (`SentPacket` with the same class), and give the buffer back with
//! [`VideoSendPath::recycle`]. RTCP from the remote goes to
//! [`VideoSendPath::handle_rtcp`] (NACK, PLI, FIR, report blocks about the video SSRC);
//! RTT to [`VideoSendPath::set_rtt`]. Run [`VideoSendPath::handle_timeout`] at
//! [`VideoSendPath::poll_timeout`].
//!
//! Receive: RTP datagrams whose SSRC is one of the remote's three video SSRCs go to that
//! remote's [`VideoReceivePath::handle_rtp`]; after it, and at
//! [`VideoReceivePath::poll_timeout`] ([`VideoReceivePath::handle_timeout`]), drain
//! [`VideoReceivePath::poll_rtcp`] (NACK, PLI: send them to the remote) and
//! [`VideoReceivePath::poll_frame`] (pictures to render). The session's RR/SR carries
//! [`VideoReceivePath::report_block`]; the remote's SR about its video goes to
//! [`VideoReceivePath::handle_sender_report`], the RTT to [`VideoReceivePath::set_rtt`].
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_media::{Resolution, VideoFrame};
//! use tincan_media::source::TestPattern;
//! use tincan_pipeline::video::{
//!     VideoReceiveConfig, VideoReceivePath, VideoSendConfig, VideoSendPath,
//! };
//!
//! let t0 = Instant::now();
//! let mut sender = VideoSendPath::new(VideoSendConfig::new(0x10, 0x11, 0x12), t0)?;
//! let mut receiver = VideoReceivePath::new(VideoReceiveConfig::new(0x99, 0x10, 0x11, 0x12))?;
//! let mut camera = TestPattern::new(Resolution::P360, 30);
//! let mut picture = VideoFrame::black(Resolution::P360);
//! let mut shown = 0;
//! let mut now = t0;
//! for k in 0..30u32 {
//!     now = t0 + Duration::from_millis(33) * k;
//!     camera.render_into(&mut picture);
//!     sender.push_frame(&picture, now)?;
//!     // A perfect network without a pacer: every packet straight across.
//!     while let Some(mut packet) = sender.poll_packet() {
//!         packet.set_transport_sequence(k as u16);
//!         receiver.handle_rtp(&packet.data, now)?;
//!         sender.recycle(packet.data);
//!     }
//!     receiver.handle_timeout(now);
//!     while let Some(frame) = receiver.poll_frame() {
//!         assert_eq!(frame.frame.resolution(), Resolution::P360);
//!         shown += 1;
//!     }
//! }
//! receiver.handle_timeout(now + Duration::from_millis(300));
//! while receiver.poll_frame().is_some() {
//!     shown += 1;
//! }
//! // Every frame the encoder produced (its rate control may skip one or two).
//! let sent = sender.stats(now).frames_encoded;
//! assert!(sent >= 27);
//! assert_eq!(shown, sent);
//! # Ok::<(), tincan_pipeline::video::VideoPathError>(())
//! ```

mod error;
pub mod receive;
pub mod scale;
pub mod send;
pub mod session;
mod stats;

pub use error::{VideoPathError, VideoResult};
pub use receive::{
    DecodedFrame, VideoReceiveConfig, VideoReceiveMemory, VideoReceivePath, VideoReceiveStats,
};
pub use scale::{FrameScaler, plan_fit};
pub use send::{FrameOutcome, VideoSendConfig, VideoSendMemory, VideoSendPath, VideoSendStats};
pub use session::{
    DEFAULT_RECEIVE_BUDGET_BPS, REMOTE_VIDEO_TIMEOUT, RemoteVideoFrame, VideoSessionConfig,
};
pub use stats::{PAUSE_THRESHOLD, RATE_WINDOW};
pub use tincan_abr::PacketClass;
pub use tincan_jitter::video::VideoCodec;

/// RTP clock rate of video.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Default H.264 payload type.
pub const DEFAULT_H264_PT: u8 = 96;
/// Default RTX payload type for H.264 (`apt=96`).
pub const DEFAULT_H264_RTX_PT: u8 = 97;
/// Default AV1 payload type.
pub const DEFAULT_AV1_PT: u8 = 45;
/// Default RTX payload type for AV1 (`apt=45`).
pub const DEFAULT_AV1_RTX_PT: u8 = 46;
/// Default FlexFEC-03 payload type.
pub const DEFAULT_FEC_PT: u8 = 118;
/// Default header extension id of the transport-wide sequence number (the audio
/// session's).
pub const DEFAULT_TRANSPORT_CC_ID: u8 = 3;
/// Default largest RTP payload.
pub const DEFAULT_MTU: usize = 1200;
/// Where the transport-wide sequence number sits in every [`OutgoingPacket`]: after the
/// 12-byte RTP header (no CSRCs), the 4-byte extension block header and the element's
/// one-byte header.
pub const TRANSPORT_CC_OFFSET: usize = 12 + 4 + 1;
/// RTP header bytes of an [`OutgoingPacket`]: the fixed header and an extension block of
/// one word holding the transport-cc element and a byte of padding.
pub const RTP_HEADER_WITH_SLOT: usize = 12 + 4 + 4;

/// An RTP packet for the pacer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// Its class in the pacer: video media, a retransmission, or FEC.
    pub class: PacketClass,
    /// The whole RTP packet, with a zero transport-wide sequence number in its slot.
    pub data: Vec<u8>,
}

impl OutgoingPacket {
    /// Writes the transport-wide sequence number into the packet's slot (at
    /// [`TRANSPORT_CC_OFFSET`]), as the pacer releases it.
    pub fn set_transport_sequence(&mut self, sequence: u16) {
        if let Some(slot) = self
            .data
            .get_mut(TRANSPORT_CC_OFFSET..TRANSPORT_CC_OFFSET + 2)
        {
            slot.copy_from_slice(&sequence.to_be_bytes());
        }
    }
}
