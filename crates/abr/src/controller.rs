//! The send-side controller: the send history, transport-cc feedback in, and the target,
//! pacing and probe decisions out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tincan_rtp::rtcp::REFERENCE_TIME_UNIT_US;
use tincan_rtp::rtcp::TwccFeedback;

use crate::AbrError;
use crate::acknowledged::{AcknowledgedBitrate, RECENT_DROP_RATIO, RecentRate, STANDING_QUEUE_US};
use crate::aimd::AimdRateControl;
use crate::alr::AlrDetector;
use crate::delay::{BandwidthUsage, BaseDelay, DelayDetector};
use crate::loss::LossController;
use crate::probe::{LOW_QUEUE_DELAY_US, ProbeController, ProbeEstimator, SATURATED_PERIODIC_TRUST};
use crate::types::{PacketClass, ProbeCluster, SentPacket};

/// Packets remembered for matching feedback (a power of two). At 1200-byte packets and
/// 2.5 Mbps that is half a minute; feedback about older packets is counted as unknown.
pub const SEND_HISTORY_LEN: usize = 8192;
/// Pacing rate as a multiple of the target (GCC: 2.5), so that bursts (key frames) leave
/// fast without the pacer becoming the bottleneck.
pub const PACING_FACTOR: f64 = 2.5;
/// Round-trip time assumed before any is measured (GCC: 200 ms).
pub const DEFAULT_RTT: Duration = Duration::from_millis(200);
/// Without feedback for this long while sending, the target is cut (GCC cuts after about
/// three feedback intervals without any; we wait 1 s, several intervals of any receiver).
pub const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(1);
/// The cut applied per [`FEEDBACK_TIMEOUT`] without feedback (GCC: 0.8 per timeout).
pub const FEEDBACK_TIMEOUT_FACTOR: f64 = 0.8;
/// Smoothing of the feedback-derived RTT (new sample weight).
pub const RTT_SMOOTHING: f64 = 0.1;
/// An RTT reported by `on_rtt` is preferred over the feedback-derived one for this long.
pub const REPORTED_RTT_VALIDITY: Duration = Duration::from_secs(5);
/// Longest feedback-derived RTT sample accepted (longer ones are stale reports).
pub const MAX_RTT_SAMPLE: Duration = Duration::from_secs(3);
/// Most received packets one feedback may describe (the wire allows 65 535; the rest are
/// ignored and counted). Bounds the work and scratch memory per feedback.
pub const MAX_PACKETS_PER_FEEDBACK: usize = 4096;

/// Configuration of the [`SendSideController`].
///
/// ```
/// let c = tincan_abr::ControllerConfig::default();
/// assert_eq!((c.start_bps, c.min_bps, c.max_bps), (300_000, 30_000, 2_500_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Target before any feedback (default 300 kbps, GCC's default start rate).
    pub start_bps: u64,
    /// Lowest target (default 30 kbps: audio still fits).
    pub min_bps: u64,
    /// Highest target (default 2.5 Mbps: the top of the video ladder, 1080p at 2 Mbps, plus
    /// audio and protection).
    pub max_bps: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            start_bps: 300_000,
            min_bps: 30_000,
            max_bps: 2_500_000,
        }
    }
}

impl ControllerConfig {
    /// Checks `0 < min_bps <= start_bps <= max_bps <= 10 Gbps`.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), AbrError> {
        const MAX: u64 = 10_000_000_000;
        let bad = |field, value: u64, expected| {
            Err(AbrError::InvalidConfig {
                field,
                value: value.to_string(),
                expected,
            })
        };
        if self.min_bps == 0 {
            return bad("min_bps", self.min_bps, "at least 1");
        }
        if self.max_bps > MAX {
            return bad("max_bps", self.max_bps, "at most 10 Gbps");
        }
        if self.max_bps < self.min_bps {
            return bad("max_bps", self.max_bps, "at least min_bps");
        }
        if !(self.min_bps..=self.max_bps).contains(&self.start_bps) {
            return bad("start_bps", self.start_bps, "between min_bps and max_bps");
        }
        Ok(())
    }
}

