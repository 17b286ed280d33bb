//! `tincan lab loss`: speech through loss conditions with each audio recovery scheme,
//! received through the real receive path (RED splitting, the adaptive jitter buffer with
//! its FEC/DRED recovery and concealment), decoded to WAV with a JSON manifest that
//! `cargo xtask quality` scores with PESQ and STOI.
//!
//! Schemes (Opus 48 kHz mono, 20 ms frames):
//! - `plc`: 32 kbps, nothing redundant; losses concealed by the decoder;
//! - `lbrr`: 32 kbps with in-band FEC, the encoder told the condition's loss rate;
//! - `red1`, `red2`, `red4`: 24 kbps frames with 1, 2 or 4 earlier frames repeated (RFC 2198);
//! - `dred`: 24 kbps with deep redundancy capped at 1 s; `dred48`: the same at 48 kbps;
//! - `adaptive`: [`tincan_fec::policy::AudioPolicy`] choosing among these every second from
//!   the receiver's loss report (delivered one RTT later), within a 128 kbps budget; its
//!   packets are always RED payloads (depth 0 when it picks no RED).

use super::LabError;
use clap::Args;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{DredDecoder, OpusConfig, OpusDecoder, OpusEncoder};
use tincan_codec::resample::resample_all;
use tincan_fec::policy::{
    AudioPolicy, AudioPolicyConfig, AudioPolicyStats, AudioRedundancy, LossReport,
};
use tincan_fec::rtx::{RtxConfig, RtxReceiver, RtxSender};
use tincan_jitter::{AudioJitterBuffer, AudioJitterConfig, AudioPacket, OpusPacketDecoder};
use tincan_media::wav::{self, WavWriter};
use tincan_media::{AudioFormat, AudioFrame, Channels};
use tincan_netsim::{GilbertElliott, Link, LinkConfig, Poll};
use tincan_rtp::payload::red::{RedEncoder, RedPayload};
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

const RATE: u32 = 48_000;
const FRAME: usize = 960;
const PULL: usize = 480;
const OPUS_PT: u8 = 111;
const RED_PT: u8 = 63;
/// The longest the receiver keeps playing after the last packet's media time (it stops
/// earlier once everything received has been played).
const TAIL: Duration = Duration::from_millis(600);

/// Options of `tincan lab loss`.
#[derive(Args, Debug, Clone)]
pub struct LossArgs {
    /// Where the WAVs and `manifest.json` go.
    #[arg(long, default_value = "target/lab-loss")]
    out: PathBuf,
    /// Speech WAV (default: every fixture clip in `fixtures/speech`, joined).
    #[arg(long)]
    speech: Option<PathBuf>,
    /// Seeds per condition (1, 2, ...).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Run only these schemes (repeatable; default: all).
    #[arg(long = "scheme", value_name = "NAME")]
    schemes: Vec<String>,
    /// Run only these conditions (repeatable; default: all).
    #[arg(long = "condition", value_name = "NAME")]
    conditions: Vec<String>,
    /// One-way delay of the network, ms.
    #[arg(long, default_value_t = 50.0)]
    delay_ms: f64,
    /// Jitter (standard deviation) of the network, ms.
    #[arg(long, default_value_t = 20.0)]
    jitter_ms: f64,
    /// The jitter buffer's target quantile (its default when not given).
    #[arg(long)]
    jitter_quantile: Option<f64>,
    /// Turn the jitter buffer's time stretching off (it then only conceals, and its delay
    /// only grows), to see what stretching costs in quality.
    #[arg(long)]
    no_time_stretching: bool,
    /// The receiver as for interactive calls (98% of packets in time, 60 ms start)
    /// instead of the high-quality configuration (99.9%, 100 ms start, speech edited
    /// only far from the target).
    #[arg(long)]
    interactive_receiver: bool,
    /// The adaptive scheme conceals with the classic PLC instead of the deep PLC.
    #[arg(long)]
    classic_plc: bool,
    /// RED copies at this bitrate (kbit/s) from a second encoder instead of repeating the
    /// 24 kbps primary (fixed RED schemes).
    #[arg(long)]
    red_copy_kbps: Option<u32>,
    /// Send every packet this many times, spread over its 20 ms (fixed schemes).
    #[arg(long, default_value_t = 1)]
    packet_copies: u32,
    /// Send each copy this long after the previous send of its packet instead of within
    /// the 20 ms (time diversity against bursts; fixed schemes, with `--packet-copies`).
    #[arg(long)]
    copy_spacing_ms: Option<u64>,
}

impl LossArgs {
    /// The receiver's jitter buffer configuration with a recovery delay.
    fn jitter_config(&self, recovery_delay: Duration) -> AudioJitterConfig {
        let default = if self.interactive_receiver {
            AudioJitterConfig::default()
        } else {
            AudioJitterConfig::high_quality()
        };
        AudioJitterConfig {
            recovery_delay,
            target_quantile: self.jitter_quantile.unwrap_or(default.target_quantile),
            time_stretching: !self.no_time_stretching,
            ..default
        }
    }
}

/// A loss condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Its name in file names and tables.
    pub name: String,
    /// Long-run loss rate.
    pub loss: f64,
    /// Mean burst length for Gilbert-Elliott loss; `None` for independent loss.
    pub burst: Option<f64>,
}

/// The conditions of the issue: random loss at 0-80%, bursts of 3 at 10% and 30%.
pub fn conditions() -> Vec<Condition> {
    let mut all: Vec<Condition> = [0, 5, 10, 20, 30, 50, 80]
        .into_iter()
        .map(|pct| Condition {
            name: format!("random-{pct}"),
            loss: f64::from(pct) / 100.0,
            burst: None,
        })
        .collect();
    for pct in [10, 30] {
        all.push(Condition {
            name: format!("bursty-{pct}"),
            loss: f64::from(pct) / 100.0,
            burst: Some(3.0),
        });
    }
    all
}

