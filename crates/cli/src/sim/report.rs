//! The simulator's report: what `report.json` holds (and the HTML page shows).
//!
//! Times are seconds from the call's start, delays milliseconds, rates bits per second,
//! losses shares (0 to 1). Participants are numbered from 1 as on the command line.

use serde::Serialize;
use tincan_pipeline::{NetworkQuality, RemoteStats, SessionStats};

use super::relay::RelayCounters;
use super::video::{VideoDirection, VideoSent};

/// Version of the report's layout (2: video per participant and direction, the start
/// rate).
pub const REPORT_VERSION: u32 = 2;
/// Most points a time series keeps; when full, every other point is dropped and the
/// series keeps one point in two from then on (bounded memory over any call length).
pub const MAX_SERIES_POINTS: usize = 2_048;
/// The same for each direction's series: a 16-party call has 240 directions, so their
/// series are kept shorter (512 points of 2 s: 17 minutes before the first halving).
pub const MAX_DIRECTION_POINTS: usize = 512;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `tincan sim`.
    pub tool: &'static str,
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// What was simulated.
    pub config: ConfigReport,
    /// How fast.
    pub speed: Speed,
    /// Per participant.
    pub participants: Vec<ParticipantReport>,
    /// Per ordered pair (talker → listener).
    pub directions: Vec<DirectionReport>,
    /// The relay's counters.
    pub relay: RelayCounters,
    /// Resident memory of the simulator every 10 simulated seconds.
    pub memory: Vec<MemorySample>,
}

/// What was simulated.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    /// Participants in the call.
    pub participants: usize,
    /// `audio`, `video` or `both`.
    pub media: &'static str,
    /// Simulated seconds.
    pub duration_s: f64,
    /// The seed of every random choice (links get seeds derived from it).
    pub seed: u64,
    /// Length of a talk turn, seconds.
    pub turn_s: f64,
    /// Silence before each turn, seconds.
    pub gap_s: f64,
    /// Longest mouth-to-ear delay searched for, milliseconds.
    pub max_lag_ms: u64,
    /// The congestion controllers' first target, kbit/s.
    pub start_kbps: u64,
}

/// Simulation speed.
#[derive(Debug, Clone, Serialize)]
pub struct Speed {
    /// Simulated seconds.
    pub simulated_s: f64,
    /// Wall-clock seconds the call loop took (loading and writing the report excluded).
    pub wall_s: f64,
    /// `simulated_s / wall_s`.
    pub times_real_time: f64,
    /// CPU seconds the call loop took on all its threads (the machine may be shared: this
    /// is what the simulation itself costs), where `/proc` tells it.
    pub cpu_s: Option<f64>,
    /// `simulated_s / cpu_s`: the speed on one otherwise idle core.
    pub times_real_time_cpu: Option<f64>,
    /// Threads the participants' work was spread over.
    pub threads: usize,
    /// How far participants ran ahead of each other in parallel, ms: the fastest link's
    /// least delay (0: the call advanced one instant at a time).
    pub lookahead_ms: f64,
}

/// One participant.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantReport {
    /// Number, from 1.
    pub participant: usize,
    /// Its audio SSRC.
    pub ssrc: u32,
    /// What its microphone played.
    pub mic: String,
    /// What it said (its microphone as pushed), WAV 48 kHz mono, file name in the output
    /// folder.
    pub said_wav: String,
    /// What it heard (its playout), WAV 48 kHz mono, file name in the output folder.
    pub heard_wav: String,
    /// The session's statistics at the end of the call.
    pub final_stats: StatsPoint,
    /// The jitter buffer's counters at the end of the call.
    pub playout: Playout,
    /// Events the session emitted, counted.
    pub events: EventCounts,
    /// Errors the simulator got from the session (each counted; the call went on).
    pub session_errors: u64,
    /// Datagrams that were on their way to it when it left, dropped.
    pub dropped_while_away: u64,
    /// When it was away from the call: [left, rejoined] seconds (rejoined = the end when
    /// it did not come back).
    pub away: Vec<[f64; 2]>,
    /// The session's `Event::Stats` time series (every 2 s).
    pub stats: Series<StatsPoint>,
    /// Its camera and what it pushed, when the call has video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSent>,
}