/// What the controller knows, for labs and logs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerStats {
    /// The target handed to the encoders.
    pub target_bps: u64,
    /// The delay-based (AIMD) estimate.
    pub delay_based_bps: u64,
    /// The loss-based limit (the delay-based estimate when loss imposes no cap).
    pub loss_based_bps: u64,
    /// The receiver's acknowledged rate, once measured.
    pub acknowledged_bps: Option<u64>,
    /// The last REMB from the peer, if any.
    pub remb_bps: Option<u64>,
    /// The delay detector's verdict.
    pub usage: BandwidthUsage,
    /// The last loss fraction measured from feedback, 0..=1.
    pub loss_fraction: f64,
    /// Whether the sender is application limited.
    pub in_alr: bool,
    /// Whether a probe is pending or awaiting its result.
    pub probing: bool,
    /// The round-trip time in use.
    pub rtt: Duration,
    /// The delay detector's modified trend and adaptive threshold, ms.
    pub trend_ms: f64,
    /// See `trend_ms`.
    pub threshold_ms: f64,
    /// Feedback packets processed.
    pub feedbacks: u64,
    /// Packet reports about packets not in the send history (too old, never sent).
    pub unknown_reports: u64,
    /// Reports about packets already reported received (duplicates, overlapping feedback).
    pub duplicate_reports: u64,
    /// Packets that left the send history without any report.
    pub unreported_dropped: u64,
    /// Probe results computed.
    pub probe_results: u64,
}

/// Whether feedback has spoken about a sent packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    None,
    Lost,
    Received,
}

#[derive(Debug, Clone, Copy)]
struct HistoryEntry {
    ext_seq: i64,
    send_us: i64,
    size: u32,
    probe_cluster: Option<u32>,
    report: Report,
}

/// A packet matched with its arrival, for the estimators.
#[derive(Debug, Clone, Copy)]
struct Acked {
    send_us: i64,
    arrival_us: i64,
    size: u32,
    probe_cluster: Option<u32>,
}

/// The send-side congestion controller (GCC-style; see the crate docs).
#[derive(Debug, Clone)]
pub struct SendSideController {
    config: ControllerConfig,
    base: Instant,
    history: Vec<Option<HistoryEntry>>,
    highest_sent: Option<i64>,
    reference_ext: Option<i64>,
    scratch: Vec<Acked>,
    delay: DelayDetector,
    aimd: AimdRateControl,
    loss: LossController,
    acked: AcknowledgedBitrate,
    recent: RecentRate,
    base_delay: BaseDelay,
    alr: AlrDetector,
    probes: ProbeController,
    probe_estimator: ProbeEstimator,
    remb_bps: Option<u64>,
    target_bps: u64,
    reported_rtt: Option<(Duration, Instant)>,
    feedback_rtt_us: Option<f64>,
    last_feedback: Option<Instant>,
    last_send: Option<Instant>,
    next_timeout_cut: Option<Instant>,
    stats: ControllerStats,
    /// Received packets in a feedback past [`MAX_PACKETS_PER_FEEDBACK`].
    truncated_reports: u64,
    /// Recent probe clusters handed out, for statistics and tests.
    recent_clusters: VecDeque<ProbeCluster>,
    /// Since when no reported packet queued more than [`LOW_QUEUE_DELAY_US`].
    queue_low_since_us: Option<i64>,
}

fn us_since(base: Instant, t: Instant) -> i64 {
    i64::try_from(t.saturating_duration_since(base).as_micros()).unwrap_or(i64::MAX)
}

