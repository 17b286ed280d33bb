//! `tincan lab video-loss`: H.264 video through loss conditions and outages, recovered by
//! each video scheme through the real receive path, with freezes measured the way WebRTC
//! statistics define them.
//!
//! One run is a call of `--seconds` (default 20 s): a moving, textured test pattern at 640×360,
//! 30 fps, is encoded by OpenH264 at 800 kbps *inside* the simulation (keyframe requests
//! force real keyframes), packetized (RFC 6184, 1200-byte payloads) and sent over a netsim
//! link with 50 ms one-way delay. The receiver puts media, RTX and FlexFEC packets through
//! [`RtxReceiver`], [`FlexFecDecoder`] and the [`VideoJitterBuffer`] into the
//! [`H264Decoder`]; its NACKs, PLIs and receiver reports go back as RTCP over a reverse
//! link with the same loss, where the sender's [`RtxSender`], [`KeyframeGate`] and
//! [`VideoProtectionPolicy`] answer them. Time is virtual (made-up instants from a fixed
//! origin), so a run is deterministic for its seed and much faster than real time.
//!
//! Schemes: `none` (keyframe requests only), `nack` (NACK/RTX), `fec` (FlexFEC from the
//! policy with NACK off, so its stricter no-NACK targets), `nack+fec` (the adaptive
//! policy: NACK by RTT, FlexFEC by loss and frame type). Conditions: random loss 0, 5,
//! 10, 20%; Gilbert-Elliott 10% with mean burst 3; a 2 s outage of both directions in the
//! middle of the call.

use super::LabError;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::{EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_fec::flexfec::{FlexFecDecoder, FlexFecEncoder, MAX_MEDIA_PACKETS};
use tincan_fec::policy::LossReport;
use tincan_fec::rtx::{RtxConfig, RtxReceiver, RtxSender};
use tincan_fec::video_policy::{
    KeyframeGate, KeyframeGateConfig, VideoPolicyConfig, VideoProtectionPolicy, redundant_copies,
};
use tincan_jitter::video::{
    VideoCodec, VideoJitterBuffer, VideoJitterConfig, VideoOutput, VideoPacket,
};
use tincan_media::source::TestPattern;
use tincan_media::{Resolution, VideoFrame};
use tincan_netsim::{GilbertElliott, Link, LinkConfig, Outage, Poll};
use tincan_rtp::payload::PayloadPackets;
use tincan_rtp::payload::h264::H264Packetizer;
use tincan_rtp::rtcp::{ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter};
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u32 = 30;
const CLOCK: u32 = 90_000;
const MTU: usize = 1200;
const MEDIA_SSRC: u32 = 0x1111_0001;
const RTX_SSRC: u32 = 0x1111_0002;
const FEC_SSRC: u32 = 0x1111_0003;
const RECEIVER_SSRC: u32 = 0x2222_0001;
const MEDIA_PT: u8 = 96;
const RTX_PT: u8 = 97;
const FEC_PT: u8 = 118;
/// Receiver reports (loss fraction for the policy) are this far apart.
const REPORT_INTERVAL: Duration = Duration::from_millis(500);
/// The time a decode is taken to need (a fixed figure: measuring it would make the
/// jitter buffer's timing, and so the run, depend on the machine).
const DECODE_TIME: Duration = Duration::from_millis(3);
/// Simulation after the last frame is sent, so its frames can still arrive.
const DRAIN: Duration = Duration::from_secs(1);
/// The must-show limits.
const MAX_FREEZE_PCT: f64 = 1.0;
const MAX_OUTAGE_RECOVERY_MS: f64 = 1000.0;
/// The overhead the sanity check allows the adaptive scheme at 10% loss (RTX + FEC, % of
/// media bytes).
const MAX_OVERHEAD_PCT_AT_10: f64 = 60.0;

/// Options of `tincan lab video-loss`.
#[derive(Args, Debug, Clone)]
pub struct VideoLossArgs {
    /// Seconds of video per run.
    #[arg(long, value_parser = clap::value_parser!(u32).range(5..=3600), default_value_t = 20)]
    seconds: u32,
    /// Seeds per condition (1, 2, ...); every scheme sees the same network per seed. The
    /// criteria are judged on all seeds together: at 10% loss one unlucky freeze is
    /// already 1% of a 20 s call.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 3)]
    seeds: u64,
    /// Run only these schemes (repeatable; default all: none, nack, fec, nack+fec).
    #[arg(long = "scheme", value_name = "NAME")]
    schemes: Vec<String>,
    /// Run only these conditions (repeatable; default all: random-0, random-5,
    /// random-10, random-20, bursty-10, outage-2s).
    #[arg(long = "condition", value_name = "NAME")]
    conditions: Vec<String>,
    /// Encoder bitrate, kbit/s.
    #[arg(long, value_parser = clap::value_parser!(u32).range(50..=20_000), default_value_t = 800)]
    bitrate_kbps: u32,
    /// One-way delay of each direction, ms (RTT is twice this).
    #[arg(long, default_value_t = 50.0)]
    delay_ms: f64,
    /// Jitter (standard deviation) of each direction, ms; packets stay in order.
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Length of the outage of the `outage-2s` condition, ms (it sits in the middle of
    /// the call).
    #[arg(long, default_value_t = 2000)]
    outage_ms: u32,
    /// Share of the media bitrate FEC may use, % (the policy's budget).
    #[arg(long, default_value_t = 50)]
    fec_budget_pct: u32,
    /// Share of the media bitrate retransmissions may use, % (the RTX sender's budget).
    #[arg(long, default_value_t = 50)]
    rtx_budget_pct: u32,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit with a failure status when a must-show criterion fails.
    #[arg(long)]
    check: bool,
    /// Runs in parallel (default: the available cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// A recovery scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Keyframe requests only.
    None,
    /// NACK and RTX.
    Nack,
    /// FlexFEC only (the policy with NACK off).
    Fec,
    /// The adaptive policy: NACK by RTT and FlexFEC by loss and frame type.
    NackFec,
}

impl Scheme {
    const ALL: [Self; 4] = [Self::None, Self::Nack, Self::Fec, Self::NackFec];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Nack => "nack",
            Self::Fec => "fec",
            Self::NackFec => "nack+fec",
        }
    }

    fn fec(self) -> bool {
        matches!(self, Self::Fec | Self::NackFec)
    }

    fn nack(self) -> bool {
        matches!(self, Self::Nack | Self::NackFec)
    }
}

