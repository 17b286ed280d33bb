//! The video frame buffer: RTP packets in, whole decodable frames out at their render
//! time, with the NACK and keyframe requests that keep the picture going.
//!
//! It follows the design of libwebrtc's `video_coding` receiver (packet buffer, frame
//! buffer, jitter estimator, timing, NACK module), written anew for tincan's sans-IO
//! rules:
//!
//! - **Frame assembly.** Packets are kept in a ring indexed by extended sequence number
//!   ([`VideoJitterConfig::max_packets`] slots). A frame is the run of packets from the
//!   one after a marker bit (or a timestamp change, or padding) to the next marker; it is
//!   complete when none of them is missing. Complete frames are depacketized in order by
//!   the `tincan-rtp` depacketizers (H.264 Annex B, AV1 low-overhead OBUs) when they
//!   leave the buffer, into one reused buffer. Where the packet before a frame is
//!   unknown (the start of a stream, or lost for good), the payload must say the frame
//!   starts there: an H.264 SPS or access unit delimiter, an AV1 sequence header. For
//!   H.264 senders that keep parameter sets out of band (SDP), a picture's first slice is
//!   trusted instead once a keyframe was seen to start with one; such a stream starts at
//!   its second keyframe (one keyframe request), as its first packet cannot be told
//!   apart from a later slice of a picture.
//! - **Decodable order.** Without codec reference metadata every frame references the one
//!   before it (IPPP): a frame leaves the buffer when it follows the last frame handed out
//!   with nothing missing in between, or when it is a keyframe (H.264 IDR; AV1 new coded
//!   video sequence). When a keyframe is due while older frames are still incomplete, the
//!   older frames are dropped (and counted) and decoding resumes at the keyframe.
//! - **NACK.** A sequence gap lists the missing packets; each is requested after
//!   [`VideoJitterConfig::nack_delay`] and again every `max(1.25 × RTT, 20 ms)` until it
//!   arrives or [`VideoJitterConfig::max_nack_retries`] is reached. The list is bounded by
//!   [`VideoJitterConfig::max_nack_list`]: a gap that does not fit clears it and asks for a
//!   keyframe instead, as NACK cannot repair it. So does a gap spanning more media time
//!   than [`VideoJitterConfig::max_nack_gap`] (an outage): the sender no longer holds
//!   all of it, and the frames behind it would come too late to show anyway.
//! - **Keyframe requests** (PLI) when decoding is stuck: the decode chain broke (a frame
//!   dropped, a packet given up on, the NACK list overflowed), complete frames wait longer
//!   than `max(stuck_timeout, 3 × NACK retry interval)` for an older missing one, or
//!   packets keep arriving with no frame coming out for
//!   [`VideoJitterConfig::max_decode_stall`]. Requests are at least
//!   `max(keyframe_request_interval, 1.5 × RTT)` apart, only repeated once packets
//!   arrived after the previous one, and not sent while a complete keyframe is already
//!   waiting.
//! - **Render timing.** Each frame's render time is its expected arrival (the RTP
//!   timestamp mapped to local time) plus the playout delay: a jitter estimate that
//!   separates frame-size-induced delay from network jitter, plus decode time, render
//!   delay and one RTT while frames need retransmission, clamped to the configured range
//!   and moved smoothly (see the `timing` and `estimator` sources). Frames leave the
//!   buffer at their render time less the decode and render time.
//! - **Lip sync** with audio from RTCP sender reports: [`LipSync`].
//! - **Statistics** in the terms of the WebRTC statistics specification where it has
//!   them: frames received, decoded, dropped, NACK and PLI counts, freezes and their total
//!   duration ([`VideoJitterStats`]).
//!
//! Memory is bounded by the configuration: packets held, complete frames listed, NACK
//! entries ([`VideoJitterBuffer::memory`] reports them). Packet payloads live in buffers
//! owned by the ring slots, each reserving [`VideoJitterConfig::max_payload_bytes`] the
//! first time it is used (at most 3 MB with the defaults), and frames are depacketized
//! into one reused buffer, so after warm-up inserting and polling do not allocate (a test
//! counts allocations).
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_jitter::video::{
//!     VideoCodec, VideoJitterBuffer, VideoJitterConfig, VideoOutput, VideoPacket,
//! };
//!
//! let start = Instant::now();
//! let mut buffer = VideoJitterBuffer::new(VideoJitterConfig {
//!     codec: VideoCodec::H264,
//!     ..VideoJitterConfig::default()
//! })?;
//! // A (tiny) IDR access unit in one STAP-A packet: SPS, PPS and the IDR slice, each
//! // after its 16-bit size.
//! let stap_a = [
//!     0x78, 0, 4, 0x67, 0x42, 0x00, 0x1E, 0, 4, 0x68, 0xCE, 0x38, 0x80, 0, 3, 0x65, 0x88, 0x84,
//! ];
//! let packet = VideoPacket {
//!     ssrc: 7,
//!     sequence: 100,
//!     timestamp: 3000,
//!     marker: true,
//!     payload: &stap_a,
//! };
//! buffer.insert_packet(packet, start)?;
//! let mut now = start;
//! loop {
//!     match buffer.poll(now) {
//!         VideoOutput::Frame(frame) => {
//!             assert!(frame.keyframe);
//!             // Annex B: each NAL unit after a 4-byte start code.
//!             assert_eq!(frame.data.len(), 3 * 4 + 4 + 4 + 3);
//!             assert_eq!(&frame.data[..5], &[0, 0, 0, 1, 0x67]);
//!             break;
//!         }
//!         VideoOutput::Nack(sequences) => println!("send a NACK for {sequences:?}"),
//!         VideoOutput::KeyframeRequest => println!("send a PLI"),
//!         // Sans-IO: the caller sleeps (or here, jumps) to the deadline.
//!         VideoOutput::Timeout(at) => now = at,
//!         VideoOutput::Idle => unreachable!("a frame is waiting"),
//!     }
//! }
//! assert_eq!(buffer.stats().frames_released, 1);
//! # Ok::<(), tincan_jitter::video::VideoError>(())
//! ```

mod codec;
mod error;
mod estimator;
mod freeze;
mod nack;
mod packets;
mod sync;
mod timing;

pub use codec::VideoCodec;
pub use error::VideoError;
pub use sync::{LipSync, LipSyncConfig, StreamObservation, SyncDelays};

use freeze::FreezeDetector;
use nack::{GapOutcome, NackList};
use packets::{FrameSpan, PacketRing, SlotState};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use timing::{DelayLimits, Timing};
use tincan_rtp::payload::av1::Av1Depacketizer;
use tincan_rtp::payload::h264::H264Depacketizer;
use tincan_rtp::payload::{DepacketizedFrame, PacketInfo, PayloadError};

/// Shortest interval between two NACKs of one packet.
const MIN_NACK_RETRY: Duration = Duration::from_millis(20);
/// Consecutive packets too old for the ring that mean the sender restarted its sequence
/// numbers (a reset), rather than a burst of very late packets.
const RESTART_RUN: u32 = 64;
/// Longest duration a setting may have: far beyond any sensible value, and small enough
/// that deadlines computed from it never overflow an `Instant`.
const MAX_SETTING: Duration = Duration::from_secs(3600);
/// Longest RTT or decode time taken into account; longer reports are clamped.
const MAX_REPORTED: Duration = Duration::from_secs(10);
/// Largest ring accepted: sequence numbers are extended the short way round, so the ring
/// must cover well under half of the 16-bit space.
const MAX_RING: usize = 16_384;

/// How a video frame buffer behaves. [`Default`] suits interactive H.264 calls up to a
/// few Mbit/s; set [`codec`](Self::codec) for AV1.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoJitterConfig {
    /// The payload format. Default H.264.
    pub codec: VideoCodec,
    /// RTP clock rate. Default 90000 (all video formats use it).
    pub clock_rate: u32,
    /// Packets held at most (ring slots, 16..=16384). A packet that needs the slot of an
    /// older one still held evicts it, and its frame is dropped. Default 2048 (about 2 s at
    /// 10 Mbit/s of 1200-byte packets).
    pub max_packets: usize,
    /// Largest payload accepted, in bytes; larger ones are refused with
    /// [`VideoError::PayloadTooLarge`]. Default 1500.
    pub max_payload_bytes: usize,
    /// Complete frames listed at most (waiting for their turn or their references); on
    /// overflow the oldest is dropped. Default 300 (10 s at 30 fps).
    pub max_frames: usize,
    /// Largest frame handed out, in bytes (as depacketized); larger ones are dropped.
    /// Default 4 MiB.
    pub max_frame_bytes: usize,
    /// Missing packets listed for NACK at most. Default 1000.
    pub max_nack_list: usize,
    /// A sequence gap across more media time than this (RTP timestamps of the packets on
    /// either side) is not NACKed: the list is cleared and a keyframe requested at once.
    /// Default 500 ms.
    pub max_nack_gap: Duration,
    /// Requests per missing packet before giving up on it. Default 10.
    pub max_nack_retries: u32,
    /// Wait before the first request of a missing packet, so a reordered packet can
    /// arrive first. Default 0: request at once (NACK of a reordered packet costs one
    /// retransmission).
    pub nack_delay: Duration,
    /// Shortest playout delay. Default 0.
    pub min_playout_delay: Duration,
    /// Longest playout delay; also the longest a complete frame is held. Default 2 s.
    pub max_playout_delay: Duration,
    /// Time from handing a decoded frame to the renderer to it being on screen.
    /// Default 10 ms.
    pub render_delay: Duration,
    /// Shortest interval between keyframe requests (it is also at least 1.5 × RTT).
    /// Default 200 ms.
    pub keyframe_request_interval: Duration,
    /// How long complete frames may wait for an older missing one before a keyframe is
    /// requested (it is also at least 3 NACK retry intervals). Default 200 ms.
    pub stuck_timeout: Duration,
    /// How long packets may keep arriving with no frame coming out before a keyframe is
    /// requested. Default 1 s.
    pub max_decode_stall: Duration,
}

