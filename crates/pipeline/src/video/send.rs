//! The video send path: camera pictures in, RTP packets for the pacer out.
//!
//! Per camera picture ([`VideoSendPath::push_frame`]): frame-rate decimation to the
//! rung's rate → centred crop and box downscale to the rung's resolution
//! ([`FrameScaler`]) → OpenH264 at the encoder rate (a keyframe when the [`KeyframeGate`]
//! lets a PLI/FIR through, after video was switched back on and after a resolution
//! change) → RFC 6184 packets of at most [`VideoSendConfig::mtu`] payload bytes, each
//! remembered by the [`RtxSender`] → FlexFEC packets per group of up to 48 media packets,
//! as many as the [`VideoProtectionPolicy`] asks for the frame type (keyframes more).
//!
//! Rate ([`VideoSendPath::set_target`]): the congestion controller's target goes through
//! the [`Allocator`] (audio first; the video rung — resolution and frame rate — with its
//! hysteresis; below the ladder's floor video pauses); the encoder gets the video rate
//! less what FEC, RTX, packet headers and the encoder's own overshoot added over the last
//! interval, so media, RTX and FEC together stay within the video allocation.
//!
//! Feedback ([`VideoSendPath::handle_rtcp`]): NACKs are answered from the RTX history
//! (one copy at once, further copies as the policy asks behind the next frame), PLI/FIR go
//! through the keyframe gate, and receiver report blocks about the media SSRC feed the
//! protection policy (so does [`VideoSendPath::handle_loss_report`], for loss measured
//! from transport-cc).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tincan_abr::PacketClass;
use tincan_abr::allocation::{Allocation, AllocationConfig, Allocator, AudioDemand, VideoRung};
use tincan_codec::h264::{H264Complexity, H264Config, H264Encoder, MAX_FRAME_RATE};
use tincan_codec::{EncodeRequest, VideoEncoder};
use tincan_fec::flexfec::{FlexFecEncoder, MAX_MEDIA_PACKETS};
use tincan_fec::policy::LossReport;
use tincan_fec::rtx::{MAX_PACKET_LEN, RtxConfig, RtxSender};
use tincan_fec::video_policy::{
    KeyframeGate, KeyframeGateConfig, VideoPolicyConfig, VideoProtection, VideoProtectionPolicy,
};
use tincan_media::{Resolution, VideoFrame};
use tincan_rtp::extension::Extension;
use tincan_rtp::payload::PayloadPackets;
use tincan_rtp::payload::h264::H264Packetizer;
use tincan_rtp::rtcp::{ReportBlock, RtcpCompound, RtcpPacket};
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

use super::error::{VideoPathError, VideoResult};
use super::scale::{FrameScaler, plan_fit};
use super::stats::RateMeter;
use super::{
    DEFAULT_FEC_PT, DEFAULT_H264_PT, DEFAULT_H264_RTX_PT, DEFAULT_MTU, DEFAULT_TRANSPORT_CC_ID,
    OutgoingPacket, TRANSPORT_CC_OFFSET, VIDEO_CLOCK_RATE,
};

/// Most sequence numbers taken from one NACK packet (a hostile one could list far more).
const MAX_NACKED_PER_PACKET: usize = 1024;
/// Most retransmission copies waiting for the next frame.
const MAX_DEFERRED_COPIES: usize = 256;
/// Longest a retransmission copy waits for the next frame.
const MAX_COPY_DELAY: Duration = Duration::from_millis(50);
/// Most buffers kept for reuse.
const MAX_POOL: usize = 1024;
/// Weight of a new measurement in the smoothed protection overhead.
const OVERHEAD_SMOOTHING: f64 = 0.5;
/// Most the measured output may exceed the encoder's rate before the excess is no longer
/// taken off the encoder (at 10% loss FEC and RTX add about 70%).
const MAX_OVERHEAD: f64 = 1.5;
/// Lowest encoder rate OpenH264 takes.
const MIN_ENCODER_BPS: u64 = 1_000;

/// Settings of a [`VideoSendPath`]. [`VideoSendConfig::new`] gives the defaults.
///
/// ```
/// use tincan_pipeline::video::VideoSendConfig;
/// let config = VideoSendConfig::new(0x10, 0x11, 0x12);
/// assert_eq!((config.payload_type, config.rtx_payload_type, config.fec_payload_type), (96, 97, 118));
/// assert_eq!(config.mtu, 1200);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VideoSendConfig {
    /// SSRC of the video stream.
    pub media_ssrc: u32,
    /// SSRC of its retransmissions (RFC 4588).
    pub rtx_ssrc: u32,
    /// SSRC of its FlexFEC packets.
    pub fec_ssrc: u32,
    /// H.264 payload type (default 96).
    pub payload_type: u8,
    /// RTX payload type, `apt` = [`payload_type`](Self::payload_type) (default 97).
    pub rtx_payload_type: u8,
    /// FlexFEC-03 payload type (default 118).
    pub fec_payload_type: u8,
    /// Header extension id (one-byte form, 1-14) of the transport-wide sequence number
    /// slot every packet carries (default 3, the session's).
    pub transport_cc_id: u8,
    /// Largest RTP payload (default 1200).
    pub mtu: usize,
    /// The whole target (audio and video) assumed until the first
    /// [`VideoSendPath::set_target`] (default 800 kbit/s).
    pub start_bps: u64,
    /// What audio takes from the target first (default none: the whole target is
    /// video's); change it with [`VideoSendPath::set_audio_demand`].
    pub audio: AudioDemand,
    /// The video ladder and its hysteresis.
    pub allocation: AllocationConfig,
    /// The loss-adaptive protection.
    pub policy: VideoPolicyConfig,
    /// The gate on keyframe requests.
    pub keyframe_gate: KeyframeGateConfig,
    /// OpenH264's effort (default [`H264Complexity::Medium`], OpenH264's own default:
    /// `benches/pipeline_video.rs` measured it no slower than low at 720p30 on the 2-core
    /// machine, a 720p30 call second of encode, packetize, depacketize and decode in about
    /// 0.45 s).
    pub complexity: H264Complexity,
    /// Answer NACKs with RTX (default on; the policy also turns it off at long RTTs).
    pub nack: bool,
    /// Send FlexFEC as the policy asks (default on).
    pub fec: bool,
    /// Packets the RTX history keeps (default 1024: 6 s at 1.5 Mbit/s).
    pub rtx_history_packets: usize,
    /// Oldest packet resent (default 1 s).
    pub rtx_max_age: Duration,
    /// Retransmission budget, bits per second (default 1 Mbit/s).
    pub rtx_max_bps: u64,
    /// Share of the encoder rate FEC may add (default 0.5), the policy's budget.
    pub fec_budget_share: f64,
    /// Outputs waiting for [`VideoSendPath::poll_packet`]; beyond, the oldest is dropped
    /// and counted (default 1024).
    pub max_queued_packets: usize,
}