/// A bounded time series (see [`MAX_SERIES_POINTS`]).
#[derive(Debug, Clone, Serialize)]
pub struct Series<T> {
    /// The points, in time order.
    pub points: Vec<T>,
    /// One point kept in `stride` (1 until the series first filled up).
    pub stride: u64,
    #[serde(skip)]
    seen: u64,
    /// Most points kept.
    #[serde(skip)]
    limit: usize,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Self::with_limit(MAX_SERIES_POINTS)
    }
}

impl<T> Series<T> {
    /// A series of at most `limit` points (at least 2).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            points: Vec::new(),
            stride: 1,
            seen: 0,
            limit: limit.max(2),
        }
    }

    /// Bytes its points take (what the series adds to resident memory).
    pub fn bytes(&self) -> usize {
        self.points.len() * std::mem::size_of::<T>()
    }

    /// Adds a point (kept if it falls on the stride).
    pub fn push(&mut self, point: T) {
        let keep = self.seen % self.stride == 0;
        self.seen += 1;
        if !keep {
            return;
        }
        if self.points.len() >= self.limit {
            let mut index = 0;
            self.points.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.stride *= 2;
            if (self.seen - 1) % self.stride != 0 {
                return;
            }
        }
        self.points.push(point);
    }
}

/// One sample of a session's statistics (`SessionStats`), plus interval figures the
/// simulator derives from the jitter buffer's counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StatsPoint {
    /// When, seconds.
    pub t_s: f64,
    /// Round-trip time, once measured.
    pub rtt_ms: Option<f64>,
    /// Share of the received audio packets lost on the network, so far.
    pub loss_before_recovery: f64,
    /// Share of played samples concealed, so far.
    pub loss_after_recovery: f64,
    /// Share of the samples played in the last interval that were concealed.
    pub concealed_interval: f64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Mean jitter buffer delay over the last interval, ms (the session's figure is the
    /// mean over the call so far).
    pub jitter_buffer_delay_ms: f64,
    /// Jitter buffer target delay, ms.
    pub jitter_buffer_target_ms: f64,
    /// The session's own mouth-to-ear estimate, ms (0 before the RTT is known).
    pub end_to_end_estimate_ms: f64,
    /// Congestion controller's target, bit/s.
    pub target_bps: u64,
    /// Sent over the last second, bit/s.
    pub send_bps: u64,
    /// Estimated available bandwidth, bit/s.
    pub estimated_bandwidth_bps: u64,
    /// Received over the last second, bit/s.
    pub receive_bps: u64,
    /// What the audio loss-recovery policy spends, bit/s.
    pub audio_policy_bps: u32,
    /// The policy's rung (0 = no redundancy).
    pub audio_policy_level: usize,
    /// RTP packets sent so far.
    pub packets_sent: u64,
    /// RTP packets received so far.
    pub packets_received: u64,
    /// Video's share of the target, bit/s (0 without video).
    pub video_target_bps: u64,
    /// Video sent over the last second (media, RTX, FEC), bit/s.
    pub video_send_bps: u64,
}

impl StatsPoint {
    /// A point from the session's statistics at `t_s`; the interval fields are left 0
    /// for the caller.
    pub fn from_stats(t_s: f64, stats: &SessionStats) -> Self {
        Self {
            t_s,
            rtt_ms: stats.rtt.map(|d| d.as_secs_f64() * 1e3),
            loss_before_recovery: stats.receive_loss_before_recovery,
            loss_after_recovery: stats.receive_loss_after_recovery,
            concealed_interval: 0.0,
            jitter_ms: stats.jitter * 1e3,
            jitter_buffer_delay_ms: stats.jitter_buffer_delay * 1e3,
            jitter_buffer_target_ms: stats.jitter_buffer_target * 1e3,
            end_to_end_estimate_ms: stats.end_to_end_delay * 1e3,
            target_bps: stats.target_bps,
            send_bps: stats.send_bps,
            estimated_bandwidth_bps: stats.estimated_bandwidth_bps,
            receive_bps: stats.receive_bps,
            audio_policy_bps: stats.audio_policy_bps,
            audio_policy_level: stats.audio_policy_level,
            packets_sent: stats.packets_sent,
            packets_received: stats.packets_received,
            video_target_bps: stats.video_target_bps,
            video_send_bps: stats.video_send_bps,
        }
    }
}

