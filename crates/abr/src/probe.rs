//! Probing (GCC's `ProbeController` and `ProbeBitrateEstimator`): short bursts sent above the
//! estimate to find the capacity fast at the start, after a drop and while application
//! limited, and the estimate of what the path carried from their feedback.

use std::collections::VecDeque;

use crate::types::ProbeCluster;

/// First probe at this multiple of the start rate (GCC: 3).
pub const FIRST_PROBE_SCALE: f64 = 3.0;
/// Second initial probe at this multiple of the start rate (GCC: 6).
pub const SECOND_PROBE_SCALE: f64 = 6.0;
/// Probe again (at [`FURTHER_PROBE_SCALE`] × the result) while a result reaches this share of
/// the rate probed (GCC: 0.7).
pub const FURTHER_PROBE_THRESHOLD: f64 = 0.7;
/// Scale of a further probe over the last result (GCC: 2).
pub const FURTHER_PROBE_SCALE: f64 = 2.0;
/// A probe result that does not come within this time ends exponential probing (GCC: 1 s).
pub const PROBE_RESULT_TIMEOUT_US: i64 = 1_000_000;
/// A probe lasts at least this long at its rate (GCC: 15 ms).
pub const MIN_PROBE_DURATION_US: i64 = 15_000;
/// A probe has at least this many packets (GCC: 5).
pub const MIN_PROBE_PACKETS: u32 = 5;
/// Share of a cluster's packets that must be reported received for a result (GCC: 0.8).
pub const MIN_RECEIVED_PACKETS_RATIO: f64 = 0.8;
/// Share of a cluster's bytes that must be reported received for a result (GCC: 0.8).
pub const MIN_RECEIVED_BYTES_RATIO: f64 = 0.8;
/// Longest send or receive interval of a valid cluster (GCC: 1 s).
pub const MAX_PROBE_INTERVAL_US: i64 = 1_000_000;
/// A receive rate above this multiple of the send rate means a broken measurement (GCC: 2).
pub const MAX_VALID_RATIO: f64 = 2.0;
/// A receive rate below this share of the send rate means the probe saturated the link
/// (GCC: 0.9)…
pub const MIN_RATIO_FOR_UNSATURATED_LINK: f64 = 0.9;
/// …and the result is then this share of the receive rate (GCC: 0.95).
pub const TARGET_UTILIZATION_FRACTION: f64 = 0.95;
/// Clusters whose feedback is still awaited, at most (older ones are forgotten).
pub const MAX_TRACKED_CLUSTERS: usize = 16;
/// A drop of the estimate below this share of what it was is a "large drop" (GCC: 0.66).
pub const LARGE_DROP_RATIO: f64 = 0.66;
/// After a large drop while application limited, probe at this share of the old estimate
/// (GCC: 0.85).
pub const DROP_PROBE_FRACTION: f64 = 0.85;
/// A large drop is probed only within this time of it (GCC: 5 s).
pub const DROP_PROBE_TIMEOUT_US: i64 = 5_000_000;
/// ...and only if ALR was on within this time before (GCC: 3 s).
pub const ALR_ENDED_TIMEOUT_US: i64 = 3_000_000;
/// Interval of periodic probes while application limited (GCC: 5 s).
pub const ALR_PROBE_INTERVAL_US: i64 = 5_000_000;
/// Scale of a periodic ALR probe over the estimate (GCC: 2).
pub const ALR_PROBE_SCALE: f64 = 2.0;
/// Interval of periodic probes while the sender uses its estimate and the queue is stable
/// (not in GCC, which probes periodically only while application limited): a probe at
/// [`PERIODIC_PROBE_SCALE`] × the estimate finds a capacity increase in one step where the
/// additive increase near the last known capacity would take many seconds.
pub const PERIODIC_PROBE_INTERVAL_US: i64 = 5_000_000;
/// A periodic probe is sent only when the AIMD control has no link capacity estimate (none
/// yet, or it was forgotten because the acknowledged rate rose well above it: the link
/// grew), or after this long without a delay-based decrease. On a saturated link the AIMD
/// sawtooth decreases every few seconds and keeps a capacity estimate, and a probe there
/// would only add a queue bump (and an early decrease). 10 s since the low-queue probe
/// ([`LOW_QUEUE_PROBE_WINDOW_US`]) finds capacity increases: at 5 s this probe fired on
/// the ordinary 1 Mbps sawtooth (a cycle of 5-6 s) and, over seeds 1-8 of `tincan lab abr`,
/// raised variable-1's p95 queuing delay to 41.0-51.3 ms (against 42.4-48.5) and lowered
/// three-flows' Jain's index to 0.824-0.992 (against 0.918-0.974).
pub const PERIODIC_PROBE_QUIET_US: i64 = 10_000_000;
/// A periodic probe lasts this long (GCC has no such probe; its probes last 15 ms). Other
/// flows send in bursts (a frame at a time, 33 ms apart at 30 fps); a 15 ms burst can slip
/// through a shared bottleneck between theirs and look unsaturated, so the periodic probe
/// spans more than a frame interval.
pub const PERIODIC_PROBE_DURATION_US: i64 = 40_000;
/// Fewest packets of a periodic probe.
pub const PERIODIC_PROBE_PACKETS: u32 = 10;
/// Scale of a periodic probe over the estimate.
pub const PERIODIC_PROBE_SCALE: f64 = 2.0;
/// Share of the way from the estimate to a saturated periodic probe's result that the
/// estimate moves. 0 ignored them: a capacity that grew by less than the probe's 2× (0.6 →
/// 1 Mbps) was then found only by slow additive growth; 1 let flows sharing a link grab
/// from each other (Jain's index 0.80). Half keeps fairness at or above 0.9 in
/// `tincan lab abr`'s three-flow case.
pub const SATURATED_PERIODIC_TRUST: f64 = 0.5;
/// A periodic probe is also sent, sooner than [`PERIODIC_PROBE_QUIET_US`] after a decrease,
/// when no reported packet has queued more than [`LOW_QUEUE_DELAY_US`] for this long (not
/// in GCC). The pacer sends each frame as a burst at
/// [`PACING_FACTOR`](crate::controller::PACING_FACTOR) × the target, so on a link the flow
/// fills, a frame's last packets wait behind its first; only when the capacity is well
/// above the rate (it grew) does every packet pass without waiting. After 1 → 2.5 Mbps in
/// `tincan lab abr` (variable-1, seed 1) the largest queuing delay per feedback fell from
/// 20-60 ms to 7-8 ms and this probe came at 41.2 s instead of 44.7 s.
pub const LOW_QUEUE_PROBE_WINDOW_US: i64 = 1_000_000;
/// The queuing delay (one-way delay above its 10 s minimum) under which a packet counts as
/// not queued for [`LOW_QUEUE_PROBE_WINDOW_US`]. It includes a full packet's serialisation
/// beyond the smallest packet's: with frames exactly on budget at 0.9 × a 1 Mbps capacity
/// (the crate's netsim test) every feedback's largest is 10-11 ms, and 12 ms fired this probe
/// on every ordinary cycle there (utilisation 84.6%, p95 68 ms); 9 ms does not.
pub const LOW_QUEUE_DELAY_US: i64 = 9_000;
/// Shortest interval between two probes sent for a low queue (see
/// [`LOW_QUEUE_PROBE_WINDOW_US`]).
pub const LOW_QUEUE_PROBE_INTERVAL_US: i64 = 2_000_000;
/// Most clusters waiting for the pacer (older requests are replaced).
pub const MAX_PENDING_CLUSTERS: usize = 4;