impl Condition {
    /// The network: `delay_ms` one way with `jitter_ms` jitter (in order), and this loss.
    pub fn link(&self, delay_ms: f64, jitter_ms: f64) -> LinkConfig {
        let mut link = LinkConfig {
            delay_ms,
            jitter_ms,
            ..LinkConfig::default()
        };
        match self.burst {
            None => link.loss = self.loss,
            Some(burst) => {
                // Bursts of mean length 1/r; the bad state's share p/(p+r) is the loss.
                let r = 1.0 / burst;
                let p = if self.loss >= 1.0 {
                    1.0
                } else {
                    (self.loss * r / (1.0 - self.loss)).min(1.0)
                };
                link.gilbert_elliott = Some(GilbertElliott {
                    p,
                    r,
                    loss_good: 0.0,
                    loss_bad: 1.0,
                });
            }
        }
        link
    }
}

/// A recovery scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Decoder concealment only (classic PLC).
    Plc,
    /// Decoder concealment only, with libopus's deep PLC (decoder complexity 10).
    DeepPlc,
    /// Opus in-band FEC.
    Lbrr,
    /// RED with this many redundant frames.
    Red(usize),
    /// DRED at this bitrate.
    Dred(u32),
    /// The loss-adaptive policy.
    Adaptive,
}

impl Scheme {
    /// Every scheme, in table order.
    pub const ALL: [Scheme; 9] = [
        Scheme::Plc,
        Scheme::DeepPlc,
        Scheme::Lbrr,
        Scheme::Red(1),
        Scheme::Red(2),
        Scheme::Red(4),
        Scheme::Dred(24_000),
        Scheme::Dred(48_000),
        Scheme::Adaptive,
    ];

    /// Its name in file names and tables.
    pub fn name(self) -> String {
        match self {
            Scheme::Plc => "plc".into(),
            Scheme::DeepPlc => "deepplc".into(),
            Scheme::Lbrr => "lbrr".into(),
            Scheme::Red(depth) => format!("red{depth}"),
            Scheme::Dred(24_000) => "dred".into(),
            Scheme::Dred(bitrate) => format!("dred{}", bitrate / 1000),
            Scheme::Adaptive => "adaptive".into(),
        }
    }

    /// The sender's settings for a fixed scheme under `loss` (the adaptive scheme starts
    /// from the policy's lightest rung instead).
    fn settings(self, loss: f64, args: &LossArgs) -> AudioRedundancy {
        let loss_pct = (loss * 100.0).round().clamp(0.0, 100.0) as u8;
        let none = AudioRedundancy {
            level: 0,
            opus_bitrate: 32_000,
            inband_fec: false,
            expected_loss_pct: 0,
            red_depth: 0,
            red_bitrate: 0,
            packet_copies: args.packet_copies.clamp(1, 4),
            copy_spacing: args.copy_spacing_ms.map_or(
                Duration::from_millis(20) / args.packet_copies.clamp(1, 4),
                Duration::from_millis,
            ),
            dred: Duration::ZERO,
            nack: false,
            recovery_delay: Duration::ZERO,
        };
        let packet = Duration::from_millis(20);
        // Trailing copies are waited for like RED copies.
        let copy_wait = if args.copy_spacing_ms.is_some() {
            none.copy_spacing * (none.packet_copies - 1)
        } else {
            Duration::ZERO
        };
        let none = AudioRedundancy {
            recovery_delay: copy_wait,
            ..none
        };
        match self {
            Scheme::Plc | Scheme::DeepPlc | Scheme::Adaptive => none,
            Scheme::Lbrr => AudioRedundancy {
                inband_fec: true,
                expected_loss_pct: loss_pct,
                recovery_delay: packet + copy_wait,
                ..none
            },
            Scheme::Red(depth) => AudioRedundancy {
                opus_bitrate: 24_000,
                red_depth: depth,
                red_bitrate: args.red_copy_kbps.map_or(24_000, |k| k * 1000),
                recovery_delay: packet * depth.min(3) as u32 + copy_wait,
                ..none
            },
            // DRED is only sent when the encoder expects some loss.
            Scheme::Dred(bitrate) => AudioRedundancy {
                opus_bitrate: bitrate,
                expected_loss_pct: loss_pct.max(10),
                dred: Duration::from_secs(1),
                recovery_delay: packet * 2 + copy_wait,
                ..none
            },
        }
    }
}

