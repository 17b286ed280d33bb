//! `tincan lab abr`: congestion control on the RMCAT evaluation cases (RFC 8867/8868) over
//! a netsim bottleneck, with the real controller, pacer and allocation and a media model.
//!
//! Network: every flow's packets go through **one shared bottleneck** (a netsim [`Link`]
//! with the case's capacity trace, a 300 ms drop-tail queue and no delay of its own), then
//! through the flow's own propagation link (50 ms one way unless the case says otherwise),
//! to the flow's receiver. Feedback goes back over a per-flow return link with the same
//! propagation delay and no bottleneck. Packets are tagged with their flow.
//!
//! Each flow: a [`SendSideController`] (or, with `--controller fixed:BPS`, a constant
//! target as a labelled baseline), a [`Pacer`] at the controller's pacing and padding rates
//! sending its probe clusters, an [`Allocator`] splitting the target between audio and the
//! video ladder, and a media model: audio packets every 20 ms (Opus 32 kbit/s), video
//! frames at the rung's frame rate sized from the allocated video rate with a seeded
//! ±20% per-frame variation and 3× keyframes (at the start, after a resolution change and
//! after a pause), split into packets of at most 1200 bytes of RTP. Sizes everywhere (the
//! controller's send history, the pacer, the link, the rates reported) are on-the-wire
//! sizes: RTP plus 28 bytes of IPv4 and UDP headers. Every packet gets a transport-wide
//! sequence number when the pacer sends it; the receiver's [`FeedbackGenerator`] reports
//! arrivals (transport-cc, every 50 ms), which the sender parses with
//! [`RtcpCompound::parse`] and gives the controller. The RTT goes to the controller with
//! each feedback as the forward one-way delay of the newest packet reported plus the
//! feedback's own trip, as an RTCP receiver report's LSR/DLSR would measure it.
//!
//! Time is virtual (made-up instants from a fixed origin) and every component is sans-IO,
//! so the loop jumps from deadline to deadline (links, pacers, controllers, feedback
//! generators, media clocks): a 100 s case runs in well under a second in a release build,
//! and the same seed gives the same figures.

mod plot;

use super::LabError;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tincan_abr::allocation::{Allocation, AllocationConfig, Allocator, AudioDemand, VideoRung};
use tincan_abr::pacer::{Pacer, PacerConfig, PacerOutput};
use tincan_abr::{
    BandwidthUsage, ControllerConfig, ControllerStats, FeedbackConfig, FeedbackGenerator,
    PacketClass, ProbeCluster, SendSideController, SentPacket,
};
use tincan_netsim::{CapacityStep, Link, LinkConfig, Poll};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

/// IPv4 and UDP headers on every packet, bytes.
const IP_UDP_BYTES: usize = 28;
/// RTP header with the transport-cc header extension (12 + 8), bytes.
const RTP_HEADER_BYTES: usize = 20;
/// Largest RTP packet (header and payload), bytes.
const MAX_RTP_BYTES: usize = 1200;
/// Audio packet interval.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Opus payload per 20 ms at 32 kbit/s, bytes.
const AUDIO_PAYLOAD_BYTES: usize = 80;
/// A keyframe is this many times an average frame.
const KEYFRAME_FACTOR: f64 = 3.0;
/// Default per-frame size variation of the encoder model (`--frame-variation`): sizes are
/// uniform in ±this around the frame budget (seeded), as a real encoder over- and
/// undershoots frame by frame.
const FRAME_SIZE_VARIATION: f64 = 0.2;
/// Video rate cap given to the allocation (and the controller's ceiling above audio):
/// 3 Mbit/s, so a flow alone can fill the cellular trace's peaks.
const MAX_VIDEO_BPS: u64 = 3_000_000;
/// The bottleneck's drop-tail queue (RFC 8867: 300 ms).
const QUEUE_LIMIT_MS: f64 = 300.0;
/// One-way propagation delay of a flow unless its case says otherwise (RFC 8867: 50 ms).
const DEFAULT_ONE_WAY_MS: f64 = 50.0;
/// Width of the time bins the lab records rates and delays in.
const BIN: Duration = Duration::from_millis(50);
/// Window of the sending rate that must get under a lower capacity (4 bins).
const UNDER_WINDOW_BINS: usize = 4;
/// The sending rate must stay under the new capacity this long to count as under it.
const UNDER_HOLD_BINS: usize = 20;
/// Window of the delivered rate that must reach 90% of a higher capacity (20 bins, 1 s).
const REACH_WINDOW_BINS: usize = 20;
/// Smoothing of the delivered rate in the plots (10 bins, 500 ms).
const PLOT_SMOOTH_BINS: usize = 10;
/// After the case ends no media is made; the links drain for this long.
const DRAIN: Duration = Duration::from_secs(2);
/// Pacing factor of the fixed-rate baseline (GCC's 2.5).
const FIXED_PACING_FACTOR: u64 = 5; // halves: 2.5 = 5 / 2
/// Must-show limits.
const MIN_UTILISATION_PCT: f64 = 90.0;
const MAX_P95_QUEUE_MS: f64 = 50.0;
const MAX_UNDER_MS: f64 = 1000.0;
const MIN_JAIN: f64 = 0.9;
const MAX_LOSS_PCT: f64 = 1.0;
/// Last seconds of a case over which fairness is judged.
const FAIRNESS_TAIL_S: f64 = 40.0;

/// Options of `tincan lab abr`.
#[derive(Args, Debug, Clone)]
pub struct AbrArgs {
    /// Run only these cases (repeatable; default all): variable-1, variable-2,
    /// three-flows, rtt-fairness, pause-resume, cellular, step-half.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// The rate control: `gcc` (the send-side controller) or `fixed:BPS` (a constant
    /// target per flow, as a baseline for comparison).
    #[arg(long, default_value = "gcc")]
    controller: String,
    /// Seed of the network, the media model and the cellular trace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per-frame size variation of the video model: each frame is its budget times a
    /// seeded uniform factor in [1 - F, 1 + F] (0 to 0.9; 0 = frames exactly on budget).
    #[arg(long, default_value_t = FRAME_SIZE_VARIATION)]
    frame_variation: f64,
    /// Cut every case at this many seconds (for quick runs; criteria about what comes
    /// later are then not judged).
    #[arg(long)]
    seconds: Option<f64>,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Directory for the SVG plots (one per case).
    #[arg(long, default_value = "target/lab-abr")]
    out: PathBuf,
    /// Write no plots.
    #[arg(long)]
    no_plots: bool,
    /// Also write a per-case timeline `<case>.csv` into the `--out` directory: every 50 ms,
    /// the capacity and per flow the rates, queuing delay and the controller's state.
    #[arg(long)]
    csv: bool,
    /// Exit with a failure status when a must-show criterion fails.
    #[arg(long)]
    check: bool,
    /// Cases run in parallel (default: the available cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// The rate control of every flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlKind {
    Gcc,
    Fixed(u64),
}

impl ControlKind {
    fn parse(text: &str) -> Result<Self, LabError> {
        if text == "gcc" {
            return Ok(Self::Gcc);
        }
        let bps = text
            .strip_prefix("fixed:")
            .and_then(|b| b.parse::<u64>().ok())
            .filter(|b| (10_000..=100_000_000).contains(b))
            .ok_or_else(|| {
                format!("--controller {text}: expected gcc or fixed:BPS with BPS 10000-1e8")
            })?;
        Ok(Self::Fixed(bps))
    }

