//! AIMD rate control driven by the delay detector (GCC's `AimdRateControl`): grow while the
//! queue is stable, cut to a fraction of the acknowledged rate when it grows, hold while it
//! drains.

use crate::delay::BandwidthUsage;

/// Decrease factor applied to the acknowledged rate on overuse (GCC: 0.85). We cut to 0.9:
/// the rate it applies to is the queue's measured drain rate (see
/// [`RecentRate`](crate::acknowledged::RecentRate)), not a lagging estimate, so less margin
/// is needed to drain the queue, and the sawtooth's mean rises from about 92% to 95% of the
/// capacity.
pub const BETA: f64 = 0.9;
/// Multiplicative increase per second far from the last known capacity (GCC: 8%).
pub const MULTIPLICATIVE_INCREASE_PER_SECOND: f64 = 0.08;
/// The estimate may not grow above this multiple of the acknowledged rate (GCC: 1.5)…
pub const THROUGHPUT_LIMIT_FACTOR: f64 = 1.5;
/// …plus this many bits per second (GCC: 10 kbps), so an application-limited sender cannot
/// push its estimate without bound.
pub const THROUGHPUT_LIMIT_OFFSET_BPS: f64 = 10_000.0;
/// Frame rate assumed when sizing the additive increase (GCC: 30 fps).
pub const ASSUMED_FPS: f64 = 30.0;
/// Packet size assumed when sizing the additive increase (GCC: 1200 bytes).
pub const ASSUMED_PACKET_BYTES: f64 = 1200.0;
/// Added to the RTT to get the time a rate change takes to show in feedback (GCC: 100 ms).
pub const RESPONSE_TIME_EXTRA_US: i64 = 100_000;
/// Smallest additive increase (GCC: 4 kbps per second).
pub const MIN_ADDITIVE_INCREASE_BPS_PER_SECOND: f64 = 4_000.0;
/// Longest time step of one increase (GCC: 1 s), so a long gap between feedbacks cannot make
/// the estimate jump.
pub const MAX_INCREASE_STEP_US: i64 = 1_000_000;
/// Smoothing of the link capacity estimate after each overuse (GCC: 0.05).
pub const CAPACITY_SMOOTHING: f64 = 0.05;
/// Bounds of the capacity estimate's normalised variance (GCC: 0.4..2.5).
pub const CAPACITY_VARIANCE_RANGE: (f64, f64) = (0.4, 2.5);
/// Standard deviations around the capacity estimate outside which it is forgotten (GCC: 3).
pub const CAPACITY_DEVIATIONS: f64 = 3.0;
/// The capacity estimate is forgotten upward (the acknowledged rate above its band: the
/// link grew) only while the queuing delay is below this (not in GCC). After a sharp
/// capacity drop the acknowledged-rate estimator lags above the new capacity for a second or
/// more while the queue left by the drop drains; GCC's test then took the lag for growth,
/// switched to multiplicative increase and (with the periodic probe that follows an unknown
/// capacity) probed into a 190 ms queue (`tincan lab abr`, variable-1 at 61 s; over seeds
/// 1-8 variable-1's p95 queuing delay was 42.3-53.0 ms without this gate, 42.4-48.5 ms
/// with it). A link that grew has no standing queue.
pub const CAPACITY_RESET_MAX_QUEUE_US: i64 = 50_000;
/// Shortest time between two decreases (GCC: between 10 and 200 ms, the RTT); a decrease
/// comes sooner only if the acknowledged rate falls below half the estimate.
pub const MAX_REDUCE_INTERVAL_US: i64 = 200_000;
/// A decrease also drains the queue measured at overuse over this time (not in GCC): the
/// factor applied is [`BETA`] − queuing delay / this, so a 40 ms queue gives 0.89 while the
/// 300 ms queue left by a sudden capacity drop gives 0.825 and drains in about 1.7 s instead
/// of 3 s at BETA's 10% headroom (2 s made regular cuts too deep; tried on `tincan lab abr`).
pub const QUEUE_DRAIN_TIME_US: i64 = 4_000_000;
/// Lowest decrease factor after the queue term.
pub const MIN_DECREASE_FACTOR: f64 = 0.5;
/// A decrease may follow the last one sooner than the interval when the acknowledged rate
/// is below this share of the estimate (GCC: 0.5): the estimate is far off.
pub const FAST_REDUCE_RATIO: f64 = 0.5;
/// Lower bound of the interval between decreases.
pub const MIN_REDUCE_INTERVAL_US: i64 = 10_000;

/// The rate controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControlState {
    /// Keep the rate.
    Hold,
    /// Grow the rate.
    Increase,
    /// Cut the rate.
    Decrease,
}