/// One run in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    /// Scheme name.
    pub scheme: String,
    /// Condition name.
    pub condition: String,
    /// Long-run loss rate of the condition.
    pub loss: f64,
    /// Mean burst length, for bursty conditions.
    pub burst: Option<f64>,
    /// Seed of the network.
    pub seed: u64,
    /// The decoded WAV, relative to the manifest.
    pub wav: String,
    /// Payload bitrate actually sent (RTP payloads, headers excluded), kbit/s.
    pub kbps_sent: f64,
    /// Packets sent (duplicates included).
    pub packets_sent: usize,
    /// Frames none of whose packets arrived, percent.
    pub network_loss_pct: f64,
    /// Audio concealed rather than decoded or rebuilt, percent of what was played.
    pub residual_loss_pct: f64,
    /// Audio rebuilt from redundancy, percent of what was played.
    pub recovered_pct: f64,
    /// Mean jitter buffer delay (arrival to playout), ms.
    pub jitter_buffer_delay_ms: f64,
    /// Audio the buffer inserted by stretching (preemptive expansion), ms.
    pub stretch_inserted_ms: f64,
    /// Audio the buffer removed by stretching (acceleration), ms.
    pub stretch_removed_ms: f64,
    /// Runs of concealment.
    pub concealment_events: u64,
    /// Mean mouth-to-ear delay of what was played: capture framing (20 ms), network,
    /// jitter buffer and Opus's 6.5 ms look-ahead; device buffers excluded.
    pub mouth_to_ear_ms: f64,
    /// 95th percentile of the same.
    pub mouth_to_ear_p95_ms: f64,
    /// Packets that arrived after their playout time, percent of frames sent.
    pub late_pct: f64,
    /// NACK messages the receiver sent (audio NACK is used when the policy says the RTT
    /// fits the receiver's delay).
    pub nacks_sent: u64,
    /// Packets retransmitted (RTX) in answer.
    pub retransmissions: u64,
    /// What the adaptive policy did (adaptive scheme only).
    pub policy: Option<PolicySummary>,
}

/// The adaptive policy's statistics, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    /// Settings changes.
    pub changes: u64,
    /// Steps up the ladder.
    pub steps_up: u64,
    /// Steps down the ladder.
    pub steps_down: u64,
    /// Reports where the budget capped the rung.
    pub budget_limited: u64,
    /// Reports handled at each rung of the ladder.
    pub reports_at_level: Vec<u64>,
}

impl From<AudioPolicyStats> for PolicySummary {
    fn from(stats: AudioPolicyStats) -> Self {
        Self {
            changes: stats.changes,
            steps_up: stats.steps_up,
            steps_down: stats.steps_down,
            budget_limited: stats.budget_limited,
            reports_at_level: stats.updates_at_level.to_vec(),
        }
    }
}

/// Where one clip lies in the reference.
#[derive(Debug, Clone, Serialize)]
pub struct ClipSpan {
    /// The clip's file name.
    pub name: String,
    /// Start in the reference, seconds.
    pub start_s: f64,
    /// End in the reference, seconds.
    pub end_s: f64,
}

/// The manifest `cargo xtask quality` reads.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The clean input, relative to the manifest.
    pub reference: String,
    /// Sample rate of every WAV.
    pub sample_rate: u32,
    /// One-way delay and jitter of the network, ms.
    pub network: (f64, f64),
    /// The clips the reference joins, in order: `cargo xtask quality` scores each alone.
    pub clips: Vec<ClipSpan>,
    /// The runs.
    pub runs: Vec<RunEntry>,
}

/// How the sender picks its settings.
enum Control {
    /// The same settings for the whole run.
    Fixed(AudioRedundancy),
    /// The loss-adaptive policy, fed by the receiver's reports.
    Adaptive(Box<AudioPolicy>),
}

/// The sending side of a run: Opus encoders (the primary, and a cheaper one for RED copies
/// when the settings ask for it) and the RED packetizer.
struct Sender {
    settings: AudioRedundancy,
    encoder: OpusEncoder,
    copy_encoder: OpusEncoder,
    red: RedEncoder,
    opus: [u8; 1500],
    copy: [u8; 1500],
}

impl Sender {
    fn new(settings: AudioRedundancy) -> Result<Self, LabError> {
        let base = OpusConfig::new(RATE, Channels::Mono);
        let mut sender = Self {
            settings,
            encoder: OpusEncoder::new(&base)?,
            copy_encoder: OpusEncoder::new(&base)?,
            red: RedEncoder::new(0)?,
            opus: [0; 1500],
            copy: [0; 1500],
        };
        sender.configure(settings, true)?;
        Ok(sender)
    }

    /// Applies new settings to the encoders.
    fn configure(&mut self, next: AudioRedundancy, first: bool) -> Result<(), LabError> {
        let old = self.settings;
        self.encoder.set_bitrate(next.opus_bitrate)?;
        self.encoder.set_inband_fec(next.inband_fec)?;
        self.encoder
            .set_packet_loss_percent(next.expected_loss_pct)?;
        self.encoder.set_dred_duration(next.dred)?;
        if next.red_bitrate > 0 {
            self.copy_encoder.set_bitrate(next.red_bitrate)?;
        }
        if first || next.red_depth != old.red_depth {
            self.red = RedEncoder::new(next.red_depth)?;
        }
        self.settings = next;
        Ok(())
    }

    /// The payload for frame `k`, and whether it is a RED payload.
    fn encode(&mut self, k: usize, frame: &[i16]) -> Result<(Vec<u8>, bool), LabError> {
        let len = self.encoder.encode(frame, &mut self.opus)?;
        // The copy encoder codes every frame while copies are cheaper than the primary,
        // so its state is warm when a frame is needed.
        let cheap_copies =
            self.settings.red_depth > 0 && self.settings.red_bitrate < self.settings.opus_bitrate;
        if self.settings.red_depth == 0 {
            return Ok((self.opus[..len].to_vec(), false));
        }
        let mut payload = Vec::with_capacity(len * (1 + self.settings.red_depth) + 32);
        let timestamp = (k * FRAME) as u32;
        if cheap_copies {
            let copy_len = self.copy_encoder.encode(frame, &mut self.copy)?;
            self.red.encode_with_copy(
                OPUS_PT,
                timestamp,
                &self.opus[..len],
                &self.copy[..copy_len],
                &mut payload,
            )?;
        } else {
            self.red
                .encode(OPUS_PT, timestamp, &self.opus[..len], &mut payload)?;
        }
        Ok((payload, true))
    }
}

/// A packet on the wire: the frame it carries and its payload.
struct Sent {
    payload: Vec<u8>,
    red: bool,
}

