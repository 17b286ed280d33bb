//! The acknowledged-bitrate estimator (GCC's `BitrateEstimator`): the rate at which the
//! receiver got packets, from their arrival times, smoothed by a Bayesian update whose
//! sample uncertainty grows with the distance from the current estimate.

/// Window of the first sample, µs (GCC: 500 ms): long, since the first rate is a guess.
pub const INITIAL_WINDOW_US: i64 = 500_000;
/// Window of later samples, µs (GCC: 150 ms).
pub const WINDOW_US: i64 = 150_000;
/// Scale of a sample's uncertainty relative to its distance from the estimate (GCC: 10).
pub const UNCERTAINTY_SCALE: f64 = 10.0;
/// Uncertainty scale while application limited (GCC: 20): samples then say less about
/// the link.
pub const UNCERTAINTY_SCALE_ALR: f64 = 20.0;
/// Variance added to the estimate between samples (GCC: 5 kbps²), so it keeps following.
pub const ESTIMATE_VARIANCE_INCREASE: f64 = 5.0;
/// Initial variance of the estimate (GCC: 50 kbps²).
pub const INITIAL_VARIANCE: f64 = 50.0;
/// A gap this long without packets makes the estimate stale (GCC: none; we drop it after
/// 2 s of silence so a resumed stream is measured afresh).
pub const STALE_AFTER_US: i64 = 2_000_000;

/// The estimator; rates are kept in kbps as in GCC so its variances keep their meaning.
#[derive(Debug, Clone)]
pub struct AcknowledgedBitrate {
    sum_bytes: u64,
    current_window_us: i64,
    prev_time_us: Option<i64>,
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl Default for AcknowledgedBitrate {
    fn default() -> Self {
        Self::new()
    }
}

impl AcknowledgedBitrate {
    /// An estimator without an estimate.
    pub fn new() -> Self {
        Self {
            sum_bytes: 0,
            current_window_us: 0,
            prev_time_us: None,
            estimate_kbps: None,
            variance: INITIAL_VARIANCE,
        }
    }

    /// The estimate in bits per second, once the first window has been measured.
    pub fn bitrate_bps(&self) -> Option<u64> {
        self.estimate_kbps.map(|k| (k * 1000.0) as u64)
    }

    /// Forgets the estimate (keeps nothing from before).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds a packet of `bytes` that arrived at `arrival_us` (in arrival order).
    pub fn update(&mut self, arrival_us: i64, bytes: usize, in_alr: bool) {
        let window = if self.estimate_kbps.is_some() {
            WINDOW_US
        } else {
            INITIAL_WINDOW_US
        };
        let Some(sample_kbps) = self.update_window(arrival_us, bytes as u64, window) else {
            return;
        };
        let Some(estimate) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample_kbps);
            return;
        };
        let scale = if in_alr {
            UNCERTAINTY_SCALE_ALR
        } else {
            UNCERTAINTY_SCALE
        };
        let uncertainty = scale * (estimate - sample_kbps).abs() / estimate.max(1.0);
        let sample_var = uncertainty * uncertainty;
        let predicted_var = self.variance + ESTIMATE_VARIANCE_INCREASE;
        let total = sample_var + predicted_var;
        if total <= 0.0 {
            return;
        }
        let new = (sample_var * estimate + predicted_var * sample_kbps) / total;
        self.estimate_kbps = Some(new.max(0.0));
        self.variance = sample_var * predicted_var / total;
    }

    /// Accumulates bytes in windows; returns a window's rate (kbps) when one completes.
    fn update_window(&mut self, now_us: i64, bytes: u64, window_us: i64) -> Option<f64> {
        let Some(prev) = self.prev_time_us else {
            self.prev_time_us = Some(now_us);
            self.sum_bytes = bytes;
            return None;
        };
        if now_us < prev {
            // Arrival times went back (should not happen once sorted): keep the later one.
            self.sum_bytes += bytes;
            return None;
        }
        if now_us - prev > STALE_AFTER_US {
            self.reset();
            self.prev_time_us = Some(now_us);
            self.sum_bytes = bytes;
            return None;
        }
        self.current_window_us += now_us - prev;
        if now_us - prev > window_us {
            // A gap longer than a window: nothing was received in it.
            self.sum_bytes = 0;
            self.current_window_us %= window_us;
        }
        self.prev_time_us = Some(now_us);
        let mut sample = None;
        if self.current_window_us >= window_us {
            sample = Some(8.0 * self.sum_bytes as f64 / window_us as f64 * 1000.0);
            self.current_window_us -= window_us;
            self.sum_bytes = 0;
        }
        self.sum_bytes += bytes;
        sample
    }
}

/// Window of the recent receive rate, µs: long enough to hold several packets at low rates,
/// short enough to hold only packets that left a queue built after a sharp capacity drop by
/// the time overuse is detected (250 ms mixed in the rate from before a probe's jump and cut
/// too deep; tried on `tincan lab abr`).
pub const RECENT_WINDOW_US: i64 = 125_000;

