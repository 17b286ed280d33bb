//! Application-limited region detection (GCC's `AlrDetector`): a byte budget fills at a
//! fraction of the estimate and empties with every byte sent; when the sender leaves most of
//! the budget unused it is application limited, and feedback then says little about the
//! link's capacity.

/// The budget fills at this fraction of the estimate (GCC: 0.65).
pub const BANDWIDTH_USAGE_RATIO: f64 = 0.65;
/// ALR starts when this share of the budget is unused (GCC: 0.80).
pub const START_BUDGET_RATIO: f64 = 0.80;
/// ALR ends when less than this share is unused (GCC: 0.50).
pub const STOP_BUDGET_RATIO: f64 = 0.50;
/// The budget holds at most this window of bytes at the fill rate (GCC: 500 ms).
pub const BUDGET_WINDOW_US: i64 = 500_000;

/// The detector.
#[derive(Debug, Clone)]
pub struct AlrDetector {
    target_bps: f64,
    bytes_remaining: f64,
    last_send_us: Option<i64>,
    alr_started_us: Option<i64>,
    alr_ended_us: Option<i64>,
}

impl AlrDetector {
    /// A detector for an estimate of `estimate_bps`.
    pub fn new(estimate_bps: u64) -> Self {
        Self {
            target_bps: estimate_bps as f64 * BANDWIDTH_USAGE_RATIO,
            bytes_remaining: 0.0,
            last_send_us: None,
            alr_started_us: None,
            alr_ended_us: None,
        }
    }

    fn max_bytes(&self) -> f64 {
        self.target_bps * BUDGET_WINDOW_US as f64 / 8e6
    }

    /// Follows a new estimate.
    pub fn set_estimate(&mut self, estimate_bps: u64) {
        self.target_bps = estimate_bps as f64 * BANDWIDTH_USAGE_RATIO;
        let max = self.max_bytes();
        self.bytes_remaining = self.bytes_remaining.clamp(-max, max);
    }

    /// Accounts a packet sent at `send_us`.
    pub fn on_bytes_sent(&mut self, bytes: usize, send_us: i64) {
        let max = self.max_bytes();
        if let Some(last) = self.last_send_us {
            let dt = (send_us - last).clamp(0, BUDGET_WINDOW_US) as f64;
            self.bytes_remaining = (self.bytes_remaining + self.target_bps * dt / 8e6).min(max);
        }
        self.last_send_us = Some(self.last_send_us.map_or(send_us, |l| l.max(send_us)));
        self.bytes_remaining = (self.bytes_remaining - bytes as f64).max(-max);
        let ratio = if max > 0.0 {
            self.bytes_remaining / max
        } else {
            0.0
        };
        if ratio > START_BUDGET_RATIO && self.alr_started_us.is_none() {
            self.alr_started_us = Some(send_us);
        } else if ratio < STOP_BUDGET_RATIO && self.alr_started_us.is_some() {
            self.alr_started_us = None;
            self.alr_ended_us = Some(send_us);
        }
    }

    /// Whether the sender is application limited.
    pub fn in_alr(&self) -> bool {
        self.alr_started_us.is_some()
    }

    /// When the current application-limited period started.
    pub fn started_us(&self) -> Option<i64> {
        self.alr_started_us
    }

    /// When the last application-limited period ended.
    pub fn ended_us(&self) -> Option<i64> {
        self.alr_ended_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_at(a: &mut AlrDetector, bps: i64, from: i64, to: i64) {
        let gap = 1000 * 8 * 1_000_000 / bps;
        let mut t = from;
        while t < to {
            a.on_bytes_sent(1000, t);
            t += gap;
        }
    }

    #[test]
    fn sending_at_the_estimate_is_not_alr() {
        let mut a = AlrDetector::new(1_000_000);
        send_at(&mut a, 1_000_000, 0, 2_000_000);
        assert!(!a.in_alr());
    }

    #[test]
    fn sending_a_fifth_is_alr_and_ends_when_sending_resumes() {
        let mut a = AlrDetector::new(1_000_000);
        send_at(&mut a, 200_000, 0, 2_000_000);
        assert!(a.in_alr());
        send_at(&mut a, 1_000_000, 2_000_000, 4_000_000);
        assert!(!a.in_alr());
        assert!(a.ended_us().is_some());
    }
}
