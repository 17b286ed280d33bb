//! The loss-based controller (GCC's `SendSideBandwidthEstimation`, the classic version):
//! below 2% loss the rate may grow, above 10% it is cut by half the loss fraction, in
//! between it holds.
//!
//! It differs from GCC in form, not in effect: GCC keeps a loss-based target that it caps by
//! the delay-based estimate on every update; here the loss controller keeps a *cap* that
//! exists only after heavy loss, grows by 8% a second while loss is low, and disappears once
//! it exceeds the delay-based estimate. The minimum of the two is the same.

/// Below this loss fraction the cap grows (GCC: 2%).
pub const LOW_LOSS: f64 = 0.02;
/// Above this loss fraction the rate is cut (GCC: 10%).
pub const HIGH_LOSS: f64 = 0.10;
/// Growth of the cap per second at low loss (GCC: 8%).
pub const INCREASE_PER_SECOND: f64 = 0.08;
/// Extra growth per update at low loss (GCC: 1 kbps).
pub const INCREASE_OFFSET_BPS: f64 = 1_000.0;
/// A cut multiplies the rate by (1 − this × loss fraction) (GCC: 0.5).
pub const LOSS_DECREASE_WEIGHT: f64 = 0.5;
/// Fewest packets a loss fraction is computed over (GCC: 20).
pub const MIN_PACKETS: u64 = 20;
/// Extra time added to the RTT between two loss cuts (GCC: 300 ms).
pub const DECREASE_INTERVAL_EXTRA_US: i64 = 300_000;
/// Longest time step of one increase, µs.
pub const MAX_INCREASE_STEP_US: i64 = 1_000_000;

/// The loss controller.
#[derive(Debug, Clone, Default)]
pub struct LossController {
    lost: u64,
    received: u64,
    loss_fraction: f64,
    cap_bps: Option<f64>,
    last_decrease_us: Option<i64>,
    last_update_us: Option<i64>,
}

impl LossController {
    /// A controller that has seen no loss.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last measured loss fraction, 0..=1.
    pub fn loss_fraction(&self) -> f64 {
        self.loss_fraction
    }

    /// The cap the loss puts on the rate, if any.
    pub fn cap_bps(&self) -> Option<u64> {
        self.cap_bps.map(|c| c as u64)
    }

    /// Counts packets reported lost and received.
    pub fn on_packets(&mut self, lost: u64, received: u64) {
        self.lost += lost;
        self.received += received;
    }

    /// A packet first reported lost was reported received later: undo its loss.
    pub fn on_recovered(&mut self) {
        self.lost = self.lost.saturating_sub(1);
        self.received += 1;
    }

    /// Updates after a feedback, given the current target and delay-based estimate.
    pub fn update(&mut self, target_bps: u64, delay_based_bps: u64, rtt_us: i64, now_us: i64) {
        let total = self.lost + self.received;
        if total < MIN_PACKETS {
            return;
        }
        let last_update = self.last_update_us.replace(now_us).unwrap_or(now_us);
        self.loss_fraction = self.lost as f64 / total as f64;
        self.lost = 0;
        self.received = 0;
        let target = target_bps as f64;
        if self.loss_fraction > HIGH_LOSS {
            let interval = rtt_us.max(0) + DECREASE_INTERVAL_EXTRA_US;
            if self
                .last_decrease_us
                .is_none_or(|last| now_us - last >= interval)
            {
                let base = self.cap_bps.map_or(target, |c| c.min(target));
                self.cap_bps = Some(base * (1.0 - LOSS_DECREASE_WEIGHT * self.loss_fraction));
                self.last_decrease_us = Some(now_us);
            }
        } else if self.loss_fraction < LOW_LOSS
            && let Some(cap) = self.cap_bps
        {
            let dt = (now_us - last_update).clamp(0, MAX_INCREASE_STEP_US) as f64 / 1e6;
            let grown = cap * (1.0 + INCREASE_PER_SECOND).powf(dt) + INCREASE_OFFSET_BPS * dt;
            self.cap_bps = (grown < delay_based_bps as f64).then_some(grown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_loss_cuts_by_half_the_fraction() {
        let mut l = LossController::new();
        l.on_packets(20, 80);
        l.update(1_000_000, 1_000_000, 100_000, 0);
        assert!((l.loss_fraction() - 0.2).abs() < 1e-9);
        assert_eq!(l.cap_bps(), Some(900_000));
        // Not again within RTT + 300 ms.
        l.on_packets(20, 80);
        l.update(1_000_000, 1_000_000, 100_000, 100_000);
        assert_eq!(l.cap_bps(), Some(900_000));
    }

    #[test]
    fn moderate_loss_holds_and_low_loss_lifts_the_cap() {
        let mut l = LossController::new();
        l.on_packets(20, 80);
        l.update(1_000_000, 1_000_000, 100_000, 0);
        l.on_packets(5, 95);
        l.update(1_000_000, 1_000_000, 100_000, 1_000_000);
        assert_eq!(l.cap_bps(), Some(900_000));
        for i in 2..10 {
            l.on_packets(0, 100);
            l.update(1_000_000, 1_000_000, 100_000, i * 1_000_000);
        }
        assert_eq!(l.cap_bps(), None);
    }

    #[test]
    fn too_few_packets_say_nothing() {
        let mut l = LossController::new();
        l.on_packets(5, 5);
        l.update(1_000_000, 1_000_000, 100_000, 0);
        assert_eq!(l.cap_bps(), None);
        assert_eq!(l.loss_fraction(), 0.0);
    }
}