/// Unwraps `value` (`bits` wide) to the extension nearest `reference`.
fn unwrap(value: i64, bits: u32, reference: Option<i64>) -> i64 {
    let Some(reference) = reference else {
        return value;
    };
    let modulus = 1i64 << bits;
    let half = modulus / 2;
    let diff = (value - reference).rem_euclid(modulus);
    let diff = if diff >= half { diff - modulus } else { diff };
    reference.saturating_add(diff)
}

impl SendSideController {
    /// A controller at `config.start_bps`.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] when the configuration is out of range.
    pub fn new(config: ControllerConfig, now: Instant) -> Result<Self, AbrError> {
        config.validate()?;
        let rtt_us = DEFAULT_RTT.as_micros() as i64;
        let mut c = Self {
            config,
            base: now,
            history: vec![None; SEND_HISTORY_LEN],
            highest_sent: None,
            reference_ext: None,
            scratch: Vec::with_capacity(256),
            delay: DelayDetector::new(),
            aimd: AimdRateControl::new(config.start_bps, config.min_bps, config.max_bps, rtt_us),
            loss: LossController::new(),
            acked: AcknowledgedBitrate::new(),
            recent: RecentRate::new(),
            base_delay: BaseDelay::new(),
            alr: AlrDetector::new(config.start_bps),
            probes: ProbeController::new(config.start_bps, config.max_bps),
            probe_estimator: ProbeEstimator::new(),
            remb_bps: None,
            target_bps: config.start_bps,
            reported_rtt: None,
            feedback_rtt_us: None,
            last_feedback: None,
            last_send: None,
            next_timeout_cut: None,
            stats: ControllerStats {
                target_bps: config.start_bps,
                delay_based_bps: config.start_bps,
                loss_based_bps: config.start_bps,
                acknowledged_bps: None,
                remb_bps: None,
                usage: BandwidthUsage::Normal,
                loss_fraction: 0.0,
                in_alr: false,
                probing: true,
                rtt: DEFAULT_RTT,
                trend_ms: 0.0,
                threshold_ms: 0.0,
                feedbacks: 0,
                unknown_reports: 0,
                duplicate_reports: 0,
                unreported_dropped: 0,
                probe_results: 0,
            },
            truncated_reports: 0,
            recent_clusters: VecDeque::with_capacity(crate::probe::MAX_TRACKED_CLUSTERS),
            queue_low_since_us: None,
        };
        c.refresh_stats();
        Ok(c)
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Records a packet as it leaves the pacer (every packet: media, retransmissions,
    /// padding and probes).
    pub fn on_packet_sent(&mut self, packet: SentPacket) {
        let send_us = us_since(self.base, packet.send_time);
        let ext = unwrap(i64::from(packet.transport_seq), 16, self.highest_sent);
        let slot = (ext as usize) & (SEND_HISTORY_LEN - 1);
        if let Some(old) = self.history[slot]
            && old.ext_seq != ext
            && old.report == Report::None
        {
            self.stats.unreported_dropped += 1;
        }
        self.history[slot] = Some(HistoryEntry {
            ext_seq: ext,
            send_us,
            size: u32::try_from(packet.size_bytes).unwrap_or(u32::MAX),
            probe_cluster: packet.probe_cluster,
            report: Report::None,
        });
        self.highest_sent = Some(self.highest_sent.map_or(ext, |h| h.max(ext)));
        if packet.class != PacketClass::Padding || packet.probe_cluster.is_some() {
            self.alr.on_bytes_sent(packet.size_bytes, send_us);
        }
        self.last_send = Some(packet.send_time);
        if self.next_timeout_cut.is_none() {
            self.next_timeout_cut = Some(
                self.last_feedback
                    .unwrap_or(packet.send_time)
                    .max(packet.send_time)
                    + FEEDBACK_TIMEOUT,
            );
        }
    }

    /// The round-trip time in use: a recent report from RTCP, else the one derived from
    /// feedback, else [`DEFAULT_RTT`].
    pub fn rtt(&self) -> Duration {
        if let Some((rtt, _)) = self.reported_rtt {
            return rtt;
        }
        self.feedback_rtt_us
            .map_or(DEFAULT_RTT, |us| Duration::from_micros(us as u64))
    }

    /// Processes one transport-cc feedback packet received at `now`.
    ///
    /// Feedback may come late, twice, out of order or about packets long forgotten: such
    /// reports are counted (see [`ControllerStats`]) and otherwise ignored.
    ///
    /// # Errors
    ///
    /// None yet from well-formed feedback; the `Result` is for feedback that cannot be
    /// used (kept so that future checks do not change the signature).
    pub fn on_transport_feedback(
        &mut self,
        feedback: &TwccFeedback<'_>,
        now: Instant,
    ) -> Result<(), AbrError> {
        let now_us = us_since(self.base, now);
        self.stats.feedbacks += 1;
        self.last_feedback = Some(now);
        self.next_timeout_cut = None;
        if let Some((_, at)) = self.reported_rtt
            && now.saturating_duration_since(at) > REPORTED_RTT_VALIDITY
        {
            self.reported_rtt = None;
        }
        let Some(highest) = self.highest_sent else {
            self.stats.unknown_reports += u64::from(feedback.status_count);
            return Ok(());
        };
        let reference = i64::from(feedback.reference_time);
        let reference_ext = unwrap(reference, 24, self.reference_ext);
        self.reference_ext = Some(
            self.reference_ext
                .map_or(reference_ext, |r| r.max(reference_ext)),
        );
        let offset_us = (reference_ext - reference).saturating_mul(REFERENCE_TIME_UNIT_US);

        let base_ext = unwrap(i64::from(feedback.base_sequence), 16, Some(highest));
        self.scratch.clear();
        let (mut lost, mut received) = (0u64, 0u64);
        let mut latest_send: Option<i64> = None;
        let last_decrease = self.aimd.last_decrease_us();
        for (index, (_, arrival)) in feedback.packets().enumerate() {
            let ext = base_ext + index as i64;
            let slot = (ext as usize) & (SEND_HISTORY_LEN - 1);
            let Some(entry) = self.history[slot].as_mut().filter(|e| e.ext_seq == ext) else {
                self.stats.unknown_reports += 1;
                continue;
            };
            // Losses of packets sent before the last delay-based decrease are not counted:
            // that decrease already answered the congestion that dropped them.
            let counts = last_decrease.is_none_or(|d| entry.send_us >= d);
            match (arrival, entry.report) {
                (None, Report::None) => {
                    entry.report = Report::Lost;
                    if counts {
                        lost += 1;
                    }
                }
                (None, _) => {}
                (Some(_), Report::Received) => self.stats.duplicate_reports += 1,
                (Some(arrival), previous) => {
                    if previous == Report::Lost && counts {
                        self.loss.on_recovered();
                    } else if counts {
                        received += 1;
                    }
                    entry.report = Report::Received;
                    if self.scratch.len() >= MAX_PACKETS_PER_FEEDBACK {
                        self.truncated_reports += 1;
                        continue;
                    }
                    latest_send = Some(latest_send.map_or(entry.send_us, |l| l.max(entry.send_us)));
                    self.scratch.push(Acked {
                        send_us: entry.send_us,
                        arrival_us: arrival.saturating_add(offset_us),
                        size: entry.size,
                        probe_cluster: entry.probe_cluster,
                    });
                }
            }
        }
        self.loss.on_packets(lost, received);
        if let Some(sent) = latest_send {
            let sample = (now_us - sent) as f64;
            if sample >= 0.0 && sample <= MAX_RTT_SAMPLE.as_micros() as f64 {
                let s = self.feedback_rtt_us.map_or(sample, |r| {
                    (1.0 - RTT_SMOOTHING) * r + RTT_SMOOTHING * sample
                });
                self.feedback_rtt_us = Some(s);
            }
        }
        self.aimd.set_rtt(self.rtt().as_micros() as i64);

        // In arrival order (the feedback is in sequence order).
        self.scratch
            .sort_unstable_by_key(|a| (a.arrival_us, a.send_us));
        let in_alr = self.alr.in_alr();
        let mut probe_results = [None; 2];
        let mut queued = false;
        self.probe_estimator.expire(now_us);
        for a in &self.scratch {
            self.acked.update(a.arrival_us, a.size as usize, in_alr);
            self.recent.update(a.arrival_us, a.size);
            self.base_delay.update(a.send_us, a.arrival_us);
            if self
                .base_delay
                .queue_delay_us()
                .is_some_and(|q| q > LOW_QUEUE_DELAY_US)
            {
                queued = true;
            }
            self.delay
                .on_packet(a.send_us, a.arrival_us, a.size as usize);
            if let Some(id) = a.probe_cluster
                && let Some(r) =
                    self.probe_estimator
                        .on_packet(id, a.send_us, a.arrival_us, a.size as usize)
            {
                // At most two clusters complete per feedback in practice; keep the last two.
                probe_results = [probe_results[1], Some(r)];
            }
        }

        if queued {
            self.queue_low_since_us = None;
        } else if !self.scratch.is_empty() && self.queue_low_since_us.is_none() {
            self.queue_low_since_us = Some(now_us);
        }
        self.probes.set_queue_low_since(self.queue_low_since_us);

        let usage = self.delay.usage();
        let mut acked = self.acked.bitrate_bps();
        if usage == BandwidthUsage::Overusing
            && let Some(recent) = self.recent.bitrate_bps()
        {
            // See RecentRate: while the queue grows, the rate it drains at, without the
            // acknowledged estimator's lag in either direction.
            let standing = self
                .base_delay
                .queue_delay_us()
                .is_some_and(|q| q >= STANDING_QUEUE_US);
            acked = Some(match acked {
                Some(a) if !standing && recent as f64 >= RECENT_DROP_RATIO * a as f64 => {
                    a.max(recent)
                }
                _ => recent,
            });
        }
        for result in probe_results.into_iter().flatten() {
            if let Some((bps, partial)) = self.probes.on_result(result, now_us)
                && usage != BandwidthUsage::Overusing
                && bps > self.aimd.estimate_bps()
            {
                let estimate = self.aimd.estimate_bps() as f64;
                let bps = if partial {
                    (estimate + (bps as f64 - estimate) * SATURATED_PERIODIC_TRUST) as u64
                } else {
                    bps
                };
                self.aimd.set_estimate(bps, now_us);
            }
        }
        if !self.scratch.is_empty() {
            self.aimd
                .set_queue_delay(self.base_delay.queue_delay_us().unwrap_or(0));
            self.aimd.update(usage, acked, now_us);
        }
        self.loss.update(
            self.target_bps,
            self.aimd.estimate_bps(),
            self.rtt().as_micros() as i64,
            now_us,
        );
        self.update_target(now_us);
        Ok(())
    }

    fn update_target(&mut self, now_us: i64) {
        let mut target = self.aimd.estimate_bps();
        if let Some(cap) = self.loss.cap_bps() {
            target = target.min(cap);
        }
        if let Some(remb) = self.remb_bps {
            target = target.min(remb);
        }
        self.target_bps = target.clamp(self.config.min_bps, self.config.max_bps);
        self.alr.set_estimate(self.target_bps);
        self.probes.on_estimate(
            self.target_bps,
            self.alr.started_us(),
            self.alr.ended_us(),
            self.delay.usage() == BandwidthUsage::Normal,
            self.aimd.link_capacity_bps().is_none(),
            self.aimd.last_decrease_us(),
            now_us,
        );
        self.refresh_stats();
    }

    fn refresh_stats(&mut self) {
        let rtt = self.rtt();
        let s = &mut self.stats;
        s.target_bps = self.target_bps;
        s.delay_based_bps = self.aimd.estimate_bps();
        s.loss_based_bps = self.loss.cap_bps().unwrap_or(s.delay_based_bps);
        s.acknowledged_bps = self.acked.bitrate_bps();
        s.remb_bps = self.remb_bps;
        s.usage = self.delay.usage();
        s.loss_fraction = self.loss.loss_fraction();
        s.in_alr = self.alr.in_alr();
        s.probing = self.probes.is_probing();
        s.trend_ms = self.delay.trendline().modified_trend();
        s.threshold_ms = self.delay.trendline().threshold_ms();
        s.probe_results = self.probe_estimator.results;
        s.rtt = rtt;
    }

    /// A round-trip time measured from RTCP reports.
    pub fn on_rtt(&mut self, rtt: Duration, now: Instant) {
        self.reported_rtt = Some((rtt, now));
        self.aimd
            .set_rtt(i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX));
        self.stats.rtt = rtt;
    }

    /// A REMB from the peer: the target never exceeds it (until a later REMB says more).
    pub fn on_remb(&mut self, bitrate_bps: u64, now: Instant) {
        self.remb_bps = Some(bitrate_bps);
        self.update_target(us_since(self.base, now));
    }

    /// Runs timers: the cut when feedback stops while packets are being sent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now_us = us_since(self.base, now);
        if let Some(at) = self.next_timeout_cut
            && now >= at
        {
            let sending = self
                .last_send
                .is_some_and(|s| now.saturating_duration_since(s) < FEEDBACK_TIMEOUT);
            if sending {
                let cut = (self.aimd.estimate_bps() as f64 * FEEDBACK_TIMEOUT_FACTOR) as u64;
                self.aimd.set_estimate(cut, now_us);
                self.update_target(now_us);
                self.next_timeout_cut = Some(now + FEEDBACK_TIMEOUT);
            } else {
                self.next_timeout_cut = None;
            }
        }
        self.probe_estimator.expire(now_us);
        self.refresh_stats();
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next (now, if a probe
    /// waits for [`poll_probe`](Self::poll_probe)).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.probes.has_pending() {
            return Some(self.last_send.unwrap_or(self.base).max(self.base));
        }
        self.next_timeout_cut
    }