    fn name(self) -> String {
        match self {
            Self::Gcc => "gcc".into(),
            Self::Fixed(bps) => format!("fixed:{bps}"),
        }
    }
}

/// One flow of a case.
#[derive(Debug, Clone)]
struct FlowDef {
    /// When it starts, s.
    start_s: f64,
    /// One-way propagation delay (each direction), ms.
    one_way_ms: f64,
    /// A window in which it sends no media, s.
    pause_s: Option<(f64, f64)>,
}

impl FlowDef {
    fn at(start_s: f64) -> Self {
        Self {
            start_s,
            one_way_ms: DEFAULT_ONE_WAY_MS,
            pause_s: None,
        }
    }

    fn active(&self, t: f64) -> bool {
        t >= self.start_s && !self.pause_s.is_some_and(|(a, b)| t >= a && t < b)
    }
}

/// A case.
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    description: String,
    duration_s: f64,
    /// Capacity steps `(from s, bit/s)`, the first at 0.
    capacity: Vec<(f64, f64)>,
    flows: Vec<FlowDef>,
    /// The window fairness is judged over, s (multi-flow cases).
    fairness_s: Option<(f64, f64)>,
}

impl Case {
    fn capacity_at(&self, t: f64) -> f64 {
        self.capacity
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .or(self.capacity.first())
            .map_or(1.0, |c| c.1)
    }

    /// ∫ capacity dt over `[a, b)`, bits.
    fn capacity_bits(&self, a: f64, b: f64) -> f64 {
        let mut total = 0.0;
        for (i, &(at, bps)) in self.capacity.iter().enumerate() {
            let end = self.capacity.get(i + 1).map_or(f64::INFINITY, |n| n.0);
            let (lo, hi) = (at.max(a), end.min(b));
            if hi > lo {
                total += bps * (hi - lo);
            }
        }
        total
    }
}

/// A deterministic generator (splitmix64) for the media model and the cellular trace.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The cellular-like trace: a step every 100-500 ms (uniform), each a random walk step in
/// log-capacity (uniform ±30%, i.e. × e^±0.3) reflected at 0.5 and 3 Mbit/s, from
/// 1.5 Mbit/s. Deterministic for the seed.
fn cellular_trace(seed: u64, duration_s: f64) -> Vec<(f64, f64)> {
    const LOW: f64 = 500_000.0;
    const HIGH: f64 = 3_000_000.0;
    const START: f64 = 1_500_000.0;
    const STEP: f64 = 0.3;
    let mut rng = Rng(seed ^ 0xCE11_0000);
    let (low, high) = (LOW.ln(), HIGH.ln());
    let mut level = START.ln();
    let mut t = 0.0;
    let mut trace = Vec::new();
    while t < duration_s {
        trace.push((t, level.exp().round()));
        level += (rng.unit() * 2.0 - 1.0) * STEP;
        if level > high {
            level = 2.0 * high - level;
        }
        if level < low {
            level = 2.0 * low - level;
        }
        t += 0.1 + 0.4 * rng.unit();
    }
    trace
}

/// The cases.
fn cases(seed: u64) -> Vec<Case> {
    let mbps = |m: f64| m * 1e6;
    vec![
        Case {
            name: "variable-1",
            description: "RFC 8867 5.1: one flow, capacity 1 -> 2.5 -> 0.6 -> 1 Mbit/s at 0/40/60/80 s".into(),
            duration_s: 100.0,
            capacity: vec![(0.0, mbps(1.0)), (40.0, mbps(2.5)), (60.0, mbps(0.6)), (80.0, mbps(1.0))],
            flows: vec![FlowDef::at(0.0)],
            fairness_s: None,
        },
        Case {
            name: "variable-2",
            description: "RFC 8867 5.2: two flows, capacity 4 -> 2 -> 3.5 -> 1 -> 2 Mbit/s at 0/25/50/75/100 s".into(),
            duration_s: 125.0,
            capacity: vec![
                (0.0, mbps(4.0)),
                (25.0, mbps(2.0)),
                (50.0, mbps(3.5)),
                (75.0, mbps(1.0)),
                (100.0, mbps(2.0)),
            ],
            flows: vec![FlowDef::at(0.0), FlowDef::at(0.0)],
            fairness_s: Some((0.0, 125.0)),
        },
        Case {
            name: "three-flows",
            description: "RFC 8867 5.4: three flows on 3.5 Mbit/s starting at 0/20/40 s".into(),
            duration_s: 120.0,
            capacity: vec![(0.0, mbps(3.5))],
            flows: vec![FlowDef::at(0.0), FlowDef::at(20.0), FlowDef::at(40.0)],
            fairness_s: Some((120.0 - FAIRNESS_TAIL_S, 120.0)),
        },
        Case {
            name: "rtt-fairness",
            description: "after RFC 8867 5.5: two flows, 10 and 150 ms one way, on 2 Mbit/s".into(),
            duration_s: 120.0,
            capacity: vec![(0.0, mbps(2.0))],
            flows: vec![
                FlowDef {
                    one_way_ms: 10.0,
                    ..FlowDef::at(0.0)
                },
                FlowDef {
                    one_way_ms: 150.0,
                    ..FlowDef::at(0.0)
                },
            ],
            fairness_s: Some((120.0 - FAIRNESS_TAIL_S, 120.0)),
        },
        Case {
            name: "pause-resume",
            description: "after RFC 8867 5.8: two flows on 2 Mbit/s, flow 2 pauses from 20 to 30 s".into(),
            duration_s: 60.0,
            capacity: vec![(0.0, mbps(2.0))],
            flows: vec![
                FlowDef::at(0.0),
                FlowDef {
                    pause_s: Some((20.0, 30.0)),
                    ..FlowDef::at(0.0)
                },
            ],
            fairness_s: Some((40.0, 60.0)),
        },
        Case {
            name: "cellular",
            description: format!(
                "one flow on a cellular-like trace: a step every 100-500 ms, log random walk 0.5-3 Mbit/s (seed {seed})"
            ),
            duration_s: 120.0,
            capacity: cellular_trace(seed, 120.0),
            flows: vec![FlowDef::at(0.0)],
            fairness_s: None,
        },
        Case {
            name: "step-half",
            description: "one flow, capacity 2 -> 1 Mbit/s at 30 s".into(),
            duration_s: 60.0,
            capacity: vec![(0.0, mbps(2.0)), (30.0, mbps(1.0))],
            flows: vec![FlowDef::at(0.0)],
            fairness_s: None,
        },
    ]
}

/// A packet on the forward path.
#[derive(Debug, Clone, Copy)]
struct WirePacket {
    flow: usize,
    transport_seq: u16,
    sent_at: Instant,
}

/// A packet in a pacer: when it was queued.
#[derive(Debug, Clone, Copy)]
struct Queued {
    enqueued_at: Instant,
}

/// Feedback on its way back.
#[derive(Debug, Clone)]
struct Feedback {
    rtcp: Vec<u8>,
    /// Forward one-way delay of the newest packet it reports.
    forward_delay: Duration,
}

/// The rate control of one flow.
enum Control {
    Gcc(Box<SendSideController>),
    Fixed(u64),
}

impl Control {
    fn target(&self) -> u64 {
        match self {
            Self::Gcc(c) => c.target_bps(),
            Self::Fixed(bps) => *bps,
        }
    }