/// Feeds one received payload to the buffer: RED blocks oldest first, then the primary
/// (as recovered frames, not path measurements, when `retransmitted`).
fn receive(
    buffer: &mut AudioJitterBuffer<OpusPacketDecoder>,
    k: usize,
    sent: &Sent,
    at: Instant,
    retransmitted: bool,
) {
    let packet = |index: usize, payload| AudioPacket {
        ssrc: 1,
        sequence: index as u16,
        timestamp: (index * FRAME) as u32,
        payload,
    };
    let primary = |buffer: &mut AudioJitterBuffer<OpusPacketDecoder>, data| {
        let _ = if retransmitted {
            buffer.insert_recovered(packet(k, data), at)
        } else {
            buffer.insert(packet(k, data), at)
        };
    };
    if !sent.red {
        primary(buffer, &sent.payload);
        return;
    }
    // A payload that does not parse is dropped as the network would drop garbage.
    let Ok(red) = RedPayload::parse(&sent.payload) else {
        return;
    };
    for block in red.redundant() {
        let back = usize::from(block.timestamp_offset).div_ceil(FRAME);
        if let Some(index) = k.checked_sub(back)
            && !block.data.is_empty()
        {
            let _ = buffer.insert_recovered(packet(index, block.data), at);
        }
    }
    let data = red.primary().data;
    if !data.is_empty() {
        primary(buffer, data);
    }
}

/// What travels from sender to receiver: a frame's packet, or a retransmission.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// Packet `k`'s first send, the `send`th media send.
    Media {
        k: usize,
        send: usize,
    },
    /// A copy of packet `k` sent again (the `send`th media send); `trailing` when it trails
    /// by a packet interval or more (then, like a retransmission, it stays out of the
    /// buffer's delay estimate).
    Copy {
        k: usize,
        trailing: bool,
        send: usize,
    },
    Rtx(usize),
}

/// Audio NACK and RTX (RFC 4588) for the lab: the sender keeps every packet it sends as
/// RTP in an [`RtxSender`] (bounded history, once per RTT, byte budget); the receiver asks
/// for the frames it misses while a retransmission can still arrive before their playout,
/// at most [`MAX_NACK_TRIES`] times each, one RTT apart, and restores RTX packets with an
/// [`RtxReceiver`].
struct AudioNack {
    rtx: RtxSender,
    restorer: RtxReceiver,
    /// Retransmitted packets in flight, by id.
    in_flight: Vec<Vec<u8>>,
    /// Whether each frame went out as a RED payload.
    red: Vec<bool>,
    received: Vec<bool>,
    /// Per frame: NACKs sent and when the last one went.
    asked: Vec<(u8, Option<Instant>)>,
    /// Every frame below this has arrived or been given up.
    first_open: usize,
    highest: Option<usize>,
    /// NACK lists on their way back, by id.
    lists: Vec<Vec<u16>>,
    nacks_sent: u64,
    retransmitted: u64,
    scratch: Vec<u8>,
}

/// How often one frame is asked for.
const MAX_NACK_TRIES: u8 = 3;
const AUDIO_SSRC: u32 = 1;
const RTX_SSRC: u32 = 2;
const RTX_PT: u8 = 112;

impl AudioNack {
    fn new(frames: usize) -> Result<Self, LabError> {
        let config = RtxConfig {
            history_packets: 256,
            max_bitrate: 256_000,
            ..RtxConfig::new(AUDIO_SSRC, OPUS_PT, RTX_SSRC, RTX_PT)
        };
        Ok(Self {
            rtx: RtxSender::new(config.clone())?,
            restorer: RtxReceiver::new(config),
            in_flight: Vec::new(),
            red: vec![false; frames],
            received: vec![false; frames],
            asked: vec![(0, None); frames],
            first_open: 0,
            highest: None,
            lists: Vec::new(),
            nacks_sent: 0,
            retransmitted: 0,
            scratch: Vec::new(),
        })
    }

    /// The sender sent frame `k`'s payload.
    fn on_sent(
        &mut self,
        k: usize,
        red: bool,
        payload: &[u8],
        at: Instant,
    ) -> Result<(), LabError> {
        self.red[k] = red;
        let pt = if red { RED_PT } else { OPUS_PT };
        RtpPacketBuilder::new(pt, k as u16, (k * FRAME) as u32, AUDIO_SSRC)
            .payload(payload)
            .write_vec(&mut self.scratch)?;
        self.rtx.on_sent(&self.scratch, at);
        Ok(())
    }

    fn on_received(&mut self, k: usize) {
        self.received[k] = true;
        self.highest = Some(self.highest.map_or(k, |h| h.max(k)));
    }

    /// The NACK list due now (frames missing below the highest received whose deadline
    /// leaves an RTT), as an id for the back link.
    fn due(
        &mut self,
        now: Instant,
        rtt: Duration,
        deadline: impl Fn(usize) -> Instant,
    ) -> Option<usize> {
        let highest = self.highest?;
        let mut list = Vec::new();
        for k in self.first_open..highest {
            let (tries, last) = self.asked[k];
            if self.received[k] || tries >= MAX_NACK_TRIES || now + rtt > deadline(k) {
                if k == self.first_open {
                    self.first_open += 1;
                }
                continue;
            }
            if last.is_some_and(|at| now.saturating_duration_since(at) < rtt) {
                continue;
            }
            self.asked[k] = (tries + 1, Some(now));
            list.push(k as u16);
        }
        if list.is_empty() {
            return None;
        }
        self.nacks_sent += 1;
        self.lists.push(list);
        Some(self.lists.len() - 1)
    }