    /// Numbers this controller's probe clusters from `first` on (default 0). A sender with
    /// one controller per receiver tells every controller of every packet it sends, probe
    /// packets included, and a controller takes a cluster id it tracks as its own: give each
    /// controller its own range so that no two clusters share an id.
    pub fn set_probe_ids_from(&mut self, first: u32) {
        self.probes.set_next_id(first);
    }

    /// The next probe cluster the pacer should send now, if any.
    pub fn poll_probe(&mut self) -> Option<ProbeCluster> {
        let now_us = self.last_send.map_or(0, |s| us_since(self.base, s));
        let cluster = self.probes.poll(now_us)?;
        self.probe_estimator.track(cluster, now_us);
        if self.recent_clusters.len() >= crate::probe::MAX_TRACKED_CLUSTERS {
            self.recent_clusters.pop_front();
        }
        self.recent_clusters.push_back(cluster);
        self.stats.probing = true;
        Some(cluster)
    }

    /// What the encoders may use in total, bits per second.
    pub fn target_bps(&self) -> u64 {
        self.target_bps
    }

    /// The pacer's rate: [`PACING_FACTOR`] × the target.
    pub fn pacing_bps(&self) -> u64 {
        (self.target_bps as f64 * PACING_FACTOR) as u64
    }

    /// Padding rate: always 0. Probes carry their own padding; we do not pad up to the
    /// target while application limited (GCC does only when asked to).
    pub fn padding_bps(&self) -> u64 {
        0
    }