    fn rates(&self) -> (u64, u64) {
        match self {
            Self::Gcc(c) => (c.pacing_bps(), c.padding_bps()),
            Self::Fixed(bps) => (bps * FIXED_PACING_FACTOR / 2, 0),
        }
    }

    fn timeout(&self) -> Option<Instant> {
        match self {
            Self::Gcc(c) => c.poll_timeout(),
            Self::Fixed(_) => None,
        }
    }

    fn probe(&mut self) -> Option<ProbeCluster> {
        match self {
            Self::Gcc(c) => c.poll_probe(),
            Self::Fixed(_) => None,
        }
    }
}

/// Per-bin records of one flow.
#[derive(Debug, Clone, Default)]
struct Bins {
    sent_bytes: Vec<u64>,
    delivered_bytes: Vec<u64>,
    target_bps: Vec<u64>,
    queue_sum_ms: Vec<f64>,
    queue_count: Vec<u32>,
    /// The controller's state at each bin's end (GCC only).
    stats: Vec<Option<ControllerStats>>,
    /// The video rung at each bin's end (`None`: paused or not started).
    rung: Vec<Option<VideoRung>>,
}

impl Bins {
    fn new(n: usize) -> Self {
        Self {
            sent_bytes: vec![0; n],
            delivered_bytes: vec![0; n],
            target_bps: vec![0; n],
            queue_sum_ms: vec![0.0; n],
            queue_count: vec![0; n],
            stats: vec![None; n],
            rung: vec![None; n],
        }
    }
}

/// One flow's state.
struct Flow {
    def: FlowDef,
    control: Option<Control>,
    pacer: Pacer<Queued>,
    pacer_wake: Option<Instant>,
    allocator: Allocator,
    allocation: Option<Allocation>,
    rng: Rng,
    next_audio: Instant,
    next_video: Instant,
    keyframe_due: bool,
    last_height: u32,
    was_active: bool,
    next_seq: u16,
    receiver: FeedbackGenerator,
    rtcp: Vec<u8>,
    newest_forward_delay: Duration,
    propagation: Link<WirePacket>,
    back: Link<Feedback>,
    bins: Bins,
    // Counters.
    sent_packets: u64,
    delivered_packets: u64,
    queue_delays_ms: Vec<f64>,
    pacer_delays_ms: Vec<f64>,
    frames: u64,
    keyframes: u64,
    media_dropped_by_pacer: u64,
    feedback_errors: u64,
    feedbacks: u64,
}

/// Figures of one flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    /// 1, 2, 3, …
    pub flow: usize,
    /// When it started, s.
    pub start_s: f64,
    /// One-way propagation delay, ms.
    pub one_way_ms: f64,
    /// Mean sending rate over its time (start to end), kbit/s.
    pub sent_kbps: f64,
    /// Mean delivered rate (out of the bottleneck) over the same time, kbit/s.
    pub delivered_kbps: f64,
    /// Mean controller target over the same time, kbit/s.
    pub target_kbps: f64,
    /// Queuing delay at the bottleneck of its packets, mean, ms.
    pub queue_delay_mean_ms: f64,
    /// The same, 95th percentile, ms.
    pub queue_delay_p95_ms: f64,
    /// Time its packets waited in the pacer, 95th percentile, ms.
    pub pacer_delay_p95_ms: f64,
    /// Packets sent into the network.
    pub packets_sent: u64,
    /// Share of them the bottleneck dropped, %.
    pub loss_pct: f64,
    /// Media packets the pacer dropped (queue full or stale).
    pub pacer_dropped: u64,
    /// Video frames made, and of them keyframes.
    pub frames: u64,
    /// Keyframes made.
    pub keyframes: u64,
    /// Video rung changes.
    pub rung_changes: u64,
    /// The video rung at the end, `WxH@fps` (or "paused").
    pub final_rung: String,
    /// Mean delivered rate over the case's fairness window (multi-flow cases), kbit/s.
    pub fairness_window_kbps: Option<f64>,
    /// Probe clusters the pacer sent.
    pub probes: u64,
    /// Probe clusters the pacer cut short (not sent in full within its time limit).
    pub probes_truncated: u64,
    /// Bytes sent in probe clusters (media and padding), kB.
    pub probe_kbytes: f64,
    /// Transport-cc feedback packets the sender received.
    pub feedbacks: u64,
    /// Feedback packets that did not parse or the controller refused (expected 0).
    pub feedback_errors: u64,
}

/// Reaction to one capacity change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// When, s.
    pub at_s: f64,
    /// Capacity before, kbit/s.
    pub from_kbps: f64,
    /// Capacity after, kbit/s.
    pub to_kbps: f64,
    /// For a drop: time until the total sending rate (200 ms window) got under the new
    /// capacity and stayed there for 1 s, ms (`None`: not before the next change).
    pub time_under_ms: Option<f64>,
    /// For a rise: time until the total delivered rate (1 s window) reached 90% of the new
    /// capacity, ms (`None`: not before the next change).
    pub time_to_90pct_ms: Option<f64>,
    /// Delivered bits of all flows over the capacity's bits from this change to the next
    /// (or the end), %.
    pub utilisation_pct: f64,
}

/// Figures of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Its name.
    pub case: String,
    /// What it is.
    pub description: String,
    /// Seconds simulated.
    pub seconds: f64,
    /// Every flow.
    pub flows: Vec<FlowReport>,
    /// Delivered bits of all flows over the capacity's bits while any flow ran, %.
    pub utilisation_pct: f64,
    /// Total delivered rate over the same time, kbit/s.
    pub delivered_kbps: f64,
    /// Mean capacity over the same time, kbit/s.
    pub capacity_kbps: f64,
    /// Queuing delay of all packets, mean, ms.
    pub queue_delay_mean_ms: f64,
    /// Queuing delay of all packets, 95th percentile, ms.
    pub queue_delay_p95_ms: f64,
    /// Packets dropped at the bottleneck over packets sent, all flows, %.
    pub loss_pct: f64,
    /// Each capacity change.
    pub changes: Vec<ChangeReport>,
    /// Jain's fairness index of the flows' delivered rates over `fairness_window_s`.
    pub jain: Option<f64>,
    /// The window of `jain`, s.
    pub fairness_window_s: Option<(f64, f64)>,
    /// The plot, if written.
    pub plot: Option<String>,
    /// Wall-clock time the simulation took, s.
    pub wall_s: f64,
}

/// A must-show criterion and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// The case.
    pub case: String,
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
    /// The rate control.
    pub controller: String,
    /// The seed.
    pub seed: u64,
    /// The network every case shares.
    pub network: String,
    /// Per-frame size variation of the video model (± share of the frame budget).
    pub frame_variation: f64,
    /// Every case run.
    pub cases: Vec<CaseReport>,
    /// The must-show criteria of the cases run.
    pub criteria: Vec<Criterion>,
    /// All criteria hold.
    pub pass: bool,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Jain's fairness index of `rates`: (Σx)² / (n Σx²).
fn jain(rates: &[f64]) -> f64 {
    let sum: f64 = rates.iter().sum();
    let squares: f64 = rates.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        0.0
    } else {
        sum * sum / (rates.len() as f64 * squares)
    }
}

