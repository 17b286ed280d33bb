//! The playout mixer: the remotes' decoded 10 ms frames into one, as libwebrtc's
//! `AudioMixerImpl` does it: at most [`MAX_MIXED`] sources, chosen by voice activity then
//! loudness, streams whose RFC 6464 level says silence are skipped, gains ramp over the
//! frame when a source enters or leaves the mix (no clicks), and the sum is soft-clipped
//! into i16 (a knee at [`CLIP_KNEE`], saturation at full scale).
//!
//! ```
//! use tincan_pipeline::mixer::{MixCandidate, Mixer};
//! let loud = [8000i16; 480];
//! let quiet = [0i16; 480];
//! let mut mixer = Mixer::new();
//! let candidates = [
//!     MixCandidate { level: 20, voice: true, volume: 100 },
//!     MixCandidate { level: 127, voice: false, volume: 100 },
//! ];
//! let mut out = [0i16; 480];
//! mixer.mix(&candidates, |i| if i == 0 { &loud[..] } else { &quiet[..] }, &mut out);
//! assert_eq!(mixer.mixed(), &[0]);
//! assert_eq!(out[479], 8000);
//! ```

/// Most sources mixed (libwebrtc's `kMaximumAmountOfMixedAudioSources`).
pub const MAX_MIXED: usize = 3;
/// Most candidates a mix considers (15 remotes).
pub const MAX_SOURCES: usize = 15;
/// A stream whose recent RFC 6464 level is this quiet or quieter (-dBov) is silent and not
/// mixed: at -70 dBov a sample is about ±10 of 32 767, below what a speaker renders.
pub const SILENT_LEVEL: u8 = 70;
/// Soft clipping starts here; above it the sum is compressed smoothly toward full scale.
pub const CLIP_KNEE: f32 = 24_576.0;

/// What the mixer knows of one source this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixCandidate {
    /// Loudest recent RFC 6464 level (-dBov, 0 loudest, 127 silence or nothing received).
    pub level: u8,
    /// The recent voice flag.
    pub voice: bool,
    /// Playout volume 0-100 (linear gain ÷ 100); 0 is never mixed.
    pub volume: u8,
}

impl MixCandidate {
    fn audible(&self) -> bool {
        self.volume > 0 && self.level < SILENT_LEVEL
    }
}

/// Mixes up to [`MAX_MIXED`] of up to [`MAX_SOURCES`] sources (see the module docs). Keeps
/// each source's last gain for the ramps; no allocation.
#[derive(Debug, Clone)]
pub struct Mixer {
    /// The gain each source had at the end of the last frame (0 when not mixed).
    gains: [f32; MAX_SOURCES],
    mixed: [usize; MAX_MIXED],
    mixed_len: usize,
    acc: Vec<f32>,
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new()
    }
}

impl Mixer {
    /// A mixer with nothing mixed yet.
    pub fn new() -> Self {
        Self {
            gains: [0.0; MAX_SOURCES],
            mixed: [0; MAX_MIXED],
            mixed_len: 0,
            acc: Vec::with_capacity(crate::FRAME_SAMPLES),
        }
    }

    /// Indices (into the candidates) mixed by the last [`mix`](Self::mix), loudest first.
    pub fn mixed(&self) -> &[usize] {
        &self.mixed[..self.mixed_len]
    }

    /// Forgets source `index`'s gain (a new participant in that slot starts from 0).
    pub fn reset_source(&mut self, index: usize) {
        if let Some(g) = self.gains.get_mut(index) {
            *g = 0.0;
        }
    }

    /// Source `index` left: the sources after it move down one place, with their gains.
    pub fn remove_source(&mut self, index: usize) {
        if index < MAX_SOURCES {
            self.gains.copy_within(index + 1.., index);
            self.gains[MAX_SOURCES - 1] = 0.0;
        }
        self.mixed_len = 0;
    }

    /// Chooses the sources of this frame from `candidates` (beyond [`MAX_SOURCES`] they
    /// are ignored) and mixes `frame(i)` of each into `out`. Frames shorter than `out`
    /// count as silence past their end.
    pub fn mix<'f>(
        &mut self,
        candidates: &[MixCandidate],
        mut frame: impl FnMut(usize) -> &'f [i16],
        out: &mut [i16],
    ) {
        let candidates = &candidates[..candidates.len().min(MAX_SOURCES)];
        // Select: voiced before unvoiced, then louder (lower level), then lower index.
        let mut chosen = [0usize; MAX_MIXED];
        let mut len = 0;
        for (i, c) in candidates.iter().enumerate() {
            if !c.audible() {
                continue;
            }
            let key = |c: &MixCandidate| (!c.voice, c.level);
            let mut pos = len;
            while pos > 0 && key(c) < key(&candidates[chosen[pos - 1]]) {
                pos -= 1;
            }
            if pos >= MAX_MIXED {
                continue;
            }
            let end = (len + 1).min(MAX_MIXED);
            chosen.copy_within(pos..end - 1, pos + 1);
            chosen[pos] = i;
            len = end;
        }
        self.mixed = chosen;
        self.mixed_len = len;
        self.acc.clear();
        self.acc.resize(out.len(), 0.0);
        let n = out.len().max(1) as f32;
        for (i, c) in candidates.iter().enumerate() {
            let target = if chosen[..len].contains(&i) {
                f32::from(c.volume.min(100)) / 100.0
            } else {
                0.0
            };
            let start = self.gains[i];
            self.gains[i] = target;
            if start == 0.0 && target == 0.0 {
                continue;
            }
            let samples = frame(i);
            let step = (target - start) / n;
            for (k, (acc, &s)) in self.acc.iter_mut().zip(samples).enumerate() {
                *acc += f32::from(s) * (start + step * (k + 1) as f32);
            }
        }
        for i in candidates.len()..MAX_SOURCES {
            self.gains[i] = 0.0;
        }
        for (o, &a) in out.iter_mut().zip(&self.acc) {
            *o = soft_clip(a);
        }
    }
}

