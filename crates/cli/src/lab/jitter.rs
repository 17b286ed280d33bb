//! `tincan lab jitter`: the adaptive audio jitter buffer with real Opus speech over netsim
//! profiles, against fixed-delay buffers (50, 100 and 200 ms, GStreamer's default) and the
//! hindsight oracle (the smallest fixed delay that keeps late loss at 1% on the trace).
//!
//! Each scenario is simulated sans-IO from one origin instant: the sender's packets go into
//! a [`tincan_netsim::Link`] at their send times, and every buffer sees the same deliveries,
//! inserted at their delivery instants, with a pull every 10 ms; deliveries due at or
//! before a pull are inserted before it. The speech is encoded once and shared.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_codec::resample::resample_all;
use tincan_jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioPacket, Operation, OpusPacketDecoder,
};
use tincan_media::wav::{self, WavWriter};
use tincan_media::{AudioFormat, Channels};
use tincan_netsim::{Counters, DelayStep, Link, LinkConfig, Outage, Poll};

use super::LabError;
use super::fixed::{FixedDelayBuffer, Playout, oracle_offset};
use super::metrics::{
    PullKind, PullRecord, concealed_from_pulls, concealment_episode_end, concealment_stop,
    delay_summary, expand_pull_pct, tracking_deviation,
};

const RATE: u32 = 48_000;
/// Samples per 20 ms packet at 48 kHz.
const FRAME: usize = 960;
/// Samples per 10 ms pull.
const PULL: usize = 480;
const PULL_INTERVAL: Duration = Duration::from_millis(10);
const SSRC: u32 = 0x7469_6e63;
/// First RTP sequence number: it wraps after 250 packets (5 s), as real streams do.
const SEQ0: u16 = u16::MAX - 249;
/// First RTP timestamp: it wraps after 250 packets (5 s) as well.
const TS0: u32 = 0u32.wrapping_sub(250 * FRAME as u32);
/// Bytes of RTP, UDP and IP headers added to each payload for the link's size.
const HEADER_BYTES: usize = 40;
/// Warm-up before the drift criterion applies.
const DRIFT_WARM_UP: Duration = Duration::from_secs(10);
/// Concealment pulls closer than this belong to one episode.
const EPISODE_GAP: Duration = Duration::from_secs(1);
/// When the delay step and the outage happen.
const EVENT_AT_MS: f64 = 20_000.0;

/// Late loss allowed on every profile, in percent.
const MAX_LATE_LOSS_PCT: f64 = 2.0;
/// Mean delay allowed, as a multiple of the oracle's.
const MAX_ORACLE_RATIO: f64 = 1.15;
/// Concealment must stop within this long after the delay step, in seconds.
const MAX_STEP_CONCEALMENT_S: f64 = 2.0;
/// How much more often (percentage points of pulls) the buffer may conceal after a delay
/// step than before it, once the step's own episode is over.
const STEP_EXPAND_SLACK_PCT: f64 = 0.5;
/// Largest deviation of the delay from the target under clock drift, in milliseconds.
const MAX_DRIFT_DEVIATION_MS: f64 = 20.0;

/// Options of `tincan lab jitter`.
#[derive(Args, Debug, Clone)]
pub struct JitterArgs {
    /// Seconds of audio per scenario (the drift scenarios excepted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), default_value_t = 60)]
    seconds: u32,
    /// Seconds of audio of the two clock-drift scenarios.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), default_value_t = 600)]
    drift_seconds: u32,
    /// Seed of the network emulation (each scenario derives its own from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the audio each buffer played, per scenario, as 48 kHz mono WAV files here.
    #[arg(long)]
    wav_dir: Option<PathBuf>,
    /// Exit with a failure status when a must-show criterion fails.
    #[arg(long)]
    check: bool,
    /// Run only this scenario (repeat for several; default: all).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Speech WAV to loop (default: the fixture speech_orig_16k.wav).
    #[arg(long)]
    speech: Option<PathBuf>,
    /// Scenarios run in parallel (default: the available cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// One lab profile: a network and a sender clock.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (table rows, JSON, WAV file names).
    pub name: &'static str,
    /// One line for humans.
    pub description: &'static str,
    /// The network, sender to receiver.
    pub link: LinkConfig,
    /// Sender clock error: packet `k` is sent at `k × 20 ms / (1 + drift)` of real time.
    pub drift: f64,
    /// Seconds of audio sent.
    pub seconds: u32,
    /// When the delay steps (for the concealment criterion).
    pub step_at: Option<Duration>,
}

