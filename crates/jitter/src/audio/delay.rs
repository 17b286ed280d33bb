//! Delay estimation: how late packets arrive relative to the fastest one, and the target
//! delay that covers them.
//!
//! Each packet's *transit* is its arrival time minus its media time. The *relative delay*
//! of a packet is its transit minus the smallest transit seen over the last two seconds
//! (the fastest recent packet), so it is zero for a packet that could not have come
//! sooner. Relative delays go into a histogram with 1 ms buckets whose memory fades with
//! a configurable half-life; the target delay is a quantile of it. A packet that plays
//! `target` after the fastest packet's schedule is on time whenever its relative delay is
//! at most the target.
//!
//! Reordered packets (older than one already received) are kept apart: they go into their
//! own histogram, and the target covers them only as far as a late-loss budget requires.
//! Losing one reordered packet now and then costs a 20 ms concealment; covering all of them
//! would add their whole hold-back time to every packet's delay.
//!
//! A lasting delay step (a route change) would leave the two-second minimum stale for two
//! seconds and inflate every relative delay in between. When the minimum over the last
//! second exceeds the two-second minimum by more than the current target, the step is
//! taken as real: the older transits are forgotten and the last second's histogram entries
//! are re-entered against the new minimum.

use std::collections::VecDeque;

/// How far back the fastest packet is looked for.
const MIN_WINDOW_S: f64 = 2.0;
/// The span over which a delay step must persist before the minimum is re-based.
const STEP_WINDOW_S: f64 = 1.0;
/// Bounds on the history rings (at 20 ms packets two seconds is 100 entries; this also
/// bounds 2.5 ms packets and bursts).
const MAX_WINDOW_ENTRIES: usize = 1024;
/// Width of a histogram bucket.
const BUCKET_S: f64 = 0.001;
/// Packets needed before the histogram is trusted over the start delay.
const MIN_PACKETS: u64 = 10;
/// Smoothing of the reordered share (about 200 packets).
const REORDER_RATE_ALPHA: f64 = 1.0 / 200.0;
/// Renormalise the growing insert weight before it can overflow.
const MAX_WEIGHT: f64 = 1e200;

/// One arrival kept for the minimum and for retraction.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: f64,
    transit: f64,
    /// Bucket and weight it was entered with, when it went into the in-order histogram.
    entered: Option<(usize, f64)>,
    /// The target when it arrived: a step is judged against the target from before it,
    /// which its own inflated delays have not raised yet.
    target_before: f64,
}

/// A histogram with exponentially fading memory.
///
/// Instead of multiplying every bucket on each insert, the insert weight grows by the
/// inverse factor; only the ratio between buckets matters for quantiles.
#[derive(Debug, Clone)]
struct FadingHistogram {
    buckets: Vec<f64>,
    total: f64,
    weight: f64,
}

impl FadingHistogram {
    fn new(buckets: usize) -> Self {
        Self {
            buckets: vec![0.0; buckets],
            total: 0.0,
            weight: 1.0,
        }
    }

    fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = 0.0);
        self.total = 0.0;
        self.weight = 1.0;
    }

    /// Ages the memory by `factor` (< 1 fades older entries).
    fn fade(&mut self, factor: f64) {
        if factor > 0.0 && factor < 1.0 {
            self.weight /= factor;
        }
        if self.weight > MAX_WEIGHT {
            let scale = 1.0 / self.weight;
            self.buckets.iter_mut().for_each(|b| *b *= scale);
            self.total *= scale;
            self.weight = 1.0;
        }
    }

    fn bucket_of(&self, value_s: f64) -> usize {
        let index = (value_s.max(0.0) / BUCKET_S).round();
        (index as usize).min(self.buckets.len() - 1)
    }

    /// Adds `value_s`; returns the bucket and weight used, for a later retraction.
    fn add(&mut self, value_s: f64) -> (usize, f64) {
        let bucket = self.bucket_of(value_s);
        self.buckets[bucket] += self.weight;
        self.total += self.weight;
        (bucket, self.weight)
    }

    /// Takes back an entry added at the current weight scale (not renormalised since).
    fn retract(&mut self, bucket: usize, weight: f64) {
        if let Some(b) = self.buckets.get_mut(bucket) {
            let taken = weight.min(*b);
            *b -= taken;
            self.total = (self.total - taken).max(0.0);
        }
    }

    /// The smallest value at or above which at most `1 - q` of the mass lies.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.total <= 0.0 {
            return None;
        }
        let goal = q.clamp(0.0, 1.0) * self.total;
        let mut sum = 0.0;
        for (i, b) in self.buckets.iter().enumerate() {
            sum += b;
            if sum >= goal && sum > 0.0 {
                return Some(i as f64 * BUCKET_S);
            }
        }
        Some((self.buckets.len() - 1) as f64 * BUCKET_S)
    }
}

