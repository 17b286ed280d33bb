//! Noise-adaptive suppression: how much of RNNoise's output to use, from the estimated
//! signal-to-noise ratio of the input.
//!
//! RNNoise dulls clean speech a little (it applies its band gains even when there is no noise
//! to remove), so full suppression is only worth it when there is noise. The
//! [`SuppressionControl`] estimates, per 10 ms frame:
//!
//! - the **noise floor**: minimum statistics of the frame power averaged over 30 ms
//!   (so the minimum of a fluctuating noise, such as brown noise's slow swings, is not far
//!   below its mean): the lowest smoothed level of the last 3.2 s (eight sub-windows of
//!   400 ms, so it follows a rising floor within 3.2 s and a falling one at once); gaps
//!   between words reach the floor, while 1.6 s of dense speech could hold none;
//! - the **speech level**: the mean level (dB) of frames RNNoise calls speech and that stand
//!   above the floor; until speech is heard it is the nominal active speech level of
//!   [`NOMINAL_SPEECH_DBOV`] (ITU-T P.56's -26 dBov);
//!
//! and maps their difference, the estimated SNR, to a suppression strength target: full at
//! or below [`AdaptiveConfig::full_snr_db`], none at or above
//! [`AdaptiveConfig::clean_snr_db`], linear in between. The strength follows its target with
//! a time constant of about [`AdaptiveConfig::smoothing_ms`], so it never pumps with the
//! speech.
//!
//! Everything is a handful of floats per frame: no allocation, no added delay.

use crate::minimum::{MinimumStatistics, power_db};

/// The nominal active speech level assumed until speech has been heard (ITU-T P.56).
pub const NOMINAL_SPEECH_DBOV: f32 = -26.0;
/// Per-frame weight of a speech frame in the speech level (about 200 ms).
const SPEECH_WEIGHT: f32 = 0.05;
/// RNNoise probability above which a frame counts as speech for the level estimates.
const SPEECH_PROBABILITY: f32 = 0.5;
/// A speech frame must stand this far above the noise floor to update the speech level.
const SPEECH_ABOVE_NOISE_DB: f32 = 3.0;
/// Settings of the noise-adaptive suppression (on by default in
/// [`VoiceConfig`](crate::VoiceConfig)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    /// Estimated SNR (dB) at or below which the suppression is full.
    pub full_snr_db: f32,
    /// Estimated SNR (dB) at or above which the suppression is off (clean input).
    pub clean_snr_db: f32,
    /// Time constant of the strength's smoothing, ms.
    pub smoothing_ms: f32,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            full_snr_db: 20.0,
            clean_snr_db: 35.0,
            smoothing_ms: 300.0,
        }
    }
}

impl AdaptiveConfig {
    /// Checks the ranges: `0 <= full_snr_db < clean_snr_db <= 60`, smoothing 10..=10 000 ms.
    pub(crate) fn check(&self) -> Result<(), (&'static str, f32, &'static str)> {
        if !(0.0..=60.0).contains(&self.full_snr_db) {
            return Err(("adaptive full SNR dB", self.full_snr_db, "0..=60"));
        }
        if !(self.clean_snr_db > self.full_snr_db && self.clean_snr_db <= 60.0) {
            return Err((
                "adaptive clean SNR dB",
                self.clean_snr_db,
                "above the full SNR, up to 60",
            ));
        }
        if !(10.0..=10_000.0).contains(&self.smoothing_ms) {
            return Err(("adaptive smoothing ms", self.smoothing_ms, "10..=10000"));
        }
        Ok(())
    }
}

/// The per-frame estimator and controller described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct SuppressionControl {
    config: AdaptiveConfig,
    /// Per-frame smoothing weight of the strength.
    strength_weight: f32,
    noise: MinimumStatistics,
    speech_db: f32,
    started: bool,
    strength: f32,
}

/// What [`SuppressionControl::update`] decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuppressionDecision {
    /// Share of the suppressed signal (0..=1), before the user's strength.
    pub strength: f32,
    /// Estimated SNR, dB.
    pub snr_db: f32,
}

impl SuppressionControl {
    /// A controller for 10 ms frames.
    pub fn new(config: AdaptiveConfig) -> Self {
        let smoothing_ms = if config.smoothing_ms.is_finite() {
            config.smoothing_ms.max(10.0)
        } else {
            300.0
        };
        Self {
            config,
            strength_weight: 10.0 / smoothing_ms,
            noise: MinimumStatistics::new(),
            speech_db: NOMINAL_SPEECH_DBOV,
            started: false,
            strength: 1.0,
        }
    }

