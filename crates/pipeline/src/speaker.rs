//! The active speaker: who is talking, from the RFC 6464 levels of the remotes' packets and
//! the local voice activity, with hysteresis so that the choice does not flap.
//!
//! Every [`SPEAKER_TICK`] each candidate's loudness is the loudest level it showed in the
//! tick with the voice flag set (`127 - level`, dB above -127 dBov; 0 without voice), and
//! its score an exponential average of that ([`SPEAKER_SMOOTHING`] per tick, about a
//! 300 ms memory). A challenger becomes the active speaker when its score is at least
//! [`MIN_SPEAKER_SCORE`] and leads the current speaker's by [`SPEAKER_MARGIN`] for
//! [`SPEAKER_HOLD`] without a break. The speaker stays active while nobody else speaks
//! (a call shows the last speaker, as call apps do).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_pipeline::speaker::{ActiveSpeakerDetector, SPEAKER_TICK};
//! let t0 = Instant::now();
//! let mut speakers = ActiveSpeakerDetector::new();
//! let mut changed = None;
//! for k in 1..=10 {
//!     speakers.observe(7, 30, true); // -30 dBov with voice
//!     speakers.observe(9, 127, false); // silence
//!     if let Some(id) = speakers.tick(t0 + SPEAKER_TICK * k) {
//!         changed = Some(id);
//!     }
//! }
//! assert_eq!(changed, Some(7));
//! assert_eq!(speakers.current(), Some(7));
//! ```

use std::time::{Duration, Instant};

/// Time between decisions.
pub const SPEAKER_TICK: Duration = Duration::from_millis(100);
/// Weight of the newest tick in a candidate's score (0.3 per 100 ms: a 300 ms memory).
pub const SPEAKER_SMOOTHING: f32 = 0.3;
/// How long a challenger must lead before it takes over (the brief's 500 ms; libwebrtc's
/// and Jitsi's dominant speaker pickers use comparable windows).
pub const SPEAKER_HOLD: Duration = Duration::from_millis(500);
/// By how much (dB of score) a challenger must lead.
pub const SPEAKER_MARGIN: f32 = 6.0;
/// Least score that counts as speaking: speech at -60 dBov heard half the time.
pub const MIN_SPEAKER_SCORE: f32 = 30.0;
/// Most candidates (15 remotes and the local participant).
pub const MAX_CANDIDATES: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: u32,
    /// Loudest voiced loudness this tick.
    tick_loudness: f32,
    score: f32,
}

/// Chooses the active speaker (see the module docs). Holds at most [`MAX_CANDIDATES`];
/// observations of further ids are ignored and counted.
#[derive(Debug, Clone)]
pub struct ActiveSpeakerDetector {
    candidates: [Candidate; MAX_CANDIDATES],
    len: usize,
    current: Option<u32>,
    /// The candidate leading the current speaker, and since when.
    challenger: Option<(u32, Instant)>,
    ignored: u64,
}

impl Default for ActiveSpeakerDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ActiveSpeakerDetector {
    /// A detector with no candidates and no speaker.
    pub fn new() -> Self {
        Self {
            candidates: [Candidate {
                id: 0,
                tick_loudness: 0.0,
                score: 0.0,
            }; MAX_CANDIDATES],
            len: 0,
            current: None,
            challenger: None,
            ignored: 0,
        }
    }

    /// The active speaker, once one has been chosen.
    pub fn current(&self) -> Option<u32> {
        self.current
    }

    /// Observations ignored because [`MAX_CANDIDATES`] were already tracked.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// The score of `id` (0 when unknown).
    pub fn score(&self, id: u32) -> f32 {
        self.candidates[..self.len]
            .iter()
            .find(|c| c.id == id)
            .map_or(0.0, |c| c.score)
    }

    /// Notes a level of `id`: `level` in -dBov (RFC 6464, 0-127), `voice` its voice flag.
    pub fn observe(&mut self, id: u32, level: u8, voice: bool) {
        let loudness = if voice {
            f32::from(127 - level.min(127))
        } else {
            0.0
        };
        let index = match self.candidates[..self.len].iter().position(|c| c.id == id) {
            Some(i) => i,
            None if self.len < MAX_CANDIDATES => {
                self.candidates[self.len] = Candidate {
                    id,
                    tick_loudness: 0.0,
                    score: 0.0,
                };
                self.len += 1;
                self.len - 1
            }
            None => {
                self.ignored += 1;
                return;
            }
        };
        let candidate = &mut self.candidates[index];
        candidate.tick_loudness = candidate.tick_loudness.max(loudness);
    }

