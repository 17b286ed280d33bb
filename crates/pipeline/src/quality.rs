//! Network quality levels and the MOS estimate: a simplified ITU-T G.107 E-model.
//!
//! The R factor is `R = (R0 - Is) - Id - Ie,eff` (G.107 §3, with the advantage factor A = 0):
//!
//! - `R0 - Is = 93.2`: G.107's default basic signal-to-noise ratio less the simultaneous
//!   impairments (Table 3 defaults).
//! - `Id`, the delay impairment, from the mouth-to-ear delay `d` in ms, by Cole and
//!   Rosenbluth's fit of G.107's delay terms (ACM SIGCOMM CCR 31(2), 2001):
//!   `Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)`.
//! - `Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)` (G.107 eq. 7-29), with `Ppl` the
//!   residual loss in percent (what is still lost after FEC, RED and DRED: the concealed
//!   share), `BurstR` the burst ratio (for a Gilbert model, mean burst × (1 - loss); 1 for
//!   random loss) and, for Opus, `Ie = 0` and `Bpl = 25.1`. G.107/G.113 list no Opus
//!   values: `Ie = 0` is our assumption that wideband Opus at ≥ 16 kbps is no worse than
//!   G.711 on the narrowband scale, and `Bpl = 25.1` is G.113 Appendix I's value for G.711
//!   with packet loss concealment (Opus's own concealment is at least as robust).
//!
//! MOS from R by G.107 Annex B: `MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7·10⁻⁶` for
//! `0 < R < 100` (1 below, 4.5 above). The best this model gives is R = 93.2, MOS 4.41.
//!
//! The quality level follows G.109's user-satisfaction bands of R: ≥ 80 excellent
//! ("satisfied"), ≥ 70 good, ≥ 60 poor, ≥ 50 bad, below very bad; "down" when nothing
//! arrives for [`DOWN_AFTER`], "unknown" before anything was measured.
//!
//! ```
//! use std::time::Duration;
//! use tincan_pipeline::quality::{NetworkQuality, mos_from_r, r_factor};
//! let clean = r_factor(0.0, 1.0, Duration::from_millis(80));
//! assert!(mos_from_r(clean) > 4.3);
//! assert_eq!(NetworkQuality::from_r(clean), NetworkQuality::Excellent);
//! let lossy = r_factor(0.10, 1.0, Duration::from_millis(300));
//! assert!(NetworkQuality::from_r(lossy) >= NetworkQuality::Bad);
//! ```

use std::time::Duration;

/// G.107's default `R0 - Is`.
pub const R_BASE: f64 = 93.2;
/// Equipment impairment of Opus (our assumption, see the module docs).
pub const OPUS_IE: f64 = 0.0;
/// Packet-loss robustness of Opus's concealment (G.113 Appendix I's G.711 with PLC).
pub const OPUS_BPL: f64 = 25.1;
/// Nothing received (RTP or RTCP) for this long and the link counts as down: five RTCP
/// intervals, RFC 3550 §6.3.5's timeout for a member.
pub const DOWN_AFTER: Duration = Duration::from_secs(5);

/// How good a link is, worst last (`Unknown` first: nothing measured yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum NetworkQuality {
    /// Nothing measured yet.
    #[default]
    Unknown,
    /// R ≥ 80 (MOS ≥ 4.0).
    Excellent,
    /// 70 ≤ R < 80 (MOS 3.6-4.0).
    Good,
    /// 60 ≤ R < 70 (MOS 3.1-3.6).
    Poor,
    /// 50 ≤ R < 60 (MOS 2.6-3.1).
    Bad,
    /// R < 50.
    VeryBad,
    /// Nothing arrives ([`DOWN_AFTER`]).
    Down,
}

impl NetworkQuality {
    /// The level of an R factor (G.109's bands).
    pub fn from_r(r: f64) -> Self {
        if r >= 80.0 {
            Self::Excellent
        } else if r >= 70.0 {
            Self::Good
        } else if r >= 60.0 {
            Self::Poor
        } else if r >= 50.0 {
            Self::Bad
        } else {
            Self::VeryBad
        }
    }
}

/// The E-model's R factor from the residual loss (0..=1, after recovery), the mean loss
/// burst length in packets (≥ 1; 1 for random loss) and the mouth-to-ear delay.
pub fn r_factor(residual_loss: f64, mean_burst: f64, mouth_to_ear: Duration) -> f64 {
    let d = mouth_to_ear.as_secs_f64() * 1000.0;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = (residual_loss.clamp(0.0, 1.0) * 100.0).max(0.0);
    let loss = residual_loss.clamp(0.0, 1.0);
    // BurstR = mean burst × (1 - loss) for a Gilbert model, at least 1 (random).
    let burst_r = (mean_burst.max(1.0) * (1.0 - loss)).max(1.0);
    // G.107's formula passes 95 when Ppl (1 - 1/BurstR) > Bpl (long bursts of heavy loss);
    // 95 is its value for total loss, and no loss can be worse.
    let ie_eff = (OPUS_IE + (95.0 - OPUS_IE) * ppl / (ppl / burst_r + OPUS_BPL)).min(95.0);
    R_BASE - id - ie_eff
}

/// MOS (1-4.5) from R, G.107 Annex B (rising with R from R ≈ 6.5 on).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 || r.is_nan() {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        // The cubic dips just below 1 for R under about 6.5; G.107 clamps it.
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_points() {
        // No loss, short delay: the model's ceiling less a small delay term.
        let r = r_factor(0.0, 1.0, Duration::ZERO);
        assert!((r - 93.2).abs() < 1e-9);
        assert!((mos_from_r(r) - 4.41).abs() < 0.01);
        // 2% random residual loss costs 95·2/(2+25.1) ≈ 7 points.
        let r2 = r_factor(0.02, 1.0, Duration::ZERO);
        assert!((r - r2 - 7.01).abs() < 0.05, "{r2}");
        // 400 ms of delay: 9.6 + 24.5 points.
        let r3 = r_factor(0.0, 1.0, Duration::from_millis(400));
        assert!((r - r3 - 34.1).abs() < 0.1, "{r3}");
        // Bursts hurt more than random loss at the same rate.
        assert!(r_factor(0.05, 3.0, Duration::ZERO) < r_factor(0.05, 1.0, Duration::ZERO));
    }

    proptest! {
        #[test]
        fn mos_is_bounded_and_monotonic(
            loss in 0.0f64..1.0, extra in 0.0f64..0.5, burst in 1.0f64..10.0, ms in 0u64..2000,
        ) {
            let delay = Duration::from_millis(ms);
            let r = r_factor(loss, burst, delay);
            let mos = mos_from_r(r);
            prop_assert!((1.0..=4.5).contains(&mos));
            prop_assert!((R_BASE - 95.0 - 0.024 * 2000.0 - 0.11 * 1823.0..=R_BASE).contains(&r));
            // More delay is never better; more random loss is never better. (At a fixed
            // mean burst, more loss lowers the burst ratio, so only random loss is
            // monotonic in the loss alone.)
            prop_assert!(r_factor(loss, burst, delay + Duration::from_millis(10)) <= r + 1e-9);
            let random = r_factor(loss, 1.0, delay);
            let worse = r_factor((loss + extra).min(1.0), 1.0, delay);
            prop_assert!(worse <= random + 1e-9);
            prop_assert!(r <= random + 1e-9, "bursts are never better than random loss");
            if worse > 10.0 {
                prop_assert!(mos_from_r(worse) <= mos_from_r(random) + 1e-9);
            }
        }
    }
}