    /// Estimated noise floor, dB relative to full scale.
    pub fn noise_db(&self) -> f32 {
        self.noise.floor_db()
    }

    /// Estimated speech level, dB relative to full scale.
    pub fn speech_db(&self) -> f32 {
        self.speech_db
    }

    /// Takes one frame's mean square (±1 samples) and RNNoise's speech probability; returns
    /// the strength to apply.
    pub fn update(&mut self, mean_square: f64, probability: f32) -> SuppressionDecision {
        let mean_square = if mean_square.is_finite() {
            mean_square.clamp(0.0, 1e6)
        } else {
            0.0
        };
        let level = power_db(mean_square);
        self.noise.update(mean_square);
        let noise_db = self.noise.floor_db();
        let probability = if probability.is_finite() {
            probability.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let speech = probability >= SPEECH_PROBABILITY;
        if speech && level > noise_db + SPEECH_ABOVE_NOISE_DB {
            self.speech_db += SPEECH_WEIGHT * (level - self.speech_db);
        }
        let snr_db = (self.speech_db - noise_db).clamp(-20.0, 100.0);
        let target = ((self.config.clean_snr_db - snr_db)
            / (self.config.clean_snr_db - self.config.full_snr_db))
            .clamp(0.0, 1.0);
        if self.started {
            self.strength += self.strength_weight.min(1.0) * (target - self.strength);
        } else {
            self.strength = target;
            self.started = true;
        }
        self.strength = self.strength.clamp(0.0, 1.0);

        SuppressionDecision {
            strength: self.strength,
            snr_db,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(db: f32) -> f64 {
        10f64.powf(f64::from(db) / 10.0)
    }

    /// A talker at -26 dBov over a floor at `noise_db`: 200 ms pauses, 300 ms words.
    fn talk(control: &mut SuppressionControl, noise_db: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|k| {
                let speaking = k % 50 >= 20;
                let (level, p) = if speaking {
                    (10.0 * (ms(-26.0) + ms(noise_db)).log10() as f32, 0.95)
                } else {
                    (noise_db, 0.05)
                };
                control.update(ms(level), p).strength
            })
            .collect()
    }

    #[test]
    fn clean_input_keeps_the_strength_low() {
        for floor in [-100.0, -75.0, -65.0] {
            let mut control = SuppressionControl::new(AdaptiveConfig::default());
            let strengths = talk(&mut control, floor, 1000);
            assert!(strengths.iter().all(|&s| s < 0.05), "floor {floor}");
        }
    }

    #[test]
    fn noisy_input_gets_full_strength() {
        for noise in [-31.0, -36.0] {
            let mut control = SuppressionControl::new(AdaptiveConfig::default());
            let strengths = talk(&mut control, noise, 1000);
            assert!(strengths[20..].iter().all(|&s| s > 0.95), "noise {noise}");
            assert!((control.noise_db() - noise).abs() < 2.0);
        }
    }

    #[test]
    fn noise_arriving_mid_call_raises_the_strength_smoothly() {
        let mut control = SuppressionControl::new(AdaptiveConfig::default());
        let mut strengths = talk(&mut control, -80.0, 500);
        strengths.extend(talk(&mut control, -35.0, 1500));
        assert!(strengths[499] < 0.05);
        assert!(*strengths.last().unwrap() > 0.95);
        // 300 ms smoothing: at most a 1/30 step per frame.
        assert!(strengths.windows(2).all(|w| (w[1] - w[0]).abs() <= 0.034));
    }

    proptest! {
        #[test]
        fn decisions_are_finite_and_bounded(
            frames in prop::collection::vec((any::<f64>(), any::<f32>()), 1..300),
        ) {
            let mut control = SuppressionControl::new(AdaptiveConfig::default());
            for (mean_square, p) in frames {
                let d = control.update(mean_square, p);
                prop_assert!(d.strength.is_finite() && (0.0..=1.0).contains(&d.strength));
                prop_assert!(d.snr_db.is_finite());
                prop_assert!(control.noise_db().is_finite() && control.speech_db().is_finite());
            }
        }
    }
}
