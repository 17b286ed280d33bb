//! Digital automatic gain control: brings speech towards a target level, slowly and only
//! while someone speaks, with a peak limiter after the gain.
//!
//! The design follows WebRTC's AGC2 in spirit: the speech level is estimated only on frames
//! the voice activity detector marks as speech, so noise and pauses neither raise nor lower
//! it; the gain moves towards `target - level` at a bounded rate (slower up than down, so a
//! loud burst is tamed quickly but a pause never makes the gain climb); and a limiter keeps
//! peaks under -1 dBFS.

use crate::level::dbov;

/// Speech level the gain aims for, dBov (RMS over speech frames).
pub const DEFAULT_TARGET_DBOV: f32 = -20.0;
/// Most gain applied, dB: enough for a quiet headset microphone, not so much that a distant
/// talker's room noise is raised to speech level.
pub const DEFAULT_MAX_GAIN_DB: f32 = 30.0;
/// Most attenuation, dB (as a negative gain).
pub const DEFAULT_MIN_GAIN_DB: f32 = -20.0;
/// Gain rise per 10 ms frame while speaking, dB: 3 dB/s, slow enough not to be heard.
const RISE_DB_PER_FRAME: f32 = 0.03;
/// Gain fall per 10 ms frame while speaking, dB: 20 dB/s, to tame a shout within a word.
const FALL_DB_PER_FRAME: f32 = 0.2;
/// Weight of the old speech-level estimate per speech frame (time constant 0.5 s).
const LEVEL_SMOOTHING: f64 = 0.98;
/// Frames quieter than this are not speech for the estimate whatever the VAD says.
const LEVEL_FLOOR_DBOV: f64 = -70.0;
/// Peak ceiling of the limiter, -1 dBFS.
const LIMITER_CEILING: f32 = 0.891;
/// Limiter gain recovery per frame (factor): about 10 dB/s.
const LIMITER_RELEASE: f32 = 1.012;
/// Samples over which a gain change is ramped, so that gain steps do not click.
const RAMP_SAMPLES: usize = 96;

/// Digital AGC with limiter over frames of interleaved `f32` samples in ±1.
#[derive(Debug, Clone)]
pub struct AutomaticGainControl {
    target_dbov: f32,
    min_gain_db: f32,
    max_gain_db: f32,
    gain_db: f32,
    applied_gain: f32,
    limiter_gain: f32,
    /// Mean square of speech frames, smoothed; `None` until the first speech frame.
    speech_level: Option<f64>,
}

impl AutomaticGainControl {
    /// An AGC aiming at `target_dbov` with gain kept within `min_gain_db..=max_gain_db`
    /// (callers check the ranges; see [`VoiceConfig`](crate::VoiceConfig)). It starts at
    /// 0 dB.
    pub fn new(target_dbov: f32, min_gain_db: f32, max_gain_db: f32) -> Self {
        Self {
            target_dbov,
            min_gain_db,
            max_gain_db,
            gain_db: 0.0,
            applied_gain: 1.0,
            limiter_gain: 1.0,
            speech_level: None,
        }
    }

    /// Current gain in dB (before the limiter).
    pub fn gain_db(&self) -> f32 {
        self.gain_db
    }

    /// Estimated speech level in dBov, once speech was seen.
    pub fn speech_level_dbov(&self) -> Option<f64> {
        self.speech_level.map(dbov)
    }

