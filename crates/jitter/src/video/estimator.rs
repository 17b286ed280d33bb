//! Frame-delay jitter estimation that separates delay caused by frame size from random
//! network jitter (the idea of libwebrtc's `JitterEstimator`, written anew).
//!
//! Each complete frame gives one measurement: how much later it arrived after the
//! previous frame than their RTP timestamps say, `d = Δarrival - Δtimestamp` (ms). The
//! model is `d = slope · Δsize + offset + noise`: a frame larger than its predecessor
//! takes `slope` ms per extra byte longer to cross the bottleneck (slope is 1 / link
//! capacity), `offset` follows slow queue build-up, and the noise is network jitter. A
//! two-state Kalman filter tracks `slope` and `offset`; the noise variance is an
//! exponentially weighted mean of the squared residuals, with outliers clamped so one
//! spike raises it in steps instead of at once.
//!
//! The delay a receiver needs is then `slope · (max size - average size)` (time for the
//! largest recent frame to drain beyond a typical one) plus a noise margin that covers
//! 99 % of Gaussian arrival noise.

/// Measurements more than this many standard deviations off are clamped.
const OUTLIER_SIGMAS: f64 = 4.0;
/// Weight of the old noise variance per measurement (time constant ~50 frames).
const NOISE_ALPHA: f64 = 0.98;
/// Floor of the noise variance (ms²): below 1 ms the estimate is meaningless anyway.
const MIN_NOISE_VAR: f64 = 1.0;
/// Starting noise variance (ms²).
const INITIAL_NOISE_VAR: f64 = 4.0;
/// Starting slope: a 512 kbit/s link, 64 bytes per ms.
const INITIAL_SLOPE: f64 = 1.0 / 64.0;
/// Slope bounds: 1 Gbit/s to 8 kbit/s.
const SLOPE_RANGE: (f64, f64) = (1.0 / 125_000.0, 1.0);
/// Process noise of slope and offset: how fast they may drift per frame.
const PROCESS_NOISE: [f64; 2] = [2.5e-10, 1e-10];
/// Weight of the old average frame size per frame.
const SIZE_ALPHA: f64 = 0.97;
/// Per-frame decay of the peak frame size: half-life of about 70 frames.
const MAX_SIZE_DECAY: f64 = 0.99;
/// Frames larger than this many times the average (keyframes) do not move the average.
const LARGE_FRAME_RATIO: f64 = 2.5;
/// Quantile factor of the noise margin: z(0.99) for a Gaussian.
const NOISE_QUANTILE: f64 = 2.33;

/// The estimator's state.
#[derive(Debug, Clone)]
pub(crate) struct JitterEstimator {
    slope: f64,
    offset: f64,
    covariance: [[f64; 2]; 2],
    noise_var: f64,
    avg_size: f64,
    max_size: f64,
    prev_size: Option<f64>,
}

impl Default for JitterEstimator {
    fn default() -> Self {
        Self {
            slope: INITIAL_SLOPE,
            offset: 0.0,
            covariance: [[1e-4, 0.0], [0.0, 1e2]],
            noise_var: INITIAL_NOISE_VAR,
            avg_size: 0.0,
            max_size: 0.0,
            prev_size: None,
        }
    }
}