fn base_link(jitter_ms: f64) -> LinkConfig {
    LinkConfig {
        delay_ms: 40.0,
        jitter_ms,
        ..LinkConfig::default()
    }
}

/// Every lab profile, with `seconds` of audio (`drift_seconds` for the drift ones).
pub fn scenarios(seconds: u32, drift_seconds: u32) -> Vec<Scenario> {
    let plain = |name, description, link| Scenario {
        name,
        description,
        link,
        drift: 0.0,
        seconds,
        step_at: None,
    };
    let drift = |name, description, drift| Scenario {
        name,
        description,
        link: base_link(5.0),
        drift,
        seconds: drift_seconds,
        step_at: None,
    };
    vec![
        plain("low-jitter", "40 ms, jitter 3 ms, in order", base_link(3.0)),
        plain(
            "jitter-30",
            "40 ms, jitter 30 ms, in order",
            base_link(30.0),
        ),
        plain(
            "jitter-60-spikes",
            "40 ms, jitter 60 ms, 1% Pareto spikes 100-500 ms, in order",
            LinkConfig {
                spike_probability: 0.01,
                spike_scale_ms: 100.0,
                spike_max_ms: 500.0,
                ..base_link(60.0)
            },
        ),
        plain(
            "reorder-5",
            "40 ms, jitter 5 ms, 5% held back 45 ms",
            LinkConfig {
                allow_reorder: true,
                reorder_probability: 0.05,
                reorder_delay_ms: 45.0,
                ..base_link(5.0)
            },
        ),
        drift(
            "drift+0.5%",
            "40 ms, jitter 5 ms, sender clock 0.5% fast",
            0.005,
        ),
        drift(
            "drift-0.5%",
            "40 ms, jitter 5 ms, sender clock 0.5% slow",
            -0.005,
        ),
        Scenario {
            step_at: Some(Duration::from_secs_f64(EVENT_AT_MS / 1000.0)),
            ..plain(
                "step+200",
                "40 ms, jitter 5 ms, delay 240 ms from 20 s",
                LinkConfig {
                    delay_trace: vec![DelayStep {
                        at_ms: EVENT_AT_MS,
                        delay_ms: 240.0,
                    }],
                    ..base_link(5.0)
                },
            )
        },
        plain(
            "outage-1s",
            "40 ms, jitter 5 ms, 1 s outage at 20 s",
            LinkConfig {
                outages: vec![Outage {
                    start_ms: EVENT_AT_MS,
                    duration_ms: 1000.0,
                }],
                ..base_link(5.0)
            },
        ),
    ]
}

impl Scenario {
    /// Packets sent.
    pub fn packets(&self) -> usize {
        self.seconds as usize * 50
    }

    /// When packet `k` is sent, after the origin.
    pub fn send_time(&self, k: usize) -> Duration {
        let ns = k as f64 * 20e6 / (1.0 + self.drift);
        Duration::from_nanos(ns.round() as u64)
    }

    /// Pulls in a run: the sender's real duration plus the base delay.
    pub fn pulls(&self) -> usize {
        let end =
            self.send_time(self.packets()) + Duration::from_secs_f64(self.link.delay_ms / 1e3);
        end.as_nanos().div_ceil(PULL_INTERVAL.as_nanos()) as usize
    }
}

/// One delivery of the network: which packet, when, and whether it is the second copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Packet index (0 = first sent).
    pub index: usize,
    /// Delivery instant.
    pub at: Instant,
    /// True for a duplicate's second copy.
    pub duplicate: bool,
}

/// What the network did to a scenario's packets.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Deliveries in time order.
    pub arrivals: Vec<Arrival>,
    /// The link's counters.
    pub counters: Counters,
}

/// Sends a scenario's packets through its link (seeded) and collects the deliveries.
///
/// # Errors
///
/// An invalid link configuration.
pub fn network_trace(
    scenario: &Scenario,
    sizes: &[usize],
    seed: u64,
    t0: Instant,
) -> Result<Trace, LabError> {
    let mut link = Link::new(scenario.link.clone(), seed)?;
    link.set_epoch(t0);
    for (k, size) in sizes.iter().enumerate().take(scenario.packets()) {
        link.send(k, size + HEADER_BYTES, t0 + scenario.send_time(k));
    }
    let mut arrivals = Vec::with_capacity(scenario.packets());
    let end = t0 + Duration::from_secs(30 * 24 * 3600);
    while let Poll::Deliver(d) = link.poll(end) {
        arrivals.push(Arrival {
            index: d.packet,
            at: d.delivered_at,
            duplicate: d.duplicate,
        });
    }
    Ok(Trace {
        arrivals,
        counters: *link.counters(),
    })
}