    /// A NACK list reached the sender.
    fn handle_nack(&mut self, id: usize, rtt: Duration, now: Instant) {
        if let Some(list) = self.lists.get(id) {
            self.rtx.handle_nack(list, rtt, now);
        }
    }

    /// The next retransmission to send: its id and length.
    fn poll_retransmission(&mut self) -> Option<(usize, usize)> {
        let mut out = [0u8; 1600];
        let len = self.rtx.poll_transmit(&mut out)?;
        self.retransmitted += 1;
        self.in_flight.push(out[..len].to_vec());
        Some((self.in_flight.len() - 1, len))
    }

    /// A retransmission arrived: the frame and its payload.
    fn restore(&mut self, id: usize) -> Option<(usize, Sent)> {
        let rtx = self.in_flight.get(id)?;
        let mut original = Vec::new();
        self.restorer.unwrap(rtx, &mut original).ok()?;
        let packet = RtpPacket::parse(&original).ok()?;
        let k = usize::from(packet.sequence_number().0);
        // Frame indices in the lab stay below 65 536 (22 minutes), so no unwrapping.
        let red = *self.red.get(k)?;
        Some((
            k,
            Sent {
                payload: packet.payload().to_vec(),
                red,
            },
        ))
    }
}

/// Budget the adaptive scheme may spend on audio, bits per second.
const ADAPTIVE_BUDGET: u32 = 128_000;
/// How often the receiver reports loss.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// When the receiver sends its first report: early, as RTP receivers do (RFC 3550 halves
/// the first interval; WebRTC reports at once), so that the sender does not spend the
/// call's first second unprotected.
const FIRST_REPORT: Duration = Duration::from_millis(500);
/// Opus's algorithmic delay at 48 kHz (look-ahead and resampler): the decoded output lags
/// the input by 312 samples.
const OPUS_DELAY: Duration = Duration::from_micros(6_500);