/// A network condition (both directions).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Its name on the command line and in reports.
    pub name: String,
    /// Long-run random loss.
    pub loss: f64,
    /// Mean burst length for Gilbert-Elliott loss; `None` for independent loss.
    pub burst: Option<f64>,
    /// A total outage of both directions in the middle of the call.
    pub outage: Option<Duration>,
}

/// The conditions of the issue.
pub fn conditions(outage: Duration) -> Vec<Condition> {
    let mut all: Vec<Condition> = [0, 5, 10, 20]
        .into_iter()
        .map(|pct| Condition {
            name: format!("random-{pct}"),
            loss: f64::from(pct) / 100.0,
            burst: None,
            outage: None,
        })
        .collect();
    all.push(Condition {
        name: "bursty-10".into(),
        loss: 0.10,
        burst: Some(3.0),
        outage: None,
    });
    all.push(Condition {
        name: "outage-2s".into(),
        loss: 0.0,
        burst: None,
        outage: Some(outage),
    });
    all
}

impl Condition {
    /// Where the outage starts, from the call's start: centred in the call.
    fn outage_start(&self, call: Duration) -> Option<Duration> {
        self.outage
            .map(|outage| call.saturating_sub(outage) / 2)
            .map(|start| Duration::from_millis(start.as_millis() as u64))
    }

    fn link(&self, args: &VideoLossArgs, call: Duration) -> LinkConfig {
        let mut link = LinkConfig {
            delay_ms: args.delay_ms,
            jitter_ms: args.jitter_ms,
            ..LinkConfig::default()
        };
        match self.burst {
            None => link.loss = self.loss,
            Some(burst) => {
                // Bursts of mean length 1/r; the bad state's share p/(p+r) is the loss.
                let r = 1.0 / burst.max(1.0);
                let loss = self.loss.clamp(0.0, 0.99);
                link.gilbert_elliott = Some(GilbertElliott {
                    p: r * loss / (1.0 - loss),
                    r,
                    loss_good: 0.0,
                    loss_bad: 1.0,
                });
            }
        }
        if let (Some(start), Some(outage)) = (self.outage_start(call), self.outage) {
            link.outages.push(Outage {
                start_ms: start.as_secs_f64() * 1000.0,
                duration_ms: outage.as_secs_f64() * 1000.0,
            });
        }
        link
    }
}

/// Figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The scheme.
    pub scheme: &'static str,
    /// The condition.
    pub condition: String,
    /// The seed of its networks.
    pub seed: u64,
    /// Seconds of video sent.
    pub seconds: f64,
    /// Frames the encoder produced and the sender sent.
    pub frames_sent: u64,
    /// Frames decoded (and rendered).
    pub frames_decoded: u64,
    /// Frames the decoder refused.
    pub decode_errors: u64,
    /// WebRTC `freezeCount`.
    pub freeze_count: u64,
    /// WebRTC `totalFreezesDuration`, ms.
    pub freeze_ms: f64,
    /// That as a share of the call, %.
    pub freeze_pct: f64,
    /// Media packets sent.
    pub media_packets: u64,
    /// Mean size of a keyframe, bytes (encoded).
    pub keyframe_bytes: f64,
    /// Mean size of a delta frame, bytes (encoded).
    pub delta_frame_bytes: f64,
    /// Share of media packets the forward network lost (before any repair), %.
    pub media_loss_pct: f64,
    /// Media bitrate actually sent (RTP packets), kbit/s.
    pub media_kbps: f64,
    /// Retransmitted bytes (RTX packets) as a share of media bytes, %.
    pub rtx_overhead_pct: f64,
    /// FlexFEC bytes as a share of media bytes, %.
    pub fec_overhead_pct: f64,
    /// Sequence numbers the receiver NACKed (a retry counts again).
    pub nacked_packets: u64,
    /// Retransmissions the sender sent.
    pub retransmissions: u64,
    /// NACKed packets the sender did not resend (too old, too soon, over budget).
    pub nacks_refused: u64,
    /// Missing packets the receiver gave up on.
    pub nack_give_ups: u64,
    /// Media packets rebuilt by FlexFEC.
    pub fec_recovered: u64,
    /// Keyframe requests (PLI) the receiver sent.
    pub keyframes_requested: u64,
    /// Keyframe requests the sender dropped as stale or merged.
    pub keyframe_requests_ignored: u64,
    /// Keyframes sent (the first one included).
    pub keyframes_sent: u64,
    /// Complete frames dropped by the jitter buffer (broken decode chain).
    pub frames_dropped: u64,
    /// The condition had an outage.
    pub outage: bool,
    /// For an outage: time from the network returning to the first frame decoded
    /// after it, ms (`None` without an outage, or when video never came back).
    pub outage_recovery_ms: Option<f64>,
    /// The policy's final choice for a 3-packet delta frame (FEC per media packet).
    pub final_delta_fec: f64,
    /// The same for a 20-packet keyframe.
    pub final_key_fec: f64,
    /// Times the policy changed its protection.
    pub policy_changes: u64,
    /// Playout delay of the jitter buffer at the end, ms.
    pub playout_delay_ms: f64,
}

/// Figures of one condition and scheme, over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The scheme.
    pub scheme: &'static str,
    /// The condition.
    pub condition: String,
    /// Runs (seeds).
    pub runs: usize,
    /// Freezes, mean per run.
    pub freeze_count: f64,
    /// Total freeze time over all runs as a share of all their time, %.
    pub freeze_pct: f64,
    /// Frames decoded over frames sent, all runs, %.
    pub decoded_pct: f64,
    /// Frames decoded and sent, all runs.
    pub frames_decoded: u64,
    /// Frames sent, all runs.
    pub frames_sent: u64,
    /// RTX bytes / media bytes, all runs, %.
    pub rtx_overhead_pct: f64,
    /// FEC bytes / media bytes, all runs, %.
    pub fec_overhead_pct: f64,
    /// Keyframe requests, mean per run.
    pub keyframes_requested: f64,
    /// Keyframes sent, mean per run.
    pub keyframes_sent: f64,
    /// Worst outage recovery over the runs that recovered, ms.
    pub outage_recovery_ms: Option<f64>,
    /// Runs with an outage after which video never came back.
    pub outage_not_recovered: usize,
}

