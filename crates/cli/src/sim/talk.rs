//! Who speaks when, and what: the talk schedule and the participants' microphones.
//!
//! The default schedule is round-robin turns: slot `k` lasts `gap + turn`; in it participant
//! `k mod N` is silent for `gap`, then speaks for `turn`, and everyone else is silent. Turns
//! never overlap, so what a listener hears during and just after a turn comes from one
//! talker only, and the talker's microphone can be cross-correlated with it to measure the
//! mouth-to-ear delay of that direction (see [`super::measure`]). The gap lets the tail of a
//! turn arrive before the next talker starts.

use std::path::{Path, PathBuf};

use tincan_codec::resample::resample_all;
use tincan_media::wav::read_wav;
use tincan_pipeline::{FRAME_SAMPLES, SAMPLE_RATE};

use super::SimError;

/// The speech fixtures (in `fixtures/speech`), given to participants 1, 2, 3, … in turn.
pub const SPEECH_CLIPS: [&str; 6] = [
    "speech_orig_16k.wav",
    "hts1a.wav",
    "big_dog.wav",
    "hts2a.wav",
    "morig.wav",
    "forig.wav",
];

/// Samples in one 10 ms frame, as `u64` for absolute sample positions.
const FRAME: u64 = FRAME_SAMPLES as u64;

/// Round-robin talk turns, in samples at 48 kHz (whole 10 ms frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkSchedule {
    participants: usize,
    gap: u64,
    turn: u64,
}

/// One talk turn: `talker` speaks samples `start..end` (48 kHz, from the call's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The turn's index from 0.
    pub index: u64,
    /// Who speaks (0-based).
    pub talker: usize,
    /// First sample of speech.
    pub start: u64,
    /// One past the last sample of speech.
    pub end: u64,
}

impl TalkSchedule {
    /// Turns of `turn_ms` speech after `gap_ms` of silence, rounded to 10 ms frames.
    ///
    /// # Errors
    ///
    /// [`SimError::Invalid`] for a turn shorter than 1 s or a gap longer than a minute.
    pub fn new(participants: usize, turn_ms: u64, gap_ms: u64) -> Result<Self, SimError> {
        if !(1_000..=600_000).contains(&turn_ms) {
            return Err(SimError::Invalid {
                what: "turn",
                value: format!("{turn_ms} ms"),
                expected: "1 s to 10 min".into(),
            });
        }
        if gap_ms > 60_000 {
            return Err(SimError::Invalid {
                what: "gap",
                value: format!("{gap_ms} ms"),
                expected: "at most 60 s".into(),
            });
        }
        let frames = |ms: u64| ms / 10 * FRAME;
        Ok(Self {
            participants: participants.max(1),
            gap: frames(gap_ms),
            turn: frames(turn_ms),
        })
    }

    /// Samples per slot (gap and turn).
    fn slot(&self) -> u64 {
        self.gap + self.turn
    }

    /// Who speaks at absolute sample `sample`, if anyone.
    pub fn talker_at(&self, sample: u64) -> Option<usize> {
        let slot = sample / self.slot();
        (sample % self.slot() >= self.gap).then(|| (slot % self.participants as u64) as usize)
    }

    /// Turn `index`.
    pub fn turn(&self, index: u64) -> Turn {
        let start = index * self.slot() + self.gap;
        Turn {
            index,
            talker: (index % self.participants as u64) as usize,
            start,
            end: start + self.turn,
        }
    }
}

/// What a participant's microphone plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicSource {
    /// The default: a speech fixture chosen by the participant's number.
    Fixture,
    /// Nothing at all.
    Silence,
    /// A WAV file (any rate the resampler supports, mono or stereo).
    Wav(PathBuf),
}

/// A participant's microphone: a clip at 48 kHz mono, played on in a loop during its turns.
#[derive(Debug)]
pub struct Microphone {
    /// What it plays, for the report.
    pub name: String,
    clip: Vec<i16>,
    position: usize,
}