/// Runs one scheme on one condition with one seed; writes its WAV into `dir`.
///
/// Sender, network and receiver run on one made-up clock in 10 ms steps: every 20 ms the
/// sender encodes a frame with its current settings and sends it (several times, spread
/// over the 20 ms, when the settings ask for packet copies); the receiver splits RED payloads into the jitter
/// buffer, pulls 10 ms of playout, and every second reports the loss it saw, which reaches
/// the sender's policy one one-way delay later.
fn run_one(
    args: &LossArgs,
    speech: &[i16],
    scheme: Scheme,
    condition: &Condition,
    seed: u64,
    dir: &Path,
) -> Result<RunEntry, LabError> {
    let mut control = match scheme {
        Scheme::Adaptive => {
            Control::Adaptive(Box::new(AudioPolicy::new(AudioPolicyConfig::default())))
        }
        _ => Control::Fixed(scheme.settings(condition.loss, args)),
    };
    let initial = match &control {
        Control::Fixed(settings) => *settings,
        Control::Adaptive(policy) => *policy.current(),
    };
    let mut sender = Sender::new(initial)?;
    let mut decoder = OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono)?)
        .with_dred(DredDecoder::new(RATE)?)?;
    if scheme == Scheme::DeepPlc || (scheme == Scheme::Adaptive && !args.classic_plc) {
        // Deep PLC as the last resort: bit-exact with complexity 0 while nothing is lost.
        decoder.decoder_mut().set_complexity(10)?;
    }
    let mut buffer = AudioJitterBuffer::new(decoder, args.jitter_config(initial.recovery_delay))?;
    let mut link: Link<Wire> = Link::new(condition.link(args.delay_ms, args.jitter_ms), seed)?;
    // NACKs travel back over a link with the same loss.
    let mut back: Link<usize> = Link::new(
        condition.link(args.delay_ms, args.jitter_ms),
        seed.wrapping_add(0x5eed),
    )?;
    let t0 = Instant::now();
    link.set_epoch(t0);
    back.set_epoch(t0);
    let frames: Vec<&[i16]> = speech.chunks_exact(FRAME).collect();
    let mut nack = AudioNack::new(frames.len())?;
    let mut sent: Vec<Sent> = Vec::with_capacity(frames.len());
    let file = format!("{}_{}_s{seed}.wav", scheme.name(), condition.name);
    let mut wav = WavWriter::create(dir.join(&file), AudioFormat::new(RATE, Channels::Mono)?)?;
    let media = Duration::from_millis(20 * frames.len() as u64);
    let one_way = Duration::from_secs_f64(args.delay_ms / 1000.0);
    let rtt = one_way * 2;
    let pulls = ((media + TAIL + rtt).as_millis() / 10) as usize;
    let mut out = vec![0i16; PULL];
    let mut bytes = 0usize;
    let mut packets_sent = 0usize;
    // Which frames arrived (in any copy or retransmission).
    let mut received = vec![false; frames.len()];
    // What the network did to every media send (originals and copies, in send order, as
    // transport-wide sequence numbers would tell): the loss reports describe the network
    // (rate and bursts), not what copies and retransmissions then repaired, or the policy
    // would step down as soon as its copies work.
    // (send time, arrived) per media send.
    let mut sends: Vec<(Instant, bool)> = Vec::with_capacity(frames.len() * 2);
    let mut report_from = 0usize;
    let mut frames_received = 0usize;
    let mut next_report = t0 + FIRST_REPORT;
    // Reports on their way to the sender: (arrival at the sender, report).
    let mut reports: VecDeque<(Instant, LossReport)> = VecDeque::new();
    // Duplicates waiting for their send time: (send time, frame).
    let mut duplicates: VecDeque<(Instant, usize, bool)> = VecDeque::new();
    let mut mouth_to_ear = Vec::with_capacity(pulls);
    for p in 0..pulls {
        let now = t0 + Duration::from_millis(10 * p as u64);
        // Sender: apply the reports that have arrived, then send what is due.
        while let Some(&(at, report)) = reports.front().filter(|(at, _)| *at <= now) {
            reports.pop_front();
            if let Control::Adaptive(policy) = &mut control {
                policy.set_jitter_delay(buffer.target_delay());
                let next = policy.update(report, ADAPTIVE_BUDGET, at);
                if next != sender.settings {
                    sender.configure(next, false)?;
                    // The receiver's recovery delay travels in signalling; the lab applies
                    // it.
                    buffer.set_recovery_delay(next.recovery_delay);
                }
            }
        }
        while let Some(&(at, k, trailing)) = duplicates.front().filter(|(at, ..)| *at <= now) {
            duplicates.pop_front();
            let send = sends.len();
            sends.push((at, false));
            link.send(
                Wire::Copy { k, trailing, send },
                sent[k].payload.len() + 40,
                at,
            );
            bytes += sent[k].payload.len();
            packets_sent += 1;
        }
        while sent.len() < frames.len() && t0 + Duration::from_millis(20 * sent.len() as u64) <= now
        {
            let k = sent.len();
            let at = t0 + Duration::from_millis(20 * k as u64);
            let (payload, red) = sender.encode(k, frames[k])?;
            nack.on_sent(k, red, &payload, at)?;
            let send = sends.len();
            sends.push((at, false));
            link.send(Wire::Media { k, send }, payload.len() + 40, at);
            bytes += payload.len();
            packets_sent += 1;
            let copies = sender.settings.packet_copies.max(1);
            let spacing = sender.settings.copy_spacing;
            let trailing = spacing >= Duration::from_millis(20);
            for c in 1..copies {
                let when = at + spacing * c;
                // Kept in time order: the spacing can change between packets.
                let position = duplicates.partition_point(|&(t, ..)| t <= when);
                duplicates.insert(position, (when, k, trailing));
            }
            sent.push(Sent { payload, red });
        }
        // Sender: NACKs that arrived, and the retransmissions they ask for.
        while let Poll::Deliver(d) = back.poll(now) {
            nack.handle_nack(d.packet, rtt, d.delivered_at);
        }
        while let Some((id, len)) = nack.poll_retransmission() {
            link.send(Wire::Rtx(id), len + 40, now);
            bytes += len;
            packets_sent += 1;
        }
        // Receiver: deliveries, NACKs, reports, playout.
        while let Poll::Deliver(d) = link.poll(now) {
            let k = match d.packet {
                Wire::Media { k, send } => {
                    receive(&mut buffer, k, &sent[k], d.delivered_at, false);
                    sends[send].1 = true;
                    k
                }
                Wire::Copy { k, trailing, send } => {
                    receive(&mut buffer, k, &sent[k], d.delivered_at, trailing);
                    sends[send].1 = true;
                    k
                }
                Wire::Rtx(id) => match nack.restore(id) {
                    Some((k, restored)) => {
                        receive(&mut buffer, k, &restored, d.delivered_at, true);
                        k
                    }
                    None => continue,
                },
            };
            if !received[k] {
                received[k] = true;
                frames_received += 1;
            }
            nack.on_received(k);
        }
        if sender.settings.nack {
            // The receiver's deadline for a frame: its send time, the one-way delay and the
            // buffer's target (an estimate: the receiver cannot know the send time, but it
            // knows the media time and its own playout point equally well).
            let deadline = |k: usize| {
                t0 + Duration::from_millis(20 * k as u64) + one_way + buffer.target_delay()
            };
            if let Some(list) = nack.due(now, rtt, deadline) {
                back.send(list, 40, now);
            }
        }
        if now >= next_report {
            // Packets sent up to a one-way delay (and some jitter) ago had their chance.
            let horizon = now.saturating_duration_since(t0 + one_way + Duration::from_millis(100));
            let upto = sends.partition_point(|&(at, _)| at <= t0 + horizon);
            if upto > report_from {
                let report = loss_report(&sends[report_from..upto], rtt);
                reports.push_back((now + one_way, report));
                report_from = upto;
            }
            next_report += REPORT_INTERVAL;
        }
        let info = buffer.pull(now, &mut out)?;
        if let Some(timestamp) = info.media_timestamp {
            // Frame k is captured during the 20 ms before it is sent at t0 + 20k ms.
            let captured = Duration::from_secs_f64(f64::from(timestamp) / f64::from(RATE));
            let delay = (now - t0).as_secs_f64() - captured.as_secs_f64()
                + 0.020
                + OPUS_DELAY.as_secs_f64();
            mouth_to_ear.push(delay * 1000.0);
        }
        let sent_all = sent.len() == frames.len()
            && link.in_flight() == 0
            && back.in_flight() == 0
            && duplicates.is_empty();
        if sent_all && buffer.packets_held() == 0 && info.samples_from_packets == 0 {
            break;
        }
        wav.write(&out)?;
    }
    wav.finalize()?;
    let stats = buffer.stats();
    let played = stats.total_samples_received.max(1) as f64;
    mouth_to_ear.sort_by(f64::total_cmp);
    let m2e_mean = mouth_to_ear.iter().sum::<f64>() / mouth_to_ear.len().max(1) as f64;
    let m2e_p95 = mouth_to_ear
        .get((mouth_to_ear.len() * 95 / 100).min(mouth_to_ear.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    Ok(RunEntry {
        scheme: scheme.name(),
        condition: condition.name.clone(),
        loss: condition.loss,
        burst: condition.burst,
        seed,
        wav: file,
        kbps_sent: bytes as f64 * 8.0 / media.as_secs_f64() / 1000.0,
        packets_sent,
        network_loss_pct: 100.0 * (frames.len() - frames_received) as f64
            / frames.len().max(1) as f64,
        residual_loss_pct: 100.0 * stats.concealed_samples as f64 / played,
        recovered_pct: 100.0 * stats.recovered_samples as f64 / played,
        jitter_buffer_delay_ms: stats.mean_delay().as_secs_f64() * 1000.0,
        stretch_inserted_ms: stats.inserted_samples_for_deceleration as f64 * 1000.0
            / f64::from(RATE),
        stretch_removed_ms: stats.removed_samples_for_acceleration as f64 * 1000.0
            / f64::from(RATE),
        concealment_events: stats.concealment_events,
        mouth_to_ear_ms: m2e_mean,
        mouth_to_ear_p95_ms: m2e_p95,
        late_pct: 100.0 * stats.late_packets as f64 / frames.len().max(1) as f64,
        nacks_sent: nack.nacks_sent,
        retransmissions: nack.retransmitted,
        policy: match &control {
            Control::Adaptive(policy) => Some((*policy.stats()).into()),
            Control::Fixed(_) => None,
        },
    })
}

/// Loss rate and mean burst length of one report interval's media sends, given as (send
/// time, arrived) in send order.
fn loss_report(sends: &[(Instant, bool)], rtt: Duration) -> LossReport {
    let lost = sends.iter().filter(|s| !s.1).count();
    let bursts = sends.windows(2).filter(|w| w[0].1 && !w[1].1).count()
        + usize::from(sends.first().is_some_and(|s| !s.1));
    LossReport {
        loss: lost as f64 / sends.len().max(1) as f64,
        mean_burst: if bursts == 0 {
            1.0
        } else {
            lost as f64 / bursts as f64
        },
        rtt,
    }
}

/// The speech: the given WAV, or every fixture clip joined, at 48 kHz, whole frames.
fn load_speech(path: Option<&Path>) -> Result<(Vec<i16>, Vec<ClipSpan>), LabError> {
    let paths: Vec<PathBuf> = match path {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let dir = crate::default_fixtures().join("speech");
            let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                .collect();
            clips.sort();
            clips
        }
    };
    let mut speech = Vec::new();
    let mut clips = Vec::with_capacity(paths.len());
    let seconds = |samples: usize| samples as f64 / f64::from(RATE);
    for path in paths {
        let clip: AudioFrame<i16> = wav::read_wav(&path)?;
        if clip.format().channels() != Channels::Mono {
            return Err(format!("{}: speech must be mono", path.display()).into());
        }
        let start = speech.len();
        speech.extend_from_slice(resample_all(&clip, RATE)?.samples());
        clips.push(ClipSpan {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            start_s: seconds(start),
            end_s: seconds(speech.len()),
        });
        // 200 ms of silence between clips, as between utterances.
        speech.resize(speech.len() + RATE as usize / 5, 0);
    }
    speech.truncate(speech.len() / FRAME * FRAME);
    if speech.is_empty() {
        return Err("no speech".into());
    }
    for clip in &mut clips {
        clip.end_s = clip.end_s.min(seconds(speech.len()));
    }
    clips.retain(|c| c.end_s > c.start_s);
    Ok((speech, clips))
}