impl Default for VideoJitterConfig {
    fn default() -> Self {
        Self {
            codec: VideoCodec::H264,
            clock_rate: 90_000,
            max_packets: 2048,
            max_payload_bytes: 1500,
            max_frames: 300,
            max_frame_bytes: 4 << 20,
            max_nack_list: 1000,
            max_nack_gap: Duration::from_millis(500),
            max_nack_retries: 10,
            nack_delay: Duration::ZERO,
            min_playout_delay: Duration::ZERO,
            max_playout_delay: Duration::from_secs(2),
            render_delay: Duration::from_millis(10),
            keyframe_request_interval: Duration::from_millis(200),
            stuck_timeout: Duration::from_millis(200),
            max_decode_stall: Duration::from_secs(1),
        }
    }
}

impl VideoJitterConfig {
    fn validate(&self) -> Result<(), VideoError> {
        let invalid = |field, value: String, reason| {
            Err(VideoError::InvalidConfig {
                field,
                value,
                reason,
            })
        };
        if self.clock_rate == 0 {
            return invalid("clock_rate", "0".into(), "must be positive");
        }
        if !(16..=MAX_RING).contains(&self.max_packets) {
            return invalid(
                "max_packets",
                self.max_packets.to_string(),
                "must be 16..=16384",
            );
        }
        for (field, value) in [
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_frames", self.max_frames),
            ("max_frame_bytes", self.max_frame_bytes),
            ("max_nack_list", self.max_nack_list),
        ] {
            if value == 0 {
                return invalid(field, "0".into(), "must be positive");
            }
        }
        for (field, value) in [
            ("nack_delay", self.nack_delay),
            ("max_nack_gap", self.max_nack_gap),
            ("max_playout_delay", self.max_playout_delay),
            ("render_delay", self.render_delay),
            ("keyframe_request_interval", self.keyframe_request_interval),
            ("stuck_timeout", self.stuck_timeout),
            ("max_decode_stall", self.max_decode_stall),
        ] {
            if value > MAX_SETTING {
                return invalid(field, format!("{value:?}"), "must be at most an hour");
            }
        }
        if self.min_playout_delay > self.max_playout_delay {
            return invalid(
                "min_playout_delay",
                format!("{:?}", self.min_playout_delay),
                "must not exceed max_playout_delay",
            );
        }
        Ok(())
    }
}