fn audio_demand() -> AudioDemand {
    let packet = (AUDIO_PAYLOAD_BYTES + RTP_HEADER_BYTES + IP_UDP_BYTES) as u64;
    AudioDemand {
        base_bps: packet * 8 * 1000 / AUDIO_INTERVAL.as_millis() as u64,
        redundancy_bps: 0,
    }
}

/// Runs one case: its report, its plot and its timeline (CSV).
fn simulate(
    case: &Case,
    kind: ControlKind,
    seed: u64,
    seconds: f64,
    frame_variation: f64,
) -> Result<(CaseReport, plot::PlotData, String), LabError> {
    let started = std::time::Instant::now();
    let t0 = Instant::now();
    let at = |s: f64| t0 + Duration::from_secs_f64(s.max(0.0));
    let end = at(seconds);
    let bins = (seconds / secs(BIN)).ceil() as usize;
    let bin_of =
        |t: Instant| (t.saturating_duration_since(t0).as_nanos() / BIN.as_nanos()) as usize;
    let mut bottleneck: Link<WirePacket> = Link::new(
        LinkConfig {
            capacity_bps: Some(case.capacity[0].1),
            capacity_trace: case
                .capacity
                .iter()
                .map(|&(s, bps)| CapacityStep {
                    at_ms: s * 1000.0,
                    capacity_bps: bps,
                })
                .collect(),
            queue_limit_ms: Some(QUEUE_LIMIT_MS),
            ..LinkConfig::default()
        },
        seed,
    )?;
    bottleneck.set_epoch(t0);
    let mut flows = Vec::with_capacity(case.flows.len());
    for (i, def) in case.flows.iter().enumerate() {
        let one_way = LinkConfig {
            delay_ms: def.one_way_ms,
            ..LinkConfig::default()
        };
        let mut propagation = Link::new(one_way.clone(), seed + 100 + i as u64)?;
        propagation.set_epoch(t0);
        let mut back = Link::new(one_way, seed + 200 + i as u64)?;
        back.set_epoch(t0);
        flows.push(Flow {
            def: def.clone(),
            control: None,
            pacer: Pacer::new(PacerConfig::default())?,
            pacer_wake: None,
            allocator: Allocator::new(AllocationConfig {
                max_video_bps: MAX_VIDEO_BPS,
                ..AllocationConfig::default()
            })?,
            allocation: None,
            rng: Rng(seed.wrapping_mul(0x1000_0001) ^ (i as u64 + 1)),
            next_audio: at(def.start_s),
            next_video: at(def.start_s),
            keyframe_due: true,
            last_height: 0,
            was_active: false,
            next_seq: 0,
            receiver: FeedbackGenerator::new(FeedbackConfig {
                sender_ssrc: 0x5000 + i as u32,
                media_ssrc: 0x1000 + i as u32,
                ..FeedbackConfig::default()
            })?,
            rtcp: Vec::with_capacity(1500),
            newest_forward_delay: Duration::ZERO,
            propagation,
            back,
            bins: Bins::new(bins),
            sent_packets: 0,
            delivered_packets: 0,
            queue_delays_ms: Vec::new(),
            pacer_delays_ms: Vec::new(),
            frames: 0,
            keyframes: 0,
            media_dropped_by_pacer: 0,
            feedback_errors: 0,
            feedbacks: 0,
        });
    }
    let audio = audio_demand();
    let mut now = t0;
    let mut next_bin = t0 + BIN;
    let stop = end + DRAIN;
    loop {
        let media_on = now < end;
        // 1. The bottleneck: its queue delay, then on to the flow's propagation link.
        while let Poll::Deliver(d) = bottleneck.poll(now) {
            let packet = d.packet;
            let capacity = case.capacity_at(secs(d.delivered_at - t0));
            let serialisation = d.size_bytes as f64 * 8.0 / capacity;
            let wait = (secs(d.delay()) - serialisation).max(0.0);
            let flow = &mut flows[packet.flow];
            flow.delivered_packets += 1;
            if let Some(bin) = flow.bins.delivered_bytes.get_mut(bin_of(d.delivered_at)) {
                *bin += d.size_bytes as u64;
            }
            let b = bin_of(d.sent_at).min(bins.saturating_sub(1));
            if bins > 0 {
                flow.bins.queue_sum_ms[b] += wait * 1e3;
                flow.bins.queue_count[b] += 1;
            }
            flow.queue_delays_ms.push(wait * 1e3);
            flow.propagation.send(packet, d.size_bytes, d.delivered_at);
        }
        for (index, flow) in flows.iter_mut().enumerate() {
            // 2. Arrivals at the receiver.
            while let Poll::Deliver(d) = flow.propagation.poll(now) {
                flow.receiver
                    .on_packet_received(d.packet.transport_seq, d.delivered_at);
                flow.newest_forward_delay =
                    d.delivered_at.saturating_duration_since(d.packet.sent_at);
            }
            // 3. Feedback due at the receiver.
            if flow.receiver.poll_timeout().is_some_and(|due| due <= now) {
                loop {
                    flow.rtcp.clear();
                    if !flow.receiver.poll_feedback(now, &mut flow.rtcp)? {
                        break;
                    }
                    let size = flow.rtcp.len() + IP_UDP_BYTES;
                    flow.back.send(
                        Feedback {
                            rtcp: flow.rtcp.clone(),
                            forward_delay: flow.newest_forward_delay,
                        },
                        size,
                        now,
                    );
                }
            }
            // 4. Feedback at the sender.
            while let Poll::Deliver(d) = flow.back.poll(now) {
                let rtt = d.packet.forward_delay + d.delay();
                let Some(Control::Gcc(controller)) = flow.control.as_mut() else {
                    continue;
                };
                flow.feedbacks += 1;
                let Ok(compound) = RtcpCompound::parse(&d.packet.rtcp) else {
                    flow.feedback_errors += 1;
                    continue;
                };
                for packet in compound.packets() {
                    match packet {
                        Ok(RtcpPacket::TransportCc(fb)) => {
                            if controller.on_transport_feedback(&fb, now).is_err() {
                                flow.feedback_errors += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => flow.feedback_errors += 1,
                    }
                }
                controller.on_rtt(rtt, now);
            }
            let t = secs(now - t0);
            let active = media_on && flow.def.active(t);
            // 5. The controller starts with its flow, and wakes when it asked to.
            if flow.control.is_none() && media_on && t >= flow.def.start_s {
                flow.control = Some(match kind {
                    ControlKind::Gcc => Control::Gcc(Box::new(SendSideController::new(
                        ControllerConfig {
                            max_bps: audio.total_bps() + MAX_VIDEO_BPS,
                            ..ControllerConfig::default()
                        },
                        now,
                    )?)),
                    ControlKind::Fixed(bps) => Control::Fixed(bps),
                });
            }
            let Some(control) = flow.control.as_mut() else {
                continue;
            };
            if let Control::Gcc(controller) = control {
                if controller.poll_timeout().is_some_and(|due| due <= now) {
                    controller.handle_timeout(now);
                }
            }
            // 6. Media.
            if active && !flow.was_active {
                // Start or resume: the encoder begins with a keyframe.
                flow.keyframe_due = true;
                flow.next_audio = flow.next_audio.max(now);
                flow.next_video = flow.next_video.max(now);
            }
            flow.was_active = active;
            if media_on && flow.next_audio <= now {
                let allocation = flow.allocator.allocate(control.target(), audio, now);
                flow.allocation = Some(allocation);
                if active {
                    let size = AUDIO_PAYLOAD_BYTES + RTP_HEADER_BYTES + IP_UDP_BYTES;
                    if flow
                        .pacer
                        .enqueue(Queued { enqueued_at: now }, size, PacketClass::Audio, now)
                        .is_err()
                    {
                        flow.media_dropped_by_pacer += 1;
                    }
                }
                flow.next_audio += AUDIO_INTERVAL;
            }
            if media_on && flow.next_video <= now {
                let allocation = flow
                    .allocation
                    .unwrap_or_else(|| flow.allocator.allocate(control.target(), audio, now));
                let wait = match allocation.rung {
                    Some(rung) if active => {
                        if rung.height != flow.last_height {
                            flow.keyframe_due = true;
                            flow.last_height = rung.height;
                        }
                        let budget = allocation.video_bps as f64 / 8.0 / f64::from(rung.fps);
                        let variation = 1.0 + frame_variation * (2.0 * flow.rng.unit() - 1.0);
                        let factor = if flow.keyframe_due {
                            KEYFRAME_FACTOR
                        } else {
                            variation
                        };
                        if flow.keyframe_due {
                            flow.keyframes += 1;
                        }
                        flow.keyframe_due = false;
                        flow.frames += 1;
                        let bytes = (budget * factor).max(1.0) as usize;
                        let max_packet = MAX_RTP_BYTES + IP_UDP_BYTES;
                        let packets = bytes.div_ceil(max_packet);
                        for k in 0..packets {
                            let size = if k + 1 < packets {
                                bytes / packets
                            } else {
                                bytes - (packets - 1) * (bytes / packets)
                            };
                            let size = size.max(RTP_HEADER_BYTES + IP_UDP_BYTES + 1);
                            if flow
                                .pacer
                                .enqueue(Queued { enqueued_at: now }, size, PacketClass::Video, now)
                                .is_err()
                            {
                                flow.media_dropped_by_pacer += 1;
                            }
                        }
                        Duration::from_secs(1) / rung.fps
                    }
                    Some(rung) => Duration::from_secs(1) / rung.fps,
                    None => {
                        // Paused video: look again at the next audio tick.
                        flow.last_height = 0;
                        AUDIO_INTERVAL
                    }
                };
                flow.next_video += wait;
            }
            // 7. The pacer, at the controller's rates, with its probes.
            let (pacing, padding) = control.rates();
            flow.pacer
                .set_rates(pacing, if active { padding } else { 0 });
            while let Some(cluster) = control.probe() {
                flow.pacer.start_probe(cluster);
            }
            flow.pacer_wake = None;
            loop {
                let (size, class, probe, queued) = match flow.pacer.poll(now) {
                    PacerOutput::Send {
                        packet,
                        size_bytes,
                        class,
                        probe_cluster,
                    } => (size_bytes, class, probe_cluster, Some(packet)),
                    PacerOutput::Padding {
                        size_bytes,
                        probe_cluster,
                    } => (size_bytes, PacketClass::Padding, probe_cluster, None),
                    PacerOutput::Dropped(_) => {
                        flow.media_dropped_by_pacer += 1;
                        continue;
                    }
                    PacerOutput::Timeout(at) => {
                        flow.pacer_wake = Some(at);
                        break;
                    }
                    PacerOutput::Idle => break,
                };
                if let Some(q) = queued {
                    flow.pacer_delays_ms
                        .push(secs(now.saturating_duration_since(q.enqueued_at)) * 1e3);
                }
                let transport_seq = flow.next_seq;
                flow.next_seq = flow.next_seq.wrapping_add(1);
                if let Control::Gcc(controller) = control {
                    controller.on_packet_sent(SentPacket {
                        transport_seq,
                        size_bytes: size,
                        send_time: now,
                        probe_cluster: probe,
                        class,
                    });
                }
                flow.sent_packets += 1;
                if let Some(bin) = flow.bins.sent_bytes.get_mut(bin_of(now)) {
                    *bin += size as u64;
                }
                bottleneck.send(
                    WirePacket {
                        flow: index,
                        transport_seq,
                        sent_at: now,
                    },
                    size,
                    now,
                );
            }
        }
        // 8. Targets at bin ends.
        while next_bin <= now {
            let b = bin_of(next_bin).saturating_sub(1);
            for flow in &mut flows {
                if let (Some(slot), Some(control)) =
                    (flow.bins.target_bps.get_mut(b), &flow.control)
                {
                    *slot = control.target();
                    flow.bins.rung[b] = flow.allocator.rung();
                    if let (Control::Gcc(c), Some(stats)) = (control, flow.bins.stats.get_mut(b)) {
                        *stats = Some(c.stats());
                    }
                }
            }
            next_bin += BIN;
        }
        // The next deadline.
        let mut next = stop;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = next.min(t);
            }
        };
        consider(bottleneck.next_deadline());
        if next_bin <= end {
            consider(Some(next_bin));
        }
        for flow in &flows {
            consider(flow.propagation.next_deadline());
            consider(flow.back.next_deadline());
            consider(flow.receiver.poll_timeout());
            if media_on {
                consider(Some(flow.next_audio.max(at(flow.def.start_s))));
                consider(Some(flow.next_video.max(at(flow.def.start_s))));
                consider(flow.pacer_wake);
                consider(flow.control.as_ref().and_then(Control::timeout));
                if let Some((_, resume)) = flow.def.pause_s {
                    if now < at(resume) {
                        consider(Some(at(resume)));
                    }
                }
            }
        }
        if media_on {
            consider(Some(end));
        }
        if next >= stop {
            break;
        }
        // Progress: whatever claims to be due now was handled above.
        now = next.max(now + Duration::from_micros(1));
    }
    let report = report(case, &flows, seconds, bins, started.elapsed());
    let data = plot_data(case, &flows, seconds, bins, kind);
    let csv = timeline_csv(case, &flows, bins);
    Ok((report, data, csv))
}