/// The jitter buffer's counters at the end (WebRTC's names where they exist).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Playout {
    /// Samples played.
    pub total_samples: u64,
    /// Samples concealed.
    pub concealed_samples: u64,
    /// Runs of concealment.
    pub concealment_events: u64,
    /// Samples rebuilt from redundancy (FEC, RED, DRED).
    pub recovered_samples: u64,
    /// Samples inserted to slow down.
    pub inserted_samples: u64,
    /// Samples removed to speed up.
    pub removed_samples: u64,
    /// Packets that came after their playout time.
    pub late_packets: u64,
    /// Mean jitter buffer delay over the call, ms.
    pub mean_delay_ms: f64,
}

/// Events counted.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EventCounts {
    /// A remote's audio became available.
    pub remote_audio_available: u64,
    /// A remote's audio became unavailable.
    pub remote_audio_unavailable: u64,
    /// Remote volume reports.
    pub remote_volume: u64,
    /// Local speaking changes.
    pub local_speaking: u64,
    /// Statistics events.
    pub stats: u64,
    /// Per-remote statistics events.
    pub remote_stats: u64,
    /// Active speaker changes.
    pub active_speaker: u64,
    /// Network quality changes.
    pub network_quality: u64,
    /// Other events and outputs (kinds this simulator does not know yet).
    pub other: u64,
}

/// One direction: what the talker said and the listener heard.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionReport {
    /// Talker, from 1.
    pub from: usize,
    /// Listener, from 1.
    pub to: usize,
    /// The network profile of this direction.
    pub profile: String,
    /// What netsim did to the datagrams of this direction.
    pub network: NetworkReport,
    /// Mouth-to-ear delay measured from the audio, per talk turn.
    pub mouth_to_ear: MouthToEar,
    /// The listener's loss before recovery for this talker's audio, at the end.
    pub loss_before_recovery: Option<f64>,
    /// The listener's share of samples concealed for this talker's audio, at the end.
    pub loss_after_recovery: Option<f64>,
    /// The listener's MOS estimate of this talker's audio at the end (E-model).
    pub mos: Option<f64>,
    /// The listener's network quality level for this talker at the end.
    pub quality: Option<String>,
    /// Network loss and delay of this direction every 2 s.
    pub network_series: Series<NetworkPoint>,
    /// The listener's statistics of this talker every 2 s (`Event::RemoteStats`).
    pub remote_stats: Series<RemotePoint>,
    /// What the listener was shown of this talker's camera, when the call has video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoDirection>,
}

/// One sample of a listener's statistics of one talker (`RemoteStats`), with interval
/// figures from the jitter buffer's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemotePoint {
    /// When, seconds.
    pub t_s: f64,
    /// Share of the talker's packets lost on the network, so far.
    pub loss_before_recovery: f64,
    /// Share of the talker's samples concealed, so far.
    pub loss_after_recovery: f64,
    /// Share of the samples played in the last interval that were concealed.
    pub concealed_interval: f64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Mean jitter buffer delay over the last interval, ms.
    pub jitter_buffer_delay_ms: f64,
    /// Jitter buffer target delay, ms.
    pub jitter_buffer_target_ms: f64,
    /// The session's mouth-to-ear estimate for this talker, ms.
    pub end_to_end_estimate_ms: f64,
    /// Received from the talker over the last second, bit/s.
    pub receive_bps: u64,
    /// Concealment events so far.
    pub concealment_events: u64,
    /// MOS estimate, once measured.
    pub mos: Option<f64>,
    /// Network quality level (its name; kept as the level, so a point owns no heap).
    #[serde(serialize_with = "quality_name")]
    pub quality: NetworkQuality,
    /// Video pictures rendered per second over the last second (0 without video).
    pub video_fps: f64,
    /// Video pictures decoded so far.
    pub video_frames_decoded: u64,
    /// Video freezes so far.
    pub video_freeze_count: u64,
    /// Their total length so far, seconds.
    pub video_freeze_s: f64,
    /// Video received from the talker over the last second, bit/s.
    pub video_receive_bps: u64,
}