/// One received RTP video packet, borrowed: the buffer copies the payload into a slot
/// buffer it reuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPacket<'a> {
    /// The RTP SSRC; a new one resets the buffer.
    pub ssrc: u32,
    /// The RTP sequence number.
    pub sequence: u16,
    /// The RTP timestamp (90 kHz for video).
    pub timestamp: u32,
    /// The RTP marker bit: last packet of a frame.
    pub marker: bool,
    /// The payload (after RTP padding is removed; empty for padding-only packets, which
    /// keep their sequence number from counting as lost).
    pub payload: &'a [u8],
}

/// What [`VideoJitterBuffer::insert_packet`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoInsertOutcome {
    /// Stored.
    Buffered,
    /// Stored, filling a gap that had been NACKed (a retransmission).
    Recovered,
    /// A copy of a packet already held or handed out: dropped.
    Duplicate,
    /// Its frame has already been handed out, skipped, or is outside the ring: dropped.
    Late,
    /// It started a new stream (new SSRC, or sequence numbers restarted): the buffer was
    /// flushed and this packet is the first of the new stream.
    Reset,
}

/// A frame ready for the decoder; borrows the buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyFrame<'a> {
    /// The frame in the decoder's format (H.264 Annex B with 4-byte start codes; AV1
    /// temporal unit in the low-overhead format, starting with a temporal delimiter).
    pub data: &'a [u8],
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// It needs no earlier frame (H.264 IDR, AV1 new coded video sequence).
    pub keyframe: bool,
    /// When it should be on screen.
    pub render_at: Instant,
    /// RTP sequence number of its first packet.
    pub first_sequence: u16,
    /// RTP sequence number of its last packet.
    pub last_sequence: u16,
    /// When its last missing packet arrived (it became complete).
    pub completed_at: Instant,
    /// One of its packets was a retransmission.
    pub retransmitted: bool,
}

/// What [`VideoJitterBuffer::poll`] has to say. Poll until [`Timeout`](Self::Timeout) or
/// [`Idle`](Self::Idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoOutput<'a> {
    /// Decode this frame now (then report [`VideoJitterBuffer::frame_decoded`] and, once
    /// shown, [`VideoJitterBuffer::frame_rendered`]).
    Frame(ReadyFrame<'a>),
    /// Send an RTCP generic NACK for these sequence numbers (in ascending extended order).
    Nack(&'a [u16]),
    /// Send a keyframe request (RTCP PLI).
    KeyframeRequest,
    /// Nothing now; poll again at this instant (or after the next insert).
    Timeout(Instant),
    /// Nothing scheduled; poll again after the next insert.
    Idle,
}

/// Counters, in the terms of the WebRTC statistics specification
/// (`RTCInboundRtpStreamStats`) where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VideoJitterStats {
    /// Packets inserted (refused, duplicate and late ones included).
    pub packets_received: u64,
    /// Packets refused as too large.
    pub packets_refused: u64,
    /// Copies of packets already held or handed out.
    pub packets_duplicate: u64,
    /// Packets whose frame was already handed out or skipped, or that were too old for
    /// the ring.
    pub packets_late: u64,
    /// Packets dropped while held: evicted by newer ones, or skipped over because their
    /// frame could no longer be completed in time.
    pub packets_discarded: u64,
    /// Packets that filled a NACKed gap (retransmissions, or reordered ones requested).
    pub packets_recovered: u64,
    /// `framesReceived`: complete frames assembled.
    pub frames_received: u64,
    /// Of those, keyframes.
    pub keyframes_received: u64,
    /// Frames handed to the decoder by [`VideoJitterBuffer::poll`].
    pub frames_released: u64,
    /// `framesDecoded`: frames the caller reported decoded.
    pub frames_decoded: u64,
    /// Frames the caller reported rendered.
    pub frames_rendered: u64,
    /// `framesDropped`: complete frames dropped before decoding (no references, overflow,
    /// too large, or not depacketizable).
    pub frames_dropped: u64,
    /// Of those, frames the depacketizer refused (malformed payloads).
    pub frames_invalid: u64,
    /// `nackCount`: NACK messages asked for.
    pub nack_count: u64,
    /// Sequence numbers requested in them (a packet requested twice counts twice).
    pub nacked_packets: u64,
    /// Missing packets given up on after the last retry.
    pub nack_give_ups: u64,
    /// Gaps too large for the NACK list, or spanning more than
    /// [`VideoJitterConfig::max_nack_gap`], for which the list was cleared and a keyframe
    /// requested.
    pub nack_overflows: u64,
    /// `pliCount`: keyframe requests.
    pub keyframe_requests: u64,
    /// `freezeCount`: render intervals above `max(3 × average, average + 150 ms)`.
    pub freeze_count: u64,
    /// `totalFreezesDuration`: sum of those intervals.
    pub total_freezes_duration: Duration,
    /// `totalInterFrameDelay`: sum of render intervals.
    pub total_inter_frame_delay: Duration,
    /// `totalSquaredInterFrameDelay`: sum of squared render intervals, in s².
    pub total_squared_inter_frame_delay: f64,
    /// Stream resets (new SSRC, restarted sequence numbers).
    pub resets: u64,
}