/// `arrival − media time` of every first copy, in seconds after the origin.
pub fn transit_times(trace: &Trace, t0: Instant) -> Vec<f64> {
    trace
        .arrivals
        .iter()
        .filter(|a| !a.duplicate)
        .map(|a| (a.at - t0).as_secs_f64() - a.index as f64 * 0.020)
        .collect()
}

/// A buffer under test, as the driver sees it.
trait LabBuffer {
    fn insert(&mut self, packet: AudioPacket<'_>, at: Instant) -> Result<(), LabError>;
    fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<PullRecord, LabError>;
}

impl LabBuffer for AudioJitterBuffer<OpusPacketDecoder> {
    fn insert(&mut self, packet: AudioPacket<'_>, at: Instant) -> Result<(), LabError> {
        AudioJitterBuffer::insert(self, packet, at)?;
        Ok(())
    }

    fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<PullRecord, LabError> {
        let info = AudioJitterBuffer::pull(self, now, out)?;
        let kind = match info.operation {
            Operation::Expand => PullKind::Expand,
            Operation::ComfortNoise | Operation::Silence => PullKind::Silence,
            _ => PullKind::Normal,
        };
        Ok(PullRecord {
            samples: info.samples,
            from_packets: info.samples_from_packets,
            packet_delay: info.packet_delay,
            target_delay: Some(info.target_delay),
            kind,
        })
    }
}

impl LabBuffer for FixedDelayBuffer<OpusPacketDecoder> {
    fn insert(&mut self, packet: AudioPacket<'_>, at: Instant) -> Result<(), LabError> {
        FixedDelayBuffer::insert(self, packet, at);
        Ok(())
    }

    fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<PullRecord, LabError> {
        Ok(FixedDelayBuffer::pull(self, now, out)?)
    }
}

/// The RTP view of packet `k`.
fn rtp(k: usize, payload: &[u8]) -> AudioPacket<'_> {
    AudioPacket {
        ssrc: SSRC,
        sequence: SEQ0.wrapping_add(k as u16),
        timestamp: TS0.wrapping_add((k * FRAME) as u32),
        payload,
    }
}

/// Runs one buffer over a trace: inserts due deliveries, then pulls, every 10 ms.
fn drive(
    buffer: &mut dyn LabBuffer,
    trace: &Trace,
    packets: &[Vec<u8>],
    pulls: usize,
    t0: Instant,
    mut wav: Option<&mut WavWriter>,
) -> Result<Vec<PullRecord>, LabError> {
    let mut records = Vec::with_capacity(pulls);
    let mut out = vec![0i16; PULL];
    let mut next = 0;
    for k in 0..pulls {
        let now = t0 + PULL_INTERVAL * k as u32;
        while let Some(a) = trace.arrivals.get(next).filter(|a| a.at <= now) {
            buffer.insert(rtp(a.index, &packets[a.index]), a.at)?;
            next += 1;
        }
        records.push(buffer.pull(now, &mut out)?);
        if let Some(w) = wav.as_deref_mut() {
            w.write(&out)?;
        }
    }
    Ok(records)
}

/// Figures of one buffer on one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `adaptive`, `fixed-50`, `fixed-100`, `fixed-200` or `oracle`.
    pub buffer: String,
    /// For fixed buffers: the delay after the first arrival (or the oracle's offset after
    /// the send time), in ms.
    pub fixed_delay_ms: Option<f64>,
    /// Mean playout delay (arrival to playout), weighted by samples from packets, in ms.
    pub mean_delay_ms: f64,
    /// 95th percentile of the same, in ms.
    pub p95_delay_ms: f64,
    /// For the adaptive buffer: its own `jitterBufferDelay / jitterBufferEmittedCount`, ms.
    pub stats_mean_delay_ms: Option<f64>,
    /// Mean target delay over pulls (adaptive buffer), in ms.
    pub mean_target_delay_ms: Option<f64>,
    /// (Late + overflow packets) / packets sent, in percent.
    pub late_loss_pct: f64,
    /// Packets that arrived too late to play.
    pub late_packets: u64,
    /// Packets dropped because the buffer was full.
    pub overflow_packets: u64,
    /// Concealed samples / samples emitted, in percent.
    pub expand_pct: f64,
    /// (Inserted + removed samples by time stretching) / samples emitted, in percent.
    pub stretch_pct: f64,
    /// Samples emitted (from the first packet on).
    pub total_samples: u64,
    /// Samples concealed.
    pub concealed_samples: u64,
    /// Cross-check: samples not from packets in pulls that were not silence, summed from
    /// the pulls (`samples − samples_from_packets`).
    pub concealed_samples_from_pulls: u64,
    /// Mean delay / the oracle's mean delay.
    pub ratio_to_oracle: f64,
    /// Delay step scenario: time from the step to the end of the last concealment, in s.
    pub concealment_stop_s: Option<f64>,
    /// Delay step scenario: time from the step to the end of the concealment episode it
    /// started (concealment pulls less than 1 s apart), in s; later, isolated
    /// concealment is not counted here.
    pub step_episode_end_s: Option<f64>,
    /// Delay step scenario: share of pulls that concealed in the 10 s before the step, and
    /// in the 10 s from 2 s after it, in percent (the step's concealment is over when the
    /// second is no higher than the first).
    pub step_expand_pct_before_after: Option<(f64, f64)>,
    /// Largest deviation of the 1 s mean delay from the 1 s mean target after 10 s, in ms
    /// (adaptive buffer).
    pub target_tracking_deviation_ms: Option<f64>,
}