/// Runs the lab.
///
/// # Errors
///
/// Unknown scheme or condition names, codec or file errors.
pub fn run(args: &LossArgs) -> Result<(), LabError> {
    let started = Instant::now();
    let schemes: Vec<Scheme> = Scheme::ALL
        .into_iter()
        .filter(|s| args.schemes.is_empty() || args.schemes.contains(&s.name()))
        .collect();
    let conditions: Vec<Condition> = conditions()
        .into_iter()
        .filter(|c| args.conditions.is_empty() || args.conditions.contains(&c.name))
        .collect();
    for name in &args.schemes {
        if !Scheme::ALL.iter().any(|s| &s.name() == name) {
            return Err(format!("unknown scheme {name}").into());
        }
    }
    for name in &args.conditions {
        if !self::conditions().iter().any(|c| &c.name == name) {
            return Err(format!("unknown condition {name}").into());
        }
    }
    let (speech, clips) = load_speech(args.speech.as_deref())?;
    std::fs::create_dir_all(&args.out)?;
    let format = AudioFormat::new(RATE, Channels::Mono)?;
    wav::write_wav(
        args.out.join("reference.wav"),
        &AudioFrame::from_samples(format, speech.clone())?,
    )?;
    let mut jobs = Vec::new();
    for condition in &conditions {
        for &scheme in &schemes {
            for seed in 1..=args.seeds {
                jobs.push((scheme, condition.clone(), seed));
            }
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(usize, RunEntry), LabError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((scheme, condition, seed)) = jobs.get(i) else {
                            break;
                        };
                        done.push(
                            run_one(args, &speech, *scheme, condition, *seed, &args.out)
                                .map(|r| (i, r)),
                        );
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a lab worker panicked".into())])
            })
            .collect()
    });
    let mut runs = Vec::with_capacity(results.len());
    for result in results {
        runs.push(result?);
    }
    runs.sort_by_key(|(i, _)| *i);
    let runs: Vec<RunEntry> = runs.into_iter().map(|(_, r)| r).collect();
    let manifest = Manifest {
        reference: "reference.wav".into(),
        sample_rate: RATE,
        network: (args.delay_ms, args.jitter_ms),
        clips,
        runs,
    };
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    print!("{}", table(&manifest));
    println!(
        "{} runs of {:.1} s of speech in {:.1} s; WAVs and manifest.json in {}",
        manifest.runs.len(),
        speech.len() as f64 / f64::from(RATE),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    println!(
        "score them with: cargo xtask quality {}",
        args.out.display()
    );
    Ok(())
}