/// What the buffer holds right now, against its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoMemory {
    /// Packets held (waiting, or padding).
    pub packets: usize,
    /// Complete frames listed.
    pub frames: usize,
    /// Missing packets listed for NACK.
    pub nack_entries: usize,
    /// Bytes reserved by the packet payload buffers (at most `max_packets ×
    /// max_payload_bytes`).
    pub payload_bytes: usize,
    /// Bytes reserved by the frame output buffer (about `max_frame_bytes` at most).
    pub frame_bytes: usize,
}

/// A complete frame listed in the buffer.
#[derive(Debug, Clone, Copy)]
struct Frame {
    first: i64,
    last: i64,
    timestamp: i64,
    keyframe: bool,
    completed_at: Instant,
    retransmitted: bool,
}

/// What the next poll output is, before borrowing anything for it.
enum Action {
    Frame(ReadyMeta),
    Nack,
    KeyframeRequest,
    Timeout(Instant),
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct ReadyMeta {
    timestamp: u32,
    keyframe: bool,
    render_at: Instant,
    first: i64,
    last: i64,
    completed_at: Instant,
    retransmitted: bool,
}

#[derive(Debug)]
enum Depacketizer {
    H264(H264Depacketizer),
    Av1(Av1Depacketizer),
}

impl Depacketizer {
    fn push(
        &mut self,
        payload: &[u8],
        info: PacketInfo,
    ) -> Result<Option<DepacketizedFrame<'_>>, PayloadError> {
        match self {
            Self::H264(d) => d.push(payload, info),
            Self::Av1(d) => d.push(payload, info),
        }
    }
}

/// The stream being received.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Highest extended sequence number received.
    newest: i64,
    /// Extended timestamp of the packet received last (the reference for extending).
    last_timestamp: i64,
    /// A packet that certainly starts a frame was seen (an SPS or AUD in H.264): the
    /// sender puts parameter sets in band, so a picture's first slice is never trusted
    /// to start a frame.
    frame_starts_seen: bool,
    /// A keyframe was seen to begin with its first slice right after a known frame
    /// boundary: the sender sends parameter sets out of band (SDP), so a first slice
    /// starts a frame even where the packet before it is unknown.
    keyframes_start_with_slices: bool,
}

/// The video frame buffer. See the [module documentation](self).
#[derive(Debug)]
pub struct VideoJitterBuffer {
    config: VideoJitterConfig,
    stream: Option<Stream>,
    ring: PacketRing,
    frames: VecDeque<Frame>,
    nack: NackList,
    nack_out: Vec<u16>,
    timing: Timing,
    depacketizer: Depacketizer,
    /// Sequence numbers given to the depacketizer: consecutive, as it only ever sees
    /// whole frames.
    depacketizer_sequence: u16,
    frame_out: Vec<u8>,
    /// Packets at or below this were handed out, skipped or evicted: later copies are late.
    floor: i64,
    /// Last packet of the last frame handed out or dropped whole: a frame boundary.
    boundary: i64,
    /// End of the decode chain (last frame handed out, extended over padding), while
    /// the chain is intact; `None` while a keyframe is needed.
    continuity: Option<i64>,
    /// A keyframe is needed from this time on.
    keyframe_needed_at: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    /// Packets arrived since the last keyframe request.
    packets_since_request: bool,
    /// First packet arrival since a frame last came out (or a keyframe was requested).
    waiting_since: Option<Instant>,
    too_old_run: u32,
    freeze: FreezeDetector,
    stats: VideoJitterStats,
}

impl VideoJitterBuffer {
    /// A buffer with `config`; fails on a configuration it cannot work with.
    pub fn new(config: VideoJitterConfig) -> Result<Self, VideoError> {
        config.validate()?;
        let depacketizer = match config.codec {
            VideoCodec::H264 => Depacketizer::H264(H264Depacketizer::with_max_frame_size(
                config.max_frame_bytes,
            )),
            VideoCodec::Av1 => {
                Depacketizer::Av1(Av1Depacketizer::with_max_frame_size(config.max_frame_bytes))
            }
        };
        Ok(Self {
            ring: PacketRing::new(config.max_packets, config.max_payload_bytes),
            frames: VecDeque::with_capacity(config.max_frames),
            nack: NackList::new(
                config.max_nack_list,
                config.max_nack_retries,
                config.nack_delay,
            ),
            nack_out: Vec::with_capacity(config.max_nack_list),
            timing: Timing::new(config.clock_rate, limits_of(&config)),
            depacketizer,
            depacketizer_sequence: 0,
            frame_out: Vec::new(),
            stream: None,
            floor: i64::MIN,
            boundary: i64::MIN,
            continuity: None,
            keyframe_needed_at: None,
            last_keyframe_request: None,
            packets_since_request: false,
            waiting_since: None,
            too_old_run: 0,
            freeze: FreezeDetector::default(),
            stats: VideoJitterStats::default(),
            config,
        })
    }