/// Rate over `count` bins ending at bin `last` (clipped at 0), bit/s.
fn window_rate(series: &[u64], last: usize, count: usize) -> f64 {
    let first = (last + 1).saturating_sub(count);
    let bytes: u64 = series[first..=last].iter().sum();
    bytes as f64 * 8.0 / ((last + 1 - first) as f64 * secs(BIN))
}

/// The figures of a finished case.
fn report(case: &Case, flows: &[Flow], seconds: f64, bins: usize, wall: Duration) -> CaseReport {
    let bin_s = secs(BIN);
    let total = |pick: fn(&Bins) -> &Vec<u64>| -> Vec<u64> {
        (0..bins)
            .map(|b| flows.iter().map(|f| pick(&f.bins)[b]).sum())
            .collect()
    };
    let sent = total(|b| &b.sent_bytes);
    let delivered = total(|b| &b.delivered_bytes);
    let first_start = case
        .flows
        .iter()
        .map(|f| f.start_s)
        .fold(f64::INFINITY, f64::min)
        .min(seconds);
    let first_bin = ((first_start / bin_s) as usize).min(bins);
    let delivered_bits = delivered[first_bin..].iter().sum::<u64>() as f64 * 8.0;
    let capacity_bits = case.capacity_bits(first_start, seconds);
    let span = (seconds - first_start).max(bin_s);

    let fairness_window_s = case
        .fairness_s
        .filter(|_| flows.len() > 1)
        .map(|(a, b)| (a, b.min(seconds)))
        .filter(|(a, b)| b > a);
    let window_kbps = |f: &Flow| {
        fairness_window_s.map(|(a, b)| {
            let (first, last) = ((a / bin_s) as usize, ((b / bin_s) as usize).min(bins));
            let bytes: u64 = f.bins.delivered_bytes[first..last].iter().sum();
            bytes as f64 * 8.0 / ((last - first).max(1) as f64 * bin_s) / 1e3
        })
    };
    let flow_reports: Vec<FlowReport> = flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let start_bin = ((f.def.start_s / bin_s) as usize).min(bins);
            let own = (seconds - f.def.start_s).max(bin_s);
            let targets = &f.bins.target_bps[start_bin..];
            let mut queue = f.queue_delays_ms.clone();
            let mut pacer = f.pacer_delays_ms.clone();
            let delivered: u64 = f.bins.delivered_bytes[start_bin..].iter().sum();
            let sent: u64 = f.bins.sent_bytes[start_bin..].iter().sum();
            FlowReport {
                flow: i + 1,
                start_s: f.def.start_s,
                one_way_ms: f.def.one_way_ms,
                sent_kbps: sent as f64 * 8.0 / own / 1e3,
                delivered_kbps: delivered as f64 * 8.0 / own / 1e3,
                target_kbps: if targets.is_empty() {
                    0.0
                } else {
                    targets.iter().sum::<u64>() as f64 / targets.len() as f64 / 1e3
                },
                queue_delay_mean_ms: mean(&queue),
                queue_delay_p95_ms: quantile(&mut queue, 0.95),
                pacer_delay_p95_ms: quantile(&mut pacer, 0.95),
                packets_sent: f.sent_packets,
                loss_pct: 100.0 * f.sent_packets.saturating_sub(f.delivered_packets) as f64
                    / f.sent_packets.max(1) as f64,
                pacer_dropped: f.media_dropped_by_pacer,
                frames: f.frames,
                keyframes: f.keyframes,
                rung_changes: f.allocator.rung_changes(),
                final_rung: f.allocator.rung().map_or_else(
                    || "paused".to_string(),
                    |r| format!("{}x{}@{}", r.width, r.height, r.fps),
                ),
                fairness_window_kbps: window_kbps(f),
                probes: f.pacer.counters().probes_started,
                probes_truncated: f.pacer.counters().probes_truncated,
                probe_kbytes: f.pacer.counters().probe_bytes as f64 / 1e3,
                feedbacks: f.feedbacks,
                feedback_errors: f.feedback_errors,
            }
        })
        .collect();

    let mut changes = Vec::new();
    if case.name != "cellular" {
        // Index 0 is the start (from nothing, when a flow starts at 0): the ramp up.
        let ramp = usize::from(first_start > 0.0);
        for i in ramp..case.capacity.len() {
            let (at_s, to) = case.capacity[i];
            let from = if i == 0 { 0.0 } else { case.capacity[i - 1].1 };
            if at_s >= seconds {
                break;
            }
            let until_s = case
                .capacity
                .get(i + 1)
                .map_or(seconds, |n| n.0)
                .min(seconds);
            let step_bin = (at_s / bin_s) as usize;
            let end_bin = ((until_s / bin_s) as usize).min(bins);
            let ms_after = |b: usize| ((b + 1) as f64 * bin_s - at_s) * 1e3;
            let mut report = ChangeReport {
                at_s,
                from_kbps: from / 1e3,
                to_kbps: to / 1e3,
                time_under_ms: None,
                time_to_90pct_ms: None,
                utilisation_pct: 100.0
                    * delivered[step_bin.min(end_bin)..end_bin]
                        .iter()
                        .sum::<u64>() as f64
                    * 8.0
                    / case.capacity_bits(at_s, until_s).max(1.0),
            };
            if to < from {
                report.time_under_ms = (step_bin..end_bin)
                    .find(|&b| {
                        b + UNDER_HOLD_BINS <= end_bin
                            && (b..b + UNDER_HOLD_BINS)
                                .all(|k| window_rate(&sent, k, UNDER_WINDOW_BINS) < to)
                    })
                    .map(ms_after);
            } else {
                report.time_to_90pct_ms = (step_bin..end_bin)
                    .find(|&b| window_rate(&delivered, b, REACH_WINDOW_BINS) >= 0.9 * to)
                    .map(ms_after);
            }
            changes.push(report);
        }
    }

    let jain_index = fairness_window_s.map(|_| {
        let rates: Vec<f64> = flows.iter().filter_map(window_kbps).collect();
        jain(&rates)
    });
    let mut all_queue: Vec<f64> = flows
        .iter()
        .flat_map(|f| f.queue_delays_ms.iter().copied())
        .collect();
    let sent_packets: u64 = flows.iter().map(|f| f.sent_packets).sum();
    let delivered_packets: u64 = flows.iter().map(|f| f.delivered_packets).sum();
    CaseReport {
        case: case.name.to_string(),
        description: case.description.clone(),
        seconds,
        flows: flow_reports,
        utilisation_pct: 100.0 * delivered_bits / capacity_bits.max(1.0),
        delivered_kbps: delivered_bits / span / 1e3,
        capacity_kbps: capacity_bits / span / 1e3,
        queue_delay_mean_ms: mean(&all_queue),
        queue_delay_p95_ms: quantile(&mut all_queue, 0.95),
        loss_pct: 100.0 * sent_packets.saturating_sub(delivered_packets) as f64
            / sent_packets.max(1) as f64,
        changes,
        jain: jain_index,
        fairness_window_s,
        plot: None,
        wall_s: secs(wall),
    }
}