/// Figures of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Seconds of audio.
    pub audio_seconds: u32,
    /// Sender clock error (0.005 = 0.5% fast).
    pub sender_drift: f64,
    /// Seed of its link.
    pub seed: u64,
    /// The link configuration.
    pub link: LinkConfig,
    /// Packets sent.
    pub packets_sent: u64,
    /// Dropped by the network / sent, in percent.
    pub network_loss_pct: f64,
    /// Deliveries overtaken by later packets.
    pub reordered: u64,
    /// Mean network delay, in ms.
    pub network_mean_delay_ms: f64,
    /// The oracle's offset: 99th percentile of arrival − media time, in ms.
    pub oracle_offset_ms: f64,
    /// Pulls in each run.
    pub pulls: usize,
    /// Every buffer's figures: adaptive, fixed-50, fixed-100, fixed-200, oracle.
    pub runs: Vec<RunReport>,
}

/// A must-show criterion and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// What must hold.
    pub name: String,
    /// Whether it held.
    pub pass: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

/// The whole lab.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The speech looped.
    pub speech: String,
    /// Opus configuration, in words.
    pub codec: String,
    /// Base seed.
    pub seed: u64,
    /// Packets encoded (shared by every scenario).
    pub packets_encoded: usize,
    /// Every scenario.
    pub scenarios: Vec<ScenarioReport>,
    /// The must-show criteria.
    pub criteria: Vec<Criterion>,
    /// All criteria held.
    pub pass: bool,
}

fn opus_decoder() -> Result<OpusPacketDecoder, LabError> {
    Ok(OpusPacketDecoder::new(OpusDecoder::new(
        RATE,
        Channels::Mono,
    )?))
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The buffers compared, by name.
const BUFFERS: [&str; 5] = ["adaptive", "fixed-50", "fixed-100", "fixed-200", "oracle"];

fn wav_writer(
    dir: Option<&Path>,
    scenario: &str,
    buffer: &str,
) -> Result<Option<WavWriter>, LabError> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let file = format!("{}_{buffer}.wav", scenario.replace('%', "pct"));
    let format = AudioFormat::new(RATE, Channels::Mono)?;
    Ok(Some(WavWriter::create(dir.join(file), format)?))
}

