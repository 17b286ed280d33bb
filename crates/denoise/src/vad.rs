//! Voice activity from RNNoise's per-frame speech probability: smoothed, with hysteresis and
//! a hangover so that the flag does not flicker between words.

/// Smoothing weight of the previous value: RNNoise's probability jumps from frame to frame
/// (a single noisy frame can read 0.9), and one-pole smoothing over about two frames removes
/// those spikes without delaying an onset by more than a frame.
const SMOOTHING: f32 = 0.5;
/// Smoothed probability at which silence turns into speech. RNNoise reads 0.4-0.65 for the
/// first second of white noise and above 0.9 in voiced speech, so the onset sits between.
pub const DEFAULT_ONSET: f32 = 0.75;
/// Smoothed probability that keeps speech going (and restarts the hangover). Lower than the
/// onset: hysteresis, so a talker's quieter syllables do not end the segment.
pub const DEFAULT_CONTINUE: f32 = 0.45;
/// 10 ms frames that speech lasts after the probability last held: 200 ms, about the gap
/// between words, so a sentence is one segment.
pub const DEFAULT_HANGOVER_FRAMES: u32 = 20;

/// Voice activity detector over a stream of 10 ms speech probabilities.
///
/// States: silent, or speaking with a hangover count. A silent detector starts speaking when
/// the smoothed probability reaches the onset threshold; a speaking one resets its hangover
/// whenever the smoothed probability is at least the continue threshold, and falls silent
/// after `hangover_frames` frames below it.
#[derive(Debug, Clone)]
pub struct VoiceActivityDetector {
    smoothed: f32,
    speaking: bool,
    frames_left: u32,
    hangover_frames: u32,
}

impl VoiceActivityDetector {
    /// A silent detector whose speech outlasts the probability by `hangover_frames` frames.
    pub fn new(hangover_frames: u32) -> Self {
        Self {
            smoothed: 0.0,
            speaking: false,
            frames_left: 0,
            hangover_frames,
        }
    }

    /// Takes one frame's speech probability (NaN reads as 0, values are clamped to 0..=1)
    /// and returns whether someone is speaking.
    pub fn update(&mut self, probability: f32) -> bool {
        let probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        self.smoothed = SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * probability;
        if self.speaking {
            if self.smoothed >= DEFAULT_CONTINUE {
                self.frames_left = self.hangover_frames;
            } else if self.frames_left == 0 {
                self.speaking = false;
            } else {
                self.frames_left -= 1;
            }
        } else if self.smoothed >= DEFAULT_ONSET {
            self.speaking = true;
            self.frames_left = self.hangover_frames;
        }
        self.speaking
    }

    /// Whether the last update said speech.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// The smoothed probability after the last update.
    pub fn smoothed_probability(&self) -> f32 {
        self.smoothed
    }

    /// Back to silence, as at construction.
    pub fn reset(&mut self) {
        *self = Self::new(self.hangover_frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn speech_starts_on_a_clear_onset_and_ends_after_the_hangover() {
        let mut vad = VoiceActivityDetector::new(3);
        assert!(!vad.update(0.0));
        assert!(!vad.update(1.0), "one frame at 1 smooths to 0.5");
        assert!(vad.update(1.0));
        // Smoothed 0.375 and below: three hangover frames, then off.
        let trail: Vec<bool> = (0..6).map(|_| vad.update(0.0)).collect();
        assert_eq!(trail, [true, true, true, false, false, false]);
    }

    #[test]
    fn bad_probabilities_are_read_safely() {
        let mut vad = VoiceActivityDetector::new(2);
        for p in [f32::NAN, f32::INFINITY, -3.0, f32::NEG_INFINITY] {
            vad.update(p);
            assert!((0.0..=1.0).contains(&vad.smoothed_probability()));
        }
    }

    proptest! {
        /// Silence never turns to speech unless the smoothed probability reached the onset.
        #[test]
        fn no_onset_below_threshold(probs in proptest::collection::vec(0.0f32..DEFAULT_ONSET, 0..400)) {
            let mut vad = VoiceActivityDetector::new(DEFAULT_HANGOVER_FRAMES);
            for p in probs {
                prop_assert!(!vad.update(p));
            }
        }

        /// Speech never outlasts the last frame whose smoothed probability held by more than
        /// the hangover, and a change to speech always happens at an onset.
        #[test]
        fn speech_is_bounded_by_the_hangover(
            probs in proptest::collection::vec(0.0f32..=1.0, 0..400),
            hangover in 0u32..30,
        ) {
            let mut vad = VoiceActivityDetector::new(hangover);
            let mut last_held: Option<usize> = None;
            let mut was_speaking = false;
            for (k, p) in probs.into_iter().enumerate() {
                let speaking = vad.update(p);
                let smoothed = vad.smoothed_probability();
                if speaking && !was_speaking {
                    prop_assert!(smoothed >= DEFAULT_ONSET);
                }
                if speaking && smoothed >= DEFAULT_CONTINUE {
                    last_held = Some(k);
                }
                if speaking {
                    let held = last_held.expect("speech starts at a held frame");
                    prop_assert!(k - held <= hangover as usize, "frame {k}, held {held}");
                }
                was_speaking = speaking;
            }
        }

        /// Steady speech is detected within three frames and kept.
        #[test]
        fn steady_speech_is_detected(p in 0.9f32..=1.0, frames in 3usize..200) {
            let mut vad = VoiceActivityDetector::new(DEFAULT_HANGOVER_FRAMES);
            let flags: Vec<bool> = (0..frames).map(|_| vad.update(p)).collect();
            prop_assert!(flags[2..].iter().all(|&s| s));
        }
    }
}