/// Every second bin (100 ms), for the plot.
const PLOT_STRIDE: usize = 2;

fn plot_data(
    case: &Case,
    flows: &[Flow],
    seconds: f64,
    bins: usize,
    kind: ControlKind,
) -> plot::PlotData {
    let bin_s = secs(BIN);
    let samples: Vec<usize> = (0..bins).step_by(PLOT_STRIDE).collect();
    let times_s: Vec<f64> = samples.iter().map(|&b| (b + 1) as f64 * bin_s).collect();
    plot::PlotData {
        title: format!("{} ({}): {}", case.name, kind.name(), case.description),
        capacity_mbps: samples
            .iter()
            .map(|&b| case.capacity_at(b as f64 * bin_s) / 1e6)
            .collect(),
        flows: flows
            .iter()
            .enumerate()
            .map(|(i, f)| plot::FlowSeries {
                label: format!("flow {} ({} ms)", i + 1, f.def.one_way_ms),
                target_mbps: samples
                    .iter()
                    .map(|&b| f.bins.target_bps[b] as f64 / 1e6)
                    .collect(),
                delivered_mbps: samples
                    .iter()
                    .map(|&b| {
                        ((b + 1) as f64 * bin_s > f.def.start_s).then(|| {
                            window_rate(&f.bins.delivered_bytes, b, PLOT_SMOOTH_BINS) / 1e6
                        })
                    })
                    .collect(),
                queue_ms: samples
                    .iter()
                    .map(|&b| {
                        let end = (b + PLOT_STRIDE).min(bins);
                        let count: u32 = f.bins.queue_count[b..end].iter().sum();
                        let sum: f64 = f.bins.queue_sum_ms[b..end].iter().sum();
                        (count > 0).then(|| sum / f64::from(count))
                    })
                    .collect(),
            })
            .collect(),
        times_s: times_s
            .into_iter()
            .filter(|t| *t <= seconds + bin_s)
            .collect(),
    }
}