/// Share of packets the typical delay covers (the base of the recovery delay).
const TYPICAL_QUANTILE: f64 = 0.95;

/// The delay estimator of the audio buffer. Times are seconds on the buffer's own base.
#[derive(Debug, Clone)]
pub(crate) struct DelayEstimator {
    in_order: FadingHistogram,
    reordered: FadingHistogram,
    window: VecDeque<Arrival>,
    reorder_rate: f64,
    packets: u64,
    last_arrival: Option<f64>,
    half_life_s: f64,
    quantile: f64,
    reorder_budget: f64,
    start_delay_s: f64,
    /// For this long after the first packet the target stays at least the start delay.
    start_hold_s: f64,
    first_arrival: Option<f64>,
    target_s: f64,
    /// The delay most packets (95%) have: the packets carrying redundancy for a lost
    /// frame need only arrive within the recovery delay after this.
    typical_s: f64,
    /// Relative delay of the last in-order packet (for tests and diagnostics).
    last_relative: f64,
    shifts: u64,
}

impl DelayEstimator {
    pub(crate) fn new(
        max_delay_s: f64,
        half_life_s: f64,
        quantile: f64,
        reorder_budget: f64,
        start_delay_s: f64,
        start_hold_s: f64,
    ) -> Self {
        let buckets = ((max_delay_s / BUCKET_S).ceil() as usize).clamp(2, 10_001);
        Self {
            in_order: FadingHistogram::new(buckets),
            reordered: FadingHistogram::new(buckets),
            window: VecDeque::with_capacity(MAX_WINDOW_ENTRIES),
            reorder_rate: 0.0,
            packets: 0,
            last_arrival: None,
            half_life_s,
            quantile,
            reorder_budget,
            start_delay_s,
            start_hold_s,
            first_arrival: None,
            target_s: start_delay_s,
            typical_s: start_delay_s,
            last_relative: 0.0,
            shifts: 0,
        }
    }

    /// Forgets everything (a new stream).
    pub(crate) fn reset(&mut self) {
        self.in_order.clear();
        self.reordered.clear();
        self.window.clear();
        self.reorder_rate = 0.0;
        self.packets = 0;
        self.last_arrival = None;
        self.first_arrival = None;
        self.target_s = self.start_delay_s;
        self.typical_s = self.start_delay_s;
        self.last_relative = 0.0;
    }

    /// Forgets the transit history but keeps the histograms: the timeline moved (a new
    /// timestamp base) but the network did not.
    pub(crate) fn rebase(&mut self) {
        self.window.clear();
    }

    /// The smallest transit of the last two seconds.
    pub(crate) fn min_transit(&self) -> Option<f64> {
        self.window
            .iter()
            .map(|a| a.transit)
            .min_by(|a, b| a.total_cmp(b))
    }

    /// The current target delay above the fastest packet, in seconds.
    pub(crate) fn target(&self) -> f64 {
        self.target_s
    }

    /// The delay 95% of recent in-order packets stay within.
    pub(crate) fn typical(&self) -> f64 {
        self.typical_s
    }

    /// Delay steps detected so far.
    #[cfg(test)]
    pub(crate) fn shifts(&self) -> u64 {
        self.shifts
    }

    /// The share of recent packets that arrived reordered.
    #[cfg(test)]
    pub(crate) fn reorder_rate(&self) -> f64 {
        self.reorder_rate
    }