/// Soft clipping: linear up to [`CLIP_KNEE`], then a tanh knee that reaches full scale
/// asymptotically (continuous in value and slope at the knee).
pub fn soft_clip(x: f32) -> i16 {
    let magnitude = x.abs();
    if magnitude <= CLIP_KNEE {
        return x as i16;
    }
    let headroom = 32_767.0 - CLIP_KNEE;
    let y = CLIP_KNEE + headroom * ((magnitude - CLIP_KNEE) / headroom).tanh();
    (y.min(32_767.0) * x.signum()) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(level: u8, voice: bool) -> MixCandidate {
        MixCandidate {
            level,
            voice,
            volume: 100,
        }
    }

    #[test]
    fn the_three_loudest_voiced_win() {
        let frames: Vec<[i16; 480]> = (0..6).map(|i| [100 * (i + 1) as i16; 480]).collect();
        let candidates = [
            candidate(40, true),
            candidate(10, false),
            candidate(30, true),
            candidate(127, false),
            candidate(20, true),
            candidate(35, true),
        ];
        let mut mixer = Mixer::new();
        let mut out = [0i16; 480];
        mixer.mix(&candidates, |i| &frames[i][..], &mut out);
        assert_eq!(mixer.mixed(), &[4, 2, 5]);
        // Ramped in from 0: the last sample has full gain.
        assert_eq!(out[479], 500 + 300 + 600);
        assert!(out[0] < 50);
        mixer.mix(&candidates, |i| &frames[i][..], &mut out);
        assert!(out.iter().all(|&s| s == 1400));
    }

    #[test]
    fn volume_scales_and_zero_mutes() {
        let frame = [10_000i16; 480];
        let mut mixer = Mixer::new();
        let mut out = [0i16; 480];
        let mut c = [candidate(20, true)];
        c[0].volume = 50;
        mixer.mix(&c, |_| &frame[..], &mut out);
        mixer.mix(&c, |_| &frame[..], &mut out);
        assert!(out.iter().all(|&s| s == 5000));
        c[0].volume = 0;
        mixer.mix(&c, |_| &frame[..], &mut out);
        mixer.mix(&c, |_| &frame[..], &mut out);
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn clipping_is_soft_and_bounded() {
        assert_eq!(soft_clip(1000.0), 1000);
        assert_eq!(soft_clip(-24_000.0), -24_000);
        assert!(soft_clip(30_000.0) > 26_000 && soft_clip(30_000.0) < 32_767);
        assert_eq!(soft_clip(1e9), 32_767);
        assert_eq!(soft_clip(-1e9), -32_767);
    }

    proptest! {
        /// Any candidates and frames: no panic, at most three mixed, all of them audible,
        /// none quieter-ranked than one left out, and the output stays within i16.
        #[test]
        fn mixing_is_bounded(
            sources in proptest::collection::vec(
                (0u8..=127, any::<bool>(), 0u8..=120, any::<i16>()), 0..20),
            rounds in 1usize..4,
        ) {
            let candidates: Vec<MixCandidate> = sources.iter()
                .map(|&(level, voice, volume, _)| MixCandidate { level, voice, volume })
                .collect();
            let frames: Vec<Vec<i16>> = sources.iter().map(|s| vec![s.3; 480]).collect();
            let mut mixer = Mixer::new();
            let mut out = vec![0i16; 480];
            for _ in 0..rounds {
                mixer.mix(&candidates, |i| &frames[i][..], &mut out);
            }
            let mixed = mixer.mixed();
            prop_assert!(mixed.len() <= MAX_MIXED);
            let considered = &candidates[..candidates.len().min(MAX_SOURCES)];
            for &i in mixed {
                prop_assert!(considered[i].audible());
            }
            let key = |c: &MixCandidate| (!c.voice, c.level);
            for (i, c) in considered.iter().enumerate() {
                if c.audible() && !mixed.contains(&i) {
                    prop_assert_eq!(mixed.len(), MAX_MIXED);
                    for &m in mixed {
                        prop_assert!(key(&considered[m]) <= key(c));
                    }
                }
            }
            // With a steady selection the output is the clipped sum of the mixed frames.
            let sum: f32 = mixed.iter()
                .map(|&m| f32::from(frames[m][0]) * f32::from(considered[m].volume.min(100)) / 100.0)
                .sum();
            if rounds > 1 {
                // (Summed in another order: one unit of rounding either way.)
                prop_assert!((i32::from(out[100]) - i32::from(soft_clip(sum))).abs() <= 1);
            }
        }
    }
}