/// Running estimate of the link capacity, from the acknowledged rates seen at overuse
/// (in kbps like GCC's, so the variance bounds keep their meaning).
#[derive(Debug, Clone, Copy, Default)]
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl LinkCapacity {
    fn deviation_kbps(&self) -> f64 {
        self.estimate_kbps
            .map_or(0.0, |e| (self.variance * e).sqrt())
    }

    fn upper_bps(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| (e + CAPACITY_DEVIATIONS * self.deviation_kbps()) * 1000.0)
    }

    fn lower_bps(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| (e - CAPACITY_DEVIATIONS * self.deviation_kbps()) * 1000.0)
    }

    fn on_overuse(&mut self, acked_bps: f64) {
        let sample = acked_bps / 1000.0;
        let estimate = match self.estimate_kbps {
            None => sample,
            Some(e) => (1.0 - CAPACITY_SMOOTHING) * e + CAPACITY_SMOOTHING * sample,
        };
        let norm = estimate.max(1.0);
        let error = estimate - sample;
        self.variance = ((1.0 - CAPACITY_SMOOTHING) * self.variance
            + CAPACITY_SMOOTHING * error * error / norm)
            .clamp(CAPACITY_VARIANCE_RANGE.0, CAPACITY_VARIANCE_RANGE.1);
        self.estimate_kbps = Some(estimate);
    }

    fn reset(&mut self) {
        self.estimate_kbps = None;
    }
}

/// The AIMD controller.
#[derive(Debug, Clone)]
pub struct AimdRateControl {
    current_bps: f64,
    min_bps: f64,
    max_bps: f64,
    state: RateControlState,
    capacity: LinkCapacity,
    last_change_us: Option<i64>,
    last_decrease_us: Option<i64>,
    rtt_us: i64,
    queue_delay_us: i64,
}

impl AimdRateControl {
    /// A controller starting at `start_bps`, kept within `min_bps..=max_bps`.
    pub fn new(start_bps: u64, min_bps: u64, max_bps: u64, rtt_us: i64) -> Self {
        Self {
            current_bps: start_bps as f64,
            min_bps: min_bps as f64,
            max_bps: max_bps as f64,
            state: RateControlState::Hold,
            capacity: LinkCapacity::default(),
            last_change_us: None,
            last_decrease_us: None,
            rtt_us,
            queue_delay_us: 0,
        }
    }

    /// The estimate, bits per second.
    pub fn estimate_bps(&self) -> u64 {
        self.current_bps as u64
    }

    /// The state after the last update.
    pub fn state(&self) -> RateControlState {
        self.state
    }

    /// The link capacity estimate, if an overuse has given one.
    pub fn link_capacity_bps(&self) -> Option<u64> {
        self.capacity.estimate_kbps.map(|e| (e * 1000.0) as u64)
    }

    /// When the last decrease happened.
    pub fn last_decrease_us(&self) -> Option<i64> {
        self.last_decrease_us
    }

    /// Sets the queuing delay measured now (see [`QUEUE_DRAIN_TIME_US`]).
    pub fn set_queue_delay(&mut self, queue_delay_us: i64) {
        self.queue_delay_us = queue_delay_us.max(0);
    }

    /// Sets the round-trip time used to size the additive increase.
    pub fn set_rtt(&mut self, rtt_us: i64) {
        self.rtt_us = rtt_us.max(0);
    }

    /// Sets the estimate (after a probe or from outside), within the bounds.
    pub fn set_estimate(&mut self, bps: u64, now_us: i64) {
        self.current_bps = (bps as f64).clamp(self.min_bps, self.max_bps);
        self.last_change_us = Some(now_us);
    }

    /// Whether a decrease now would come too soon after the last one.
    fn may_reduce(&self, acked_bps: Option<f64>, now_us: i64) -> bool {
        let interval = self
            .rtt_us
            .clamp(MIN_REDUCE_INTERVAL_US, MAX_REDUCE_INTERVAL_US);
        match self.last_decrease_us {
            None => true,
            Some(last) if now_us - last >= interval => true,
            Some(_) => acked_bps.is_some_and(|a| a < FAST_REDUCE_RATIO * self.current_bps),
        }
    }

    /// Additive increase per second near the known capacity: about one packet per response
    /// time (GCC's formula).
    fn additive_increase_per_second(&self) -> f64 {
        let bits_per_frame = self.current_bps / ASSUMED_FPS;
        let packets_per_frame = (bits_per_frame / (8.0 * ASSUMED_PACKET_BYTES))
            .ceil()
            .max(1.0);
        let packet_bits = bits_per_frame / packets_per_frame;
        let response_s = (self.rtt_us + RESPONSE_TIME_EXTRA_US) as f64 / 1e6;
        (packet_bits / response_s).max(MIN_ADDITIVE_INCREASE_BPS_PER_SECOND)
    }