    /// The configuration (playout delay bounds as last set).
    pub fn config(&self) -> &VideoJitterConfig {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> VideoJitterStats {
        let mut stats = self.stats;
        stats.freeze_count = self.freeze.freeze_count;
        stats.total_freezes_duration = self.freeze.total_freezes_duration;
        stats.total_inter_frame_delay = self.freeze.total_inter_frame_delay;
        stats.total_squared_inter_frame_delay = self.freeze.total_squared_inter_frame_delay;
        stats
    }

    /// What it holds now; never above the configured bounds.
    pub fn memory(&self) -> VideoMemory {
        VideoMemory {
            packets: self.ring.held(),
            frames: self.frames.len(),
            nack_entries: self.nack.len(),
            payload_bytes: self.ring.payload_capacity(),
            frame_bytes: self.frame_out.capacity(),
        }
    }

    /// Sets the round-trip time (from RTCP), which paces NACK retries and keyframe
    /// requests. Until set it is taken as 100 ms; values above 10 s are taken as 10 s.
    pub fn handle_rtt(&mut self, rtt: Duration) {
        self.timing.set_rtt(rtt.min(MAX_REPORTED));
    }

    /// Changes the playout delay bounds (e.g. from the RTP playout-delay extension);
    /// fails if `min > max` or `max` is above an hour.
    pub fn set_playout_delay_limits(
        &mut self,
        min: Duration,
        max: Duration,
    ) -> Result<(), VideoError> {
        if max > MAX_SETTING {
            return Err(VideoError::InvalidConfig {
                field: "max_playout_delay",
                value: format!("{max:?}"),
                reason: "must be at most an hour",
            });
        }
        if min > max {
            return Err(VideoError::InvalidConfig {
                field: "min_playout_delay",
                value: format!("{min:?}"),
                reason: "must not exceed max_playout_delay",
            });
        }
        self.config.min_playout_delay = min;
        self.config.max_playout_delay = max;
        self.timing.set_limits(limits_of(&self.config));
        Ok(())
    }

    /// Sets the extra delay lip sync asks for ([`SyncDelays::video`]), added to the
    /// buffer's own target delay (within the maximum).
    pub fn set_sync_delay(&mut self, extra: Duration) {
        self.timing.set_extra_delay(extra.min(MAX_SETTING));
    }

    /// The playout delay in use: render time minus expected arrival of a frame.
    pub fn playout_delay(&self, now: Instant) -> Duration {
        self.timing.current_delay(now)
    }

    /// The delay the buffer is moving toward (own target plus lip-sync extra).
    pub fn target_delay(&self, now: Instant) -> Duration {
        self.timing.target_delay(now)
    }

    /// The delay the stream needs on its own, without the lip-sync extra: what
    /// [`StreamObservation::playout_delay`] wants.
    pub fn own_delay(&self, now: Instant) -> Duration {
        self.timing.own_target_delay(now)
    }

    /// The current jitter estimate (frame-size and network parts, without decode and
    /// render time).
    pub fn jitter_estimate(&self) -> Duration {
        self.timing.jitter_estimate()
    }

    /// Extra delay lip sync asked for.
    pub fn sync_delay(&self) -> Duration {
        self.timing.extra_delay()
    }

    /// The caller decoded a frame in `decode_time`: counted, and part of the decode-time
    /// estimate that sets when frames leave the buffer (reports above 10 s count as 10 s).
    pub fn frame_decoded(&mut self, decode_time: Duration) {
        self.stats.frames_decoded += 1;
        self.timing.decode_time(decode_time.min(MAX_REPORTED));
    }

    /// The caller put a frame on screen at `now`: counted, and the render interval is
    /// checked for a freeze.
    pub fn frame_rendered(&mut self, now: Instant) {
        self.stats.frames_rendered += 1;
        self.freeze.frame_rendered(now);
    }

    /// Takes one packet that arrived at `now`. Poll afterwards: it may have completed a
    /// frame or opened a gap to NACK.
    pub fn insert_packet(
        &mut self,
        packet: VideoPacket<'_>,
        now: Instant,
    ) -> Result<VideoInsertOutcome, VideoError> {
        self.stats.packets_received += 1;
        if packet.payload.len() > self.config.max_payload_bytes {
            self.stats.packets_refused += 1;
            return Err(VideoError::PayloadTooLarge {
                len: packet.payload.len(),
                max: self.config.max_payload_bytes,
            });
        }
        self.packets_since_request = true;
        self.waiting_since.get_or_insert(now);
        let mut reset = false;
        let stream = match self.stream {
            Some(stream) if stream.ssrc == packet.ssrc => stream,
            previous => {
                reset = previous.is_some();
                self.start_stream(packet, now)
            }
        };
        let mut sequence = extend(stream.newest, packet.sequence.into(), 16);
        let capacity = self.ring.capacity() as i64;
        if sequence <= stream.newest - capacity {
            self.too_old_run += 1;
            if self.too_old_run < RESTART_RUN {
                self.stats.packets_late += 1;
                return Ok(VideoInsertOutcome::Late);
            }
            // The sender restarted its sequence numbers: follow it.
            reset = true;
            let stream = self.start_stream(packet, now);
            sequence = stream.newest;
        }
        self.too_old_run = 0;
        if self.ring.get(sequence).is_some() {
            self.stats.packets_duplicate += 1;
            return Ok(VideoInsertOutcome::Duplicate);
        }
        if sequence <= self.floor {
            self.stats.packets_late += 1;
            return Ok(VideoInsertOutcome::Late);
        }
        let Some(mut stream) = self.stream else {
            return Ok(VideoInsertOutcome::Late);
        };
        let timestamp = extend(stream.last_timestamp, packet.timestamp.into(), 32);
        let mut recovered = false;
        if sequence > stream.newest {
            // Only packets in order move the timestamp reference, so a stray old or
            // corrupt one cannot shift the unwrapping of the rest.
            let previous_timestamp = stream.last_timestamp;
            stream.last_timestamp = timestamp;
            self.evict_before(sequence - capacity + 1, now);
            if sequence > stream.newest + 1 {
                let gap_ticks = timestamp - previous_timestamp;
                let outcome = if gap_ticks > self.max_nack_gap_ticks() {
                    // An outage: retransmissions could not bring the frames back in time.
                    self.nack.clear();
                    GapOutcome::Overflow
                } else {
                    self.nack.add_gap(stream.newest + 1, sequence, now)
                };
                if outcome == GapOutcome::Overflow {
                    self.stats.nack_overflows += 1;
                    self.need_keyframe(now);
                }
            }
            stream.newest = sequence;
        } else if let Some(sent) = self.nack.remove(sequence) {
            recovered = sent > 0;
        }
        if recovered {
            self.stats.packets_recovered += 1;
        }

        let hints = self.config.codec.hints(packet.payload);
        stream.frame_starts_seen |= hints.frame_start;
        if hints.picture_start
            && hints.keyframe
            && self.ring.get(sequence - 1).is_some_and(|previous| {
                previous.marker
                    || previous.timestamp != timestamp
                    || previous.state == SlotState::Padding
            })
        {
            stream.keyframes_start_with_slices = true;
        }
        self.stream = Some(stream);
        let slot = self.ring.store(sequence, packet.payload);
        slot.timestamp = timestamp;
        slot.marker = packet.marker;
        slot.frame_start = hints.frame_start;
        slot.picture_start = hints.picture_start;
        slot.keyframe = hints.keyframe;
        slot.retransmitted = recovered;

        if packet.payload.is_empty() {
            self.extend_continuity();
        }
        let trust_picture_starts = stream.keyframes_start_with_slices && !stream.frame_starts_seen;
        for candidate in [sequence - 1, sequence, sequence + 1] {
            if let Some(span) =
                self.ring
                    .complete_frame(candidate, self.boundary, trust_picture_starts)
            {
                self.register_frame(span, recovered, now);
            }
        }
        Ok(if reset {
            VideoInsertOutcome::Reset
        } else if recovered {
            VideoInsertOutcome::Recovered
        } else {
            VideoInsertOutcome::Buffered
        })
    }

    /// What to do next at `now`. Call it after every insert and at every deadline it
    /// names, until it says [`VideoOutput::Timeout`] or [`VideoOutput::Idle`].
    pub fn poll(&mut self, now: Instant) -> VideoOutput<'_> {
        match self.next_action(now) {
            Action::Frame(meta) => VideoOutput::Frame(ReadyFrame {
                data: &self.frame_out,
                timestamp: meta.timestamp,
                keyframe: meta.keyframe,
                render_at: meta.render_at,
                first_sequence: meta.first as u16,
                last_sequence: meta.last as u16,
                completed_at: meta.completed_at,
                retransmitted: meta.retransmitted,
            }),
            Action::Nack => VideoOutput::Nack(&self.nack_out),
            Action::KeyframeRequest => VideoOutput::KeyframeRequest,
            Action::Timeout(at) => VideoOutput::Timeout(at),
            Action::Idle => VideoOutput::Idle,
        }
    }