/// The feedback about one probe cluster collected so far.
#[derive(Debug, Clone, Copy)]
struct ClusterFeedback {
    cluster: ProbeCluster,
    created_us: i64,
    first_send_us: i64,
    last_send_us: i64,
    last_send_size: u64,
    first_arrival_us: i64,
    last_arrival_us: i64,
    first_arrival_size: u64,
    bytes: u64,
    packets: u32,
    done: bool,
}

/// Probe results from feedback on probe packets.
#[derive(Debug, Clone, Default)]
pub struct ProbeEstimator {
    clusters: VecDeque<ClusterFeedback>,
    /// Results computed, for statistics.
    pub results: u64,
    /// Clusters whose feedback was invalid or incomplete when they were forgotten.
    pub failed: u64,
}

impl ProbeEstimator {
    /// An estimator tracking no cluster.
    pub fn new() -> Self {
        Self {
            clusters: VecDeque::with_capacity(MAX_TRACKED_CLUSTERS),
            ..Self::default()
        }
    }

    /// Starts tracking a cluster handed to the pacer.
    pub fn track(&mut self, cluster: ProbeCluster, now_us: i64) {
        if self.clusters.len() >= MAX_TRACKED_CLUSTERS
            && let Some(old) = self.clusters.pop_front()
            && !old.done
        {
            self.failed += 1;
        }
        self.clusters.push_back(ClusterFeedback {
            cluster,
            created_us: now_us,
            first_send_us: i64::MAX,
            last_send_us: i64::MIN,
            last_send_size: 0,
            first_arrival_us: i64::MAX,
            last_arrival_us: i64::MIN,
            first_arrival_size: 0,
            bytes: 0,
            packets: 0,
            done: false,
        });
    }