impl RemotePoint {
    /// A point from a remote's statistics at `t_s`; the interval fields are left 0 for
    /// the caller.
    pub fn from_stats(t_s: f64, stats: &RemoteStats) -> Self {
        Self {
            t_s,
            loss_before_recovery: stats.receive_loss_before_recovery,
            loss_after_recovery: stats.receive_loss_after_recovery,
            concealed_interval: 0.0,
            jitter_ms: stats.jitter * 1e3,
            jitter_buffer_delay_ms: 0.0,
            jitter_buffer_target_ms: stats.jitter_buffer_target * 1e3,
            end_to_end_estimate_ms: stats.end_to_end_delay * 1e3,
            receive_bps: stats.receive_bps,
            concealment_events: stats.concealment_events,
            mos: stats.mos,
            quality: stats.quality,
            video_fps: stats.video_fps,
            video_frames_decoded: stats.video_frames_decoded,
            video_freeze_count: stats.video_freeze_count,
            video_freeze_s: stats.video_freeze_duration.as_secs_f64(),
            video_receive_bps: stats.video_receive_bps,
        }
    }
}

/// Writes a quality level as its name (`Good`, `Down`, …).
fn quality_name<S: serde::Serializer>(
    quality: &NetworkQuality,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{quality:?}"))
}

/// A link's counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct NetworkReport {
    /// Datagrams given to the link (RTP and RTCP).
    pub sent: u64,
    /// Datagrams delivered (duplicates included).
    pub delivered: u64,
    /// Datagrams dropped (loss, outage, queue, overflow).
    pub dropped: u64,
    /// `dropped / sent`.
    pub loss: f64,
    /// Mean one-way delay, ms.
    pub mean_delay_ms: f64,
    /// Longest one-way delay, ms.
    pub max_delay_ms: f64,
}

/// Network loss and delay over one interval.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct NetworkPoint {
    /// End of the interval, seconds.
    pub t_s: f64,
    /// Share of the interval's datagrams dropped.
    pub loss: f64,
    /// Mean delay of the interval's deliveries, ms (0 without deliveries).
    pub mean_delay_ms: f64,
}

/// Mouth-to-ear delay of one direction, measured in 1 s windows of the talker's turns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MouthToEar {
    /// Windows where the listener heard the talker (correlation at or above the
    /// threshold).
    pub heard_windows: usize,
    /// Windows with speech measured.
    pub windows: usize,
    /// Median delay over heard windows, ms.
    pub median_ms: Option<f64>,
    /// 95th percentile (nearest rank) over heard windows, ms.
    pub p95_ms: Option<f64>,
    /// Smallest, ms.
    pub min_ms: Option<f64>,
    /// Largest, ms.
    pub max_ms: Option<f64>,
    /// Mean correlation over the windows (speech heard: near 1; unrelated: near 0.05).
    pub mean_correlation: Option<f64>,
    /// Each turn.
    pub turns: Vec<TurnReport>,
}

/// One turn of one direction.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TurnReport {
    /// The turn's index in the call.
    pub turn: u64,
    /// Its first window's start, seconds.
    pub start_s: f64,
    /// Windows with speech measured.
    pub windows: usize,
    /// Windows heard.
    pub heard_windows: usize,
    /// Mean correlation of its windows.
    pub correlation: f64,
    /// Median delay of its heard windows, ms.
    pub mouth_to_ear_ms: Option<f64>,
}

/// One measured window: (turn, start in seconds, correlation, delay in ms when heard).
pub type WindowMeasure = (u64, f64, f64, Option<f64>);

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| {
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[index - 1]
    })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

impl MouthToEar {
    /// Summarises windows given in time order.
    pub fn from_windows(windows: &[WindowMeasure]) -> Self {
        let sorted = |it: &mut dyn Iterator<Item = f64>| {
            let mut v: Vec<f64> = it.collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let delays = sorted(&mut windows.iter().filter_map(|w| w.3));
        let mut turns = Vec::new();
        for group in windows.chunk_by(|a, b| a.0 == b.0) {
            let turn_delays = sorted(&mut group.iter().filter_map(|w| w.3));
            turns.push(TurnReport {
                turn: group[0].0,
                start_s: group[0].1,
                windows: group.len(),
                heard_windows: turn_delays.len(),
                correlation: mean(group.iter().map(|w| w.2)).unwrap_or(0.0),
                mouth_to_ear_ms: quantile(&turn_delays, 0.5),
            });
        }
        Self {
            heard_windows: delays.len(),
            windows: windows.len(),
            median_ms: quantile(&delays, 0.5),
            p95_ms: quantile(&delays, 0.95),
            min_ms: delays.first().copied(),
            max_ms: delays.last().copied(),
            mean_correlation: mean(windows.iter().map(|w| w.2)),
            turns,
        }
    }
}

/// Resident memory at a simulated instant.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemorySample {
    /// Simulated seconds.
    pub t_s: f64,
    /// Resident set size, KiB (`VmRSS` of `/proc/self/status`).
    pub rss_kib: u64,
    /// What the report's own time series and measurements take then, KiB (they grow with
    /// the call, up to their bounds): `rss_kib` less this is the simulation's own memory.
    pub report_kib: u64,
}