    /// The current statistics.
    pub fn stats(&self) -> ControllerStats {
        self.stats
    }

    /// Reports ignored because a feedback described more than [`MAX_PACKETS_PER_FEEDBACK`]
    /// received packets.
    pub fn truncated_reports(&self) -> u64 {
        self.truncated_reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter, TwccBuilder};

    fn sent(seq: u16, at: Instant, size: usize) -> SentPacket {
        SentPacket {
            transport_seq: seq,
            size_bytes: size,
            send_time: at,
            probe_cluster: None,
            class: PacketClass::Video,
        }
    }

    fn feed(c: &mut SendSideController, packets: &[(u16, Option<i64>)], now: Instant) {
        let mut out = Vec::new();
        let mut w = RtcpWriter::new(&mut out);
        w.transport_cc(&mut TwccBuilder::new(), 1, 2, 0, packets)
            .unwrap();
        let compound = RtcpCompound::parse(&out).unwrap();
        for p in compound.packets() {
            if let Ok(RtcpPacket::TransportCc(fb)) = p {
                c.on_transport_feedback(&fb, now).unwrap();
            }
        }
    }

    #[test]
    fn config_is_checked() {
        let now = Instant::now();
        let bad = ControllerConfig {
            start_bps: 10,
            ..ControllerConfig::default()
        };
        assert!(matches!(
            SendSideController::new(bad, now),
            Err(AbrError::InvalidConfig {
                field: "start_bps",
                ..
            })
        ));
    }