    /// Takes a packet that arrived at `at` with `transit`; `reordered` when a newer packet
    /// had already arrived.
    pub(crate) fn update(&mut self, at: f64, transit: f64, reordered: bool) {
        if !at.is_finite() || !transit.is_finite() {
            return;
        }
        let elapsed = self.last_arrival.map_or(0.0, |last| (at - last).max(0.0));
        let first = *self.first_arrival.get_or_insert(at);
        self.last_arrival = Some(self.last_arrival.map_or(at, |last| last.max(at)));
        let factor = 0.5f64.powf(elapsed / self.half_life_s);
        self.in_order.fade(factor);
        self.reordered.fade(factor);
        if self.in_order.weight == 1.0 {
            // Renormalised: weights recorded for retraction no longer match.
            self.window.iter_mut().for_each(|a| a.entered = None);
        }
        self.reorder_rate +=
            REORDER_RATE_ALPHA * (if reordered { 1.0 } else { 0.0 } - self.reorder_rate);
        self.packets += 1;

        while self
            .window
            .front()
            .is_some_and(|a| a.at < at - MIN_WINDOW_S || self.window.len() >= MAX_WINDOW_ENTRIES)
        {
            self.window.pop_front();
        }
        let min = self.min_transit().map_or(transit, |m| m.min(transit));
        let relative = transit - min;
        let entered = if reordered {
            self.reordered.add(relative);
            None
        } else {
            self.last_relative = relative;
            Some(self.in_order.add(relative))
        };
        self.window.push_back(Arrival {
            at,
            transit,
            entered,
            target_before: self.target_s,
        });
        if !reordered {
            self.detect_step(at);
        }
        self.target_s = self.compute_target();
        self.typical_s = if self.packets < MIN_PACKETS {
            self.start_delay_s
        } else {
            self.in_order.quantile(TYPICAL_QUANTILE).unwrap_or(0.0)
        };
        if at - first < self.start_hold_s {
            // The histogram has not seen the path yet: a target learnt from its first
            // packets is too low, and every later discovery of a slower packet would cost
            // a concealment.
            self.target_s = self.target_s.max(self.start_delay_s);
            self.typical_s = self.typical_s.max(self.start_delay_s);
        }
    }

    /// Re-bases the minimum when the last second's transits all sit well above it.
    fn detect_step(&mut self, now: f64) {
        let Some(oldest) = self.window.front() else {
            return;
        };
        if oldest.at > now - MIN_WINDOW_S + 0.25 {
            // Not enough history before the last second to tell a step from a start.
            return;
        }
        let split = now - STEP_WINDOW_S;
        let mut old_min = f64::INFINITY;
        let mut recent_min = f64::INFINITY;
        let mut threshold = None;
        for a in &self.window {
            if a.at < split {
                old_min = old_min.min(a.transit);
            } else {
                recent_min = recent_min.min(a.transit);
                threshold.get_or_insert(a.target_before.max(0.05));
            }
        }
        let threshold = threshold.unwrap_or(f64::INFINITY);
        if recent_min - old_min <= threshold || recent_min.is_nan() {
            return;
        }
        self.shifts += 1;
        while self.window.front().is_some_and(|a| a.at < split) {
            self.window.pop_front();
        }
        // Re-enter the last second against the new minimum.
        for a in self.window.iter_mut() {
            if let Some((bucket, weight)) = a.entered {
                self.in_order.retract(bucket, weight);
                let bucket = self.in_order.bucket_of(a.transit - recent_min);
                self.in_order.buckets[bucket] += weight;
                self.in_order.total += weight;
                a.entered = Some((bucket, weight));
            }
        }
    }

    fn compute_target(&self) -> f64 {
        if self.packets < MIN_PACKETS {
            return self.start_delay_s;
        }
        let main = self.in_order.quantile(self.quantile).unwrap_or(0.0);
        let reorder = if self.reorder_rate > self.reorder_budget {
            let q = 1.0 - self.reorder_budget / self.reorder_rate;
            self.reordered.quantile(q).unwrap_or(0.0)
        } else {
            0.0
        };
        main.max(reorder)
    }