/// CPU time of the whole process, user and system, every thread it has had included
/// (`utime` + `stime` of `/proc/self/stat`), where `/proc` tells it. It never goes down, so
/// the difference of two readings is what the process cost in between. Linux counts it in
/// clock ticks of 10 ms (`USER_HZ` = 100 on every architecture Linux runs this on).
pub fn process_cpu_time() -> Option<std::time::Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the
    // last ')'. After it come the state (field 3) and the others; utime and stime are
    // fields 14 and 15.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(std::time::Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The process's resident set size in KiB, where `/proc` tells it.
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_stay_bounded_and_evenly_spaced() {
        let mut series = Series::default();
        for i in 0..10 * MAX_SERIES_POINTS as u64 {
            series.push(i);
        }
        assert!(series.points.len() <= MAX_SERIES_POINTS);
        assert!(series.points.len() > MAX_SERIES_POINTS / 2);
        let stride = series.stride;
        assert!(stride.is_power_of_two() && stride >= 8, "{stride}");
        assert!(
            series
                .points
                .iter()
                .enumerate()
                .all(|(k, &v)| v == k as u64 * stride)
        );
    }

    #[test]
    fn percentiles_are_nearest_rank_and_turns_group_windows() {
        let windows: Vec<WindowMeasure> = (1..=20u32)
            .map(|k| {
                let heard = k != 20;
                (
                    u64::from(k / 3),
                    f64::from(k),
                    if heard { 0.9 } else { 0.1 },
                    heard.then_some(f64::from(k) * 10.0),
                )
            })
            .collect();
        let m = MouthToEar::from_windows(&windows);
        assert_eq!((m.heard_windows, m.windows), (19, 20));
        assert_eq!(m.median_ms, Some(100.0));
        assert_eq!(m.p95_ms, Some(190.0));
        assert_eq!((m.min_ms, m.max_ms), (Some(10.0), Some(190.0)));
        assert!((m.mean_correlation.unwrap() - 0.86).abs() < 1e-9);
        assert_eq!(m.turns.len(), 7);
        assert_eq!(
            (m.turns[0].windows, m.turns[0].mouth_to_ear_ms),
            (2, Some(10.0))
        );
        assert_eq!((m.turns[6].windows, m.turns[6].heard_windows), (3, 2));
        assert_eq!(MouthToEar::from_windows(&[]).median_ms, None);
    }

    #[test]
    fn resident_memory_and_cpu_time_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_kib().is_some_and(|kib| kib > 0));
            // This thread's own time on a CPU (its schedstat, nanoseconds).
            let own_cpu = || {
                let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("own");
                let ns: u64 = text
                    .split_whitespace()
                    .next()
                    .expect("ns")
                    .parse()
                    .expect("ns");
                std::time::Duration::from_nanos(ns)
            };
            // Spins until this thread has been on a CPU for `at_least` (however loaded the
            // machine), checking every million multiplications.
            let spin = move |at_least: std::time::Duration| {
                let start = own_cpu();
                let mut x = 1u64;
                while own_cpu() < start + at_least {
                    for i in 0..1_000_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(i | 1));
                    }
                }
            };
            let tick = std::time::Duration::from_millis(10);
            // The process-wide count never goes down, whatever other threads do.
            let before = process_cpu_time().expect("stat");
            spin(6 * tick);
            let one = process_cpu_time().expect("stat");
            assert!(one >= before + 3 * tick, "{before:?} {one:?}");
            // Another thread's time counts too, after it has ended as well.
            std::thread::spawn(move || spin(6 * tick))
                .join()
                .expect("worker");
            let two = process_cpu_time().expect("stat");
            assert!(two >= one + 3 * tick, "{one:?} {two:?}");
        }
    }
}