/// A recent rate below this share of the acknowledged estimate is a sharp drop.
pub const RECENT_DROP_RATIO: f64 = 0.7;
/// A queuing delay at or above this at overuse is a standing queue (not in GCC): packets
/// leave it back to back at the capacity, so the recent rate is the capacity whatever the
/// acknowledged estimate says, and a decrease applies to it alone. Without this, a halving
/// (2 → 1 Mbps) whose acknowledged estimate had already lagged down to 1.35 Mbps (above
/// [`RECENT_DROP_RATIO`] × it) was cut from 1.35 Mbps, three more cuts followed, and the
/// sending rate was under the new capacity only after 1000 ms (`tincan lab abr`,
/// step-half, seed 8). Ordinary overuse, on a flow's own or a shared link, starts well
/// below it (p95 queuing delay 40-65 ms), where the recent rate alone followed noisy
/// shares (see [`RecentRate`]).
pub const STANDING_QUEUE_US: i64 = 100_000;
/// Most packets the recent receive rate holds (bounded memory; older ones are dropped).
pub const RECENT_MAX_PACKETS: usize = 512;
/// Fewest packets a recent receive rate is computed from.
pub const RECENT_MIN_PACKETS: usize = 4;

/// The receive rate over the last [`RECENT_WINDOW_US`] of arrivals, unsmoothed.
///
/// Not in GCC: while the bottleneck queue grows, packets leave it at exactly the capacity,
/// so their arrival spacing measures it with no lag. On overuse the controller cuts from
/// this rate when it is below [`RECENT_DROP_RATIO`] × the acknowledged estimate (a sharp
/// capacity drop, which the smoothed estimate would follow only after several hundred
/// milliseconds of overflowing queue), else from the higher of the two (right after a
/// probe raised the rate, the smoothed estimate still lags below it). Cutting from this
/// rate alone made flows sharing a link follow their noisy instantaneous shares and
/// converge worse (Jain's index 0.84-0.92 against 0.91-0.97).
#[derive(Debug, Clone)]
pub struct RecentRate {
    packets: std::collections::VecDeque<(i64, u32)>,
    bytes: u64,
}

impl Default for RecentRate {
    fn default() -> Self {
        Self::new()
    }
}

impl RecentRate {
    /// An empty window.
    pub fn new() -> Self {
        Self {
            packets: std::collections::VecDeque::with_capacity(RECENT_MAX_PACKETS),
            bytes: 0,
        }
    }

    /// Adds a packet (in arrival order).
    pub fn update(&mut self, arrival_us: i64, bytes: u32) {
        if self.packets.len() >= RECENT_MAX_PACKETS
            && let Some((_, b)) = self.packets.pop_front()
        {
            self.bytes -= u64::from(b);
        }
        self.packets.push_back((arrival_us, bytes));
        self.bytes += u64::from(bytes);
        while let Some(&(t, b)) = self.packets.front() {
            if arrival_us - t <= RECENT_WINDOW_US {
                break;
            }
            self.packets.pop_front();
            self.bytes -= u64::from(b);
        }
    }

    /// The rate: bytes after the first packet over the span of arrivals, if enough packets.
    pub fn bitrate_bps(&self) -> Option<u64> {
        if self.packets.len() < RECENT_MIN_PACKETS {
            return None;
        }
        let (first_t, first_b) = *self.packets.front()?;
        let (last_t, _) = *self.packets.back()?;
        let span = last_t - first_t;
        if span <= 0 {
            return None;
        }
        Some(((self.bytes - u64::from(first_b)) as f64 * 8e6 / span as f64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut AcknowledgedBitrate, from_us: i64, to_us: i64, bps: i64) {
        // 1000-byte packets at `bps`.
        let gap = 8_000 * 1_000_000 / bps;
        let mut t = from_us;
        while t < to_us {
            a.update(t, 1000, false);
            t += gap;
        }
    }

    #[test]
    fn measures_a_steady_rate() {
        let mut a = AcknowledgedBitrate::new();
        assert_eq!(a.bitrate_bps(), None);
        feed(&mut a, 0, 3_000_000, 800_000);
        let e = a.bitrate_bps().unwrap() as f64;
        assert!((e - 800_000.0).abs() < 40_000.0, "{e}");
    }

    #[test]
    fn follows_a_halving_within_a_second() {
        let mut a = AcknowledgedBitrate::new();
        feed(&mut a, 0, 5_000_000, 1_000_000);
        feed(&mut a, 5_000_000, 6_000_000, 500_000);
        let e = a.bitrate_bps().unwrap();
        assert!(e < 600_000, "{e}");
    }

    #[test]
    fn recent_rate_sees_a_drop_at_once() {
        let mut r = RecentRate::new();
        assert_eq!(r.bitrate_bps(), None);
        // 1000 bytes every 4 ms (2 Mbps), then every 16 ms (500 kbps).
        let mut t = 0;
        for _ in 0..100 {
            r.update(t, 1000);
            t += 4_000;
        }
        assert_eq!(r.bitrate_bps(), Some(2_000_000));
        for _ in 0..20 {
            t += 16_000;
            r.update(t, 1000);
        }
        assert_eq!(r.bitrate_bps(), Some(500_000));
    }

    #[test]
    fn silence_makes_it_stale() {
        let mut a = AcknowledgedBitrate::new();
        feed(&mut a, 0, 2_000_000, 1_000_000);
        a.update(10_000_000, 1000, false);
        assert_eq!(a.bitrate_bps(), None);
    }
}