    /// Forgets clusters older than the result timeout.
    pub fn expire(&mut self, now_us: i64) {
        while let Some(front) = self.clusters.front() {
            if now_us - front.created_us <= 2 * PROBE_RESULT_TIMEOUT_US {
                break;
            }
            if !front.done {
                self.failed += 1;
            }
            self.clusters.pop_front();
        }
    }

    /// Adds a received probe packet; returns the cluster's result once it is complete.
    pub fn on_packet(
        &mut self,
        cluster_id: u32,
        send_us: i64,
        arrival_us: i64,
        size: usize,
    ) -> Option<ProbeResult> {
        let c = self
            .clusters
            .iter_mut()
            .find(|c| c.cluster.id == cluster_id && !c.done)?;
        let size = size as u64;
        if send_us < c.first_send_us {
            c.first_send_us = send_us;
        }
        if send_us >= c.last_send_us {
            c.last_send_us = send_us;
            c.last_send_size = size;
        }
        if arrival_us < c.first_arrival_us {
            c.first_arrival_us = arrival_us;
            c.first_arrival_size = size;
        }
        c.last_arrival_us = c.last_arrival_us.max(arrival_us);
        c.bytes += size;
        c.packets += 1;
        let min_packets = (f64::from(c.cluster.min_packets) * MIN_RECEIVED_PACKETS_RATIO) as u32;
        let min_bytes = f64::from(c.cluster.min_bytes) * MIN_RECEIVED_BYTES_RATIO;
        if c.packets < min_packets.max(2) || (c.bytes as f64) < min_bytes {
            return None;
        }
        c.done = true;
        let send_interval = c.last_send_us - c.first_send_us;
        let recv_interval = c.last_arrival_us - c.first_arrival_us;
        if send_interval <= 0
            || send_interval > MAX_PROBE_INTERVAL_US
            || recv_interval <= 0
            || recv_interval > MAX_PROBE_INTERVAL_US
        {
            self.failed += 1;
            return None;
        }
        let send_bps = (c.bytes - c.last_send_size) as f64 * 8e6 / send_interval as f64;
        let recv_bps = (c.bytes - c.first_arrival_size) as f64 * 8e6 / recv_interval as f64;
        if recv_bps > MAX_VALID_RATIO * send_bps {
            self.failed += 1;
            return None;
        }
        let mut result = send_bps.min(recv_bps);
        let saturated = recv_bps < MIN_RATIO_FOR_UNSATURATED_LINK * send_bps;
        if saturated {
            result = TARGET_UTILIZATION_FRACTION * recv_bps;
        }
        self.results += 1;
        Some(ProbeResult {
            cluster_id,
            bitrate_bps: result as u64,
            saturated,
        })
    }
}

/// Why a cluster was sent, which decides what its result may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// At start, and the exponential probes that follow them.
    Initial,
    /// After a large drop while application limited, or periodically while it is.
    Alr,
    /// Periodically while the queue is quiet (see [`PERIODIC_PROBE_INTERVAL_US`]), and the
    /// exponential probes that follow them. Their results count fully only when the path
    /// carried the probe unsaturated: on a link shared with other flows a saturated probe
    /// measures its own burst's share of the queue, not free capacity, and would grab from
    /// them; a saturated result moves the estimate only [`SATURATED_PERIODIC_TRUST`] of the
    /// way, and probing does not go further.
    Periodic,
}

/// What the path carried during one probe cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The cluster.
    pub cluster_id: u32,
    /// The rate the path is estimated to carry, bits per second.
    pub bitrate_bps: u64,
    /// Whether the receive rate fell short of the send rate (the probe filled the link).
    pub saturated: bool,
}

/// What the probe controller is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet: the initial probes are due.
    Init,
    /// Waiting for a result above `min_to_probe_further`.
    Waiting {
        min_to_probe_further: u64,
        probed_bps: u64,
        kind: ProbeKind,
        since_us: i64,
    },
    /// Exponential probing is over.
    Done,
}