    /// Forgets `id` (a participant left). When it was the speaker, there is none until
    /// someone else qualifies.
    pub fn remove(&mut self, id: u32) {
        if let Some(i) = self.candidates[..self.len].iter().position(|c| c.id == id) {
            self.candidates.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
        if self.current == Some(id) {
            self.current = None;
        }
        if self.challenger.is_some_and(|(c, _)| c == id) {
            self.challenger = None;
        }
    }

    /// Ends a tick at `now` (call every [`SPEAKER_TICK`]); returns the new speaker when
    /// it changed.
    pub fn tick(&mut self, now: Instant) -> Option<u32> {
        for c in &mut self.candidates[..self.len] {
            c.score += SPEAKER_SMOOTHING * (c.tick_loudness - c.score);
            c.tick_loudness = 0.0;
        }
        let current_score = self.current.map_or(0.0, |id| self.score(id));
        let leader = self.candidates[..self.len]
            .iter()
            .filter(|c| Some(c.id) != self.current)
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .copied();
        let Some(leader) = leader
            .filter(|c| c.score >= MIN_SPEAKER_SCORE && c.score >= current_score + SPEAKER_MARGIN)
        else {
            self.challenger = None;
            return None;
        };
        let since = match self.challenger {
            Some((id, since)) if id == leader.id => since,
            _ => {
                self.challenger = Some((leader.id, now));
                now
            }
        };
        // The lead has held over the ticks since `since`, this one included.
        if now.saturating_duration_since(since) + SPEAKER_TICK >= SPEAKER_HOLD {
            self.current = Some(leader.id);
            self.challenger = None;
            return Some(leader.id);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_louder_challenger_needs_the_hold() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let mut at = t0;
        for _ in 0..20 {
            at += SPEAKER_TICK;
            d.observe(1, 30, true);
            d.tick(at);
        }
        assert_eq!(d.current(), Some(1));
        // 2 starts talking louder, 1 goes quiet: 2 takes over only after the hold.
        let mut switched_after = None;
        for k in 1..=20u32 {
            at += SPEAKER_TICK;
            d.observe(2, 20, true);
            d.observe(1, 127, false);
            if d.tick(at) == Some(2) {
                switched_after = Some(SPEAKER_TICK * k);
                break;
            }
        }
        let after = switched_after.expect("switched");
        assert!(after >= SPEAKER_HOLD, "{after:?}");
        assert!(
            after <= SPEAKER_HOLD + Duration::from_millis(500),
            "{after:?}"
        );
    }

    #[test]
    fn silence_keeps_the_last_speaker_and_removal_clears_it() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        for k in 1..=10 {
            d.observe(5, 25, true);
            d.tick(t0 + SPEAKER_TICK * k);
        }
        for k in 11..=40 {
            d.observe(5, 127, false);
            d.observe(6, 127, false);
            assert_eq!(d.tick(t0 + SPEAKER_TICK * k), None);
        }
        assert_eq!(d.current(), Some(5));
        d.remove(5);
        assert_eq!(d.current(), None);
    }

    proptest! {
        /// Random observations: no panic, the candidate bound holds, and every change of
        /// speaker follows a lead held over the ticks of the hold.
        #[test]
        fn hysteresis_holds(
            ticks in proptest::collection::vec(
                proptest::collection::vec((0u32..20, 0u8..=127, any::<bool>()), 0..6), 1..120),
        ) {
            let t0 = Instant::now();
            let mut d = ActiveSpeakerDetector::new();
            let mut last_change: Option<Instant> = None;
            let hold_ticks = (SPEAKER_HOLD.as_millis() / SPEAKER_TICK.as_millis()) as usize;
            let mut leads: Vec<Option<u32>> = Vec::new();
            for (k, observations) in ticks.iter().enumerate() {
                let now = t0 + SPEAKER_TICK * (k as u32 + 1);
                for &(id, level, voice) in observations {
                    d.observe(id, level, voice);
                }
                let before = d.current();
                let changed = d.tick(now);
                prop_assert!(d.len <= MAX_CANDIDATES);
                // Who led the speaker by the margin after this tick's scores.
                let current_score = before.map_or(0.0, |id| d.score(id));
                let lead = d.candidates[..d.len].iter()
                    .filter(|c| Some(c.id) != before)
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                    .filter(|c| c.score >= MIN_SPEAKER_SCORE
                        && c.score >= current_score + SPEAKER_MARGIN)
                    .map(|c| c.id);
                leads.push(lead);
                if let Some(id) = changed {
                    prop_assert_eq!(d.current(), Some(id));
                    prop_assert!(leads.len() >= hold_ticks);
                    prop_assert!(leads[leads.len() - hold_ticks..].iter().all(|l| *l == Some(id)));
                    if let Some(prev) = last_change {
                        prop_assert!(now - prev >= SPEAKER_HOLD);
                    }
                    last_change = Some(now);
                } else {
                    prop_assert_eq!(d.current(), before);
                }
            }
        }
    }
}