impl VideoSendConfig {
    /// Defaults for the given SSRCs.
    pub fn new(media_ssrc: u32, rtx_ssrc: u32, fec_ssrc: u32) -> Self {
        Self {
            media_ssrc,
            rtx_ssrc,
            fec_ssrc,
            payload_type: DEFAULT_H264_PT,
            rtx_payload_type: DEFAULT_H264_RTX_PT,
            fec_payload_type: DEFAULT_FEC_PT,
            transport_cc_id: DEFAULT_TRANSPORT_CC_ID,
            mtu: DEFAULT_MTU,
            start_bps: 800_000,
            audio: AudioDemand::default(),
            allocation: AllocationConfig::default(),
            policy: VideoPolicyConfig::default(),
            keyframe_gate: KeyframeGateConfig::default(),
            complexity: H264Complexity::Medium,
            nack: true,
            fec: true,
            rtx_history_packets: 1024,
            rtx_max_age: Duration::from_secs(1),
            rtx_max_bps: 1_000_000,
            fec_budget_share: 0.5,
            max_queued_packets: 1024,
        }
    }

    fn validate(&self) -> VideoResult<()> {
        let invalid = |field, value: String, expected| {
            Err(VideoPathError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if !(1..=14).contains(&self.transport_cc_id) {
            return invalid(
                "transport_cc_id",
                self.transport_cc_id.to_string(),
                "1 to 14 (one-byte header form)",
            );
        }
        // The RTX history keeps packets of at most 1500 bytes: header, extension, payload.
        if !(64..=MAX_PACKET_LEN - super::RTP_HEADER_WITH_SLOT).contains(&self.mtu) {
            return invalid("mtu", self.mtu.to_string(), "64 to 1480");
        }
        if !(0.0..=1.0).contains(&self.fec_budget_share) {
            return invalid(
                "fec_budget_share",
                self.fec_budget_share.to_string(),
                "0 to 1",
            );
        }
        if self.max_queued_packets == 0 {
            return invalid("max_queued_packets", "0".into(), "at least 1");
        }
        let pts = [
            self.payload_type,
            self.rtx_payload_type,
            self.fec_payload_type,
        ];
        if pts.iter().any(|&pt| pt > 127)
            || pts[0] == pts[1]
            || pts[0] == pts[2]
            || pts[1] == pts[2]
        {
            return invalid("payload types", format!("{pts:?}"), "distinct, 0 to 127");
        }
        let ssrcs = [self.media_ssrc, self.rtx_ssrc, self.fec_ssrc];
        if ssrcs[0] == ssrcs[1] || ssrcs[0] == ssrcs[2] || ssrcs[1] == ssrcs[2] {
            return invalid("ssrcs", format!("{ssrcs:?}"), "distinct");
        }
        Ok(())
    }
}

/// What [`VideoSendPath::push_frame`] did with a camera picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Encoded and packetized: its packets wait in [`VideoSendPath::poll_packet`].
    Sent {
        /// It is a keyframe.
        keyframe: bool,
        /// Media packets.
        packets: usize,
        /// FEC packets protecting them.
        fec_packets: usize,
        /// Encoded bytes.
        bytes: usize,
    },
    /// Video is switched off ([`VideoSendPath::set_enabled`]).
    Disabled,
    /// The allocation has no rung: the target is below the ladder's floor.
    Paused,
    /// Dropped to hold the rung's frame rate.
    Decimated,
    /// The encoder's rate control skipped it.
    Skipped,
}

/// Counters and rates of a [`VideoSendPath`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSendStats {
    /// Video is switched on.
    pub enabled: bool,
    /// The allocation paused video (target below the ladder).
    pub paused: bool,
    /// Video's share of the target (media, RTX and FEC), bit/s.
    pub target_bps: u64,
    /// The encoder's rate, bit/s.
    pub encoder_bps: u64,
    /// Media packets sent over the last second, bit/s (RTP headers included).
    pub media_bps: u64,
    /// Retransmissions over the last second, bit/s.
    pub rtx_bps: u64,
    /// FEC over the last second, bit/s.
    pub fec_bps: u64,
    /// The rung in force.
    pub rung: Option<VideoRung>,
    /// Resolution of the last encoded picture.
    pub resolution: Option<Resolution>,
    /// Frames encoded over the last second.
    pub fps_sent: f64,
    /// Camera pictures pushed.
    pub frames_pushed: u64,
    /// Frames encoded and sent.
    pub frames_encoded: u64,
    /// Pictures dropped to hold the frame rate.
    pub frames_decimated: u64,
    /// Pictures the encoder's rate control skipped.
    pub frames_skipped: u64,
    /// Keyframes sent (the first, requested ones, after resolution changes).
    pub keyframes: u64,
    /// Keyframe requests (PLI, FIR) received.
    pub keyframe_requests: u64,
    /// Of those, dropped as stale or merged into one already waiting.
    pub keyframe_requests_ignored: u64,
    /// Media packets sent.
    pub packets_sent: u64,
    /// Media bytes sent (whole RTP packets).
    pub bytes_sent: u64,
    /// Padding packets made for bandwidth probes ([`VideoSendPath::padding_packet`]).
    pub padding_packets: u64,
    /// Their bytes (whole RTP packets).
    pub padding_bytes: u64,
    /// NACK packets received for our stream.
    pub nacks_received: u64,
    /// Sequence numbers they listed.
    pub nacked_packets: u64,
    /// Retransmissions sent (copies included).
    pub retransmissions: u64,
    /// Retransmitted bytes (copies included).
    pub retransmitted_bytes: u64,
    /// NACKed packets not resent: no longer held, too old, resent less than an RTT ago,
    /// or over the budget.
    pub nacks_refused: u64,
    /// FEC packets sent.
    pub fec_packets: u64,
    /// FEC bytes sent.
    pub fec_bytes: u64,
    /// FEC bytes over media bytes since the start.
    pub fec_overhead: f64,
    /// RTX bytes over media bytes since the start.
    pub rtx_overhead: f64,
    /// The protection in force.
    pub protection: VideoProtection,
    /// Outputs dropped because the queue was full (the session did not poll).
    pub dropped_packets: u64,
    /// Rung changes.
    pub rung_changes: u64,
    /// Malformed RTCP packets ignored.
    pub bad_rtcp: u64,
}