/// Decides when to probe and at what rate.
#[derive(Debug, Clone)]
pub struct ProbeController {
    state: State,
    pending: VecDeque<ProbeCluster>,
    /// Kinds of recent clusters, by id (bounded like the estimator's clusters).
    kinds: VecDeque<(u32, ProbeKind)>,
    next_id: u32,
    max_bps: u64,
    start_bps: u64,
    /// (estimate before the drop, when it dropped).
    drop: Option<(u64, i64)>,
    last_estimate: u64,
    last_alr_probe_us: Option<i64>,
    last_probe_us: i64,
    /// Since when no packet queued more than [`LOW_QUEUE_DELAY_US`].
    queue_low_since_us: Option<i64>,
    /// Clusters requested so far.
    pub clusters_requested: u64,
}

impl ProbeController {
    /// A controller that will probe from `start_bps` up to `max_bps`.
    pub fn new(start_bps: u64, max_bps: u64) -> Self {
        Self {
            state: State::Init,
            pending: VecDeque::with_capacity(MAX_PENDING_CLUSTERS),
            kinds: VecDeque::with_capacity(MAX_TRACKED_CLUSTERS),
            next_id: 0,
            max_bps,
            start_bps,
            drop: None,
            last_estimate: start_bps,
            last_alr_probe_us: None,
            last_probe_us: 0,
            queue_low_since_us: None,
            clusters_requested: 0,
        }
    }

    /// Numbers the clusters requested from now on from `id` (see
    /// [`SendSideController::set_probe_ids_from`](crate::SendSideController::set_probe_ids_from)).
    pub fn set_next_id(&mut self, id: u32) {
        self.next_id = id;
    }

    /// Whether a probe is pending or awaiting its result.
    pub fn is_probing(&self) -> bool {
        !self.pending.is_empty() || matches!(self.state, State::Waiting { .. })
    }