/// Runs every buffer over one scenario.
///
/// # Errors
///
/// A codec, buffer or file error.
pub fn run_scenario(
    scenario: &Scenario,
    packets: &[Vec<u8>],
    seed: u64,
    wav_dir: Option<&Path>,
) -> Result<ScenarioReport, LabError> {
    let t0 = Instant::now();
    let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
    let trace = network_trace(scenario, &sizes, seed, t0)?;
    let transit = transit_times(&trace, t0);
    let oracle = oracle_offset(&transit).unwrap_or(0.0).max(0.0);
    let pulls = scenario.pulls();
    let sent = scenario.packets() as u64;
    let mut runs = Vec::new();
    for name in BUFFERS {
        let mut wav = wav_writer(wav_dir, scenario.name, name)?;
        let run = if name == "adaptive" {
            let mut jb = AudioJitterBuffer::new(opus_decoder()?, AudioJitterConfig::default())?;
            let records = drive(&mut jb, &trace, packets, pulls, t0, wav.as_mut())?;
            let stats = *jb.stats();
            let summary = delay_summary(&records);
            let targets: Vec<f64> = records
                .iter()
                .filter_map(|r| r.target_delay)
                .map(|t| t.as_secs_f64() * 1e3)
                .collect();
            RunReport {
                buffer: name.to_owned(),
                fixed_delay_ms: None,
                mean_delay_ms: summary.mean_ms,
                p95_delay_ms: summary.p95_ms,
                stats_mean_delay_ms: Some(stats.mean_delay().as_secs_f64() * 1e3),
                mean_target_delay_ms: (!targets.is_empty())
                    .then(|| targets.iter().sum::<f64>() / targets.len() as f64),
                late_loss_pct: pct(stats.late_packets + stats.overflow_packets, sent),
                late_packets: stats.late_packets,
                overflow_packets: stats.overflow_packets,
                expand_pct: pct(stats.concealed_samples, stats.total_samples_received),
                stretch_pct: pct(
                    stats.inserted_samples_for_deceleration
                        + stats.removed_samples_for_acceleration,
                    stats.total_samples_received,
                ),
                total_samples: stats.total_samples_received,
                concealed_samples: stats.concealed_samples,
                ratio_to_oracle: 0.0,
                concealed_samples_from_pulls: concealed_from_pulls(&records),
                concealment_stop_s: scenario.step_at.map(|at| concealment_stop(&records, at)),
                step_episode_end_s: scenario
                    .step_at
                    .map(|at| concealment_episode_end(&records, at, EPISODE_GAP)),
                step_expand_pct_before_after: scenario.step_at.map(|at| {
                    let ten = Duration::from_secs(10);
                    let two = Duration::from_secs(2);
                    (
                        expand_pull_pct(&records, at.saturating_sub(ten), at),
                        expand_pull_pct(&records, at + two, at + two + ten),
                    )
                }),
                target_tracking_deviation_ms: tracking_deviation(&records, DRIFT_WARM_UP),
            }
        } else {
            let (playout, delay_ms) = match name {
                "oracle" => (
                    Playout::Offset {
                        origin: t0,
                        ts0: TS0,
                        offset: Duration::from_secs_f64(oracle),
                    },
                    oracle * 1e3,
                ),
                _ => {
                    let ms: u64 = name.trim_start_matches("fixed-").parse()?;
                    (
                        Playout::AfterFirstArrival(Duration::from_millis(ms)),
                        ms as f64,
                    )
                }
            };
            let mut fixed = FixedDelayBuffer::new(opus_decoder()?, playout, FRAME);
            let records = drive(&mut fixed, &trace, packets, pulls, t0, wav.as_mut())?;
            let stats = *fixed.stats();
            let summary = delay_summary(&records);
            RunReport {
                buffer: name.to_owned(),
                fixed_delay_ms: Some(delay_ms),
                mean_delay_ms: summary.mean_ms,
                p95_delay_ms: summary.p95_ms,
                stats_mean_delay_ms: None,
                mean_target_delay_ms: None,
                late_loss_pct: pct(stats.late_packets, sent),
                late_packets: stats.late_packets,
                overflow_packets: 0,
                expand_pct: pct(stats.concealed_samples, stats.total_samples),
                stretch_pct: 0.0,
                total_samples: stats.total_samples,
                concealed_samples: stats.concealed_samples,
                ratio_to_oracle: 0.0,
                concealed_samples_from_pulls: concealed_from_pulls(&records),
                concealment_stop_s: scenario.step_at.map(|at| concealment_stop(&records, at)),
                step_episode_end_s: scenario
                    .step_at
                    .map(|at| concealment_episode_end(&records, at, EPISODE_GAP)),
                step_expand_pct_before_after: scenario.step_at.map(|at| {
                    let ten = Duration::from_secs(10);
                    let two = Duration::from_secs(2);
                    (
                        expand_pull_pct(&records, at.saturating_sub(ten), at),
                        expand_pull_pct(&records, at + two, at + two + ten),
                    )
                }),
                target_tracking_deviation_ms: None,
            }
        };
        if let Some(w) = wav {
            w.finalize()?;
        }
        runs.push(run);
    }
    let oracle_mean = runs
        .iter()
        .find(|r| r.buffer == "oracle")
        .map_or(0.0, |r| r.mean_delay_ms);
    for run in &mut runs {
        run.ratio_to_oracle = if oracle_mean > 0.0 {
            run.mean_delay_ms / oracle_mean
        } else {
            f64::INFINITY
        };
    }
    let c = &trace.counters;
    Ok(ScenarioReport {
        name: scenario.name.to_owned(),
        description: scenario.description.to_owned(),
        audio_seconds: scenario.seconds,
        sender_drift: scenario.drift,
        seed,
        link: scenario.link.clone(),
        packets_sent: c.sent,
        network_loss_pct: pct(c.dropped(), c.sent),
        reordered: c.reordered,
        network_mean_delay_ms: c.mean_delay().as_secs_f64() * 1e3,
        oracle_offset_ms: oracle * 1e3,
        pulls,
        runs,
    })
}