    /// The relative delay of the last in-order packet.
    #[cfg(test)]
    pub(crate) fn last_relative(&self) -> f64 {
        self.last_relative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> DelayEstimator {
        DelayEstimator::new(2.0, 8.0, 0.97, 0.01, 0.06, 0.0)
    }

    /// A tiny deterministic generator for jitter in tests.
    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn no_jitter_targets_zero() {
        let mut e = estimator();
        for i in 0..500 {
            let at = i as f64 * 0.02 + 0.04;
            e.update(at, 0.04, false);
        }
        assert!(e.target() < 0.0015, "{}", e.target());
    }

    #[test]
    fn uniform_jitter_gives_the_quantile() {
        let mut e = estimator();
        let mut rng = 1;
        for i in 0..3000 {
            let media = i as f64 * 0.02;
            let transit = 0.04 + 0.1 * lcg(&mut rng);
            e.update(media + transit, transit, false);
        }
        // Uniform over 0..100 ms: the 97th percentile is 97 ms above the fastest.
        assert!((e.target() - 0.097).abs() < 0.008, "{}", e.target());
    }

    #[test]
    fn starts_at_the_start_delay() {
        let mut e = estimator();
        e.update(0.0, 0.0, false);
        assert_eq!(e.target(), 0.06);
    }

    #[test]
    fn forgets_old_jitter() {
        let mut e = estimator();
        let mut rng = 7;
        for i in 0..1500 {
            let media = i as f64 * 0.02;
            let transit = 0.04 + 0.2 * lcg(&mut rng);
            e.update(media + transit, transit, false);
        }
        let high = e.target();
        for i in 1500..4500 {
            let media = i as f64 * 0.02;
            e.update(media + 0.04, 0.04, false);
        }
        assert!(high > 0.15, "{high}");
        // 60 s of calm is 7.5 half-lives: the old jitter is below 1% of the mass.
        assert!(e.target() < 0.005, "{}", e.target());
    }

    #[test]
    fn reordered_packets_use_the_budget() {
        let mut e = estimator();
        let mut rng = 3;
        for i in 0..5000 {
            let media = i as f64 * 0.02;
            let reordered = lcg(&mut rng) < 0.05;
            let transit = if reordered { 0.085 } else { 0.04 } + 0.005 * lcg(&mut rng);
            e.update(media + transit, transit, reordered);
        }
        assert!(
            (e.reorder_rate() - 0.05).abs() < 0.03,
            "{}",
            e.reorder_rate()
        );
        // The in-order spread is 5 ms; the reordered packets sit 45-50 ms above the
        // fastest, and covering 80% of them keeps reorder loss at the 1% budget.
        assert!(e.target() > 0.045 && e.target() < 0.052, "{}", e.target());
    }

    #[test]
    fn a_delay_step_rebases_within_a_second_or_two() {
        let mut e = estimator();
        for i in 0..1000 {
            let media = i as f64 * 0.02;
            e.update(media + 0.04, 0.04, false);
        }
        for i in 1000..1200 {
            let media = i as f64 * 0.02;
            e.update(media + 0.24, 0.24, false);
        }
        assert_eq!(e.shifts(), 1);
        assert!(e.last_relative() < 0.001, "{}", e.last_relative());
        assert!(e.target() < 0.005, "{}", e.target());
    }

    #[test]
    fn slow_drift_is_not_a_step() {
        let mut e = estimator();
        for i in 0..30_000 {
            let media = i as f64 * 0.02;
            // Receiver clock 0.5% slow relative to the sender: transit grows 5 ms/s.
            let transit = 0.04 + media * 0.005;
            e.update(media + transit, transit, false);
        }
        assert_eq!(e.shifts(), 0);
        // Relative to the two-second minimum, the newest packet is 10 ms late.
        assert!(e.target() < 0.012, "{}", e.target());
    }

    #[test]
    fn garbage_times_do_not_break_it() {
        let mut e = estimator();
        e.update(f64::NAN, 0.0, false);
        e.update(0.0, f64::INFINITY, false);
        e.update(-5.0, -1e9, true);
        e.update(1e12, 1e12, false);
        assert!(e.target().is_finite());
    }
}
