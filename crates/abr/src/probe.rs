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
    ) -> Option<u64> {
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
        if recv_bps < MIN_RATIO_FOR_UNSATURATED_LINK * send_bps {
            result = TARGET_UTILIZATION_FRACTION * recv_bps;
        }
        self.results += 1;
        Some(result as u64)
    }
}

/// What the probe controller is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet: the initial probes are due.
    Init,
    /// Waiting for a result above `min_to_probe_further`.
    Waiting {
        min_to_probe_further: u64,
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
    next_id: u32,
    max_bps: u64,
    start_bps: u64,
    /// (estimate before the drop, when it dropped).
    drop: Option<(u64, i64)>,
    last_estimate: u64,
    last_alr_probe_us: Option<i64>,
    /// Clusters requested so far.
    pub clusters_requested: u64,
}

impl ProbeController {
    /// A controller that will probe from `start_bps` up to `max_bps`.
    pub fn new(start_bps: u64, max_bps: u64) -> Self {
        Self {
            state: State::Init,
            pending: VecDeque::with_capacity(MAX_PENDING_CLUSTERS),
            next_id: 0,
            max_bps,
            start_bps,
            drop: None,
            last_estimate: start_bps,
            last_alr_probe_us: None,
            clusters_requested: 0,
        }
    }

    /// Whether a probe is waiting for the pacer or for its result.
    pub fn is_probing(&self) -> bool {
        !self.pending.is_empty() || matches!(self.state, State::Waiting { .. })
    }

    /// Whether a cluster waits for the pacer.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.state == State::Init
    }

    fn request(&mut self, bitrate_bps: u64) {
        let bitrate_bps = bitrate_bps.min(self.max_bps);
        if bitrate_bps == 0 {
            return;
        }
        if self.pending.len() >= MAX_PENDING_CLUSTERS {
            self.pending.pop_front();
        }
        let min_bytes = (bitrate_bps as i64 * MIN_PROBE_DURATION_US / 8_000_000).max(1);
        self.pending.push_back(ProbeCluster {
            id: self.next_id,
            bitrate_bps,
            min_packets: MIN_PROBE_PACKETS,
            min_bytes: u32::try_from(min_bytes).unwrap_or(u32::MAX),
        });
        self.next_id = self.next_id.wrapping_add(1);
        self.clusters_requested += 1;
    }

    /// The next cluster for the pacer.
    pub fn poll(&mut self, now_us: i64) -> Option<ProbeCluster> {
        if self.state == State::Init {
            self.start(now_us);
        }
        self.pending.pop_front()
    }

    fn start(&mut self, now_us: i64) {
        let first = (self.start_bps as f64 * FIRST_PROBE_SCALE) as u64;
        let second = (self.start_bps as f64 * SECOND_PROBE_SCALE) as u64;
        self.request(first);
        if second > first && first < self.max_bps {
            self.request(second);
        }
        self.state = State::Waiting {
            min_to_probe_further: (second.min(self.max_bps) as f64 * FURTHER_PROBE_THRESHOLD)
                as u64,
            since_us: now_us,
        };
    }

    /// A probe result arrived.
    pub fn on_result(&mut self, result_bps: u64, now_us: i64) {
        if let State::Waiting {
            min_to_probe_further,
            ..
        } = self.state
        {
            if result_bps >= min_to_probe_further && result_bps < self.max_bps {
                let next = (result_bps as f64 * FURTHER_PROBE_SCALE) as u64;
                self.request(next);
                self.state = State::Waiting {
                    min_to_probe_further: (next.min(self.max_bps) as f64 * FURTHER_PROBE_THRESHOLD)
                        as u64,
                    since_us: now_us,
                };
            } else {
                self.state = State::Done;
            }
        }
    }

    /// Follows the estimate: ends timed-out probing, probes after a large drop if the
    /// sender was application limited, and periodically while it is.
    pub fn on_estimate(
        &mut self,
        estimate_bps: u64,
        alr_started_us: Option<i64>,
        alr_ended_us: Option<i64>,
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
                self.request((before as f64 * DROP_PROBE_FRACTION) as u64);
                return;
            }
        }
        if let Some(started) = alr_started_us {
            let last = self.last_alr_probe_us.unwrap_or(started).max(started);
            if now_us - last >= ALR_PROBE_INTERVAL_US {
                self.last_alr_probe_us = Some(now_us);
                self.request((estimate_bps as f64 * ALR_PROBE_SCALE) as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_probes_then_further_while_results_are_high() {
        let mut p = ProbeController::new(300_000, 2_500_000);
        let a = p.poll(0).unwrap();
        let b = p.poll(0).unwrap();
        assert_eq!((a.bitrate_bps, b.bitrate_bps), (900_000, 1_800_000));
        assert_eq!(b.min_bytes, 1_800_000 * 15 / 8000);
        assert!(p.poll(0).is_none());
        p.on_result(1_700_000, 100_000);
        assert_eq!(p.poll(100_000).unwrap().bitrate_bps, 2_500_000);
        p.on_result(1_000_000, 200_000);
        assert!(!p.is_probing());
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
        assert!((900_000..=1_000_000).contains(&r), "{r}");
        assert_eq!(e.on_packet(7, 30_000, 100_000, 1000), None);
    }

    #[test]
    fn unknown_clusters_give_nothing() {
        let mut e = ProbeEstimator::new();
        assert_eq!(e.on_packet(1, 0, 0, 1000), None);
    }
}