    /// Forgets the stream and starts a new one at `packet`.
    fn start_stream(&mut self, packet: VideoPacket<'_>, now: Instant) -> Stream {
        if self.stream.is_some() {
            self.stats.resets += 1;
        }
        self.ring.clear();
        self.stats.frames_dropped += self.frames.len() as u64;
        self.frames.clear();
        self.nack.clear();
        self.timing.reset_stream();
        // Far from zero so the extended numbers never go negative in practice (they may;
        // nothing depends on their sign).
        let sequence = (1 << 32) + i64::from(packet.sequence);
        let stream = Stream {
            ssrc: packet.ssrc,
            newest: sequence,
            last_timestamp: (1 << 40) + i64::from(packet.timestamp),
            frame_starts_seen: false,
            keyframes_start_with_slices: false,
        };
        self.stream = Some(stream);
        self.floor = sequence - 1 - self.ring.capacity() as i64;
        self.boundary = i64::MIN;
        self.continuity = None;
        // The stream should start with a keyframe: give it time before asking.
        self.keyframe_needed_at = Some(now + self.stuck_after());
        self.waiting_since = Some(now);
        self.too_old_run = 0;
        stream
    }

    /// [`VideoJitterConfig::max_nack_gap`] in RTP ticks.
    fn max_nack_gap_ticks(&self) -> i64 {
        let ticks = self.config.max_nack_gap.as_secs_f64() * f64::from(self.config.clock_rate);
        ticks as i64
    }

    fn nack_retry_interval(&self) -> Duration {
        (self.timing.rtt() * 5 / 4).max(MIN_NACK_RETRY)
    }

    fn keyframe_request_interval(&self) -> Duration {
        (self.timing.rtt() * 3 / 2).max(self.config.keyframe_request_interval)
    }

    fn stuck_after(&self) -> Duration {
        (self.nack_retry_interval() * 3).max(self.config.stuck_timeout)
    }

    fn need_keyframe(&mut self, now: Instant) {
        self.keyframe_needed_at = Some(self.keyframe_needed_at.map_or(now, |at| at.min(now)));
    }

    /// The decode chain is broken: only a keyframe can restart it.
    fn break_chain(&mut self, now: Instant) {
        self.continuity = None;
        self.need_keyframe(now);
    }