    /// Updates the estimate with the detector's verdict and the acknowledged rate.
    pub fn update(&mut self, usage: BandwidthUsage, acked_bps: Option<u64>, now_us: i64) -> u64 {
        let acked = acked_bps.map(|a| a as f64);
        self.state = match (usage, self.state) {
            (BandwidthUsage::Normal, RateControlState::Hold) => RateControlState::Increase,
            (BandwidthUsage::Normal, s) => s,
            (BandwidthUsage::Overusing, _) => RateControlState::Decrease,
            (BandwidthUsage::Underusing, _) => RateControlState::Hold,
        };
        let last_change = *self.last_change_us.get_or_insert(now_us);
        match self.state {
            RateControlState::Hold => {
                self.last_change_us = Some(now_us);
            }
            RateControlState::Increase => {
                if let (Some(a), Some(upper)) = (acked, self.capacity.upper_bps())
                    && a > upper
                    && self.queue_delay_us < CAPACITY_RESET_MAX_QUEUE_US
                {
                    // The link grew well beyond what we knew: go back to fast growth.
                    self.capacity.reset();
                }
                let dt = (now_us - last_change).clamp(0, MAX_INCREASE_STEP_US) as f64 / 1e6;
                let increased = if self.capacity.estimate_kbps.is_some() {
                    self.current_bps + self.additive_increase_per_second() * dt
                } else {
                    self.current_bps * (1.0 + MULTIPLICATIVE_INCREASE_PER_SECOND).powf(dt)
                };
                let limit = acked
                    .map(|a| THROUGHPUT_LIMIT_FACTOR * a + THROUGHPUT_LIMIT_OFFSET_BPS)
                    .unwrap_or(f64::INFINITY)
                    .max(self.current_bps);
                self.current_bps = increased.min(limit);
                self.last_change_us = Some(now_us);
            }
            RateControlState::Decrease => {
                if self.may_reduce(acked, now_us) {
                    let factor = (BETA - self.queue_delay_us as f64 / QUEUE_DRAIN_TIME_US as f64)
                        .max(MIN_DECREASE_FACTOR);
                    let mut decreased = acked.map_or(self.current_bps * factor, |a| a * factor);
                    if decreased > self.current_bps
                        && let Some(c) = self.capacity.estimate_kbps
                    {
                        decreased = c * 1000.0 * factor;
                    }
                    if decreased < self.current_bps {
                        self.current_bps = decreased;
                    }
                    if let Some(a) = acked {
                        if self.capacity.lower_bps().is_some_and(|lower| a < lower) {
                            self.capacity.reset();
                        }
                        self.capacity.on_overuse(a);
                    }
                    self.last_decrease_us = Some(now_us);
                }
                self.state = RateControlState::Hold;
                self.last_change_us = Some(now_us);
            }
        }
        self.current_bps = self.current_bps.clamp(self.min_bps, self.max_bps);
        self.estimate_bps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_grows_about_eight_percent_per_second() {
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000, 100_000);
        for i in 0..=20 {
            a.update(BandwidthUsage::Normal, Some(1_000_000), i * 50_000);
        }
        let e = a.estimate_bps();
        // 0.95 s of growth after the first Hold→Increase step.
        assert!((1_070_000..1_085_000).contains(&e), "{e}");
    }

    #[test]
    fn overuse_cuts_to_beta_times_acknowledged() {
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000, 100_000);
        a.update(BandwidthUsage::Overusing, Some(800_000), 0);
        assert_eq!(a.estimate_bps(), 720_000);
        assert_eq!(a.link_capacity_bps(), Some(800_000));
        // Too soon for another cut.
        a.update(BandwidthUsage::Overusing, Some(700_000), 50_000);
        assert_eq!(a.estimate_bps(), 720_000);
        a.update(BandwidthUsage::Overusing, Some(700_000), 250_000);
        assert_eq!(a.estimate_bps(), 630_000);
    }

    #[test]
    fn a_long_queue_deepens_the_cut() {
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000, 100_000);
        a.set_queue_delay(300_000);
        a.update(BandwidthUsage::Overusing, Some(600_000), 0);
        assert_eq!(a.estimate_bps(), 495_000);
    }

    #[test]
    fn growth_is_capped_by_throughput() {
        let mut a = AimdRateControl::new(100_000, 10_000, 10_000_000, 100_000);
        for i in 0..200 {
            a.update(BandwidthUsage::Normal, Some(50_000), i * 100_000);
        }
        assert!(a.estimate_bps() <= 100_000, "{}", a.estimate_bps());
    }

    #[test]
    fn near_capacity_growth_is_additive() {
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000, 100_000);
        a.update(BandwidthUsage::Overusing, Some(1_000_000), 0);
        let after_cut = a.estimate_bps();
        for i in 1..=21 {
            a.update(BandwidthUsage::Normal, Some(1_000_000), i * 50_000);
        }
        let grown = a.estimate_bps() - after_cut;
        // About one 1200-byte-ish packet per 200 ms response time: tens of kbps per second.
        assert!((10_000..80_000).contains(&grown), "{grown}");
    }
}