/// A must-show criterion and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// What it says.
    pub name: String,
    /// The measured figure.
    pub measured: f64,
    /// The limit.
    pub limit: f64,
    /// Whether it holds.
    pub pass: bool,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The video sent.
    pub video: String,
    /// The network.
    pub network: String,
    /// Seconds per run.
    pub seconds: u32,
    /// Seeds per condition.
    pub seeds: u64,
    /// Every run.
    pub runs: Vec<RunReport>,
    /// Per condition and scheme, over the seeds.
    pub summaries: Vec<Summary>,
    /// The must-show criteria (those whose runs were asked for).
    pub criteria: Vec<Criterion>,
    /// All criteria hold.
    pub pass: bool,
}

/// The camera: [`TestPattern`] (a bouncing box, a sweeping bar, drifting ramps) over a
/// fine still texture, with a little temporal noise (sensor grain), so that, as with
/// camera video, a keyframe costs several times a delta frame (about 21 kB against
/// 3.3 kB at 800 kbit/s) and delta frames carry real residual. The bare pattern is so
/// smooth that OpenH264 codes its keyframes in about 4 kB, which would make keyframe
/// recovery look free; a panning texture makes OpenH264's scene-change detection insert
/// an IDR every 17 frames, which no camera call would see.
struct Camera {
    pattern: TestPattern,
    /// Value noise, `TEXTURE_WIDTH` wide and the picture's height, values 0..=255.
    texture: Vec<u8>,
    /// State of the temporal noise generator (xorshift).
    noise: u64,
}

/// Width of the texture (wider pictures repeat it).
const TEXTURE_WIDTH: usize = 1024;

impl Camera {
    fn new(resolution: Resolution) -> Self {
        let (_, height) = resolution.plane_size(0);
        // Random values on a 4-pixel lattice, interpolated: texture with detail at a few
        // pixels' scale, like foliage or fabric.
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 56) as u8
        };
        const CELL: usize = 4;
        let (cols, rows) = (TEXTURE_WIDTH / CELL, height.div_ceil(CELL) + 1);
        let lattice: Vec<u8> = (0..cols * rows).map(|_| next()).collect();
        let mut texture = vec![0u8; TEXTURE_WIDTH * height];
        for y in 0..height {
            let (gy, fy) = (y / CELL, (y % CELL) as u32);
            for x in 0..TEXTURE_WIDTH {
                let (gx, fx) = (x / CELL, (x % CELL) as u32);
                let at = |cx: usize, cy: usize| u32::from(lattice[(cy % rows) * cols + cx % cols]);
                let top = at(gx, gy) * (4 - fx) + at(gx + 1, gy) * fx;
                let bottom = at(gx, gy + 1) * (4 - fx) + at(gx + 1, gy + 1) * fx;
                texture[y * TEXTURE_WIDTH + x] = ((top * (4 - fy) + bottom * fy) / 16) as u8;
            }
        }
        Self {
            pattern: TestPattern::new(resolution, FPS),
            texture,
            noise: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn render_into(&mut self, frame: &mut VideoFrame) {
        self.pattern.render_into(frame);
        let (width, height) = frame.resolution().plane_size(0);
        let stride = frame.stride(0);
        let luma = frame.plane_mut(0);
        for y in 0..height {
            let row = &mut luma[y * stride..y * stride + width];
            let texture = &self.texture[y * TEXTURE_WIDTH..(y + 1) * TEXTURE_WIDTH];
            for (x, pixel) in row.iter_mut().enumerate() {
                self.noise ^= self.noise << 13;
                self.noise ^= self.noise >> 7;
                self.noise ^= self.noise << 17;
                let grain = i32::from((self.noise >> 62) as u8) - 1; // -1..=2
                let texel = i32::from(texture[x % TEXTURE_WIDTH]);
                let value = (i32::from(*pixel) * 3 + texel) / 4 + grain;
                *pixel = value.clamp(0, 255) as u8;
            }
        }
    }
}

/// A reusable pool of packet buffers, so the simulation does not allocate per packet
/// once warm.
#[derive(Debug, Default)]
struct Pool(Vec<Vec<u8>>);

impl Pool {
    fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(1500))
    }

    fn put(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.0.push(buffer);
    }
}

/// The sending side of a call.
struct Sender {
    scheme: Scheme,
    camera: Camera,
    picture: VideoFrame,
    encoder: H264Encoder,
    encoded: Vec<u8>,
    packetizer: H264Packetizer,
    payloads: PayloadPackets,
    frame_packets: Vec<Vec<u8>>,
    sequence: u16,
    rtx: RtxSender,
    rtx_out: Vec<u8>,
    /// Extra retransmission copies waiting for the next frame.
    deferred: Vec<Vec<u8>>,
    fec: FlexFecEncoder,
    policy: VideoProtectionPolicy,
    gate: KeyframeGate,
    nacked: Vec<u16>,
    rtt: Duration,
    media_bps: u64,
    fec_budget_bps: u64,
    frames_sent: u64,
    keyframe_bytes: u64,
    delta_bytes: u64,
    media_packets: u64,
    media_bytes: u64,
    fec_bytes: u64,
    rtx_bytes: u64,
}