    /// Moves the decode chain over padding that follows it.
    fn extend_continuity(&mut self) {
        let Some(mut end) = self.continuity else {
            return;
        };
        let limit = end + self.ring.capacity() as i64;
        while end < limit
            && self
                .ring
                .get(end + 1)
                .is_some_and(|slot| slot.state == SlotState::Padding)
        {
            end += 1;
            self.ring.consume(end);
            self.floor = self.floor.max(end);
            self.boundary = end;
        }
        self.continuity = Some(end);
    }

    /// Makes room for newer packets: everything held below `low` goes.
    fn evict_before(&mut self, low: i64, now: Instant) {
        let Some(stream) = self.stream else {
            return;
        };
        let from = stream.newest - self.ring.capacity() as i64 + 1;
        if low <= from {
            return;
        }
        // Listed frames with evicted packets go whole.
        let mut dropped_frame = false;
        while self.frames.front().is_some_and(|f| f.first < low) {
            if let Some(frame) = self.frames.pop_front() {
                self.drop_frame(frame);
                dropped_frame = true;
            }
        }
        self.stats.packets_discarded += self.ring.consume_range(from, low);
        self.nack.drop_before(low);
        self.floor = self.floor.max(low - 1);
        if dropped_frame || self.continuity.is_some_and(|end| end < low - 1) {
            self.break_chain(now);
        }
    }

    /// Drops a listed frame (already removed from the list) and its packets.
    fn drop_frame(&mut self, frame: Frame) {
        for sequence in frame.first..=frame.last {
            self.ring.consume(sequence);
        }
        self.stats.frames_dropped += 1;
        self.floor = self.floor.max(frame.last);
        self.boundary = self.boundary.max(frame.last);
    }

    /// Lists a frame that just became complete.
    fn register_frame(&mut self, span: FrameSpan, trigger_retransmitted: bool, now: Instant) {
        let mut keyframe = false;
        let mut retransmitted = trigger_retransmitted;
        let mut bytes = 0usize;
        let mut timestamp = 0;
        for sequence in span.first..=span.last {
            if let Some(slot) = self.ring.get_mut(sequence) {
                slot.in_frame = true;
                keyframe |= slot.keyframe;
                retransmitted |= slot.retransmitted;
                bytes += slot.payload.len();
                timestamp = slot.timestamp;
            }
        }
        let frame = Frame {
            first: span.first,
            last: span.last,
            timestamp,
            keyframe,
            completed_at: now,
            retransmitted,
        };
        self.stats.frames_received += 1;
        if keyframe {
            self.stats.keyframes_received += 1;
        }
        if bytes > self.config.max_frame_bytes {
            self.drop_frame(frame);
            self.break_chain(now);
            return;
        }
        self.timing
            .frame_complete(timestamp, now, bytes, retransmitted);
        if self.frames.len() >= self.config.max_frames
            && let Some(oldest) = self.frames.pop_front()
        {
            self.drop_frame(oldest);
            self.break_chain(now);
        }
        let index = self.frames.partition_point(|f| f.first < frame.first);
        self.frames.insert(index, frame);
    }

    fn next_action(&mut self, now: Instant) -> Action {
        loop {
            let mut deadline: Option<Instant> = None;
            let mut wake = |at: Instant| {
                deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
            };

            // A keyframe already listed restarts decoding by itself: no need to ask.
            let keyframe_listed = self.frames.iter().any(|f| f.keyframe);
            // Stuck: complete frames waiting too long for an older missing one, or
            // packets arriving with nothing coming out (beyond the playout delay).
            if let Some(front) = self.frames.front()
                && !keyframe_listed
                && self.continuity.is_none_or(|end| front.first != end + 1)
            {
                let at = front.completed_at + self.stuck_after();
                if at <= now {
                    self.need_keyframe(now);
                } else {
                    wake(at);
                }
            }
            if let Some(since) = self.waiting_since {
                let at = since + self.config.max_decode_stall + self.timing.current_delay(now);
                if at <= now {
                    self.need_keyframe(now);
                } else {
                    wake(at);
                }
            }

            if let Some(needed) = self.keyframe_needed_at
                && self.packets_since_request
                && !keyframe_listed
            {
                let allowed = self.last_keyframe_request.map_or(needed, |last| {
                    needed.max(last + self.keyframe_request_interval())
                });
                if allowed <= now {
                    self.last_keyframe_request = Some(now);
                    self.packets_since_request = false;
                    self.stats.keyframe_requests += 1;
                    // A stall counts afresh from the request: the sender needs time to
                    // answer.
                    self.waiting_since = None;
                    return Action::KeyframeRequest;
                }
                wake(allowed);
            }

            if let Some(due) = self.nack.next_due() {
                if due <= now {
                    let mut gave_up = None;
                    let interval = self.nack_retry_interval();
                    self.nack
                        .take_due(now, interval, &mut self.nack_out, &mut gave_up);
                    if let Some(sequence) = gave_up {
                        self.stats.nack_give_ups += 1;
                        if self.continuity.is_none_or(|end| sequence > end) {
                            self.need_keyframe(now);
                        }
                    }
                    if !self.nack_out.is_empty() {
                        self.stats.nack_count += 1;
                        self.stats.nacked_packets += self.nack_out.len() as u64;
                        return Action::Nack;
                    }
                    continue;
                }
                wake(due);
            }

            if let Some((index, render_at)) = self.next_frame(now) {
                let release_at = self.timing.release_time(render_at);
                if release_at <= now {
                    match self.release(index, render_at, release_at, now) {
                        Some(meta) => return Action::Frame(meta),
                        None => continue,
                    }
                }
                wake(release_at);
            }
            return deadline.map_or(Action::Idle, Action::Timeout);
        }
    }