impl JitterEstimator {
    /// Takes one frame: its delay variation against the previous frame (`None` for the
    /// first after a gap in the measurement chain) and its size in bytes.
    pub(crate) fn update(&mut self, delay_ms: Option<f64>, size: usize) {
        let size = size as f64;
        if self.prev_size.is_none() && self.avg_size == 0.0 {
            self.avg_size = size;
        } else if size < LARGE_FRAME_RATIO * self.avg_size {
            self.avg_size = SIZE_ALPHA * self.avg_size + (1.0 - SIZE_ALPHA) * size;
        }
        self.max_size = (self.max_size * MAX_SIZE_DECAY).max(size);
        let prev_size = self.prev_size.replace(size);
        let (Some(delay), Some(prev)) = (delay_ms, prev_size) else {
            return;
        };
        if !delay.is_finite() {
            return;
        }
        let dsize = size - prev;
        let residual = delay - (self.slope * dsize + self.offset);
        // A large size increase is what makes the slope observable: its residual is model
        // error (a wrong capacity), not noise, so it updates the filter in full and
        // leaves the noise variance alone. The frame after a large one says little: it
        // queued behind it, which the model does not describe, so it is skipped. Other
        // residuals are clamped as outliers.
        let large = LARGE_FRAME_RATIO * self.avg_size.max(1.0);
        if dsize < -large {
            return;
        }
        let informative = dsize > large;
        let clamped = if informative {
            residual
        } else {
            let bound = OUTLIER_SIGMAS * self.noise_var.sqrt();
            let clamped = residual.clamp(-bound, bound);
            self.noise_var = (NOISE_ALPHA * self.noise_var
                + (1.0 - NOISE_ALPHA) * clamped * clamped)
                .max(MIN_NOISE_VAR);
            clamped
        };

        // Kalman update with observation vector x = [dsize, 1].
        let p = self.covariance;
        let px = [p[0][0] * dsize + p[0][1], p[1][0] * dsize + p[1][1]];
        let innovation_var = dsize * px[0] + px[1] + self.noise_var;
        if !(innovation_var.is_finite() && innovation_var > 0.0) {
            *self = Self::default();
            return;
        }
        let gain = [px[0] / innovation_var, px[1] / innovation_var];
        self.slope = (self.slope + gain[0] * clamped).clamp(SLOPE_RANGE.0, SLOPE_RANGE.1);
        self.offset += gain[1] * clamped;
        // P = (I - K xᵀ) P + Q, with xᵀP = pxᵀ by symmetry.
        let mut next = [[0.0; 2]; 2];
        for (i, row) in next.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = p[i][j] - gain[i] * px[j];
            }
        }
        next[0][0] += PROCESS_NOISE[0];
        next[1][1] += PROCESS_NOISE[1];
        // Keep it symmetric and positive so rounding never makes the filter diverge.
        let off = 0.5 * (next[0][1] + next[1][0]);
        next[0][1] = off;
        next[1][0] = off;
        next[0][0] = next[0][0].max(1e-12);
        next[1][1] = next[1][1].max(1e-9);
        self.covariance = next;
    }

    /// The jitter delay the receiver needs, in ms.
    pub(crate) fn estimate_ms(&self) -> f64 {
        let size_term = self.slope * (self.max_size - self.avg_size).max(0.0);
        // The measurement noise is the difference of two frames' arrival noise.
        let noise_term = NOISE_QUANTILE * (self.noise_var / 2.0).sqrt();
        size_term + noise_term
    }

    /// Estimated bottleneck capacity in bytes per ms.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> f64 {
        1.0 / self.slope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_link_capacity_from_frame_size_changes() {
        // 250 bytes/ms link; sizes alternate so Δsize is informative.
        let mut estimator = JitterEstimator::default();
        for i in 0..600 {
            let size = if i % 2 == 0 { 3_000 } else { 8_000 };
            let dsize = if i % 2 == 0 { -5_000.0 } else { 5_000.0 };
            estimator.update(Some(dsize / 250.0), size);
        }
        let capacity = estimator.capacity();
        assert!((capacity - 250.0).abs() < 25.0, "capacity {capacity}");
    }

    #[test]
    fn noise_raises_the_estimate_and_decays() {
        let mut estimator = JitterEstimator::default();
        for _ in 0..200 {
            estimator.update(Some(0.0), 1000);
        }
        let calm = estimator.estimate_ms();
        for i in 0..200 {
            let delay = if i % 2 == 0 { 30.0 } else { -30.0 };
            estimator.update(Some(delay), 1000);
        }
        let noisy = estimator.estimate_ms();
        assert!(noisy > calm + 30.0, "calm {calm} noisy {noisy}");
        for _ in 0..500 {
            estimator.update(Some(0.0), 1000);
        }
        assert!(estimator.estimate_ms() < calm + 2.0);
    }

    #[test]
    fn non_finite_input_does_not_poison_the_state() {
        let mut estimator = JitterEstimator::default();
        estimator.update(Some(f64::NAN), 10);
        estimator.update(Some(f64::INFINITY), 10);
        estimator.update(Some(1e300), usize::MAX);
        assert!(estimator.estimate_ms().is_finite());
    }
}