    #[test]
    fn initial_probes_are_offered() {
        let now = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), now).unwrap();
        assert_eq!(c.poll_timeout(), Some(now));
        assert_eq!(c.poll_probe().unwrap().bitrate_bps, 900_000);
        assert_eq!(c.poll_probe().unwrap().bitrate_bps, 1_800_000);
        assert_eq!(c.poll_probe(), None);
        assert_eq!(c.pacing_bps(), 750_000);
    }

    #[test]
    fn losses_are_counted_once_and_recovered() {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        for i in 0..40u16 {
            c.on_packet_sent(sent(i, t0 + Duration::from_millis(u64::from(i) * 5), 1000));
        }
        let reports: Vec<_> = (0..40u16)
            .map(|i| (i, (i % 2 == 0).then_some(50_000 + i64::from(i) * 5_000)))
            .collect();
        feed(&mut c, &reports, t0 + Duration::from_millis(300));
        assert!((c.stats().loss_fraction - 0.5).abs() < 1e-9);
        assert!(c.stats().loss_based_bps < 300_000);
        // The same feedback again is all duplicates.
        feed(&mut c, &reports, t0 + Duration::from_millis(310));
        assert_eq!(c.stats().duplicate_reports, 20);
    }

    #[test]
    fn feedback_about_unknown_packets_is_counted() {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        feed(&mut c, &[(5, Some(0))], t0);
        assert_eq!(c.stats().unknown_reports, 1);
        c.on_packet_sent(sent(0, t0, 100));
        feed(&mut c, &[(30_000, Some(0))], t0);
        assert_eq!(c.stats().unknown_reports, 2);
    }

    #[test]
    fn silence_of_feedback_cuts_the_target() {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        let mut t = t0;
        for i in 0..300u16 {
            c.on_packet_sent(sent(i, t, 1000));
            t += Duration::from_millis(10);
            if let Some(at) = c.poll_timeout()
                && at <= t
            {
                c.handle_timeout(t);
            }
        }
        assert!(c.target_bps() < 300_000 * 8 / 10, "{}", c.target_bps());
    }

    #[test]
    fn remb_caps_the_target() {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        c.on_remb(100_000, t0);
        assert_eq!(c.target_bps(), 100_000);
        assert_eq!(c.stats().remb_bps, Some(100_000));
    }

    #[test]
    fn unwrap_is_nearest() {
        assert_eq!(unwrap(1, 16, Some(65_535)), 65_537);
        assert_eq!(unwrap(65_535, 16, Some(65_537)), 65_535);
        assert_eq!(unwrap(3, 16, None), 3);
        assert_eq!(unwrap(0, 24, Some((1 << 24) - 1)), 1 << 24);
    }
}