    /// Whether a cluster waits for the pacer.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.state == State::Init
    }

    /// Since when no reported packet queued more than [`LOW_QUEUE_DELAY_US`] (`None`: one
    /// just did).
    pub fn set_queue_low_since(&mut self, since_us: Option<i64>) {
        self.queue_low_since_us = since_us;
    }

    /// Queues a cluster; returns the rate asked for (capped at the maximum), 0 if none.
    fn request(&mut self, bitrate_bps: u64, kind: ProbeKind) -> u64 {
        let bitrate_bps = bitrate_bps.min(self.max_bps);
        if bitrate_bps == 0 {
            return 0;
        }
        if self.pending.len() >= MAX_PENDING_CLUSTERS {
            self.pending.pop_front();
        }
        let (duration_us, min_packets) = match kind {
            ProbeKind::Periodic => (PERIODIC_PROBE_DURATION_US, PERIODIC_PROBE_PACKETS),
            _ => (MIN_PROBE_DURATION_US, MIN_PROBE_PACKETS),
        };
        let min_bytes = (bitrate_bps as i64 * duration_us / 8_000_000).max(1);
        self.pending.push_back(ProbeCluster {
            id: self.next_id,
            bitrate_bps,
            min_packets,
            min_bytes: u32::try_from(min_bytes).unwrap_or(u32::MAX),
        });
        if self.kinds.len() >= MAX_TRACKED_CLUSTERS {
            self.kinds.pop_front();
        }
        self.kinds.push_back((self.next_id, kind));
        self.next_id = self.next_id.wrapping_add(1);
        self.clusters_requested += 1;
        bitrate_bps
    }

    fn wait_for(&mut self, probed_bps: u64, kind: ProbeKind, now_us: i64) {
        self.state = State::Waiting {
            min_to_probe_further: (probed_bps as f64 * FURTHER_PROBE_THRESHOLD) as u64,
            probed_bps,
            kind,
            since_us: now_us,
        };
    }

    /// The next cluster for the pacer.
    pub fn poll(&mut self, now_us: i64) -> Option<ProbeCluster> {
        if self.state == State::Init {
            self.start(now_us);
        }
        let cluster = self.pending.pop_front()?;
        self.last_probe_us = now_us;
        Some(cluster)
    }

    fn start(&mut self, now_us: i64) {
        let first = (self.start_bps as f64 * FIRST_PROBE_SCALE) as u64;
        let second = (self.start_bps as f64 * SECOND_PROBE_SCALE) as u64;
        let mut probed = self.request(first, ProbeKind::Initial);
        if second > first && first < self.max_bps {
            probed = self.request(second, ProbeKind::Initial);
        }
        self.wait_for(probed, ProbeKind::Initial, now_us);
    }

    /// A probe result arrived: returns the estimate it supports and whether it is only
    /// partly trusted (a periodic probe that saturated the link: see
    /// [`SATURATED_PERIODIC_TRUST`]).
    pub fn on_result(&mut self, result: ProbeResult, now_us: i64) -> Option<(u64, bool)> {
        let kind = self
            .kinds
            .iter()
            .find(|(id, _)| *id == result.cluster_id)
            .map_or(ProbeKind::Initial, |k| k.1);
        let partial = kind == ProbeKind::Periodic && result.saturated;
        if let State::Waiting {
            min_to_probe_further,
            probed_bps,
            kind: waiting_kind,
            ..
        } = self.state
        {
            let next = ((result.bitrate_bps as f64 * FURTHER_PROBE_SCALE) as u64).min(self.max_bps);
            if !partial && result.bitrate_bps >= min_to_probe_further && next > probed_bps {
                let probed = self.request(next, waiting_kind);
                self.wait_for(probed, waiting_kind, now_us);
            } else {
                self.state = State::Done;
            }
        }
        Some((result.bitrate_bps, partial))
    }

    /// Follows the estimate: ends timed-out probing, probes after a large drop if the
    /// sender was application limited, periodically while it is, and periodically while
    /// the queue is stable (`stable`: the delay detector says normal) and either the link
    /// capacity is unknown or the rate has not decreased since `last_decrease_us` for
    /// [`PERIODIC_PROBE_QUIET_US`].
    #[allow(clippy::too_many_arguments)]
    pub fn on_estimate(
        &mut self,
        estimate_bps: u64,
        alr_started_us: Option<i64>,
        alr_ended_us: Option<i64>,
        stable: bool,
        capacity_unknown: bool,
        last_decrease_us: Option<i64>,
        now_us: i64,
    ) {
        if let State::Waiting { since_us, .. } = self.state
            && now_us - since_us > PROBE_RESULT_TIMEOUT_US
        {
            self.state = State::Done;
        }
        if (estimate_bps as f64) < LARGE_DROP_RATIO * self.last_estimate as f64 {
            self.drop = Some((self.last_estimate, now_us));
        }
        self.last_estimate = estimate_bps;
        if self.state != State::Done {
            return;
        }
        let recently_alr = alr_started_us.is_some()
            || alr_ended_us.is_some_and(|e| now_us - e < ALR_ENDED_TIMEOUT_US);
        if let Some((before, at)) = self.drop {
            if now_us - at > DROP_PROBE_TIMEOUT_US {
                self.drop = None;
            } else if recently_alr {
                self.drop = None;
                self.request((before as f64 * DROP_PROBE_FRACTION) as u64, ProbeKind::Alr);
                return;
            }
        }
        if let Some(started) = alr_started_us {
            let last = self.last_alr_probe_us.unwrap_or(started).max(started);
            if now_us - last >= ALR_PROBE_INTERVAL_US {
                self.last_alr_probe_us = Some(now_us);
                self.request(
                    (estimate_bps as f64 * ALR_PROBE_SCALE) as u64,
                    ProbeKind::Alr,
                );
            }
        } else if stable && estimate_bps < self.max_bps {
            let since_probe = now_us - self.last_probe_us;
            let quiet = capacity_unknown
                || last_decrease_us.is_none_or(|d| now_us - d >= PERIODIC_PROBE_QUIET_US);
            let low_queue = self
                .queue_low_since_us
                .is_some_and(|s| now_us - s >= LOW_QUEUE_PROBE_WINDOW_US);
            if !((quiet && since_probe >= PERIODIC_PROBE_INTERVAL_US)
                || (low_queue && since_probe >= LOW_QUEUE_PROBE_INTERVAL_US))
            {
                return;
            }
            let rate = (estimate_bps as f64 * PERIODIC_PROBE_SCALE) as u64;
            let probed = self.request(rate, ProbeKind::Periodic);
            self.wait_for(probed, ProbeKind::Periodic, now_us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_queue_probes_before_the_quiet_period() {
        let mut p = ProbeController::new(300_000, 2_500_000);
        p.state = State::Done;
        // A decrease 1 s ago, the queue low for only 0.5 s: no probe.
        p.set_queue_low_since(Some(10_500_000));
        p.on_estimate(
            1_000_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            11_000_000,
        );
        assert!(!p.has_pending());
        // Low for the whole window: a probe at twice the estimate.
        p.on_estimate(
            1_000_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            11_500_000,
        );
        let c = p.poll(11_500_000).unwrap();
        assert_eq!(c.bitrate_bps, 2_000_000);
        p.on_result(
            ProbeResult {
                cluster_id: c.id,
                bitrate_bps: 1_200_000,
                saturated: true,
            },
            11_600_000,
        );
        // Not again before the low-queue interval, nor while a packet just queued.
        p.on_estimate(
            1_100_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            13_000_000,
        );
        assert!(!p.has_pending());
        p.set_queue_low_since(None);
        p.on_estimate(
            1_100_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            14_000_000,
        );
        assert!(!p.has_pending());
        p.set_queue_low_since(Some(12_000_000));
        p.on_estimate(
            1_100_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            14_000_000,
        );
        assert!(p.has_pending());
    }

    #[test]
    fn initial_probes_then_further_while_results_are_high() {
        let mut p = ProbeController::new(300_000, 2_500_000);
        let a = p.poll(0).unwrap();
        let b = p.poll(0).unwrap();
        assert_eq!((a.bitrate_bps, b.bitrate_bps), (900_000, 1_800_000));
        assert_eq!(b.min_bytes, 1_800_000 * 15 / 8000);
        assert!(p.poll(0).is_none());
        let result = |cluster_id, bitrate_bps, saturated| ProbeResult {
            cluster_id,
            bitrate_bps,
            saturated,
        };
        assert_eq!(
            p.on_result(result(1, 1_700_000, false), 100_000),
            Some((1_700_000, false))
        );
        let c = p.poll(100_000).unwrap();
        assert_eq!(c.bitrate_bps, 2_500_000);
        // At the maximum: no further probe, whatever the result.
        p.on_result(result(c.id, 2_400_000, false), 200_000);
        assert!(!p.is_probing());
        assert_eq!(p.poll(200_000), None);
    }

    #[test]
    fn periodic_probes_count_only_unsaturated() {
        let mut p = ProbeController::new(300_000, 10_000_000);
        while p.poll(0).is_some() {}
        p.on_estimate(1_000_000, None, None, true, false, None, 2_000_000);
        // Timed out waiting for the initial results.
        p.on_estimate(1_000_000, None, None, true, false, None, 6_000_000);
        let c = p.poll(6_000_000).unwrap();
        assert_eq!(c.bitrate_bps, 2_000_000);
        let saturated = ProbeResult {
            cluster_id: c.id,
            bitrate_bps: 1_500_000,
            saturated: true,
        };
        assert_eq!(p.on_result(saturated, 6_100_000), Some((1_500_000, true)));
        assert!(!p.is_probing());
        // No periodic probe soon after a decrease.
        p.on_estimate(
            1_000_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            12_000_000,
        );
        assert!(p.poll(12_000_000).is_none());
        p.on_estimate(
            1_000_000,
            None,
            None,
            true,
            false,
            Some(10_000_000),
            10_000_000 + PERIODIC_PROBE_QUIET_US,
        );
        let at = 10_000_000 + PERIODIC_PROBE_QUIET_US;
        let c = p.poll(at).unwrap();
        let free = ProbeResult {
            cluster_id: c.id,
            bitrate_bps: 2_000_000,
            saturated: false,
        };
        assert_eq!(p.on_result(free, at + 100_000), Some((2_000_000, false)));
        assert_eq!(p.poll(at + 100_000).unwrap().bitrate_bps, 4_000_000);
    }

    #[test]
    fn probe_estimate_of_a_saturated_link() {
        let mut e = ProbeEstimator::new();
        let cluster = ProbeCluster {
            id: 7,
            bitrate_bps: 2_000_000,
            min_packets: 5,
            min_bytes: 3_750,
        };
        e.track(cluster, 0);
        let mut result = None;
        // Sent at 2 Mbps (1000 bytes every 4 ms), received at 1 Mbps.
        for i in 0..6 {
            result = result.or(e.on_packet(7, i * 4_000, 50_000 + i * 8_000, 1000));
        }
        let r = result.unwrap();
        assert!(r.saturated);
        assert!((900_000..=1_000_000).contains(&r.bitrate_bps), "{r:?}");
        assert_eq!(e.on_packet(7, 30_000, 100_000, 1000), None);
    }

    #[test]
    fn unknown_clusters_give_nothing() {
        let mut e = ProbeEstimator::new();
        assert_eq!(e.on_packet(1, 0, 0, 1000), None);
    }
}