/// What a [`VideoSendPath`] holds now, against its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSendMemory {
    /// Outputs waiting to be polled (at most [`VideoSendConfig::max_queued_packets`]).
    pub queued_packets: usize,
    /// Retransmission copies waiting for the next frame (at most 256).
    pub deferred_copies: usize,
    /// Buffers kept for reuse (at most 1024).
    pub pooled_buffers: usize,
    /// Packets the RTX history can hold (fixed at creation).
    pub rtx_history_packets: usize,
    /// Retransmissions waiting inside the RTX sender.
    pub rtx_pending: usize,
}

/// The video send path of one local camera. See the [module docs](self).
pub struct VideoSendPath {
    config: VideoSendConfig,
    encoder: H264Encoder,
    encoded: Vec<u8>,
    scaler: FrameScaler,
    packetizer: H264Packetizer,
    payloads: PayloadPackets,
    allocator: Allocator,
    allocation: Allocation,
    policy: VideoProtectionPolicy,
    gate: KeyframeGate,
    rtx: RtxSender,
    rtx_out: Vec<u8>,
    nacked: Vec<u16>,
    fec: FlexFecEncoder,
    queue: VecDeque<OutgoingPacket>,
    deferred: VecDeque<Vec<u8>>,
    deferred_since: Option<Instant>,
    pool: Vec<Vec<u8>>,
    sequence: u16,
    epoch: Option<Instant>,
    last_timestamp: Option<u32>,
    enabled: bool,
    keyframe_needed: bool,
    next_frame_due: Option<Instant>,
    rtt: Duration,
    encoder_bps: u64,
    encoder_fps: u32,
    /// Smoothed (media + RTX + FEC bytes sent) / (encoder rate × time) − 1, and the
    /// bytes since the last measurement, which started at `measured_since`.
    overhead: f64,
    media_since: u64,
    protection_since: u64,
    measured_since: Option<Instant>,
    resolution: Option<Resolution>,
    media_meter: RateMeter,
    rtx_meter: RateMeter,
    fec_meter: RateMeter,
    frame_meter: RateMeter,
    stats: VideoSendStats,
}

impl std::fmt::Debug for VideoSendPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSendPath")
            .field("media_ssrc", &self.config.media_ssrc)
            .field("enabled", &self.enabled)
            .field("rung", &self.allocation.rung)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

fn rung_fps(rung: VideoRung) -> u32 {
    rung.fps.clamp(1, MAX_FRAME_RATE as u32)
}