impl Sender {
    fn new(scheme: Scheme, args: &VideoLossArgs) -> Result<Self, LabError> {
        let resolution = Resolution::new(WIDTH, HEIGHT)?;
        let media_bps = u64::from(args.bitrate_kbps) * 1000;
        let encoder = H264Encoder::new(H264Config {
            bitrate_bps: args.bitrate_kbps * 1000,
            max_frame_rate: FPS as f32,
            resolution: Some(resolution),
            ..H264Config::default()
        })?;
        let rtx = RtxSender::new(RtxConfig {
            max_bitrate: media_bps * u64::from(args.rtx_budget_pct) / 100,
            ..RtxConfig::new(MEDIA_SSRC, MEDIA_PT, RTX_SSRC, RTX_PT)
        })?;
        let policy = VideoProtectionPolicy::new(VideoPolicyConfig {
            // The FEC-only scheme runs the policy as if the RTT were too long for NACK.
            max_nack_rtt: if scheme.nack() {
                VideoPolicyConfig::default().max_nack_rtt
            } else {
                Duration::ZERO
            },
            ..VideoPolicyConfig::default()
        });
        Ok(Self {
            scheme,
            camera: Camera::new(resolution),
            picture: VideoFrame::black(resolution),
            encoder,
            encoded: Vec::new(),
            packetizer: H264Packetizer::new(MTU)?,
            payloads: PayloadPackets::new(),
            frame_packets: Vec::new(),
            sequence: 0,
            rtx,
            rtx_out: vec![0; 1600],
            deferred: Vec::new(),
            fec: FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0)?,
            policy,
            gate: KeyframeGate::new(KeyframeGateConfig::default()),
            nacked: Vec::new(),
            rtt: Duration::from_secs_f64(2.0 * args.delay_ms / 1000.0),
            media_bps,
            fec_budget_bps: media_bps * u64::from(args.fec_budget_pct) / 100,
            frames_sent: 0,
            keyframe_bytes: 0,
            delta_bytes: 0,
            media_packets: 0,
            media_bytes: 0,
            fec_bytes: 0,
            rtx_bytes: 0,
        })
    }

    /// Captures, encodes and sends frame `index` at `now`.
    fn send_frame(
        &mut self,
        index: u64,
        now: Instant,
        link: &mut Link<Vec<u8>>,
        pool: &mut Pool,
    ) -> Result<(), LabError> {
        self.camera.render_into(&mut self.picture);
        let request = EncodeRequest {
            force_keyframe: self.gate.keyframe_due(now),
        };
        let info = self
            .encoder
            .encode(&self.picture, request, &mut self.encoded)?;
        if info.len == 0 {
            return Ok(()); // the rate control skipped the frame
        }
        if info.keyframe {
            self.keyframe_bytes += info.len as u64;
            self.gate.on_keyframe_sent(now);
        } else {
            self.delta_bytes += info.len as u64;
        }
        self.frames_sent += 1;
        self.packetizer
            .packetize(&self.encoded, &mut self.payloads)?;
        let timestamp = (index * u64::from(CLOCK / FPS)) as u32;
        for buffer in self.frame_packets.drain(..) {
            pool.put(buffer);
        }
        for (payload, marker) in self.payloads.iter() {
            let mut packet = pool.take();
            RtpPacketBuilder::new(MEDIA_PT, self.sequence, timestamp, MEDIA_SSRC)
                .marker(marker)
                .payload(payload)
                .write_vec(&mut packet)?;
            self.sequence = self.sequence.wrapping_add(1);
            if self.scheme.nack() {
                self.rtx.on_sent(&packet, now);
            }
            self.media_packets += 1;
            self.media_bytes += packet.len() as u64;
            let mut copy = pool.take();
            copy.extend_from_slice(&packet);
            link.send(copy, packet.len(), now);
            self.frame_packets.push(packet);
        }
        for copy in self.deferred.drain(..) {
            let len = copy.len();
            link.send(copy, len, now);
        }
        if self.scheme.fec() {
            // FlexFEC protects at most 48 packets at a time: a large keyframe is
            // protected in consecutive groups.
            for group in self.frame_packets.chunks(MAX_MEDIA_PACKETS) {
                let protection = self.policy.protection(info.keyframe, group.len());
                self.fec.encode(group, protection)?;
                for fec in self.fec.packets() {
                    self.fec_bytes += fec.len() as u64;
                    let mut copy = pool.take();
                    copy.extend_from_slice(fec);
                    link.send(copy, fec.len(), now);
                }
            }
        }
        Ok(())
    }

    /// Takes an RTCP packet from the receiver.
    fn on_rtcp(
        &mut self,
        data: &[u8],
        now: Instant,
        link: &mut Link<Vec<u8>>,
        pool: &mut Pool,
    ) -> Result<(), LabError> {
        let compound = RtcpCompound::parse(data)?;
        for packet in compound.packets() {
            match packet? {
                RtcpPacket::Nack(nack) if nack.media_ssrc == MEDIA_SSRC && self.scheme.nack() => {
                    self.nacked.clear();
                    self.nacked.extend(nack.lost());
                    self.rtx.handle_nack(&self.nacked, self.rtt, now);
                    // The plain NACK scheme sends one copy; the adaptive one as many as the
                    // policy asks for.
                    let copies = if self.scheme == Scheme::NackFec {
                        self.policy.rtx_copies()
                    } else {
                        1
                    };
                    while let Some(len) = self.rtx.poll_transmit(&mut self.rtx_out) {
                        self.rtx_bytes += len as u64 * u64::from(copies);
                        send_copy(link, &self.rtx_out[..len], now, pool);
                        // Further copies go out behind the next frame's packets: a loss
                        // burst that took the first is then likely over.
                        for _ in 1..copies {
                            let mut copy = pool.take();
                            copy.extend_from_slice(&self.rtx_out[..len]);
                            self.deferred.push(copy);
                        }
                    }
                }
                RtcpPacket::Pli(pli) if pli.media_ssrc == MEDIA_SSRC => {
                    self.gate.on_request(now, self.rtt);
                }
                RtcpPacket::Fir(fir) if fir.entries().any(|entry| entry.ssrc == MEDIA_SSRC) => {
                    self.gate.on_request(now, self.rtt);
                }
                RtcpPacket::ReceiverReport(report) => {
                    for block in report.report_blocks() {
                        if block.ssrc == MEDIA_SSRC {
                            let loss = LossReport {
                                loss: f64::from(block.fraction_lost) / 256.0,
                                mean_burst: 1.0,
                                rtt: self.rtt,
                            };
                            self.policy
                                .update(loss, self.media_bps, self.fec_budget_bps, now);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The receiving side of a call.
struct Receiver {
    scheme: Scheme,
    buffer: VideoJitterBuffer,
    rtx: RtxReceiver,
    fec: FlexFecDecoder,
    decoder: H264Decoder,
    picture: VideoFrame,
    restored: Vec<u8>,
    recovered: Vec<Vec<u8>>,
    nack: Vec<u16>,
    rtcp: Vec<u8>,
    deadline: Option<Instant>,
    last_render: Option<Instant>,
    /// Highest extended media sequence number received directly, and at the last report.
    highest: Option<i64>,
    reported_highest: Option<i64>,
    received_since_report: u64,
    /// Loss measured for the receiver reports, smoothed like the sender's policy does;
    /// the policy's initial guess until the first report.
    measured_loss: Option<f64>,
    media_received: u64,
    fec_recovered: u64,
    frames_decoded: u64,
    decode_errors: u64,
    /// The network came back here; the first frame decoded from then on ends the outage.
    outage_end: Option<Instant>,
    outage_recovery: Option<Duration>,
}

impl Receiver {
    fn new(scheme: Scheme, rtt: Duration) -> Result<Self, LabError> {
        let mut config = VideoJitterConfig {
            codec: VideoCodec::H264,
            ..VideoJitterConfig::default()
        };
        if !scheme.nack() {
            // No NACK: a missing packet is given up on at once, after a short wait that
            // lets reordering and the frame's FEC packets arrive, and a keyframe is asked
            // for.
            config.max_nack_retries = 0;
            config.nack_delay = Duration::from_millis(20);
        }
        let mut buffer = VideoJitterBuffer::new(config)?;
        buffer.handle_rtt(rtt);
        Ok(Self {
            scheme,
            buffer,
            rtx: RtxReceiver::new(RtxConfig::new(MEDIA_SSRC, MEDIA_PT, RTX_SSRC, RTX_PT)),
            fec: FlexFecDecoder::new(MEDIA_SSRC),
            decoder: H264Decoder::new()?,
            picture: VideoFrame::black(Resolution::new(WIDTH, HEIGHT)?),
            restored: Vec::new(),
            recovered: Vec::new(),
            nack: Vec::new(),
            rtcp: Vec::new(),
            deadline: None,
            last_render: None,
            highest: None,
            reported_highest: None,
            received_since_report: 0,
            measured_loss: None,
            media_received: 0,
            fec_recovered: 0,
            frames_decoded: 0,
            decode_errors: 0,
            outage_end: None,
            outage_recovery: None,
        })
    }

    /// Takes a packet from the forward link.
    fn on_packet(&mut self, data: &[u8], now: Instant, pool: &mut Pool) -> Result<(), LabError> {
        let Ok(packet) = RtpPacket::parse(data) else {
            return Ok(());
        };
        match packet.ssrc() {
            MEDIA_SSRC => {
                self.count_received(packet.sequence_number().0);
                self.on_media(data, now, pool)?;
            }
            RTX_SSRC => {
                let mut restored = std::mem::take(&mut self.restored);
                if self.rtx.unwrap(data, &mut restored).is_ok() {
                    self.on_media(&restored, now, pool)?;
                }
                self.restored = restored;
            }
            // A FEC packet that cannot be used (malformed, too old) is counted by the
            // decoder and otherwise ignored, as a receiver must.
            FEC_SSRC if self.fec.insert_fec(data).is_ok_and(|n| n > 0) => {
                self.drain_recovered(now, pool)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Loss accounting for the receiver reports: media packets as they came off the
    /// network, before any repair.
    fn count_received(&mut self, sequence: u16) {
        self.media_received += 1;
        self.received_since_report += 1;
        let extended = match self.highest {
            None => i64::from(sequence),
            Some(highest) => highest + i64::from(sequence.wrapping_sub(highest as u16) as i16),
        };
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        if self.reported_highest.is_none() {
            self.reported_highest = Some(extended - 1);
        }
    }

    /// A media packet (received, restored from RTX or rebuilt by FEC).
    fn on_media(&mut self, data: &[u8], now: Instant, pool: &mut Pool) -> Result<(), LabError> {
        if self.scheme.fec() && self.fec.insert_media(data).is_ok_and(|n| n > 0) {
            self.insert(data, now)?;
            return self.drain_recovered(now, pool);
        }
        self.insert(data, now)
    }

    fn drain_recovered(&mut self, now: Instant, pool: &mut Pool) -> Result<(), LabError> {
        while let Some(packet) = self.fec.poll_recovered() {
            let mut copy = pool.take();
            copy.extend_from_slice(packet);
            self.recovered.push(copy);
        }
        while let Some(packet) = self.recovered.pop() {
            self.fec_recovered += 1;
            let result = self.insert(&packet, now);
            pool.put(packet);
            result?;
        }
        Ok(())
    }

    fn insert(&mut self, data: &[u8], now: Instant) -> Result<(), LabError> {
        let Ok(packet) = RtpPacket::parse(data) else {
            return Ok(());
        };
        let video = VideoPacket {
            ssrc: packet.ssrc(),
            sequence: packet.sequence_number().0,
            timestamp: packet.timestamp().0,
            marker: packet.marker(),
            payload: packet.payload(),
        };
        // A packet the buffer refuses (too large) is counted in its statistics.
        let _ = self.buffer.insert_packet(video, now);
        Ok(())
    }

    /// Runs the jitter buffer at `now`: decodes the frames it hands out and sends its
    /// NACKs and keyframe requests back.
    fn poll(
        &mut self,
        now: Instant,
        link: &mut Link<Vec<u8>>,
        pool: &mut Pool,
    ) -> Result<(), LabError> {
        loop {
            match self.buffer.poll(now) {
                VideoOutput::Frame(frame) => {
                    let render_at = frame.render_at;
                    match self.decoder.decode_into(frame.data, &mut self.picture) {
                        Ok(true) => {
                            self.buffer.frame_decoded(DECODE_TIME);
                            self.frames_decoded += 1;
                            // Frames go on screen at their render time, never before the
                            // previous one.
                            let shown = render_at.max(now).max(self.last_render.unwrap_or(now));
                            self.last_render = Some(shown);
                            self.buffer.frame_rendered(shown);
                            if let Some(end) = self.outage_end
                                && self.outage_recovery.is_none()
                                && now >= end
                            {
                                self.outage_recovery = Some(now.duration_since(end));
                            }
                        }
                        Ok(false) => {}
                        Err(_) => self.decode_errors += 1,
                    }
                }
                VideoOutput::Nack(sequences) => {
                    if self.scheme.nack() {
                        self.nack.clear();
                        self.nack.extend_from_slice(sequences);
                        // One RTCP NACK packet holds plenty (up to 17 sequence numbers
                        // per 4-byte entry); a list too long for one is split.
                        // A lost NACK costs a retry interval (1.25 RTT) and so, most likely,
                        // a freeze; the adaptive scheme sends it twice under heavy loss, as
                        // the sender does its retransmissions (the sender ignores the copy
                        // of a NACK it already answered).
                        let copies = if self.scheme == Scheme::NackFec {
                            let config = VideoPolicyConfig::default();
                            redundant_copies(
                                self.measured_loss.unwrap_or(config.initial_loss),
                                config.rtx_target,
                                config.max_rtx_copies,
                            )
                        } else {
                            1
                        };
                        for chunk in self.nack.chunks(1000) {
                            let mut writer = RtcpWriter::new(&mut self.rtcp);
                            writer.nack(RECEIVER_SSRC, MEDIA_SSRC, chunk)?;
                            for _ in 0..copies {
                                send_copy(link, &self.rtcp, now, pool);
                            }
                        }
                    }
                }
                VideoOutput::KeyframeRequest => {
                    let mut writer = RtcpWriter::new(&mut self.rtcp);
                    writer.pli(RECEIVER_SSRC, MEDIA_SSRC)?;
                    send_copy(link, &self.rtcp, now, pool);
                }
                VideoOutput::Timeout(at) => {
                    self.deadline = Some(at);
                    return Ok(());
                }
                VideoOutput::Idle => {
                    self.deadline = None;
                    return Ok(());
                }
            }
        }
    }

    /// Sends a receiver report with the fraction of media packets lost since the last one.
    fn report(
        &mut self,
        now: Instant,
        link: &mut Link<Vec<u8>>,
        pool: &mut Pool,
    ) -> Result<(), LabError> {
        let (Some(highest), Some(reported)) = (self.highest, self.reported_highest) else {
            return Ok(());
        };
        let expected = (highest - reported).max(0) as u64;
        let lost = expected.saturating_sub(self.received_since_report);
        let fraction = (lost * 256).checked_div(expected).unwrap_or(0).min(255) as u8;
        self.reported_highest = Some(highest);
        self.received_since_report = 0;
        let weight = VideoPolicyConfig::default().smoothing;
        let loss = f64::from(fraction) / 256.0;
        self.measured_loss = Some(self.measured_loss.map_or(loss, |m| m + weight * (loss - m)));
        let block = ReportBlock {
            ssrc: MEDIA_SSRC,
            fraction_lost: fraction,
            cumulative_lost: 0,
            highest_sequence: highest as u32,
            jitter: 0,
            last_sr: 0,
            delay_since_last_sr: 0,
        };
        let mut writer = RtcpWriter::new(&mut self.rtcp);
        writer.receiver_report(RECEIVER_SSRC, &[block])?;
        send_copy(link, &self.rtcp, now, pool);
        Ok(())
    }
}

fn send_copy(link: &mut Link<Vec<u8>>, data: &[u8], now: Instant, pool: &mut Pool) {
    let mut copy = pool.take();
    copy.extend_from_slice(data);
    link.send(copy, data.len(), now);
}

/// Seeds of the two directions for a condition and seed: every scheme sees the same.
fn link_seeds(condition_index: usize, seed: u64) -> (u64, u64) {
    let base = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(condition_index as u64 * 0x1000_0001);
    (base, base ^ 0x5DEE_CE66_D1CE_5EED)
}

/// Runs one call.
pub fn run_call(
    scheme: Scheme,
    condition: &Condition,
    condition_index: usize,
    seed: u64,
    args: &VideoLossArgs,
) -> Result<RunReport, LabError> {
    let call = Duration::from_secs(u64::from(args.seconds));
    let (forward_seed, reverse_seed) = link_seeds(condition_index, seed);
    let link_config = condition.link(args, call);
    let mut forward: Link<Vec<u8>> = Link::new(link_config.clone(), forward_seed)?;
    let mut reverse: Link<Vec<u8>> = Link::new(link_config, reverse_seed)?;
    let t0 = Instant::now();
    forward.set_epoch(t0);
    reverse.set_epoch(t0);

    let mut pool = Pool::default();
    let mut sender = Sender::new(scheme, args)?;
    let mut receiver = Receiver::new(scheme, sender.rtt)?;
    receiver.outage_end = condition
        .outage_start(call)
        .zip(condition.outage)
        .map(|(start, length)| t0 + start + length);

    let frames = u64::from(args.seconds) * u64::from(FPS);
    let frame_at = |k: u64| t0 + Duration::from_nanos(k * 1_000_000_000 / u64::from(FPS));
    let end = t0 + call + DRAIN;
    let mut next_frame = 0u64;
    let mut next_report = t0 + REPORT_INTERVAL;
    loop {
        let candidates = [
            (next_frame < frames).then(|| frame_at(next_frame)),
            forward.next_deadline(),
            reverse.next_deadline(),
            receiver.deadline,
            Some(next_report),
        ];
        let Some(now) = candidates.into_iter().flatten().min() else {
            break;
        };
        if now > end {
            break;
        }
        while let Poll::Deliver(delivery) = forward.poll(now) {
            receiver.on_packet(&delivery.packet, now, &mut pool)?;
            pool.put(delivery.packet);
        }
        while let Poll::Deliver(delivery) = reverse.poll(now) {
            // A malformed RTCP packet cannot come from this receiver; if it did, the
            // sender would ignore it like any other.
            let _ = sender.on_rtcp(&delivery.packet, now, &mut forward, &mut pool);
            pool.put(delivery.packet);
        }
        if next_frame < frames && frame_at(next_frame) <= now {
            sender.send_frame(next_frame, now, &mut forward, &mut pool)?;
            next_frame += 1;
        }
        if next_report <= now {
            receiver.report(now, &mut reverse, &mut pool)?;
            next_report += REPORT_INTERVAL;
        }
        receiver.poll(now, &mut reverse, &mut pool)?;
    }

    let stats = receiver.buffer.stats();
    let rtx = *sender.rtx.stats();
    let gate = *sender.gate.stats();
    let decision = sender.policy.decision();
    let policy = *sender.policy.stats();
    let seconds = call.as_secs_f64();
    let media = sender.media_bytes.max(1) as f64;
    let freeze_ms = stats.total_freezes_duration.as_secs_f64() * 1000.0;
    Ok(RunReport {
        scheme: scheme.name(),
        condition: condition.name.clone(),
        seed,
        seconds,
        frames_sent: sender.frames_sent,
        frames_decoded: receiver.frames_decoded,
        decode_errors: receiver.decode_errors,
        freeze_count: stats.freeze_count,
        freeze_ms,
        freeze_pct: freeze_ms / (seconds * 10.0),
        media_packets: sender.media_packets,
        keyframe_bytes: sender.keyframe_bytes as f64 / gate.keyframes_sent.max(1) as f64,
        delta_frame_bytes: sender.delta_bytes as f64
            / sender
                .frames_sent
                .saturating_sub(gate.keyframes_sent)
                .max(1) as f64,
        media_loss_pct: 100.0
            * (1.0 - receiver.media_received as f64 / sender.media_packets.max(1) as f64),
        media_kbps: sender.media_bytes as f64 * 8.0 / seconds / 1000.0,
        rtx_overhead_pct: 100.0 * sender.rtx_bytes as f64 / media,
        fec_overhead_pct: 100.0 * sender.fec_bytes as f64 / media,
        nacked_packets: stats.nacked_packets,
        retransmissions: rtx.retransmitted,
        nacks_refused: rtx.not_found + rtx.too_old + rtx.too_soon + rtx.over_budget,
        nack_give_ups: stats.nack_give_ups,
        fec_recovered: receiver.fec_recovered,
        keyframes_requested: stats.keyframe_requests,
        keyframe_requests_ignored: gate.stale + gate.merged,
        keyframes_sent: gate.keyframes_sent,
        frames_dropped: stats.frames_dropped,
        outage: receiver.outage_end.is_some(),
        outage_recovery_ms: receiver.outage_recovery.map(|d| d.as_secs_f64() * 1000.0),
        final_delta_fec: decision.delta_fraction,
        final_key_fec: decision.key_fraction,
        policy_changes: policy.raises + policy.lowers,
        playout_delay_ms: receiver.buffer.playout_delay(end).as_secs_f64() * 1000.0,
    })
}

fn summarize(runs: &[RunReport], condition: &str, scheme: Scheme) -> Option<Summary> {
    let chosen: Vec<&RunReport> = runs
        .iter()
        .filter(|r| r.condition == condition && r.scheme == scheme.name())
        .collect();
    if chosen.is_empty() {
        return None;
    }
    let n = chosen.len() as f64;
    let sum = |f: fn(&RunReport) -> f64| chosen.iter().map(|r| f(r)).sum::<f64>();
    let media: f64 = sum(|r| r.media_kbps * r.seconds);
    let frames_sent = chosen.iter().map(|r| r.frames_sent).sum();
    let frames_decoded = chosen.iter().map(|r| r.frames_decoded).sum();
    let outage = chosen
        .iter()
        .filter_map(|r| r.outage_recovery_ms)
        .reduce(f64::max);
    Some(Summary {
        scheme: scheme.name(),
        condition: condition.to_owned(),
        runs: chosen.len(),
        freeze_count: sum(|r| r.freeze_count as f64) / n,
        freeze_pct: sum(|r| r.freeze_ms) / (sum(|r| r.seconds) * 10.0),
        decoded_pct: 100.0 * frames_decoded as f64 / (frames_sent as f64).max(1.0),
        frames_decoded,
        frames_sent,
        rtx_overhead_pct: sum(|r| r.rtx_overhead_pct * r.media_kbps * r.seconds) / media.max(1e-9),
        fec_overhead_pct: sum(|r| r.fec_overhead_pct * r.media_kbps * r.seconds) / media.max(1e-9),
        keyframes_requested: sum(|r| r.keyframes_requested as f64) / n,
        keyframes_sent: sum(|r| r.keyframes_sent as f64) / n,
        outage_recovery_ms: outage,
        outage_not_recovered: chosen
            .iter()
            .filter(|r| r.outage && r.outage_recovery_ms.is_none())
            .count(),
    })
}

fn criteria(summaries: &[Summary]) -> Vec<Criterion> {
    let find = |condition: &str, scheme: Scheme| {
        summaries
            .iter()
            .find(|s| s.condition == condition && s.scheme == scheme.name())
    };
    let mut out = Vec::new();
    if let Some(s) = find("random-10", Scheme::NackFec) {
        out.push(Criterion {
            name: "nack+fec, 10% random loss: freeze time, % of the call".into(),
            measured: s.freeze_pct,
            limit: MAX_FREEZE_PCT,
            pass: s.freeze_pct <= MAX_FREEZE_PCT,
        });
        let overhead = s.rtx_overhead_pct + s.fec_overhead_pct;
        out.push(Criterion {
            name: "nack+fec, 10% random loss: RTX + FEC overhead, % of media".into(),
            measured: overhead,
            limit: MAX_OVERHEAD_PCT_AT_10,
            pass: overhead <= MAX_OVERHEAD_PCT_AT_10,
        });
    }
    if let Some(s) = find("outage-2s", Scheme::NackFec) {
        // A run that never recovered counts as failing, with the call's length as its
        // figure (JSON has no infinity).
        let measured = if s.outage_not_recovered > 0 {
            f64::MAX
        } else {
            s.outage_recovery_ms.unwrap_or(f64::MAX)
        };
        out.push(Criterion {
            name: "nack+fec, 2 s outage: video back after the network returns, ms (worst)".into(),
            measured,
            limit: MAX_OUTAGE_RECOVERY_MS,
            pass: measured <= MAX_OUTAGE_RECOVERY_MS,
        });
    }
    for scheme in Scheme::ALL {
        if let Some(s) = find("random-0", scheme) {
            let missing = s.frames_sent.saturating_sub(s.frames_decoded) as f64;
            out.push(Criterion {
                name: format!("{}, no loss: frames sent but not decoded", scheme.name()),
                measured: missing,
                limit: 0.0,
                pass: s.frames_decoded == s.frames_sent && s.freeze_pct == 0.0,
            });
        }
    }
    out
}

fn parse_schemes(names: &[String]) -> Result<Vec<Scheme>, LabError> {
    if names.is_empty() {
        return Ok(Scheme::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            Scheme::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
                    format!("unknown scheme {name:?} (known: {})", known.join(", ")).into()
                })
        })
        .collect()
}

/// Runs the lab.
///
/// # Errors
///
/// A lab that could not run, or (with `--check`) a criterion that failed.
pub fn run(args: &VideoLossArgs) -> Result<(), LabError> {
    let started = Instant::now();
    let outage = Duration::from_millis(u64::from(args.outage_ms));
    let outage_chosen =
        args.conditions.is_empty() || args.conditions.iter().any(|c| c == "outage-2s");
    if outage_chosen
        && outage + Duration::from_secs(4) > Duration::from_secs(u64::from(args.seconds))
    {
        return Err(format!(
            "--seconds {} is too short for a {} ms outage with 2 s either side",
            args.seconds, args.outage_ms
        )
        .into());
    }
    let all = conditions(outage);
    for name in &args.conditions {
        if !all.iter().any(|c| &c.name == name) {
            let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            return Err(format!("unknown condition {name:?} (known: {})", known.join(", ")).into());
        }
    }
    let schemes = parse_schemes(&args.schemes)?;
    let chosen: Vec<(usize, &Condition)> = all
        .iter()
        .enumerate()
        .filter(|(_, c)| args.conditions.is_empty() || args.conditions.contains(&c.name))
        .collect();
    let mut jobs_list = Vec::new();
    for &(index, condition) in &chosen {
        for &scheme in &schemes {
            for seed in 1..=args.seeds {
                jobs_list.push((index, condition, scheme, seed));
            }
        }
    }
    println!(
        "tincan lab video-loss: H.264 (OpenH264) {WIDTH}x{HEIGHT} {FPS} fps {} kbit/s, moving textured test pattern; {} s per call; {:.0} ms one way each direction (RTT {:.0} ms); {} runs",
        args.bitrate_kbps,
        args.seconds,
        args.delay_ms,
        2.0 * args.delay_ms,
        jobs_list.len()
    );
    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, jobs_list.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunReport, LabError>>>> =
        Mutex::new((0..jobs_list.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, condition, scheme, seed)) = jobs_list.get(i) else {
                        break;
                    };
                    let result = run_call(scheme, condition, index, seed, args);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                }
            });
        }
    });
    let mut runs = Vec::new();
    for result in results.into_inner().map_err(|_| "a lab worker panicked")? {
        runs.push(result.ok_or("a lab worker panicked")??);
    }
    let mut summaries = Vec::new();
    for &(_, condition) in &chosen {
        for &scheme in &schemes {
            summaries.extend(summarize(&runs, &condition.name, scheme));
        }
    }
    let criteria = criteria(&summaries);
    let report = Report {
        video: format!(
            "H.264 (OpenH264) {WIDTH}x{HEIGHT}, {FPS} fps, {} kbit/s, synthetic moving test pattern with panning texture and grain",
            args.bitrate_kbps
        ),
        network: format!(
            "netsim, {} ms one way each direction, jitter {} ms, same loss both ways",
            args.delay_ms, args.jitter_ms
        ),
        seconds: args.seconds,
        seeds: args.seeds,
        pass: criteria.iter().all(|c| c.pass),
        runs,
        summaries,
        criteria,
    };
    print_table(&report);
    println!("  ({:.1} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    let must_show = report
        .summaries
        .iter()
        .filter(|s| s.scheme == Scheme::NackFec.name())
        .filter(|s| s.condition == "random-10" || s.condition == "outage-2s")
        .count();
    if args.check && must_show < 2 {
        println!(
            "  note: the must-show needs nack+fec on random-10 and outage-2s; --check judged only what ran"
        );
    }
    if args.check && !report.pass {
        return Err("tincan lab video-loss: a must-show criterion failed".into());
    }
    Ok(())
}

fn print_table(report: &Report) {
    println!();
    println!(
        "  {:<11} {:<9} {:>7} {:>8} {:>9} {:>7} {:>7} {:>9} {:>9} {:>10}",
        "condition",
        "scheme",
        "freezes",
        "freeze%",
        "decoded%",
        "rtx%",
        "fec%",
        "kf req",
        "kf sent",
        "outage ms"
    );
    for s in &report.summaries {
        let outage = match (s.outage_recovery_ms, s.outage_not_recovered) {
            (_, 1..) => "never".to_owned(),
            (Some(ms), 0) => format!("{ms:.0}"),
            (None, 0) => "-".to_owned(),
        };
        println!(
            "  {:<11} {:<9} {:>7.1} {:>8.2} {:>9.1} {:>7.1} {:>7.1} {:>9.1} {:>9.1} {:>10}",
            s.condition,
            s.scheme,
            s.freeze_count,
            s.freeze_pct,
            s.decoded_pct,
            s.rtx_overhead_pct,
            s.fec_overhead_pct,
            s.keyframes_requested,
            s.keyframes_sent,
            outage
        );
    }
    println!();
    for c in &report.criteria {
        println!(
            "  [{}] {}: {:.2} (limit {:.2})",
            if c.pass { "pass" } else { "FAIL" },
            c.name,
            c.measured,
            c.limit
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_make_the_networks_they_name() {
        let args = VideoLossArgs {
            seconds: 20,
            seeds: 1,
            schemes: Vec::new(),
            conditions: Vec::new(),
            bitrate_kbps: 800,
            delay_ms: 50.0,
            jitter_ms: 0.0,
            outage_ms: 2000,
            fec_budget_pct: 50,
            rtx_budget_pct: 50,
            json: None,
            check: false,
            jobs: None,
        };
        let call = Duration::from_secs(20);
        let all = conditions(Duration::from_secs(2));
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "random-0",
                "random-5",
                "random-10",
                "random-20",
                "bursty-10",
                "outage-2s"
            ]
        );
        let random = all[2].link(&args, call);
        assert_eq!((random.loss, random.delay_ms), (0.10, 50.0));
        let bursty = all[4].link(&args, call);
        let ge = bursty.gilbert_elliott.expect("bursty");
        // Mean burst 1/r = 3 and bad-state share p/(p+r) = 10%.
        assert!((1.0 / ge.r - 3.0).abs() < 1e-9);
        assert!((ge.p / (ge.p + ge.r) - 0.10).abs() < 1e-9);
        let outage = all[5].link(&args, call);
        assert_eq!(outage.outages.len(), 1);
        assert_eq!(outage.outages[0].start_ms, 9000.0);
        assert_eq!(outage.outages[0].duration_ms, 2000.0);
        for condition in &all {
            assert!(
                condition.link(&args, call).validate().is_ok(),
                "{condition:?}"
            );
        }
    }

    #[test]
    fn schemes_parse_and_say_what_they_use() {
        assert!(Scheme::NackFec.nack() && Scheme::NackFec.fec());
        assert!(!Scheme::None.nack() && !Scheme::None.fec());
        assert!(parse_schemes(&["nack+fec".into()]).is_ok());
        assert!(parse_schemes(&["bogus".into()]).is_err());
    }
}