    /// The frame to hand out next and its render time: the one continuing the decode
    /// chain, or else the first keyframe.
    fn next_frame(&self, now: Instant) -> Option<(usize, Instant)> {
        let front = self.frames.front()?;
        let index = if self.continuity.is_some_and(|end| front.first == end + 1) {
            0
        } else {
            self.frames.iter().position(|f| f.keyframe)?
        };
        let frame = self.frames[index];
        Some((
            index,
            self.timing
                .render_time(frame.timestamp, frame.completed_at, now),
        ))
    }

    /// Hands out frame `index`, dropping the frames before it; `None` if it could not be
    /// depacketized (it is dropped too).
    fn release(
        &mut self,
        index: usize,
        render_at: Instant,
        release_at: Instant,
        now: Instant,
    ) -> Option<ReadyMeta> {
        for _ in 0..index {
            if let Some(skipped) = self.frames.pop_front() {
                self.drop_frame(skipped);
            }
        }
        let frame = self.frames.pop_front()?;
        // Packets of incomplete frames before it can no longer be used.
        self.stats.packets_discarded += self
            .ring
            .consume_range(self.floor.saturating_add(1), frame.first);
        self.nack.drop_before(frame.first);
        let complete = self.depacketize(frame);
        for sequence in frame.first..=frame.last {
            self.ring.consume(sequence);
        }
        self.floor = self.floor.max(frame.last);
        self.boundary = frame.last;
        if !complete {
            self.stats.frames_dropped += 1;
            self.stats.frames_invalid += 1;
            self.break_chain(now);
            return None;
        }
        self.continuity = Some(frame.last);
        self.extend_continuity();
        if frame.keyframe {
            self.keyframe_needed_at = None;
        }
        self.timing.frame_released(frame.timestamp, release_at, now);
        self.stats.frames_released += 1;
        self.waiting_since = None;
        Some(ReadyMeta {
            timestamp: frame.timestamp as u32,
            keyframe: frame.keyframe,
            render_at,
            first: frame.first,
            last: frame.last,
            completed_at: frame.completed_at,
            retransmitted: frame.retransmitted,
        })
    }

    /// Runs the frame's packets through the depacketizer into `frame_out`; false if it
    /// refused any of them or dropped the frame.
    fn depacketize(&mut self, frame: Frame) -> bool {
        let mut ok = true;
        let mut produced = false;
        self.frame_out.clear();
        for sequence in frame.first..=frame.last {
            let Some(slot) = self.ring.get(sequence) else {
                ok = false;
                continue;
            };
            self.depacketizer_sequence = self.depacketizer_sequence.wrapping_add(1);
            let info = PacketInfo {
                sequence: self.depacketizer_sequence,
                timestamp: frame.timestamp as u32,
                marker: sequence == frame.last,
            };
            match self.depacketizer.push(&slot.payload, info) {
                Ok(Some(out)) => {
                    produced = out.complete;
                    self.frame_out.extend_from_slice(out.data);
                }
                Ok(None) => {}
                Err(_) => ok = false,
            }
        }
        ok && produced
    }
}

/// Extends `value` (`bits` wide) to the number nearest `reference` with those low bits.
fn extend(reference: i64, value: i64, bits: u32) -> i64 {
    let modulus = 1i64 << bits;
    let half = modulus / 2;
    let delta = (value - reference).rem_euclid(modulus);
    if delta >= half {
        reference + delta - modulus
    } else {
        reference + delta
    }
}

fn limits_of(config: &VideoJitterConfig) -> DelayLimits {
    DelayLimits {
        min: config.min_playout_delay,
        max: config.max_playout_delay,
        render_delay: config.render_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_takes_the_short_way_round() {
        assert_eq!(extend(65_535, 0, 16), 65_536);
        assert_eq!(extend(65_536, 65_535, 16), 65_535);
        assert_eq!(extend(100, 100 + 32_767, 16), 100 + 32_767);
        assert_eq!(extend(100, 100 + 32_768, 16), 100 - 32_768);
        assert_eq!(extend(1 << 40, 5, 32), (1 << 40) + 5);
        assert_eq!(extend((1 << 40) + 5, u32::MAX.into(), 32), (1 << 40) - 1);
    }

    #[test]
    fn configurations_it_cannot_work_with_are_refused() {
        let bad = [
            VideoJitterConfig {
                clock_rate: 0,
                ..VideoJitterConfig::default()
            },
            VideoJitterConfig {
                max_packets: 40_000,
                ..VideoJitterConfig::default()
            },
            VideoJitterConfig {
                max_frames: 0,
                ..VideoJitterConfig::default()
            },
            VideoJitterConfig {
                min_playout_delay: Duration::from_secs(3),
                ..VideoJitterConfig::default()
            },
        ];
        for config in bad {
            assert!(matches!(
                VideoJitterBuffer::new(config),
                Err(VideoError::InvalidConfig { .. })
            ));
        }
        let mut buffer = VideoJitterBuffer::new(VideoJitterConfig::default()).unwrap();
        assert!(
            buffer
                .set_playout_delay_limits(Duration::from_secs(1), Duration::ZERO)
                .is_err()
        );
        let big = vec![1u8; 1501];
        let packet = VideoPacket {
            ssrc: 1,
            sequence: 0,
            timestamp: 0,
            marker: true,
            payload: &big,
        };
        let now = std::time::Instant::now();
        assert_eq!(
            buffer.insert_packet(packet, now),
            Err(VideoError::PayloadTooLarge {
                len: 1501,
                max: 1500
            })
        );
        assert_eq!(buffer.stats().packets_refused, 1);
        assert!(matches!(buffer.poll(now), VideoOutput::Idle));
    }
}