/// The per-bin timeline of a case as CSV.
fn timeline_csv(case: &Case, flows: &[Flow], bins: usize) -> String {
    use std::fmt::Write as _;
    let bin_s = secs(BIN);
    let mut csv = String::from("t_s,capacity_kbps");
    for i in 1..=flows.len() {
        let _ = write!(
            csv,
            ",f{i}_target_kbps,f{i}_sent_kbps,f{i}_delivered_kbps,f{i}_queue_ms,f{i}_delay_based_kbps,f{i}_acknowledged_kbps,f{i}_usage,f{i}_in_alr,f{i}_probing,f{i}_trend_ms,f{i}_threshold_ms,f{i}_loss_fraction,f{i}_rung"
        );
    }
    csv.push('\n');
    for b in 0..bins {
        let _ = write!(
            csv,
            "{:.2},{:.0}",
            (b + 1) as f64 * bin_s,
            case.capacity_at(b as f64 * bin_s) / 1e3
        );
        for f in flows {
            let rate = |bytes: u64| bytes as f64 * 8.0 / bin_s / 1e3;
            let count = f.bins.queue_count[b];
            let queue = if count > 0 {
                format!("{:.1}", f.bins.queue_sum_ms[b] / f64::from(count))
            } else {
                String::new()
            };
            let _ = write!(
                csv,
                ",{:.0},{:.0},{:.0},{queue}",
                f.bins.target_bps[b] as f64 / 1e3,
                rate(f.bins.sent_bytes[b]),
                rate(f.bins.delivered_bytes[b]),
            );
            match f.bins.stats[b] {
                Some(st) => {
                    let usage = match st.usage {
                        BandwidthUsage::Normal => "normal",
                        BandwidthUsage::Overusing => "over",
                        BandwidthUsage::Underusing => "under",
                    };
                    let _ = write!(
                        csv,
                        ",{:.0},{},{usage},{},{},{:.2},{:.2},{:.4}",
                        st.delay_based_bps as f64 / 1e3,
                        st.acknowledged_bps
                            .map(|a| format!("{:.0}", a as f64 / 1e3))
                            .unwrap_or_default(),
                        u8::from(st.in_alr),
                        u8::from(st.probing),
                        st.trend_ms,
                        st.threshold_ms,
                        st.loss_fraction
                    );
                }
                None => csv.push_str(",,,,,,,,"),
            }
            match f.bins.rung[b] {
                Some(r) => {
                    let _ = write!(csv, ",{}x{}@{}", r.width, r.height, r.fps);
                }
                None => csv.push(','),
            }
        }
        csv.push('\n');
    }
    csv
}

/// The must-show criteria of one case.
fn criteria(case: &Case, report: &CaseReport) -> Vec<Criterion> {
    let mut out = Vec::new();
    let mut push = |name: &str, measured: f64, limit: f64, pass: bool| {
        out.push(Criterion {
            case: case.name.to_string(),
            name: name.to_string(),
            measured,
            limit,
            pass,
        });
    };
    let whole = report.seconds >= case.duration_s;
    if case.name == "variable-1" && whole {
        push(
            "utilisation, % (at least)",
            report.utilisation_pct,
            MIN_UTILISATION_PCT,
            report.utilisation_pct >= MIN_UTILISATION_PCT,
        );
        push(
            "p95 queuing delay, ms (at most)",
            report.queue_delay_p95_ms,
            MAX_P95_QUEUE_MS,
            report.queue_delay_p95_ms <= MAX_P95_QUEUE_MS,
        );
    }
    if case.name == "step-half" {
        if let Some(change) = report.changes.iter().find(|c| c.to_kbps < c.from_kbps) {
            // Not under within the case: the time it had, as the figure.
            let measured = change
                .time_under_ms
                .unwrap_or((report.seconds - change.at_s) * 1e3);
            push(
                "sending rate under the halved capacity after, ms (at most)",
                measured,
                MAX_UNDER_MS,
                change.time_under_ms.is_some_and(|ms| ms <= MAX_UNDER_MS),
            );
        }
    }
    if case.name == "three-flows" && whole {
        let measured = report.jain.unwrap_or(0.0);
        push(
            "Jain's index over the last 40 s (at least)",
            measured,
            MIN_JAIN,
            measured >= MIN_JAIN,
        );
    }
    push(
        "loss, % (below)",
        report.loss_pct,
        MAX_LOSS_PCT,
        report.loss_pct < MAX_LOSS_PCT,
    );
    out
}