    /// Applies the gain to one frame in place. `speaking` is the voice activity of this
    /// frame: only speech frames update the level estimate and move the gain.
    pub fn process(&mut self, frame: &mut [f32], speaking: bool) {
        if frame.is_empty() {
            return;
        }
        let mean_square = crate::level::energy(frame) / frame.len() as f64;
        if speaking && dbov(mean_square) > LEVEL_FLOOR_DBOV {
            let level = match self.speech_level {
                Some(level) => LEVEL_SMOOTHING * level + (1.0 - LEVEL_SMOOTHING) * mean_square,
                None => mean_square,
            };
            self.speech_level = Some(level);
            let wanted = (f64::from(self.target_dbov) - dbov(level)) as f32;
            let wanted = wanted.clamp(self.min_gain_db, self.max_gain_db);
            let step = (wanted - self.gain_db).clamp(-FALL_DB_PER_FRAME, RISE_DB_PER_FRAME);
            self.gain_db = (self.gain_db + step).clamp(self.min_gain_db, self.max_gain_db);
        }
        let gain = 10f32.powf(self.gain_db / 20.0);
        let peak = frame
            .iter()
            .fold(0.0f32, |peak, &s| peak.max(s.abs()))
            .max(f32::MIN_POSITIVE);
        // Instant attack for this frame's peak, slow release afterwards.
        let needed = (LIMITER_CEILING / (peak * gain)).min(1.0);
        self.limiter_gain = (self.limiter_gain * LIMITER_RELEASE).min(1.0).min(needed);
        let target = gain * self.limiter_gain;
        let start = self.applied_gain;
        let ramp = RAMP_SAMPLES.min(frame.len());
        for (n, sample) in frame.iter_mut().enumerate() {
            let g = if n < ramp {
                start + (target - start) * (n + 1) as f32 / ramp as f32
            } else {
                target
            };
            // The ramp from a higher gain may overshoot for a few samples: clamp those.
            *sample = (*sample * g).clamp(-LIMITER_CEILING, LIMITER_CEILING);
        }
        self.applied_gain = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(amplitude: f32, frame: usize) -> Vec<f32> {
        (0..480)
            .map(|n| amplitude * ((frame * 480 + n) as f32 * 0.06).sin())
            .collect()
    }

    #[test]
    fn quiet_speech_is_raised_towards_the_target() {
        let mut agc = AutomaticGainControl::new(-20.0, -20.0, 30.0);
        // A sine of amplitude 0.01 is -43 dBov: 23 dB below the target.
        for k in 0..1500 {
            agc.process(&mut tone(0.01, k), true);
        }
        assert!((agc.gain_db() - 23.0).abs() < 0.5, "{}", agc.gain_db());
        let mut frame = tone(0.01, 1500);
        agc.process(&mut frame, true);
        let level = dbov(crate::level::energy(&frame) / 480.0);
        assert!((level + 20.0).abs() < 0.6, "{level}");
    }

    #[test]
    fn no_boost_without_speech() {
        let mut agc = AutomaticGainControl::new(-20.0, -20.0, 30.0);
        for k in 0..1000 {
            agc.process(&mut tone(0.001, k), false);
        }
        assert_eq!(agc.gain_db(), 0.0);
        assert_eq!(agc.speech_level_dbov(), None);
    }

    #[test]
    fn limiter_keeps_peaks_under_the_ceiling() {
        let mut agc = AutomaticGainControl::new(-3.0, -20.0, 30.0);
        for k in 0..500 {
            let mut frame = tone(if k % 50 == 0 { 1.0 } else { 0.3 }, k);
            agc.process(&mut frame, true);
            assert!(frame.iter().all(|s| s.abs() <= LIMITER_CEILING));
        }
    }

    proptest! {
        /// Whatever the input and voice activity: the gain stays in range, moves by at most
        /// the slew per frame and only on speech frames, and the output stays finite and
        /// under the ceiling.
        #[test]
        fn gain_is_bounded_and_moves_only_on_speech(
            frames in proptest::collection::vec((-60.0f32..0.0, any::<bool>()), 1..300),
        ) {
            let mut agc = AutomaticGainControl::new(-20.0, -10.0, 20.0);
            for (k, (level_db, speaking)) in frames.into_iter().enumerate() {
                let before = agc.gain_db();
                let mut frame = tone(10f32.powf(level_db / 20.0), k);
                agc.process(&mut frame, speaking);
                let after = agc.gain_db();
                prop_assert!((-10.0..=20.0).contains(&after));
                if speaking {
                    prop_assert!(after - before <= RISE_DB_PER_FRAME + 1e-5);
                    prop_assert!(before - after <= FALL_DB_PER_FRAME + 1e-5);
                } else {
                    prop_assert_eq!(after, before);
                }
                prop_assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= LIMITER_CEILING));
            }
        }
    }
}