impl Microphone {
    /// Loads participant `participant`'s (0-based) microphone.
    ///
    /// # Errors
    ///
    /// [`SimError::Input`] when the clip cannot be read or resampled.
    pub fn load(source: &MicSource, participant: usize, fixtures: &Path) -> Result<Self, SimError> {
        let path = match source {
            MicSource::Silence => {
                return Ok(Self {
                    name: "silence".into(),
                    clip: Vec::new(),
                    position: 0,
                });
            }
            MicSource::Fixture => fixtures
                .join("speech")
                .join(SPEECH_CLIPS[participant % SPEECH_CLIPS.len()]),
            MicSource::Wav(path) => path.clone(),
        };
        let input = |reason: String| SimError::Input {
            path: path.clone(),
            reason,
        };
        let clip = read_wav(&path).map_err(|e| input(e.to_string()))?;
        let clip = resample_all(&clip, SAMPLE_RATE).map_err(|e| input(e.to_string()))?;
        let channels = clip.format().channels().count();
        let samples: Vec<i16> = clip
            .samples()
            .chunks_exact(channels)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
            .collect();
        if samples.is_empty() {
            return Err(input("no samples".into()));
        }
        // Participants beyond the fixtures' count reuse a clip from another place in it.
        let position = match source {
            MicSource::Fixture => {
                (participant / SPEECH_CLIPS.len()) * (SAMPLE_RATE as usize * 7 / 10) % samples.len()
            }
            _ => 0,
        };
        Ok(Self {
            name: path.display().to_string(),
            clip: samples,
            position,
        })
    }

    /// The next 10 ms: the clip's next samples (looping) while `talking`, else silence.
    pub fn next_frame(&mut self, talking: bool, out: &mut [i16]) {
        if !talking || self.clip.is_empty() {
            out.fill(0);
            return;
        }
        for sample in out.iter_mut() {
            *sample = self.clip[self.position];
            self.position = (self.position + 1) % self.clip.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_go_round_without_overlap() {
        let schedule = TalkSchedule::new(3, 2_000, 500).unwrap();
        let rate = u64::from(SAMPLE_RATE);
        assert_eq!(schedule.talker_at(0), None);
        assert_eq!(schedule.talker_at(rate / 2), Some(0));
        assert_eq!(schedule.talker_at(rate * 5 / 2 - 1), Some(0));
        assert_eq!(schedule.talker_at(rate * 5 / 2), None);
        assert_eq!(schedule.talker_at(rate * 3), Some(1));
        assert_eq!(schedule.talker_at(rate * 8), Some(0));
        let turn = schedule.turn(4);
        assert_eq!(turn.talker, 1);
        assert_eq!(turn.start, 4 * rate * 5 / 2 + rate / 2);
        assert_eq!(turn.end - turn.start, 2 * rate);
        for index in 0..12 {
            let t = schedule.turn(index);
            assert_eq!(schedule.talker_at(t.start), Some(t.talker));
            assert_eq!(schedule.talker_at(t.end - 1), Some(t.talker));
            assert_ne!(schedule.talker_at(t.end), Some(t.talker));
        }
    }

    #[test]
    fn bad_turns_are_refused() {
        assert!(TalkSchedule::new(2, 500, 0).is_err());
        assert!(TalkSchedule::new(2, 3_000, 61_000).is_err());
    }

    #[test]
    fn microphones_loop_their_clip_only_while_talking() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut mic = Microphone::load(&MicSource::Fixture, 5, &fixtures).unwrap();
        assert!(mic.name.ends_with("forig.wav"));
        let length = mic.clip.len();
        let mut frame = [1i16; FRAME_SAMPLES];
        mic.next_frame(false, &mut frame);
        assert!(frame.iter().all(|&s| s == 0));
        let mut total = 0;
        for _ in 0..length.div_ceil(FRAME_SAMPLES) + 1 {
            mic.next_frame(true, &mut frame);
            total += frame.iter().filter(|&&s| s != 0).count();
        }
        assert!(total > length / 2);
        assert!(mic.position < length);
        let mut silent = Microphone::load(&MicSource::Silence, 0, &fixtures).unwrap();
        silent.next_frame(true, &mut frame);
        assert!(frame.iter().all(|&s| s == 0));
        let missing = MicSource::Wav(PathBuf::from("/nonexistent.wav"));
        assert!(matches!(
            Microphone::load(&missing, 0, &fixtures),
            Err(SimError::Input { .. })
        ));
    }
}