fn print_table(report: &Report) {
    println!(
        "tincan lab abr: controller {}, seed {}, frame sizes ±{:.0}%; {}",
        report.controller,
        report.seed,
        report.frame_variation * 100.0,
        report.network
    );
    println!();
    println!(
        "{:<13} {:>4} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8}",
        "case",
        "flow",
        "rtt",
        "target",
        "sent",
        "deliv",
        "util%",
        "q mean",
        "q p95",
        "loss%",
        "pacer95",
        "probes",
        "fair win"
    );
    for case in &report.cases {
        for f in &case.flows {
            println!(
                "{:<13} {:>4} {:>6.0} {:>8.0} {:>8.0} {:>8.0} {:>7} {:>7.1} {:>7.1} {:>6.2} {:>7.1} {:>6} {:>8}",
                case.case,
                f.flow,
                2.0 * f.one_way_ms,
                f.target_kbps,
                f.sent_kbps,
                f.delivered_kbps,
                "",
                f.queue_delay_mean_ms,
                f.queue_delay_p95_ms,
                f.loss_pct,
                f.pacer_delay_p95_ms,
                f.probes,
                f.fairness_window_kbps
                    .map(|k| format!("{k:.0}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "{:<13} {:>4} {:>6} {:>8} {:>8} {:>8.0} {:>7.1} {:>7.1} {:>7.1} {:>6.2}   capacity {:.0} kbit/s{}",
            case.case,
            "all",
            "",
            "",
            "",
            case.delivered_kbps,
            case.utilisation_pct,
            case.queue_delay_mean_ms,
            case.queue_delay_p95_ms,
            case.loss_pct,
            case.capacity_kbps,
            case.jain
                .map(|j| format!(", Jain {j:.3}"))
                .unwrap_or_default()
        );
        for c in &case.changes {
            let figure = match (c.time_under_ms, c.time_to_90pct_ms, c.to_kbps < c.from_kbps) {
                (Some(ms), _, true) => format!("under the new capacity after {ms:.0} ms"),
                (None, _, true) => "not under the new capacity before the next change".into(),
                (_, Some(ms), false) => format!("90% of the new capacity after {ms:.0} ms"),
                (_, None, false) => "never 90% of the new capacity before the next change".into(),
            };
            println!(
                "{:<13}      at {:>5.1} s {:>5.0} -> {:<5.0} kbit/s: utilisation {:>5.1}%, {figure}",
                "", c.at_s, c.from_kbps, c.to_kbps, c.utilisation_pct
            );
        }
    }
    println!();
    for c in &report.criteria {
        println!(
            "{} {:<13} {}: {:.3} (limit {})",
            if c.pass { "pass" } else { "FAIL" },
            c.case,
            c.name,
            c.measured,
            c.limit
        );
    }
}

/// Runs the lab.
///
/// # Errors
///
/// Bad options, a component that refused its configuration, unwritable outputs, or (with
/// `--check`) a must-show criterion that failed.
pub fn run(args: &AbrArgs) -> Result<(), LabError> {
    let kind = ControlKind::parse(&args.controller)?;
    if !(0.0..=0.9).contains(&args.frame_variation) {
        return Err(format!(
            "--frame-variation {}: expected 0 to 0.9",
            args.frame_variation
        )
        .into());
    }
    if let Some(s) = args.seconds {
        if !(1.0..=3600.0).contains(&s) {
            return Err(format!("--seconds {s}: expected 1 to 3600").into());
        }
    }
    let all = cases(args.seed);
    for name in &args.cases {
        if !all.iter().any(|c| c.name == name) {
            let names: Vec<&str> = all.iter().map(|c| c.name).collect();
            return Err(format!("unknown case {name}; cases: {}", names.join(", ")).into());
        }
    }
    let chosen: Vec<Case> = all
        .into_iter()
        .filter(|c| args.cases.is_empty() || args.cases.iter().any(|n| n == c.name))
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, chosen.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = chosen.get(i) else { break };
                    let seconds = args
                        .seconds
                        .map_or(case.duration_s, |s| s.min(case.duration_s));
                    let result = simulate(case, kind, args.seed, seconds, args.frame_variation);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    let mut cases_out = Vec::new();
    let mut all_criteria = Vec::new();
    if !args.no_plots || args.csv {
        std::fs::create_dir_all(&args.out)?;
    }
    for (i, result) in results {
        let (mut report, data, csv) = result?;
        if !args.no_plots {
            let path = args.out.join(format!("{}.svg", report.case));
            std::fs::write(&path, plot::svg(&data))?;
            report.plot = Some(path.display().to_string());
        }
        if args.csv {
            std::fs::write(args.out.join(format!("{}.csv", report.case)), csv)?;
        }
        all_criteria.extend(criteria(&chosen[i], &report));
        cases_out.push(report);
    }
    let pass = all_criteria.iter().all(|c| c.pass);
    let report = Report {
        controller: kind.name(),
        seed: args.seed,
        frame_variation: args.frame_variation,
        network: format!(
            "shared bottleneck, drop-tail queue {QUEUE_LIMIT_MS} ms; {DEFAULT_ONE_WAY_MS} ms one way unless the case says; feedback on an unconstrained return path"
        ),
        cases: cases_out,
        criteria: all_criteria,
        pass,
    };
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if args.check && !pass {
        return Err("lab abr: a must-show criterion failed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_when_equal_and_one_over_n_when_one_takes_all() {
        assert!((jain(&[2.0, 2.0, 2.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[3.0, 0.0, 0.0]) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn capacity_integral_follows_the_steps() {
        let case = &cases(1)[0]; // 1 -> 2.5 -> 0.6 -> 1 Mbit/s at 0/40/60/80
        let bits = case.capacity_bits(0.0, 100.0);
        let expected = 1e6 * 40.0 + 2.5e6 * 20.0 + 0.6e6 * 20.0 + 1e6 * 20.0;
        assert!((bits - expected).abs() < 1.0);
        assert_eq!(case.capacity_at(59.9), 2.5e6);
        assert_eq!(case.capacity_at(60.0), 0.6e6);
    }

    #[test]
    fn the_cellular_trace_is_seeded_bounded_and_steps_every_100_to_500_ms() {
        let a = cellular_trace(7, 120.0);
        assert_eq!(a, cellular_trace(7, 120.0));
        assert_ne!(a, cellular_trace(8, 120.0));
        for w in a.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!((0.1..=0.5).contains(&gap), "{gap}");
        }
        assert!(
            a.iter()
                .all(|&(_, c)| (499_999.0..=3_000_001.0).contains(&c))
        );
        let low = a.iter().filter(|c| c.1 < 1e6).count();
        let high = a.iter().filter(|c| c.1 > 2e6).count();
        assert!(
            low > 0 && high > 0,
            "the walk should visit both ends in 2 min"
        );
    }

    #[test]
    fn a_fixed_rate_under_capacity_is_delivered_whole_without_queuing() {
        let case = Case {
            name: "test",
            description: String::new(),
            duration_s: 10.0,
            capacity: vec![(0.0, 2e6)],
            flows: vec![FlowDef::at(0.0)],
            fairness_s: None,
        };
        let (report, _, _) = simulate(
            &case,
            ControlKind::Fixed(1_000_000),
            1,
            10.0,
            FRAME_SIZE_VARIATION,
        )
        .expect("runs");
        let flow = &report.flows[0];
        assert_eq!(flow.loss_pct, 0.0);
        // Media follows the allocation: about 1 Mbit/s, keyframes and ±20% frames aside.
        assert!((900.0..=1100.0).contains(&flow.sent_kbps), "{flow:?}");
        assert!((report.utilisation_pct - 100.0 * flow.delivered_kbps / 2000.0).abs() < 1.0);
        // At half the capacity the bottleneck queue stays short (frames go at 2.5× through
        // the pacer: at most a few packets wait).
        assert!(flow.queue_delay_p95_ms < 15.0, "{flow:?}");
    }

    #[test]
    fn flows_share_one_bottleneck_queue() {
        // Two 1 Mbit/s senders on 1.5 Mbit/s, different RTTs: the one FIFO serves both, so
        // together they get the capacity, each about half, and both see the same queue.
        let case = Case {
            name: "test",
            description: String::new(),
            duration_s: 20.0,
            capacity: vec![(0.0, 1.5e6)],
            flows: vec![
                FlowDef::at(0.0),
                FlowDef {
                    one_way_ms: 150.0,
                    ..FlowDef::at(0.0)
                },
            ],
            fairness_s: Some((10.0, 20.0)),
        };
        let (report, _, _) = simulate(
            &case,
            ControlKind::Fixed(1_000_000),
            1,
            20.0,
            FRAME_SIZE_VARIATION,
        )
        .expect("runs");
        assert!(report.utilisation_pct > 97.0, "{report:?}");
        assert!((20.0..=30.0).contains(&report.loss_pct), "{report:?}");
        let (a, b) = (&report.flows[0], &report.flows[1]);
        assert!(
            (a.delivered_kbps - b.delivered_kbps).abs() < 60.0,
            "{report:?}"
        );
        assert!(report.jain.expect("two flows") > 0.99);
        assert!((a.queue_delay_mean_ms - b.queue_delay_mean_ms).abs() < 10.0);
        assert!(a.queue_delay_mean_ms > 200.0, "a full 300 ms queue");
    }

    #[test]
    fn a_fixed_rate_over_capacity_fills_the_queue_and_loses() {
        let case = Case {
            name: "test",
            description: String::new(),
            duration_s: 10.0,
            capacity: vec![(0.0, 500_000.0)],
            flows: vec![FlowDef::at(0.0)],
            fairness_s: None,
        };
        let (report, _, _) = simulate(
            &case,
            ControlKind::Fixed(1_000_000),
            1,
            10.0,
            FRAME_SIZE_VARIATION,
        )
        .expect("runs");
        assert!(report.utilisation_pct > 95.0, "{report:?}");
        assert!(report.loss_pct > 30.0, "{report:?}");
        assert!(report.queue_delay_p95_ms > 250.0, "{report:?}");
    }
}