/// Residual loss, bitrate and delay per condition and scheme (seeds averaged).
pub fn table(manifest: &Manifest) -> String {
    let mut schemes: Vec<&str> = Vec::new();
    let mut conditions: Vec<&str> = Vec::new();
    for run in &manifest.runs {
        if !schemes.contains(&run.scheme.as_str()) {
            schemes.push(&run.scheme);
        }
        if !conditions.contains(&run.condition.as_str()) {
            conditions.push(&run.condition);
        }
    }
    let mut text = format!(
        "tincan lab loss: residual loss % (concealed) / kbps sent / jitter buffer delay ms / mouth-to-ear ms; network {} ms one way, {} ms jitter\n",
        manifest.network.0, manifest.network.1
    );
    text.push_str(&format!("{:<11}", "condition"));
    for scheme in &schemes {
        text.push_str(&format!("{scheme:>22}"));
    }
    text.push('\n');
    for condition in &conditions {
        text.push_str(&format!("{condition:<11}"));
        for scheme in &schemes {
            let runs: Vec<&RunEntry> = manifest
                .runs
                .iter()
                .filter(|r| r.scheme == *scheme && r.condition == *condition)
                .collect();
            let n = runs.len().max(1) as f64;
            let mean = |f: fn(&RunEntry) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
            let cell = format!(
                "{:.1}/{:.0}/{:.0}/{:.0}",
                mean(|r| r.residual_loss_pct),
                mean(|r| r.kbps_sent),
                mean(|r| r.jitter_buffer_delay_ms),
                mean(|r| r.mouth_to_ear_ms)
            );
            text.push_str(&format!("{cell:>22}"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LossArgs,
    }

    fn default_args() -> LossArgs {
        Cli::parse_from(["loss"]).args
    }

    #[test]
    fn conditions_are_the_issue_list_with_the_right_burst_chain() {
        let all = conditions();
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "random-0",
                "random-5",
                "random-10",
                "random-20",
                "random-30",
                "random-50",
                "random-80",
                "bursty-10",
                "bursty-30"
            ]
        );
        let bursty = all[8].link(50.0, 20.0);
        let ge = bursty.gilbert_elliott.expect("bursty");
        assert!((ge.p / (ge.p + ge.r) - 0.3).abs() < 1e-9);
        assert!((1.0 / ge.r - 3.0).abs() < 1e-9);
        assert_eq!(all[3].link(50.0, 20.0).loss, 0.2);
    }

    #[test]
    fn red_blocks_fill_holes_in_the_buffer() {
        // Two seconds of a tone through RED depth 2, every third packet lost: the buffer
        // gets every frame from a later packet's redundancy, so nothing is concealed.
        let tone: Vec<i16> = (0..RATE as usize * 2)
            .map(|i| {
                ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(RATE)).sin() * 8000.0) as i16
            })
            .collect();
        let args = default_args();
        let settings = Scheme::Red(2).settings(0.0, &args);
        let mut sender = Sender::new(settings).expect("sender");
        let packets: Vec<Sent> = tone
            .chunks_exact(FRAME)
            .enumerate()
            .map(|(k, frame)| {
                let (payload, red) = sender.encode(k, frame).expect("encode");
                Sent { payload, red }
            })
            .collect();
        let decoder =
            OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono).expect("decoder"));
        let config = AudioJitterConfig {
            recovery_delay: settings.recovery_delay,
            ..AudioJitterConfig::default()
        };
        let mut buffer = AudioJitterBuffer::new(decoder, config).expect("buffer");
        let t0 = Instant::now();
        let mut out = vec![0i16; PULL];
        for p in 0..(packets.len() * 2 + 20) {
            let now = t0 + Duration::from_millis(10 * p as u64);
            if p % 2 == 0 && p / 2 < packets.len() && (p / 2) % 3 != 1 {
                receive(&mut buffer, p / 2, &packets[p / 2], now, false);
            }
            buffer.pull(now, &mut out).expect("pull");
        }
        let stats = buffer.stats();
        // Only the tail after the last packet is concealed.
        assert!(stats.concealed_samples <= 20 * PULL as u64, "{stats:?}");
        assert!(stats.packets_received > packets.len() as u64);
    }

    #[test]
    fn cheaper_copies_shrink_red_payloads() {
        let speech: Vec<i16> = (0..RATE as usize)
            .map(|i| ((i as f64 * 0.05).sin() * (i as f64 * 0.0007).sin() * 9000.0) as i16)
            .collect();
        let mut args = default_args();
        let bytes = |args: &LossArgs| -> usize {
            let mut sender = Sender::new(Scheme::Red(2).settings(0.2, args)).expect("sender");
            speech
                .chunks_exact(FRAME)
                .enumerate()
                .map(|(k, f)| sender.encode(k, f).expect("encode").0.len())
                .sum()
        };
        let same = bytes(&args);
        args.red_copy_kbps = Some(12);
        let cheap = bytes(&args);
        // Primary 24 kbps + two copies: at 12 kbps the copies cost about half.
        assert!(cheap < same * 4 / 5, "{cheap} vs {same}");
    }

    #[test]
    fn schemes_have_distinct_names() {
        let names: Vec<String> = Scheme::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "plc", "deepplc", "lbrr", "red1", "red2", "red4", "dred", "dred48", "adaptive"
            ]
        );
    }
}