/// Encodes `count` 20 ms packets of `speech` (looped), 48 kHz mono Opus at 32 kbit/s with
/// in-band FEC.
///
/// # Errors
///
/// A codec error.
pub fn encode_speech(frames: &[&[i16]], count: usize) -> Result<Vec<Vec<u8>>, LabError> {
    let config = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(32_000)
        .with_inband_fec(true)
        .with_packet_loss_percent(5);
    let mut encoder = OpusEncoder::new(&config)?;
    let mut packet = [0u8; 1500];
    let mut packets = Vec::with_capacity(count);
    for k in 0..count {
        let len = encoder.encode(frames[k % frames.len()], &mut packet)?;
        packets.push(packet[..len].to_vec());
    }
    Ok(packets)
}

/// Each scenario's seed, derived from the base seed and its position.
fn scenario_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(index as u64 + 1)
}

/// Checks the must-show criteria on the adaptive buffer's figures.
pub fn criteria(scenarios: &[ScenarioReport]) -> Vec<Criterion> {
    let adaptive = |s: &ScenarioReport| s.runs.iter().find(|r| r.buffer == "adaptive").cloned();
    let mut out = Vec::new();
    let mut late = Vec::new();
    let mut ratio = Vec::new();
    let (mut late_ok, mut ratio_ok) = (true, true);
    for s in scenarios {
        let Some(a) = adaptive(s) else { continue };
        late_ok &= a.late_loss_pct <= MAX_LATE_LOSS_PCT;
        ratio_ok &= a.ratio_to_oracle <= MAX_ORACLE_RATIO;
        late.push(format!("{} {:.2}%", s.name, a.late_loss_pct));
        ratio.push(format!("{} {:.2}", s.name, a.ratio_to_oracle));
    }
    out.push(Criterion {
        name: format!("late loss <= {MAX_LATE_LOSS_PCT}% on every profile"),
        pass: late_ok,
        detail: late.join(", "),
    });
    out.push(Criterion {
        name: format!("mean playout delay <= {MAX_ORACLE_RATIO} x oracle on every profile"),
        pass: ratio_ok,
        detail: ratio.join(", "),
    });
    for s in scenarios {
        let Some(a) = adaptive(s) else { continue };
        if let (Some(end), Some((before, after))) =
            (a.step_episode_end_s, a.step_expand_pct_before_after)
        {
            // The step's own concealment episode must end within the limit, and from 2 s
            // on the buffer must conceal no more often than before the step (isolated
            // underruns from the quantile target happen on every trace).
            out.push(Criterion {
                name: format!(
                    "{}: concealment stops within {MAX_STEP_CONCEALMENT_S} s of the step",
                    s.name
                ),
                pass: end <= MAX_STEP_CONCEALMENT_S && after <= before + STEP_EXPAND_SLACK_PCT,
                detail: format!(
                    "the step's concealment ends {end:.2} s after it; concealing pulls {before:.2}% in the 10 s before, {after:.2}% in the 10 s from 2 s after"
                ),
            });
        }
        if s.sender_drift != 0.0 {
            let deviation = a.target_tracking_deviation_ms;
            out.push(Criterion {
                name: format!(
                    "{}: delay within {MAX_DRIFT_DEVIATION_MS} ms of the target over {} s",
                    s.name, s.audio_seconds
                ),
                pass: deviation.is_some_and(|d| d <= MAX_DRIFT_DEVIATION_MS),
                detail: match deviation {
                    Some(d) => format!("largest 1 s deviation after 10 s: {d:.1} ms"),
                    None => "no 1 s window after the warm-up".to_owned(),
                },
            });
        }
    }
    out
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The table of every (scenario, buffer) row.
pub fn table(report: &Report) -> String {
    let mut s = String::new();
    let header = format!(
        "{:<17} {:<10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8} {:>12} {:>8}\n",
        "scenario",
        "buffer",
        "fixed ms",
        "mean ms",
        "p95 ms",
        "jbd ms",
        "late %",
        "expand %",
        "strch %",
        "x oracle",
        "step s",
        "track ms"
    );
    s.push_str(&header);
    s.push_str(&format!("{}\n", "-".repeat(header.len() - 1)));
    for sc in &report.scenarios {
        for r in &sc.runs {
            let step = match (r.concealment_stop_s, r.step_episode_end_s) {
                (Some(stop), Some(episode)) => format!("{stop:.2}/{episode:.2}"),
                _ => "-".to_owned(),
            };
            s.push_str(&format!(
                "{:<17} {:<10} {:>8} {:>8.1} {:>8.1} {:>8} {:>7.2} {:>8.2} {:>7.2} {:>8.2} {:>12} {:>8}\n",
                sc.name,
                r.buffer,
                opt(r.fixed_delay_ms, 1),
                r.mean_delay_ms,
                r.p95_delay_ms,
                opt(r.stats_mean_delay_ms, 1),
                r.late_loss_pct,
                r.expand_pct,
                r.stretch_pct,
                r.ratio_to_oracle,
                step,
                opt(r.target_tracking_deviation_ms, 1),
            ));
        }
    }
    s.push_str(concat!(
        "\nmean, p95: playout delay (arrival to playout) of each pull's audio, weighted by samples from packets\n",
        "jbd: the adaptive buffer's own jitterBufferDelay / jitterBufferEmittedCount\n",
        "late: (late + overflow packets) / packets sent; expand: concealed / emitted samples\n",
        "step s: after the step, end of the last concealment / of the step's concealment episode\n",
        "track: largest |1 s mean delay - 1 s mean target| after 10 s\n",
    ));
    s
}

/// Runs the lab, prints the table and the criteria, and writes what was asked for.
///
/// # Errors
///
/// Unreadable speech, a codec, buffer or file error, an unknown scenario name, or (with
/// `--check`) a failed criterion.
pub fn run(args: &JitterArgs) -> Result<(), LabError> {
    let started = Instant::now();
    let all = scenarios(args.seconds, args.drift_seconds);
    for name in &args.scenarios {
        if !all.iter().any(|s| s.name == name) {
            let known: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(format!("unknown scenario {name:?} (known: {})", known.join(", ")).into());
        }
    }
    let chosen: Vec<(usize, Scenario)> = all
        .into_iter()
        .enumerate()
        .filter(|(_, s)| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
        .collect();
    if let Some(dir) = &args.wav_dir {
        std::fs::create_dir_all(dir)?;
    }

    let speech_path = args
        .speech
        .clone()
        .unwrap_or_else(|| crate::default_fixtures().join("speech/speech_orig_16k.wav"));
    let speech =
        wav::read_wav(&speech_path).map_err(|e| format!("{}: {e}", speech_path.display()))?;
    if speech.format().channels() != Channels::Mono {
        return Err(format!("{}: the lab needs mono speech", speech_path.display()).into());
    }
    let speech_48k = resample_all(&speech, RATE)?;
    let frames: Vec<&[i16]> = speech_48k.samples().chunks_exact(FRAME).collect();
    if frames.is_empty() {
        return Err(format!("{}: shorter than one 20 ms frame", speech_path.display()).into());
    }
    let count = chosen.iter().map(|(_, s)| s.packets()).max().unwrap_or(0);
    let packets = encode_speech(&frames, count)?;
    println!(
        "tincan lab jitter: speech {} ({:.1} s, looped), Opus 48 kHz mono 20 ms 32 kbit/s + FEC, {} packets encoded",
        speech_path.display(),
        speech_48k.duration().as_secs_f64(),
        packets.len()
    );

    // The long scenarios first, so that the workers finish together.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(chosen[i].1.packets()));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, chosen.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<ScenarioReport, LabError>>>> =
        Mutex::new((0..chosen.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (index, scenario) = &chosen[i];
                    let result = run_scenario(
                        scenario,
                        &packets,
                        scenario_seed(args.seed, *index),
                        args.wav_dir.as_deref(),
                    );
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                }
            });
        }
    });
    let mut reports = Vec::new();
    for result in results.into_inner().map_err(|_| "a lab worker panicked")? {
        reports.push(result.ok_or("a lab worker panicked")??);
    }

    let criteria = criteria(&reports);
    let report = Report {
        speech: speech_path.display().to_string(),
        codec: "Opus 48 kHz mono, 20 ms, 32 kbit/s, in-band FEC (5% loss hint)".to_owned(),
        seed: args.seed,
        packets_encoded: packets.len(),
        pass: criteria.iter().all(|c| c.pass),
        scenarios: reports,
        criteria,
    };
    println!();
    for s in &report.scenarios {
        println!(
            "  {:<17} {} ({} s of audio; network loss {:.2}%, reordered {}; oracle offset {:.1} ms)",
            s.name,
            s.description,
            s.audio_seconds,
            s.network_loss_pct,
            s.reordered,
            s.oracle_offset_ms
        );
    }
    println!("\n{}", table(&report));
    for c in &report.criteria {
        println!(
            "{} {} ({})",
            if c.pass { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("\nreport written to {}", path.display());
    }
    if let Some(dir) = &args.wav_dir {
        println!("audio written to {}", dir.display());
    }
    println!("lab took {:.1} s", started.elapsed().as_secs_f64());
    if args.check && !report.pass {
        return Err("a must-show criterion failed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_the_issue_list_and_valid() {
        let all = scenarios(60, 600);
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "low-jitter",
                "jitter-30",
                "jitter-60-spikes",
                "reorder-5",
                "drift+0.5%",
                "drift-0.5%",
                "step+200",
                "outage-1s"
            ]
        );
        for s in &all {
            s.link.validate().unwrap();
            let want = if s.drift == 0.0 { 3000 } else { 30_000 };
            assert_eq!(s.packets(), want, "{}", s.name);
        }
        // A fast sender sends 600 s of audio in 600 / 1.005 s.
        let fast = &all[4];
        let t = fast.send_time(30_000).as_secs_f64();
        assert!((t - 600.0 / 1.005).abs() < 1e-6, "{t}");
        assert_eq!(all[0].send_time(3), Duration::from_millis(60));
        // Pulls cover the sender's time plus the 40 ms base delay.
        assert_eq!(all[0].pulls(), 6004);
    }

    #[test]
    fn rtp_numbers_wrap_after_five_seconds() {
        let p = rtp(249, &[1]);
        assert_eq!((p.sequence, p.timestamp), (u16::MAX, u32::MAX - 959));
        let p = rtp(250, &[1]);
        assert_eq!((p.sequence, p.timestamp), (0, 0));
    }

    #[test]
    fn traces_are_deterministic_and_follow_the_profile() {
        let all = scenarios(30, 30);
        let step = all.iter().find(|s| s.name == "step+200").unwrap();
        let sizes = vec![80; step.packets()];
        let t0 = Instant::now();
        let a = network_trace(step, &sizes, 7, t0).unwrap();
        let b = network_trace(step, &sizes, 7, t0).unwrap();
        assert_eq!(a.arrivals, b.arrivals);
        assert_eq!(a.arrivals.len(), 1500);
        // In order, and 200 ms more delay for packets sent from 20 s on.
        assert!(a.arrivals.windows(2).all(|w| w[0].index < w[1].index));
        let transit = transit_times(&a, t0);
        let before: f64 = transit[500..999].iter().sum::<f64>() / 499.0;
        let after: f64 = transit[1100..1499].iter().sum::<f64>() / 399.0;
        assert!((before - 0.040).abs() < 0.003, "{before}");
        assert!((after - 0.240).abs() < 0.003, "{after}");

        let outage = all.iter().find(|s| s.name == "outage-1s").unwrap();
        let t = network_trace(outage, &sizes, 7, t0).unwrap();
        assert_eq!(t.counters.dropped_outage, 50);
        assert!(t.arrivals.iter().all(|a| !(1000..1050).contains(&a.index)));

        let reorder = all.iter().find(|s| s.name == "reorder-5").unwrap();
        let t = network_trace(reorder, &sizes, 7, t0).unwrap();
        let share = t.counters.held_back as f64 / 1500.0;
        assert!((0.03..0.07).contains(&share), "{share}");
        assert!(t.counters.reordered > 0);
    }

    #[test]
    fn fixed_buffers_run_on_real_opus_over_a_trace() {
        // Opus, netsim and the driver together, without the adaptive buffer: 10 s of low
        // jitter, where a fixed 100 ms buffer plays everything at about 100 ms.
        let frames: Vec<Vec<i16>> = (0..50)
            .map(|k| {
                (0..FRAME)
                    .map(|i| {
                        let t = (k * FRAME + i) as f64 / f64::from(RATE);
                        ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
                    })
                    .collect()
            })
            .collect();
        let frames: Vec<&[i16]> = frames.iter().map(Vec::as_slice).collect();
        let packets = encode_speech(&frames, 500).unwrap();
        let scenario = &scenarios(10, 10)[0];
        let t0 = Instant::now();
        let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
        let trace = network_trace(scenario, &sizes, 3, t0).unwrap();
        let mut fixed = FixedDelayBuffer::new(
            opus_decoder().unwrap(),
            Playout::AfterFirstArrival(Duration::from_millis(100)),
            FRAME,
        );
        let records = drive(&mut fixed, &trace, &packets, scenario.pulls(), t0, None).unwrap();
        let summary = delay_summary(&records);
        assert!((95.0..115.0).contains(&summary.mean_ms), "{summary:?}");
        assert_eq!(fixed.stats().late_packets, 0);
        assert_eq!(fixed.stats().concealed_samples, 0);
    }
}