impl VideoSendPath {
    /// A send path allocating [`VideoSendConfig::start_bps`] at `now`.
    ///
    /// # Errors
    ///
    /// A configuration value out of range, or an encoder OpenH264 refuses.
    pub fn new(config: VideoSendConfig, now: Instant) -> VideoResult<Self> {
        config.validate()?;
        let mut allocator = Allocator::new(config.allocation.clone())?;
        let allocation = allocator.allocate(config.start_bps, config.audio, now);
        let fps = allocation.rung.map_or(30, rung_fps);
        let encoder_bps = allocation.video_bps.max(MIN_ENCODER_BPS);
        let encoder = H264Encoder::new(H264Config {
            bitrate_bps: encoder_bps.min(u64::from(i32::MAX as u32)) as u32,
            max_frame_rate: fps as f32,
            complexity: config.complexity,
            ..H264Config::default()
        })?;
        let rtx = RtxSender::new(RtxConfig {
            history_packets: config.rtx_history_packets,
            max_age: config.rtx_max_age,
            max_bitrate: config.rtx_max_bps,
            ..RtxConfig::new(
                config.media_ssrc,
                config.payload_type,
                config.rtx_ssrc,
                config.rtx_payload_type,
            )
        })?;
        let fec = FlexFecEncoder::new(config.fec_payload_type, config.fec_ssrc, 0)?;
        let mut stats = VideoSendStats {
            enabled: true,
            paused: allocation.rung.is_none(),
            target_bps: allocation.video_bps,
            encoder_bps,
            media_bps: 0,
            rtx_bps: 0,
            fec_bps: 0,
            rung: allocation.rung,
            resolution: None,
            fps_sent: 0.0,
            frames_pushed: 0,
            frames_encoded: 0,
            frames_decimated: 0,
            frames_skipped: 0,
            keyframes: 0,
            keyframe_requests: 0,
            keyframe_requests_ignored: 0,
            packets_sent: 0,
            bytes_sent: 0,
            padding_packets: 0,
            padding_bytes: 0,
            nacks_received: 0,
            nacked_packets: 0,
            retransmissions: 0,
            retransmitted_bytes: 0,
            nacks_refused: 0,
            fec_packets: 0,
            fec_bytes: 0,
            fec_overhead: 0.0,
            rtx_overhead: 0.0,
            protection: VideoProtectionPolicy::new(config.policy.clone()).decision(),
            dropped_packets: 0,
            rung_changes: 0,
            bad_rtcp: 0,
        };
        stats.protection.loss = config.policy.initial_loss;
        Ok(Self {
            encoder,
            encoded: Vec::new(),
            scaler: FrameScaler::new(),
            packetizer: H264Packetizer::new(config.mtu)?,
            payloads: PayloadPackets::new(),
            allocator,
            allocation,
            policy: VideoProtectionPolicy::new(config.policy.clone()),
            gate: KeyframeGate::new(config.keyframe_gate.clone()),
            rtx,
            rtx_out: vec![0; MAX_PACKET_LEN + 64],
            nacked: Vec::with_capacity(MAX_NACKED_PER_PACKET),
            fec,
            queue: VecDeque::with_capacity(config.max_queued_packets.min(4096)),
            deferred: VecDeque::new(),
            deferred_since: None,
            pool: Vec::new(),
            sequence: 0,
            epoch: None,
            last_timestamp: None,
            enabled: true,
            keyframe_needed: true,
            next_frame_due: None,
            rtt: Duration::from_millis(100),
            encoder_bps,
            encoder_fps: fps,
            // Until measured: the initial FEC of a small delta frame and packet headers.
            overhead: f64::from(
                VideoProtectionPolicy::new(config.policy.clone())
                    .decision()
                    .delta_fraction as f32,
            ) + 0.1,
            media_since: 0,
            protection_since: 0,
            measured_since: None,
            resolution: None,
            media_meter: RateMeter::default(),
            rtx_meter: RateMeter::default(),
            fec_meter: RateMeter::default(),
            frame_meter: RateMeter::default(),
            stats,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VideoSendConfig {
        &self.config
    }

    /// The allocation in force (audio's and video's rates, the rung).
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// Whether video is switched on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Switches video off (camera off, or the call going from video to audio): nothing
    /// is encoded or sent, and outputs not yet polled are dropped; the RTX history stays
    /// so that late NACKs can still be answered. Switched on again, the next picture is
    /// a keyframe.
    pub fn set_enabled(&mut self, enabled: bool) {
        if enabled == self.enabled {
            return;
        }
        self.enabled = enabled;
        if enabled {
            self.keyframe_needed = true;
            self.next_frame_due = None;
        } else {
            while let Some(packet) = self.queue.pop_front() {
                self.recycle(packet.data);
            }
            while let Some(copy) = self.deferred.pop_front() {
                self.recycle(copy);
            }
            self.deferred_since = None;
        }
        self.stats.enabled = enabled;
    }

    /// Sets what audio takes from the target before video (the next
    /// [`set_target`](Self::set_target) applies it).
    pub fn set_audio_demand(&mut self, audio: AudioDemand) {
        self.config.audio = audio;
    }

    /// Sets the round-trip time (from RTCP): it decides whether NACK is worth it, when a
    /// NACK repeats too soon, and which keyframe requests are stale.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.min(Duration::from_secs(10));
    }

    /// Takes the congestion controller's target (audio and video) at `now`: allocates it
    /// (audio first, then the video rung with hysteresis) and sets the encoder's rate and
    /// frame rate. Returns the allocation.
    ///
    /// # Errors
    ///
    /// OpenH264 refusing the new rate (the previous one stays).
    pub fn set_target(&mut self, target_bps: u64, now: Instant) -> VideoResult<Allocation> {
        let before = self.allocation.rung;
        self.allocation = self.allocator.allocate(target_bps, self.config.audio, now);
        if before.is_none() && self.allocation.rung.is_some() {
            // Back from a pause: the receiver may have lost track meanwhile.
            self.keyframe_needed = true;
            self.next_frame_due = None;
        }
        // What went out per bit the encoder was asked for: protection, RTP overhead and
        // the encoder's own overshoot, so that media, RTX and FEC together stay within the
        // video allocation. Measured over at least half a second of sending.
        if let Some(since) = self.measured_since {
            let elapsed = now.saturating_duration_since(since).as_secs_f64();
            if elapsed >= 0.5 && self.media_since > 0 {
                let asked = self.encoder_bps as f64 * elapsed / 8.0;
                let measured = (self.media_since + self.protection_since) as f64 / asked;
                self.overhead += OVERHEAD_SMOOTHING * (measured - 1.0 - self.overhead);
                self.overhead = self.overhead.clamp(0.0, MAX_OVERHEAD);
            }
            if elapsed >= 0.5 {
                self.media_since = 0;
                self.protection_since = 0;
                self.measured_since = Some(now);
            }
        } else {
            self.media_since = 0;
            self.protection_since = 0;
            self.measured_since = Some(now);
        }
        self.apply_rates()?;
        self.stats.rung = self.allocation.rung;
        self.stats.paused = self.allocation.rung.is_none();
        self.stats.target_bps = self.allocation.video_bps;
        self.stats.rung_changes = self.allocator.rung_changes();
        Ok(self.allocation)
    }

    fn apply_rates(&mut self) -> VideoResult<()> {
        let Some(rung) = self.allocation.rung else {
            return Ok(());
        };
        let bps = ((self.allocation.video_bps as f64 / (1.0 + self.overhead)) as u64)
            .clamp(MIN_ENCODER_BPS, u64::from(i32::MAX as u32));
        // Small moves are not worth a SetOption call each second.
        if bps.abs_diff(self.encoder_bps) * 50 > self.encoder_bps {
            self.encoder.set_bitrate(bps as u32)?;
            self.encoder_bps = bps;
        }
        let fps = rung_fps(rung);
        if fps != self.encoder_fps {
            self.encoder.set_frame_rate(fps as f32)?;
            self.encoder_fps = fps;
        }
        self.stats.encoder_bps = self.encoder_bps;
        Ok(())
    }

    /// Takes a loss report (e.g. from transport-cc statuses) for the protection policy.
    pub fn handle_loss_report(&mut self, report: LossReport, now: Instant) {
        let media = self.encoder_bps;
        let budget = (media as f64 * self.config.fec_budget_share) as u64;
        self.stats.protection = self.policy.update(report, media, budget, now);
    }

    /// Takes a report block about our media stream (from an RR or SR).
    pub fn handle_report_block(&mut self, block: &ReportBlock, now: Instant) {
        if block.ssrc != self.config.media_ssrc {
            return;
        }
        let report = LossReport {
            loss: f64::from(block.fraction_lost) / 256.0,
            mean_burst: 1.0,
            rtt: self.rtt,
        };
        self.handle_loss_report(report, now);
    }

    /// Takes an RTCP datagram (compound or reduced-size) from the remote and acts on
    /// what concerns this stream: NACK, PLI, FIR, report blocks. Other packets are
    /// ignored; malformed ones are counted.
    ///
    /// # Errors
    ///
    /// [`VideoPathError::Rtp`] when the datagram's framing is not RTCP.
    pub fn handle_rtcp(&mut self, datagram: &[u8], now: Instant) -> VideoResult<()> {
        let compound = RtcpCompound::parse(datagram)?;
        for packet in compound.packets() {
            match packet {
                Ok(packet) => {
                    self.handle_rtcp_packet(&packet, now);
                }
                Err(_) => self.stats.bad_rtcp += 1,
            }
        }
        Ok(())
    }

    /// Acts on one parsed RTCP packet; returns whether it concerned this stream.
    pub fn handle_rtcp_packet(&mut self, packet: &RtcpPacket<'_>, now: Instant) -> bool {
        let media_ssrc = self.config.media_ssrc;
        match packet {
            RtcpPacket::Nack(nack) if nack.media_ssrc == media_ssrc => {
                self.stats.nacks_received += 1;
                self.nacked.clear();
                self.nacked.extend(nack.lost().take(MAX_NACKED_PER_PACKET));
                self.stats.nacked_packets += self.nacked.len() as u64;
                if self.enabled && self.config.nack && self.policy.nack() {
                    self.retransmit(now);
                }
                true
            }
            RtcpPacket::Pli(pli) if pli.media_ssrc == media_ssrc => {
                self.keyframe_request(now);
                true
            }
            RtcpPacket::Fir(fir) if fir.entries().any(|entry| entry.ssrc == media_ssrc) => {
                self.keyframe_request(now);
                true
            }
            RtcpPacket::ReceiverReport(report) => {
                self.handle_report_blocks(report.report_blocks(), now)
            }
            RtcpPacket::SenderReport(report) => {
                self.handle_report_blocks(report.report_blocks(), now)
            }
            _ => false,
        }
    }

    /// Takes the blocks of a sender or receiver report that are about our stream; true
    /// when there was one.
    fn handle_report_blocks(
        &mut self,
        blocks: impl Iterator<Item = ReportBlock>,
        now: Instant,
    ) -> bool {
        let mut ours = false;
        for block in blocks {
            if block.ssrc == self.config.media_ssrc {
                self.handle_report_block(&block, now);
                ours = true;
            }
        }
        ours
    }

    fn keyframe_request(&mut self, now: Instant) {
        self.stats.keyframe_requests += 1;
        self.gate.on_request(now, self.rtt);
    }

    fn retransmit(&mut self, now: Instant) {
        self.rtx.handle_nack(&self.nacked, self.rtt, now);
        let copies = self.policy.rtx_copies().max(1);
        while let Some(len) = self.rtx.poll_transmit(&mut self.rtx_out) {
            let Some(bytes) = self.rtx_out.get(..len) else {
                continue;
            };
            let mut data = self.pool.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(bytes);
            // Further copies go out behind the next frame's packets: a loss burst that
            // took the first is then likely over.
            for _ in 1..copies {
                if self.deferred.len() >= MAX_DEFERRED_COPIES {
                    break;
                }
                let mut copy = self.pool.pop().unwrap_or_default();
                copy.clear();
                copy.extend_from_slice(bytes);
                self.deferred.push_back(copy);
                self.deferred_since.get_or_insert(now);
            }
            self.count_retransmission(len, now);
            self.push_output(PacketClass::Retransmission, data);
        }
    }

    fn count_retransmission(&mut self, len: usize, now: Instant) {
        self.stats.retransmissions += 1;
        self.stats.retransmitted_bytes += len as u64;
        self.protection_since += len as u64;
        self.rtx_meter.add(len, now);
    }

    /// Sends the retransmission copies waiting for a frame.
    fn release_copies(&mut self, now: Instant) {
        while let Some(copy) = self.deferred.pop_front() {
            self.count_retransmission(copy.len(), now);
            self.push_output(PacketClass::Retransmission, copy);
        }
        self.deferred_since = None;
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (retransmission copies
    /// waiting for a frame that did not come), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deferred_since.map(|since| since + MAX_COPY_DELAY)
    }

    /// Runs the timers at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .deferred_since
            .is_some_and(|since| now >= since + MAX_COPY_DELAY)
        {
            self.release_copies(now);
        }
        self.media_meter.roll(now);
        self.rtx_meter.roll(now);
        self.fec_meter.roll(now);
        self.frame_meter.roll(now);
    }

    /// The RTP timestamp of `now` on the stream's 90 kHz clock (for sender reports).
    pub fn rtp_timestamp_at(&self, now: Instant) -> u32 {
        let epoch = self.epoch.unwrap_or(now);
        let ticks = now.saturating_duration_since(epoch).as_nanos() * u128::from(VIDEO_CLOCK_RATE)
            / 1_000_000_000;
        ticks as u32
    }

    /// Takes a camera picture captured at `now` (any size; pictures arrive at the camera's
    /// rate, which may exceed the rung's). Encodes it when its turn comes and queues its
    /// packets for [`poll_packet`](Self::poll_packet).
    ///
    /// # Errors
    ///
    /// A picture too small to encode, or an encoder or packetizer failure; the path stays
    /// usable (the next picture is a keyframe after an encoder failure).
    pub fn push_frame(&mut self, frame: &VideoFrame, now: Instant) -> VideoResult<FrameOutcome> {
        self.stats.frames_pushed += 1;
        if !self.enabled {
            return Ok(FrameOutcome::Disabled);
        }
        let Some(rung) = self.allocation.rung else {
            return Ok(FrameOutcome::Paused);
        };
        // Frame-rate decimation: a picture is taken when it is at most a quarter interval
        // early for its slot, so a 30 fps camera gives a 15 fps rung every other picture.
        let interval = Duration::from_secs(1) / rung_fps(rung);
        if let Some(due) = self.next_frame_due
            && now + interval / 4 < due
        {
            self.stats.frames_decimated += 1;
            return Ok(FrameOutcome::Decimated);
        }
        self.next_frame_due = Some(match self.next_frame_due {
            Some(due) if now <= due + interval => due + interval,
            _ => now + interval,
        });

        let camera = frame.resolution();
        let plan = plan_fit(camera, rung.width, rung.height)?;
        let picture = if plan.is_identity(camera) {
            frame
        } else {
            self.scaler.scale(frame, plan)?
        };
        let force_keyframe = self.keyframe_needed || self.gate.keyframe_due(now);
        let info =
            match self
                .encoder
                .encode(picture, EncodeRequest { force_keyframe }, &mut self.encoded)
            {
                Ok(info) => info,
                Err(error) => {
                    self.keyframe_needed = true;
                    return Err(error.into());
                }
            };
        if info.len == 0 {
            self.stats.frames_skipped += 1;
            return Ok(FrameOutcome::Skipped);
        }
        self.resolution = Some(plan.output);
        self.stats.resolution = Some(plan.output);
        if info.keyframe {
            self.gate.on_keyframe_sent(now);
            self.keyframe_needed = false;
            self.stats.keyframes += 1;
        }
        self.packetizer
            .packetize(&self.encoded, &mut self.payloads)?;
        let timestamp = self.next_timestamp(now);
        let first = self.queue.len();
        let slot = [0u8; 2];
        let elements = [Extension::new(self.config.transport_cc_id, &slot)];
        let mut packets = 0;
        for (payload, marker) in self.payloads.iter() {
            let mut data = self.pool.pop().unwrap_or_default();
            RtpPacketBuilder::new(
                self.config.payload_type,
                self.sequence,
                timestamp,
                self.config.media_ssrc,
            )
            .marker(marker)
            .extensions(&elements)
            .payload(payload)
            .write_vec(&mut data)?;
            self.sequence = self.sequence.wrapping_add(1);
            if self.config.nack {
                self.rtx.on_sent(&data, now);
            }
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += data.len() as u64;
            self.media_since += data.len() as u64;
            self.media_meter.add(data.len(), now);
            // Pushed without the bound, so the frame's packets stay together for FEC; the
            // bound is applied once the frame is queued.
            self.queue.push_back(OutgoingPacket {
                class: PacketClass::Video,
                data,
            });
            packets += 1;
        }
        let fec_packets = if self.config.fec {
            self.protect(first, info.keyframe, now)
        } else {
            0
        };
        self.release_copies(now);
        while self.queue.len() > self.config.max_queued_packets {
            if let Some(old) = self.queue.pop_front() {
                self.stats.dropped_packets += 1;
                self.recycle(old.data);
            }
        }
        self.stats.frames_encoded += 1;
        self.frame_meter.add(info.len, now);
        Ok(FrameOutcome::Sent {
            keyframe: info.keyframe,
            packets,
            fec_packets,
            bytes: info.len,
        })
    }

    fn next_timestamp(&mut self, now: Instant) -> u32 {
        self.epoch.get_or_insert(now);
        let mut timestamp = self.rtp_timestamp_at(now);
        if let Some(last) = self.last_timestamp
            && timestamp.wrapping_sub(last) as i32 <= 0
        {
            // Two pictures at one instant (or time going back): frames still need
            // distinct, increasing timestamps.
            timestamp = last.wrapping_add(1);
        }
        self.last_timestamp = Some(timestamp);
        timestamp
    }

    /// FlexFEC for the media packets queued from index `first` on (one frame), in groups
    /// of up to 48; returns the FEC packets queued.
    fn protect(&mut self, first: usize, keyframe: bool, now: Instant) -> usize {
        let total = self.queue.len().saturating_sub(first);
        let mut queued = 0;
        let mut start = first;
        while start < first + total {
            let n = (first + total - start).min(MAX_MEDIA_PACKETS);
            let protection = self.policy.protection(keyframe, n);
            let mut group: [&[u8]; MAX_MEDIA_PACKETS] = [&[]; MAX_MEDIA_PACKETS];
            for (slot, packet) in group.iter_mut().zip(self.queue.range(start..start + n)) {
                *slot = &packet.data;
            }
            // A group the encoder refuses cannot happen with packets built here; if it
            // did, the frame would go unprotected rather than not at all.
            let made = self.fec.encode(&group[..n], protection).unwrap_or(0);
            for index in 0..made {
                let Some(fec) = self.fec.packets().nth(index) else {
                    break;
                };
                let mut data = self.pool.pop().unwrap_or_default();
                if with_slot(fec, self.config.transport_cc_id, &mut data).is_ok() {
                    self.stats.fec_packets += 1;
                    self.stats.fec_bytes += data.len() as u64;
                    self.protection_since += data.len() as u64;
                    self.fec_meter.add(data.len(), now);
                    self.queue.push_back(OutgoingPacket {
                        class: PacketClass::Fec,
                        data,
                    });
                    queued += 1;
                } else {
                    give_back(&mut self.pool, data);
                }
            }
            start += n;
        }
        queued
    }

    fn push_output(&mut self, class: PacketClass, data: Vec<u8>) {
        if self.queue.len() >= self.config.max_queued_packets
            && let Some(old) = self.queue.pop_front()
        {
            self.stats.dropped_packets += 1;
            self.recycle(old.data);
        }
        self.queue.push_back(OutgoingPacket { class, data });
    }

    /// The next packet for the pacer, oldest first: enqueue it with its
    /// [`class`](OutgoingPacket::class) and its length, and when the pacer releases it
    /// write the transport-wide sequence number into its slot
    /// ([`OutgoingPacket::set_transport_sequence`]). Give the buffer back with
    /// [`recycle`](Self::recycle).
    pub fn poll_packet(&mut self) -> Option<OutgoingPacket> {
        self.queue.pop_front()
    }

    /// Whether [`padding_packet`](Self::padding_packet) can make padding: video on, with
    /// RTX, and a picture sent (padding carries its RTP timestamp).
    pub fn can_pad(&self) -> bool {
        self.enabled && self.config.nack && self.last_timestamp.is_some()
    }

    /// Whether video could use a higher rate: its allocation is below the cap of its
    /// largest rung (a bandwidth probe is worth its padding only then).
    pub fn wants_more_rate(&self) -> bool {
        self.enabled && self.allocation.video_bps < self.config.allocation.max_video_bps
    }

    /// A padding-only packet of `size_bytes` (within [`MIN_PADDING_PACKET`] and
    /// [`MAX_PADDING_PACKET`]) on the RTX stream, for the pacer's bandwidth probes: RTP
    /// padding and no payload (RFC 4588 allows it; a receiver counts its transport-wide
    /// sequence number and drops it), with the transport-cc slot as every video packet,
    /// class [`PacketClass::Padding`]. `None` when [`can_pad`](Self::can_pad) is false.
    pub fn padding_packet(&mut self, size_bytes: usize) -> Option<OutgoingPacket> {
        if !self.can_pad() {
            return None;
        }
        let timestamp = self.last_timestamp?;
        let slot = [0u8; 2];
        let elements = [Extension::new(self.config.transport_cc_id, &slot)];
        let padding = size_bytes.clamp(MIN_PADDING_PACKET, MAX_PADDING_PACKET) - PADDING_HEADER;
        let mut data = self.pool.pop().unwrap_or_default();
        let built = RtpPacketBuilder::new(
            self.config.rtx_payload_type,
            self.rtx.take_sequence(),
            timestamp,
            self.config.rtx_ssrc,
        )
        .extensions(&elements)
        .padding(u8::try_from(padding).unwrap_or(u8::MAX))
        .write_vec(&mut data);
        if built.is_err() {
            give_back(&mut self.pool, data);
            return None;
        }
        self.stats.padding_packets += 1;
        self.stats.padding_bytes += data.len() as u64;
        Some(OutgoingPacket {
            class: PacketClass::Padding,
            data,
        })
    }

    /// Gives a packet buffer back for reuse.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        give_back(&mut self.pool, buffer);
    }

    /// Counters and rates (the rates over the last complete second before `now`).
    pub fn stats(&mut self, now: Instant) -> VideoSendStats {
        self.handle_meters(now);
        self.stats_at(now)
    }

    /// The same figures as [`stats`](Self::stats) without closing the rate windows (for
    /// a caller that holds the path by shared reference, such as a session's statistics).
    pub fn stats_at(&self, now: Instant) -> VideoSendStats {
        let roll = |meter: &RateMeter| {
            let mut meter = *meter;
            meter.roll(now);
            meter
        };
        let mut stats = self.stats;
        let media = stats.bytes_sent.max(1) as f64;
        stats.fec_overhead = stats.fec_bytes as f64 / media;
        stats.rtx_overhead = stats.retransmitted_bytes as f64 / media;
        stats.media_bps = roll(&self.media_meter).bps();
        stats.rtx_bps = roll(&self.rtx_meter).bps();
        stats.fec_bps = roll(&self.fec_meter).bps();
        stats.fps_sent = roll(&self.frame_meter).per_second();
        let rtx = self.rtx.stats();
        stats.nacks_refused = rtx.not_found + rtx.too_old + rtx.too_soon + rtx.over_budget;
        let gate = self.gate.stats();
        stats.keyframe_requests_ignored = gate.stale + gate.merged;
        stats.protection = self.policy.decision();
        stats
    }

    fn handle_meters(&mut self, now: Instant) {
        self.media_meter.roll(now);
        self.rtx_meter.roll(now);
        self.fec_meter.roll(now);
        self.frame_meter.roll(now);
    }

    /// What it holds now.
    pub fn memory(&self) -> VideoSendMemory {
        VideoSendMemory {
            queued_packets: self.queue.len(),
            deferred_copies: self.deferred.len(),
            pooled_buffers: self.pool.len(),
            rtx_history_packets: self.config.rtx_history_packets,
            rtx_pending: self.rtx.pending(),
        }
    }
}

/// A padding packet's RTP header with the transport-cc extension block.
const PADDING_HEADER: usize = TRANSPORT_CC_OFFSET + 3;
/// Smallest padding packet: the header and one byte of padding (its count).
pub const MIN_PADDING_PACKET: usize = PADDING_HEADER + 1;
/// Largest padding packet: RTP padding holds at most 255 bytes.
pub const MAX_PADDING_PACKET: usize = PADDING_HEADER + 255;

/// Keeps `buffer` for reuse while the pool has room.
fn give_back(pool: &mut Vec<Vec<u8>>, mut buffer: Vec<u8>) {
    if pool.len() < MAX_POOL {
        buffer.clear();
        pool.push(buffer);
    }
}

/// Rewrites a FlexFEC packet (plain RTP header) with the transport-cc slot in a header
/// extension, as media packets have it: the FlexFEC header and payload follow the RTP
/// header, wherever it ends.
fn with_slot(fec: &[u8], transport_cc_id: u8, out: &mut Vec<u8>) -> VideoResult<()> {
    let packet = RtpPacket::parse(fec)?;
    let slot = [0u8; 2];
    let elements = [Extension::new(transport_cc_id, &slot)];
    RtpPacketBuilder::new(
        packet.payload_type(),
        packet.sequence_number().0,
        packet.timestamp().0,
        packet.ssrc(),
    )
    .marker(packet.marker())
    .extensions(&elements)
    .payload(packet.payload())
    .write_vec(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_media::source::TestPattern;
    use tincan_rtp::rtcp::RtcpWriter;

    const MEDIA: u32 = 0x10;
    const RTX: u32 = 0x11;
    const FEC: u32 = 0x12;

    fn path(target_bps: u64, t0: Instant) -> VideoSendPath {
        let mut config = VideoSendConfig::new(MEDIA, RTX, FEC);
        config.start_bps = target_bps;
        VideoSendPath::new(config, t0).expect("valid")
    }

    fn drain(path: &mut VideoSendPath) -> Vec<OutgoingPacket> {
        std::iter::from_fn(|| path.poll_packet()).collect()
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn bad_configuration_is_refused() {
        let t0 = Instant::now();
        let base = VideoSendConfig::new(MEDIA, RTX, FEC);
        let mut cases = Vec::new();
        let mut c = base.clone();
        c.transport_cc_id = 15;
        cases.push(c);
        let mut c = base.clone();
        c.mtu = 1490;
        cases.push(c);
        let mut c = base.clone();
        c.rtx_payload_type = c.payload_type;
        cases.push(c);
        let mut c = base.clone();
        c.fec_ssrc = MEDIA;
        cases.push(c);
        let mut c = base.clone();
        c.fec_budget_share = 2.0;
        cases.push(c);
        let mut c = base;
        c.max_queued_packets = 0;
        cases.push(c);
        for config in cases {
            assert!(
                matches!(
                    VideoSendPath::new(config.clone(), t0),
                    Err(VideoPathError::InvalidConfig { .. })
                ),
                "{config:?}"
            );
        }
    }

    #[test]
    fn decimates_to_the_rung_frame_rate() {
        let t0 = Instant::now();
        // 400 kbit/s: the 640×360 rung at 15 fps.
        let mut path = path(400_000, t0);
        assert_eq!(path.allocation().rung.map(|r| r.fps), Some(15));
        let mut camera = TestPattern::new(Resolution::P360, 30);
        let mut sent = 0;
        for k in 0..30u64 {
            let frame = camera.next_frame();
            let now = t0 + Duration::from_nanos(k * 33_333_333);
            match path.push_frame(&frame, now).expect("pushed") {
                FrameOutcome::Sent { .. } => sent += 1,
                FrameOutcome::Decimated => {}
                other => panic!("{other:?}"),
            }
            drain(&mut path);
        }
        assert_eq!(sent, 15);
        assert_eq!(path.stats(t0).frames_decimated, 15);
    }

    #[test]
    fn answers_nacks_from_the_history_and_plis_with_a_keyframe() {
        let t0 = Instant::now();
        let mut path = path(800_000, t0);
        path.set_rtt(Duration::from_millis(50));
        let mut camera = TestPattern::new(Resolution::P360, 30);
        let outcome = path.push_frame(&camera.next_frame(), t0).expect("sent");
        assert!(matches!(outcome, FrameOutcome::Sent { keyframe: true, .. }));
        let first = drain(&mut path);
        let media: Vec<&OutgoingPacket> = first
            .iter()
            .filter(|p| p.class == PacketClass::Video)
            .collect();
        assert!(media.len() > 1);
        let lost = RtpPacket::parse(&media[1].data).expect("rtp");

        let mut rtcp = Vec::new();
        RtcpWriter::new(&mut rtcp)
            .nack(0x99, MEDIA, &[lost.sequence_number().0])
            .expect("nack");
        path.handle_rtcp(&rtcp, at(t0, 60)).expect("rtcp");
        let resent = drain(&mut path);
        assert!(!resent.is_empty());
        for packet in &resent {
            assert_eq!(packet.class, PacketClass::Retransmission);
            let rtx = RtpPacket::parse(&packet.data).expect("rtp");
            assert_eq!(rtx.ssrc(), RTX);
            assert_eq!(&rtx.payload()[2..], lost.payload());
        }
        // A NACK for another stream is not ours.
        RtcpWriter::new(&mut rtcp)
            .nack(0x99, 0x4242, &[0])
            .expect("nack");
        path.handle_rtcp(&rtcp, at(t0, 61)).expect("rtcp");
        assert!(drain(&mut path).is_empty());

        // A delta frame, then a PLI: the next frame (after the gate's 300 ms) is a key.
        let delta = path
            .push_frame(&camera.next_frame(), at(t0, 33))
            .expect("sent");
        assert!(matches!(
            delta,
            FrameOutcome::Sent {
                keyframe: false,
                ..
            }
        ));
        RtcpWriter::new(&mut rtcp).pli(0x99, MEDIA).expect("pli");
        path.handle_rtcp(&rtcp, at(t0, 400)).expect("rtcp");
        let key = path
            .push_frame(&camera.next_frame(), at(t0, 400))
            .expect("sent");
        assert!(matches!(key, FrameOutcome::Sent { keyframe: true, .. }));
        let stats = path.stats(at(t0, 400));
        assert_eq!((stats.keyframes, stats.keyframe_requests), (2, 1));
        assert_eq!(
            stats.nacks_received, 1,
            "the other stream's NACK is not ours"
        );
        assert!(stats.retransmissions >= 1);
        assert!(path.handle_rtcp(&[1, 2, 3], t0).is_err());
    }

    #[test]
    fn padding_for_probes_goes_on_the_rtx_stream_in_its_sequence() {
        let t0 = Instant::now();
        let mut path = path(800_000, t0);
        path.set_rtt(Duration::from_millis(50));
        // Nothing to take a timestamp from before the first picture.
        assert!(!path.can_pad());
        assert!(path.padding_packet(250).is_none());
        let mut camera = TestPattern::new(Resolution::P360, 30);
        path.push_frame(&camera.next_frame(), t0).expect("sent");
        let media = drain(&mut path);
        let first = RtpPacket::parse(&media[0].data).expect("rtp");
        assert!(path.can_pad());
        let sizes = [250, 10, 5000];
        let mut sequences = Vec::new();
        for size in sizes {
            let mut padding = path.padding_packet(size).expect("padding");
            assert_eq!(padding.class, PacketClass::Padding);
            assert_eq!(
                padding.data.len(),
                size.clamp(MIN_PADDING_PACKET, MAX_PADDING_PACKET)
            );
            padding.set_transport_sequence(0xBEEF);
            let rtp = RtpPacket::parse(&padding.data).expect("rtp");
            assert_eq!((rtp.ssrc(), rtp.payload_type()), (RTX, 97));
            assert_eq!(rtp.timestamp(), first.timestamp());
            assert!(rtp.payload().is_empty() && rtp.padding() > 0);
            let map = tincan_rtp::extension::ExtensionMap::new()
                .with(
                    DEFAULT_TRANSPORT_CC_ID,
                    tincan_rtp::extension::ExtensionKind::TransportCc,
                )
                .expect("map");
            let tcc = tincan_rtp::extension::KnownExtensions::read(&rtp, &map)
                .expect("extensions")
                .transport_cc;
            assert_eq!(tcc.map(|t| t.0), Some(0xBEEF));
            sequences.push(rtp.sequence_number().0);
        }
        // A retransmission takes the next RTX sequence number after the padding's.
        let mut rtcp = Vec::new();
        RtcpWriter::new(&mut rtcp)
            .nack(0x99, MEDIA, &[first.sequence_number().0])
            .expect("nack");
        path.handle_rtcp(&rtcp, at(t0, 60)).expect("rtcp");
        let resent = drain(&mut path);
        let rtx = RtpPacket::parse(&resent[0].data).expect("rtp");
        sequences.push(rtx.sequence_number().0);
        assert!(
            sequences.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{sequences:?}"
        );
        let stats = path.stats(at(t0, 60));
        assert_eq!(stats.padding_packets, 3);
        // Switched off: no padding.
        path.set_enabled(false);
        assert!(path.padding_packet(250).is_none());
    }

    #[test]
    fn switched_off_sends_nothing_and_resumes_with_a_keyframe() {
        let t0 = Instant::now();
        let mut path = path(800_000, t0);
        let mut camera = TestPattern::new(Resolution::P360, 30);
        path.push_frame(&camera.next_frame(), t0).expect("sent");
        path.push_frame(&camera.next_frame(), at(t0, 33))
            .expect("sent");
        path.set_enabled(false);
        assert_eq!(path.memory().queued_packets, 0, "queued packets dropped");
        for k in 2..10 {
            let outcome = path
                .push_frame(&camera.next_frame(), at(t0, 33 * k))
                .expect("ok");
            assert_eq!(outcome, FrameOutcome::Disabled);
            assert!(path.poll_packet().is_none());
        }
        path.set_enabled(true);
        let outcome = path
            .push_frame(&camera.next_frame(), at(t0, 330))
            .expect("sent");
        assert!(matches!(outcome, FrameOutcome::Sent { keyframe: true, .. }));
    }

    #[test]
    fn pauses_below_the_ladder_and_comes_back_with_a_keyframe() {
        let t0 = Instant::now();
        let mut path = path(800_000, t0);
        let mut camera = TestPattern::new(Resolution::P360, 30);
        path.push_frame(&camera.next_frame(), t0).expect("sent");
        let low = path.set_target(100_000, at(t0, 100)).expect("rate");
        assert_eq!(low.rung, None);
        let outcome = path
            .push_frame(&camera.next_frame(), at(t0, 133))
            .expect("ok");
        assert_eq!(outcome, FrameOutcome::Paused);
        assert!(path.stats(at(t0, 133)).paused);
        // Back up: the first step needs the hold time above the floor with margin.
        let mut now = at(t0, 200);
        while path.set_target(800_000, now).expect("rate").rung.is_none() {
            now += Duration::from_millis(500);
            assert!(now < at(t0, 10_000));
        }
        let outcome = path.push_frame(&camera.next_frame(), now).expect("sent");
        assert!(matches!(outcome, FrameOutcome::Sent { keyframe: true, .. }));
    }

    #[test]
    fn rates_follow_the_target_less_protection() {
        let t0 = Instant::now();
        let mut path = path(800_000, t0);
        let mut camera = TestPattern::new(Resolution::P360, 30);
        // Heavy loss reported: more FEC, so less for the encoder.
        path.handle_loss_report(
            LossReport {
                loss: 0.2,
                mean_burst: 1.0,
                rtt: Duration::from_millis(100),
            },
            t0,
        );
        for k in 0..60u64 {
            let now = t0 + Duration::from_nanos(k * 33_333_333);
            path.push_frame(&camera.next_frame(), now).expect("sent");
            for packet in drain(&mut path) {
                path.recycle(packet.data);
            }
            if k % 30 == 29 {
                path.set_target(800_000, now).expect("rate");
            }
        }
        let stats = path.stats(at(t0, 2000));
        assert!(stats.fec_packets > 0);
        assert!(stats.encoder_bps < 800_000, "{}", stats.encoder_bps);
        assert_eq!(stats.target_bps, 800_000);
        assert!(path.memory().pooled_buffers > 0, "buffers come back");
    }
}
