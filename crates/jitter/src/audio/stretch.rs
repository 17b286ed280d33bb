//! Pitch-preserving time stretching for speech: pitch-synchronous overlap-add (WSOLA).
//!
//! The audio jitter buffer changes its delay without audible damage by editing whole pitch
//! periods out of (or into) the audio it plays, as WebRTC's NetEq does:
//!
//! - **Accelerate** (buffer too full) removes one pitch period: two consecutive periods
//!   `x[s..s+P]` and `x[s+P..s+2P]` are replaced by a single cross-fade from the first into
//!   the second, so the output is `P` samples shorter.
//! - **Fast accelerate** (buffer far too full) removes as many whole periods as fit in the
//!   input, with a slightly lower similarity threshold.
//! - **Preemptive expand** (buffer too empty) inserts one pitch period: `x[..s+P]` is
//!   followed by a cross-fade from `x[s+P..s+2P]` into `x[s..s+P]` and then by `x[s+P..]`,
//!   so the output is `P` samples longer.
//!
//! Because what is removed or repeated is a whole period of a periodic signal and the join
//! is a full-period cross-fade between two nearly identical waveforms, the pitch is kept
//! (unlike resampling) and there is no click (unlike dropping samples). When the audio is
//! not periodic enough (normalised correlation between the two periods below the
//! threshold) nothing is done, because a splice in the middle of a noisy or changing
//! sound is audible; low-energy audio (near silence, background noise) is stretched
//! anyway with a fixed 10 ms lag, since editing a chunk of near-silence is inaudible.
//!
//! The pitch lag (2.5..15 ms, about 66..400 Hz) is searched on a mono mix of the
//! channels: a coarse search by normalised cross-correlation on a 4 kHz decimated copy,
//! refined at the full rate around the coarse peak. The edit is then applied identically
//! to every channel.
//!
//! [`TimeStretcher::extend_periodic`] serves the opposite join: after concealment, it
//! continues the last played audio pitch-periodically so that [`crossfade_into`] can fade
//! from it into the newly decoded audio without a click.
//!
//! Everything runs on preallocated scratch (sized for 70 ms at the configured rate): no
//! allocation after [`TimeStretcher::new`], and no panic on any input (too short, empty,
//! a length not a multiple of the channel count, full-scale square waves).

/// Shortest pitch lag searched, in microseconds (2.5 ms: 400 Hz).
const MIN_LAG_US: u64 = 2_500;
/// Longest pitch lag searched, in microseconds (15 ms: about 66.7 Hz).
const MAX_LAG_US: u64 = 15_000;
/// Analysis window, and the least input `stretch` accepts, in microseconds (30 ms: two
/// periods of the longest lag).
const WINDOW_US: u64 = 30_000;
/// Scratch length in microseconds: 60 ms of input (the longest the jitter buffer hands
/// over for fast accelerate) plus margin. Longer inputs are analysed on this prefix only.
const SCRATCH_US: u64 = 70_000;
/// Lag used to stretch low-energy, non-periodic audio (10 ms, as NetEq does for
/// background noise), also the repeat length `extend_periodic` uses for unvoiced audio.
const LOW_ENERGY_LAG_US: u64 = 10_000;
/// Rate of the coarse pitch search, in Hz.
const COARSE_RATE: u32 = 4_000;

/// Normalised correlation the two periods must reach for accelerate (NetEq's 0.9).
const ACCELERATE_THRESHOLD: f64 = 0.9;
/// Normalised correlation for fast accelerate: a little lower, trading some quality for
/// draining an overfull buffer quickly.
const FAST_ACCELERATE_THRESHOLD: f64 = 0.85;
/// Normalised correlation for preemptive expand (NetEq's 0.9).
const EXPAND_THRESHOLD: f64 = 0.9;
/// Normalised correlation above which `extend_periodic` treats the history as voiced and
/// repeats its pitch period (below, it repeats a fixed 10 ms).
const VOICED_THRESHOLD: f64 = 0.5;
/// A coarse-search peak at a shorter lag than the best peak is preferred (to avoid
/// picking a multiple of the period) when it reaches this share of the best peak.
const SHORTER_PEAK_SHARE: f64 = 0.94;
/// Mean square (over all channels of the analysis window) below which audio counts as low
/// energy: -50 dBFS RMS (about 104 in 16-bit units), some 25-30 dB below active speech
/// and above typical background noise of a call.
const LOW_ENERGY_MEAN_SQUARE: f64 = 103.6 * 103.6;

/// Which stretch to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StretchKind {
    /// Remove one pitch period (the buffer is too full).
    Accelerate,
    /// Remove as many whole pitch periods as fit (the buffer is far too full).
    FastAccelerate,
    /// Insert one pitch period (the buffer is too empty).
    PreemptiveExpand,
}

/// One planned edit, in frames (samples per channel): the output is
/// `x[..from] ++ crossfade(x[from..from+len] fading out, x[to..to+len] fading in) ++ x[to+len..]`,
/// which changes the length by `from - to` (`to > from` removes, `to < from` inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edit {
    /// Where the cross-fade starts in the input (and the output).
    from: usize,
    /// Where the audio faded into starts in the input.
    to: usize,
    /// Cross-fade length: one pitch period.
    len: usize,
}

impl Edit {
    /// Signed change in frames: negative when samples are removed.
    fn change(self) -> isize {
        self.from as isize - self.to as isize
    }
}

/// Result of a pitch search: the preferred lag (the shortest strong peak, normally the
/// fundamental period) and the lag of the strongest peak, both at the full rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pitch {
    /// The shortest lag whose coarse correlation is close to the best one.
    preferred: usize,
    /// The lag with the best coarse correlation.
    strongest: usize,
}

/// Pitch-preserving time stretcher (WSOLA) for one stream's format, with its scratch
/// buffers allocated once in [`TimeStretcher::new`].
#[derive(Debug, Clone)]
pub(crate) struct TimeStretcher {
    /// Interleaved channels (at least 1).
    channels: usize,
    /// Analysis window and least input, in frames (30 ms).
    window: usize,
    /// Shortest pitch lag, in frames (2.5 ms).
    min_lag: usize,
    /// Longest pitch lag, in frames (15 ms).
    max_lag: usize,
    /// Lag for low-energy audio, in frames (10 ms).
    low_energy_lag: usize,
    /// Decimation factor down to about 4 kHz for the coarse search.
    decimation: usize,
    /// Frames of input analysed at most (the scratch length).
    capacity: usize,
    /// Mono mix of the analysed input.
    mono: Vec<f32>,
    /// Decimated mono mix for the coarse search.
    coarse: Vec<f32>,
    /// Normalised correlation per coarse lag.
    coarse_corr: Vec<f64>,
}

impl TimeStretcher {
    /// For `sample_rate` in {8000,12000,16000,24000,48000} and 1 or 2 interleaved channels.
    ///
    /// Other rates (clamped to 4 kHz..=192 kHz) and channel counts (0 is taken as 1) work
    /// too; this is where all scratch memory is allocated.
    pub(crate) fn new(sample_rate: u32, channels: usize) -> Self {
        let rate = u64::from(sample_rate.clamp(COARSE_RATE, 192_000));
        let frames = |us: u64| (rate * us).div_ceil(1_000_000) as usize;
        let window = frames(WINDOW_US);
        let min_lag = frames(MIN_LAG_US).max(2);
        let max_lag = (rate * MAX_LAG_US / 1_000_000) as usize;
        let decimation = ((rate + u64::from(COARSE_RATE) / 2) / u64::from(COARSE_RATE)).max(1);
        let decimation = decimation as usize;
        let capacity = frames(SCRATCH_US).max(window);
        Self {
            channels: channels.max(1),
            window,
            min_lag,
            max_lag,
            low_energy_lag: frames(LOW_ENERGY_LAG_US),
            decimation,
            capacity,
            mono: vec![0.0; capacity],
            coarse: vec![0.0; capacity / decimation + 1],
            coarse_corr: vec![0.0; max_lag / decimation + 2],
        }
    }

    /// Samples per channel the input must hold at least (30 ms).
    pub(crate) fn min_input(&self) -> usize {
        self.window
    }

    /// Stretches `input` (interleaved, at least min_input() per channel; may be longer, e.g. 40-60 ms:
    /// only the first part needs to be examined) into `output` (cleared first; output's capacity is
    /// reserved by me for input.len() + 20 ms, so don't allocate if it fits). Returns the signed change
    /// in samples per channel: negative = removed (accelerate), positive = inserted (expand), 0 = the
    /// signal is not periodic enough to stretch without audible damage, in which case output == input.
    /// Low-energy (silent/background) input may be stretched even if not periodic (NetEq does: removing
    /// or repeating a chunk of near-silence is inaudible).
    ///
    /// The edit lies within the first 30 ms, except that fast accelerate removes periods
    /// from up to the first 70 ms. Input that is too short, or whose length is not a
    /// multiple of the channel count, is copied unchanged (returning 0). An insertion is at
    /// most 15 ms, so a `output` with capacity for `input.len()` + 20 ms never reallocates.
    pub(crate) fn stretch(
        &mut self,
        input: &[i16],
        kind: StretchKind,
        output: &mut Vec<i16>,
    ) -> isize {
        output.clear();
        match self.plan(input, kind) {
            Some(edit) => {
                apply_edit(input, self.channels, edit, output);
                edit.change()
            }
            None => {
                output.extend_from_slice(input);
                0
            }
        }
    }

    /// Writes a pitch-periodic continuation of `history` (interleaved, the most recent audio played,
    /// at least min_input() per channel) into `out` (interleaved): used to cross-fade into newly decoded
    /// audio after concealment so the join has no click.
    ///
    /// The last pitch period of `history` (or its last 10 ms when it is not voiced) is
    /// repeated. A period's first sample does not exactly continue its last one unless the
    /// signal is perfectly periodic, so the start of every repeat is corrected by the
    /// mismatch `h[end-1] - h[end-1-P]`, fading linearly to nothing over half a period: the
    /// continuation then joins the history, and each repeat the previous one, without a
    /// step. With less history than min_input() per channel the last frame is held (zeros
    /// without any history).
    pub(crate) fn extend_periodic(&mut self, history: &[i16], out: &mut [i16]) {
        let ch = self.channels;
        let frames = history.len() / ch;
        if frames == 0 {
            out.fill(0);
            return;
        }
        if frames < self.window {
            let last = &history[(frames - 1) * ch..frames * ch];
            for (k, sample) in out.iter_mut().enumerate() {
                *sample = last[k % ch];
            }
            return;
        }
        let start = frames - self.window;
        self.mix_mono(&history[start * ch..frames * ch]);
        let window = self.window;
        let lag = self
            .find_pitch(window)
            .map(|pitch| pitch.preferred)
            .filter(|&lag| {
                let mono = &self.mono[..window];
                let recent = &mono[window - lag..];
                let before = &mono[window - 2 * lag..window - lag];
                normalized_correlation(before, recent) >= VOICED_THRESHOLD
            })
            .unwrap_or(self.low_energy_lag)
            .clamp(1, frames - 1);
        let fade = (lag / 2).max(1);
        let at = |frame: usize, channel: usize| f32::from(history[frame * ch + channel]);
        for (k, sample) in out.iter_mut().enumerate() {
            let (frame, channel) = (k / ch, k % ch);
            let i = frame % lag;
            let mut value = at(frames - lag + i, channel);
            if i < fade {
                let mismatch = at(frames - 1, channel) - at(frames - 1 - lag, channel);
                value += mismatch * (1.0 - i as f32 / fade as f32);
            }
            *sample = to_i16(value);
        }
    }

    /// Decides the edit for `input` (see [`TimeStretcher::stretch`]), or `None` to leave it
    /// unchanged. Fills the scratch buffers; allocates nothing.
    fn plan(&mut self, input: &[i16], kind: StretchKind) -> Option<Edit> {
        let ch = self.channels;
        let frames = input.len() / ch;
        if frames * ch != input.len() {
            return None;
        }
        if frames < self.window {
            return None;
        }
        let available = frames.min(self.capacity);
        self.mix_mono(&input[..available * ch]);

        let window = self.window;
        let analysed = &input[..window * ch];
        let mean_square = analysed
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / analysed.len() as f64;
        let low_energy = mean_square < LOW_ENERGY_MEAN_SQUARE;

        let threshold = match kind {
            StretchKind::Accelerate => ACCELERATE_THRESHOLD,
            StretchKind::FastAccelerate => FAST_ACCELERATE_THRESHOLD,
            StretchKind::PreemptiveExpand => EXPAND_THRESHOLD,
        };
        // The two periods compared straddle the middle of the window.
        let center = window / 2;
        let periodic = self.find_pitch(window).and_then(|pitch| {
            [pitch.preferred, pitch.strongest].into_iter().find(|&lag| {
                let mono = &self.mono[..available];
                let start = center - lag;
                normalized_correlation(&mono[start..center], &mono[center..center + lag])
                    >= threshold
            })
        });
        let (lag, checked) = match periodic {
            Some(lag) => (lag, true),
            None if low_energy => (self.low_energy_lag.min(center), false),
            None => return None,
        };
        let start = center - lag;
        Some(match kind {
            StretchKind::Accelerate => Edit {
                from: start,
                to: start + lag,
                len: lag,
            },
            StretchKind::PreemptiveExpand => Edit {
                from: start + lag,
                to: start,
                len: lag,
            },
            StretchKind::FastAccelerate => {
                let removed = self.fast_removal(start, lag, available, checked, threshold);
                Edit {
                    from: start,
                    to: start + removed,
                    len: lag,
                }
            }
        })
    }

    /// For fast accelerate: how much to remove after `start`, a whole number `k` of `lag`
    /// periods, as many as fit before `available` (keeping the cross-fade's `lag` frames),
    /// each candidate `k·lag` refined by a few frames to follow pitch drift, taking the
    /// largest `k` whose period still correlates with the first one at `threshold`. Without
    /// the `checked` periodicity (low energy), the largest `k` is taken outright.
    fn fast_removal(
        &self,
        start: usize,
        lag: usize,
        available: usize,
        checked: bool,
        threshold: f64,
    ) -> usize {
        let room = available - start - lag;
        let most = room / lag;
        if !checked || most <= 1 {
            return lag * most.max(1);
        }
        let mono = &self.mono[..available];
        let first = &mono[start..start + lag];
        for k in (2..=most).rev() {
            let spread = (k - 1) * (lag / 32 + 1);
            let lowest = (k * lag - spread).max((k - 1) * lag + 1);
            let highest = (k * lag + spread).min(room);
            let mut best = (f64::MIN, 0);
            for removed in lowest..=highest {
                let corr =
                    normalized_correlation(first, &mono[start + removed..start + removed + lag]);
                if corr > best.0 {
                    best = (corr, removed);
                }
            }
            if best.0 >= threshold {
                return best.1;
            }
        }
        lag
    }

    /// Mixes whole interleaved frames of `input` (at most the scratch length) into
    /// `self.mono`, averaging the channels.
    fn mix_mono(&mut self, input: &[i16]) {
        let ch = self.channels;
        let scale = 1.0 / ch as f32;
        for (out, frame) in self.mono.iter_mut().zip(input.chunks_exact(ch)) {
            *out = frame.iter().map(|&v| f32::from(v)).sum::<f32>() * scale;
        }
    }

    /// Pitch search on `self.mono[..len]`: normalised cross-correlation of a fixed window
    /// at the start against the same window `lag` later, first on a ~4 kHz decimated copy
    /// over the whole lag range, then at the full rate within one decimation step around
    /// the coarse peaks. `None` when there is no interior correlation peak (no pitch).
    fn find_pitch(&mut self, len: usize) -> Option<Pitch> {
        let d = self.decimation;
        let len = len.min(self.mono.len());
        // Triangular low-pass (two cascaded d-sample boxcars: nulls at multiples of 4 kHz)
        // then one sample in d.
        let taps = 2 * d - 1;
        if len < taps {
            return None;
        }
        let coarse_len = ((len - taps) / d + 1).min(self.coarse.len());
        let norm = 1.0 / (d * d) as f32;
        for (m, out) in self.coarse[..coarse_len].iter_mut().enumerate() {
            let segment = &self.mono[m * d..m * d + taps];
            let sum: f32 = segment
                .iter()
                .enumerate()
                .map(|(j, &v)| v * (j + 1).min(taps - j) as f32)
                .sum();
            *out = sum * norm;
        }
        let coarse = &self.coarse[..coarse_len];
        let min_lag = self.min_lag.div_ceil(d).max(1);
        let max_lag = (self.max_lag / d).min(self.coarse_corr.len() - 2);
        if max_lag <= min_lag + 1 || coarse_len <= max_lag + max_lag / 2 {
            return None;
        }
        let span = coarse_len - max_lag;
        for lag in min_lag..=max_lag {
            self.coarse_corr[lag] =
                normalized_correlation(&coarse[..span], &coarse[lag..lag + span]);
        }
        let corr = &self.coarse_corr;
        let peaks =
            || (min_lag + 1..max_lag).filter(|&l| corr[l] > corr[l - 1] && corr[l] >= corr[l + 1]);
        let strongest = peaks().max_by(|&a, &b| corr[a].total_cmp(&corr[b]))?;
        let best = corr[strongest];
        let preferred = if best > 0.0 {
            peaks()
                .find(|&l| corr[l] >= SHORTER_PEAK_SHARE * best)
                .unwrap_or(strongest)
        } else {
            strongest
        };
        let refined_strongest = self.refine(strongest * d, len);
        let refined_preferred = if preferred == strongest {
            refined_strongest
        } else {
            self.refine(preferred * d, len)
        };
        Some(Pitch {
            preferred: refined_preferred,
            strongest: refined_strongest,
        })
    }

    /// Full-rate refinement of a coarse lag estimate `guess` on `self.mono[..len]`: the lag
    /// within one decimation step of it (and within the lag range) that maximises the
    /// fixed-window normalised correlation.
    fn refine(&self, guess: usize, len: usize) -> usize {
        let mono = &self.mono[..len];
        let span = len.saturating_sub(self.max_lag).max(1);
        let lowest = guess.saturating_sub(self.decimation).max(self.min_lag);
        let highest = (guess + self.decimation).min(self.max_lag).min(len - span);
        let mut best = (f64::MIN, guess.clamp(self.min_lag, self.max_lag));
        for lag in lowest..=highest {
            let corr = normalized_correlation(&mono[..span], &mono[lag..lag + span]);
            if corr > best.0 {
                best = (corr, lag);
            }
        }
        best.1
    }
}

/// Cross-fades in place: out[i] = from[i]*(1-w) + out[i]*w, w rising 0→1 over the length (interleaved).
///
/// The length is that of the shorter of the two in whole frames of `channels` (0 is taken
/// as 1); frame `i` of `n` gets `w = (i+1)/(n+1)`, so neither end repeats a sample of the
/// other signal exactly and the result is continuous with `from` before it and with `out`
/// after it. Samples of `out` beyond that length are left as they are.
pub(crate) fn crossfade_into(from: &[i16], out: &mut [i16], channels: usize) {
    let ch = channels.max(1);
    let frames = from.len().min(out.len()) / ch;
    let step = 1.0 / (frames + 1) as f32;
    for (i, (src, dst)) in from
        .chunks_exact(ch)
        .zip(out.chunks_exact_mut(ch))
        .take(frames)
        .enumerate()
    {
        let w = (i + 1) as f32 * step;
        for (&a, b) in src.iter().zip(dst.iter_mut()) {
            *b = mix(a, *b, w);
        }
    }
}

/// Writes the edited `input` (interleaved, `channels` per frame) to `output`: the frames
/// before `edit.from`, the cross-fade of `edit.len` frames from `input[from..]` into
/// `input[to..]`, and the frames from `edit.to + edit.len` on. The caller guarantees the
/// edit lies within the input.
fn apply_edit(input: &[i16], channels: usize, edit: Edit, output: &mut Vec<i16>) {
    let ch = channels;
    output.extend_from_slice(&input[..edit.from * ch]);
    let step = 1.0 / (edit.len + 1) as f32;
    let fade_out = &input[edit.from * ch..(edit.from + edit.len) * ch];
    let fade_in = &input[edit.to * ch..(edit.to + edit.len) * ch];
    for (i, (a, b)) in fade_out
        .chunks_exact(ch)
        .zip(fade_in.chunks_exact(ch))
        .enumerate()
    {
        let w = (i + 1) as f32 * step;
        output.extend(a.iter().zip(b).map(|(&a, &b)| mix(a, b, w)));
    }
    output.extend_from_slice(&input[(edit.to + edit.len) * ch..]);
}

/// `a·(1-w) + b·w`, rounded; for `w` in 0..=1 it lies between `a` and `b`.
fn mix(a: i16, b: i16, w: f32) -> i16 {
    let (a, b) = (f32::from(a), f32::from(b));
    to_i16(a + (b - a) * w)
}

/// Rounds and saturates to 16 bits.
fn to_i16(value: f32) -> i16 {
    value
        .round()
        .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Normalised cross-correlation `Σab / sqrt(Σa²·Σb²)` of two equally long signals (the
/// shorter length is used), in -1..=1; 0 when either is silent.
fn normalized_correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let energy = aa * bb;
    if energy <= 0.0 {
        0.0
    } else {
        ab / energy.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tincan_media::quality::{log_spectral_distance, log_spectrogram, spectrogram_correlation};

    /// A synthetic "vowel": `f0` with ten harmonics falling off at 6 dB/octave plus a
    /// formant-like boost of the 3rd and 4th, fixed phases, peak around 12 000.
    fn vowel(f0: f64, rate: u32, frames: usize) -> Vec<i16> {
        let amps = [1.0, 0.6, 0.8, 0.7, 0.3, 0.2, 0.15, 0.1, 0.08, 0.05];
        (0..frames)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                let v: f64 = amps
                    .iter()
                    .enumerate()
                    .map(|(k, a)| {
                        let h = (k + 1) as f64;
                        a * (2.0 * std::f64::consts::PI * h * f0 * t + 0.7 * h).sin()
                    })
                    .sum();
                (v * 4000.0) as i16
            })
            .collect()
    }

    /// Deterministic white noise (xorshift), uniform with the given RMS.
    fn noise(frames: usize, rms: f64, seed: u64) -> Vec<i16> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..frames)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                (u * rms * 3f64.sqrt()) as i16
            })
            .collect()
    }

    /// Largest absolute difference between consecutive samples (of one channel).
    fn max_step(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    /// Autocorrelation pitch estimate of a mono signal (66-400 Hz): the first normalised
    /// correlation peak reaching 0.95 of the best, refined by parabolic interpolation.
    /// Returns (f0 in Hz, peak correlation).
    fn pitch(x: &[i16], rate: u32) -> Option<(f64, f64)> {
        let x: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
        let lo = rate as usize / 400;
        let hi = (rate as usize * 15 / 1000).min(x.len() / 2);
        if hi <= lo + 2 {
            return None;
        }
        let corr: Vec<f64> = (0..=hi + 1)
            .map(|l| {
                if l < lo - 1 {
                    0.0
                } else {
                    normalized_correlation(&x[..x.len() - l], &x[l..])
                }
            })
            .collect();
        let peaks: Vec<usize> = (lo..=hi)
            .filter(|&l| corr[l] > corr[l - 1] && corr[l] >= corr[l + 1])
            .collect();
        let best = peaks.iter().map(|&l| corr[l]).fold(f64::MIN, f64::max);
        let l = *peaks.iter().find(|&&l| corr[l] >= 0.95 * best)?;
        let (a, b, c) = (corr[l - 1], corr[l], corr[l + 1]);
        let denom = a - 2.0 * b + c;
        let offset = if denom.abs() > 1e-12 {
            0.5 * (a - c) / denom
        } else {
            0.0
        };
        Some((f64::from(rate) / (l as f64 + offset), b))
    }

    fn speech(name: &str) -> (Vec<i16>, u32) {
        let path = format!(
            "{}/../../fixtures/speech/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let frame = tincan_media::wav::read_wav(path).expect("speech fixture");
        (frame.samples().to_vec(), frame.format().sample_rate())
    }

    #[test]
    fn vowel_accelerate_and_expand_edit_whole_periods_and_keep_pitch() {
        for rate in [48_000u32, 16_000] {
            for f0 in [120.0, 210.0] {
                let period = f64::from(rate) / f0;
                let tolerance = 2.0 * f64::from(rate) / 48_000.0 + 0.5;
                let mut st = TimeStretcher::new(rate, 1);
                // 60 ms of input, the most the jitter buffer hands over (fast accelerate
                // still leaves enough output to measure the pitch on).
                let input = vowel(f0, rate, rate as usize * 60 / 1000);
                let (f_in, _) = pitch(&input, rate).unwrap();
                let step_in = max_step(&input);
                let mut output = Vec::with_capacity(input.len() + rate as usize / 50);
                for kind in [
                    StretchKind::Accelerate,
                    StretchKind::FastAccelerate,
                    StretchKind::PreemptiveExpand,
                ] {
                    let change = st.stretch(&input, kind, &mut output);
                    assert_eq!(
                        output.len() as isize,
                        input.len() as isize + change,
                        "{kind:?}"
                    );
                    let periods = (change.unsigned_abs() as f64 / period).round();
                    let error = change.unsigned_abs() as f64 - periods * period;
                    let (f_out, corr) = pitch(&output, rate).unwrap();
                    let step_out = max_step(&output);
                    println!(
                        "{rate} Hz, f0 {f0}: {kind:?} change {change} ({periods} periods of {period:.2}, error {error:+.2}); \
                         pitch {f_in:.2} -> {f_out:.2} Hz (corr {corr:.3}); max step {step_in} -> {step_out}"
                    );
                    match kind {
                        StretchKind::Accelerate => {
                            assert_eq!(periods, -(-1.0f64), "one period removed")
                        }
                        StretchKind::FastAccelerate => {
                            assert!(periods >= 2.0, "several periods removed")
                        }
                        StretchKind::PreemptiveExpand => {
                            assert_eq!(periods, 1.0, "one period inserted")
                        }
                    }
                    assert!(
                        change.signum()
                            == if kind == StretchKind::PreemptiveExpand {
                                1
                            } else {
                                -1
                            }
                    );
                    assert!(error.abs() <= tolerance, "{kind:?}: error {error} samples");
                    assert!(
                        (f_out / f_in - 1.0).abs() < 0.02,
                        "{kind:?}: pitch {f_in} -> {f_out}"
                    );
                    assert!(
                        f64::from(step_out) <= 1.2 * f64::from(step_in),
                        "{kind:?}: click {step_in} -> {step_out}"
                    );
                }
            }
        }
    }

    #[test]
    fn white_noise_at_speech_level_is_left_alone() {
        for rate in [8_000u32, 12_000, 16_000, 24_000, 48_000] {
            let mut st = TimeStretcher::new(rate, 1);
            let mut output = Vec::new();
            for seed in 1..=20 {
                // -20 dBFS RMS.
                let input = noise(rate as usize * 40 / 1000, 3277.0, seed);
                for kind in [
                    StretchKind::Accelerate,
                    StretchKind::FastAccelerate,
                    StretchKind::PreemptiveExpand,
                ] {
                    assert_eq!(
                        st.stretch(&input, kind, &mut output),
                        0,
                        "{rate} Hz seed {seed} {kind:?}"
                    );
                    assert_eq!(output, input);
                }
            }
        }
    }

    #[test]
    fn silence_and_quiet_noise_are_stretched() {
        for rate in [8_000u32, 16_000, 48_000] {
            let frames = rate as usize * 30 / 1000;
            let mut st = TimeStretcher::new(rate, 2);
            let mut output = Vec::new();
            // Digital silence, and noise at -60 dBFS (RMS 33), stereo.
            for input in [vec![0i16; 2 * frames], noise(2 * frames, 33.0, 7)] {
                for kind in [
                    StretchKind::Accelerate,
                    StretchKind::FastAccelerate,
                    StretchKind::PreemptiveExpand,
                ] {
                    let change = st.stretch(&input, kind, &mut output);
                    assert_ne!(change, 0, "{rate} Hz {kind:?}");
                    assert_eq!(output.len() as isize, input.len() as isize + 2 * change);
                    assert!(max_step(&output) <= 2 * max_step(&input).max(1) + 1);
                }
            }
        }
    }

    /// Best normalised autocorrelation of `x` over lags within 2% of `lag`.
    fn periodicity(x: &[i16], lag: f64) -> f64 {
        let x: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
        let lo = (lag * 0.98).floor() as usize;
        let hi = ((lag * 1.02).ceil() as usize).min(x.len() - 1);
        (lo.max(1)..=hi)
            .map(|l| normalized_correlation(&x[..x.len() - l], &x[l..]))
            .fold(f64::MIN, f64::max)
    }

    /// Windows of `window` frames of `x`: voiced (RMS above -35 dBFS and autocorrelation
    /// peak ≥ 0.7)?
    fn voiced(x: &[i16], rate: u32) -> bool {
        let ms = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64;
        ms.sqrt() > 32768.0 * 10f64.powf(-35.0 / 20.0)
            && pitch(x, rate).is_some_and(|(_, c)| c >= 0.7)
    }

    /// The input position (in frames) an output position of one edited window maps to.
    fn map_back(k: usize, edit: Option<Edit>) -> f64 {
        let Some(e) = edit else { return k as f64 };
        let shift = e.to as f64 - e.from as f64;
        let progress = ((k as f64 - e.from as f64) / e.len as f64).clamp(0.0, 1.0);
        k as f64 + shift * progress
    }

    #[test]
    fn real_speech_accelerate_keeps_spectrum_and_pitch() {
        for name in ["speech_orig_16k.wav", "hts1a.wav", "morig.wav"] {
            let (x, rate) = speech(name);
            let x = &x[..x.len().min(rate as usize * 4)];
            let mut st = TimeStretcher::new(rate, 1);
            let window = st.min_input();
            let mut output = Vec::with_capacity(window * 2);
            // Stretched stream, a resampled control with the same per-window lengths, and
            // per window (input start, output start, output length, edit).
            let (mut stretched, mut resampled, mut windows) = (Vec::new(), Vec::new(), Vec::new());
            let (mut voiced_count, mut voiced_stretched, mut any_stretched) = (0, 0, 0);
            let (mut pitch_checked, mut pitch_kept, mut control_kept) = (0, 0, 0);
            for (i, chunk) in x.chunks_exact(window).enumerate() {
                let edit = st.plan(chunk, StretchKind::Accelerate);
                let change = st.stretch(chunk, StretchKind::Accelerate, &mut output);
                assert_eq!(edit.map_or(0, Edit::change), change);
                let is_voiced = voiced(chunk, rate);
                voiced_count += usize::from(is_voiced);
                voiced_stretched += usize::from(is_voiced && change != 0);
                any_stretched += usize::from(change != 0);
                windows.push((i * window, stretched.len(), output.len(), edit));
                stretched.extend_from_slice(&output);
                for k in 0..output.len() {
                    let pos = k as f64 * (window - 1) as f64 / (output.len() - 1) as f64;
                    let (j, f) = (pos as usize, pos.fract());
                    let next = chunk[(j + 1).min(window - 1)];
                    resampled.push((f64::from(chunk[j]) * (1.0 - f) + f64::from(next) * f) as i16);
                }
                // Pitch kept: with 10 ms of context on each side, the edited audio is as
                // periodic at the original's pitch lag (±2%) as the original (within 0.1).
                // Resampling the window to the same length instead fails this check.
                if change != 0 && is_voiced && i > 0 && (i + 2) * window <= x.len() {
                    let context = rate as usize / 100;
                    let before = &x[i * window - context..i * window];
                    let after = &x[(i + 1) * window..(i + 1) * window + context];
                    let original = &x[i * window - context..(i + 1) * window + context];
                    if let Some((f0, _)) = pitch(original, rate) {
                        let lag = f64::from(rate) / f0;
                        let reference = periodicity(original, lag);
                        let edited = periodicity(&[before, &output[..], after].concat(), lag);
                        let squeezed = periodicity(
                            &[before, &resampled[resampled.len() - output.len()..], after].concat(),
                            lag,
                        );
                        pitch_checked += 1;
                        pitch_kept += usize::from(edited >= reference - 0.1);
                        control_kept += usize::from(squeezed >= reference - 0.1);
                    }
                }
            }
            // Spectrogram frames (20 ms every 10 ms) of the stretched stream whose centre lies
            // in a stretched window, against the original's at the mapped time.
            let to_f32 = |s: &[i16]| {
                s.iter()
                    .map(|&v| f32::from(v) / 32768.0)
                    .collect::<Vec<_>>()
            };
            let frame = rate as usize / 50;
            let compare = |stream: &[i16], linear: bool| {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for &(in_start, out_start, out_len, edit) in &windows {
                    if edit.is_none() {
                        continue;
                    }
                    let mut t = out_start;
                    while t + frame <= stream.len() && t + frame / 2 < out_start + out_len {
                        let k = t + frame / 2 - out_start;
                        let mapped = if linear {
                            k as f64 * window as f64 / out_len as f64
                        } else {
                            map_back(k, edit)
                        };
                        let centre = in_start as f64 + mapped;
                        let start = (centre - (frame / 2) as f64).round();
                        if t + frame / 2 >= out_start
                            && start >= 0.0
                            && start as usize + frame <= x.len()
                        {
                            let start = start as usize;
                            a.extend(log_spectrogram(
                                &to_f32(&x[start..start + frame]),
                                rate,
                                4000.0,
                            ));
                            b.extend(log_spectrogram(
                                &to_f32(&stream[t..t + frame]),
                                rate,
                                4000.0,
                            ));
                        }
                        t += frame / 2;
                    }
                }
                (
                    spectrogram_correlation(&a, &b),
                    log_spectral_distance(&a, &b),
                    a.len(),
                )
            };
            let (corr, lsd, frames) = compare(&stretched, false);
            let (corr_rs, lsd_rs, _) = compare(&resampled, true);
            let share = voiced_stretched as f64 / voiced_count.max(1) as f64;
            println!(
                "{name}: {} windows, {voiced_count} voiced, {voiced_stretched} voiced stretched ({:.0}%), {any_stretched} stretched in all; \
                 length {} -> {}; pitch kept in {pitch_kept}/{pitch_checked} (resampling control {control_kept}/{pitch_checked}); spectrogram over {frames} frames: \
                 corr {corr:.3} lsd {lsd:.2} dB (resampling control: corr {corr_rs:.3} lsd {lsd_rs:.2} dB)",
                windows.len(),
                share * 100.0,
                windows.len() * window,
                stretched.len(),
            );
            assert!(
                share > 0.3,
                "{name}: only {share:.2} of voiced windows stretched"
            );
            assert!(
                pitch_kept as f64 >= 0.9 * pitch_checked as f64,
                "{name}: pitch kept {pitch_kept}/{pitch_checked}"
            );
            assert!(
                2 * control_kept < pitch_checked,
                "{name}: the check should reject resampling"
            );
            assert!(
                corr > 0.9 && corr > corr_rs && lsd < lsd_rs,
                "{name}: spectrogram corr {corr} lsd {lsd} vs resampled {lsd_rs}"
            );
        }
    }

    #[test]
    fn stereo_gets_the_same_edit_on_both_channels() {
        let (x, rate) = speech("speech_orig_16k.wav");
        let x = &x[..rate as usize * 3];
        let side = noise(x.len(), 300.0, 3);
        // L = s + d, R = s - d: different channels whose mix is the mono speech.
        let stereo: Vec<i16> = x
            .iter()
            .zip(&side)
            .flat_map(|(&s, &d)| {
                let s = s / 2;
                [s.saturating_add(d), s.saturating_sub(d)]
            })
            .collect();
        let mut st = TimeStretcher::new(rate, 2);
        let window = st.min_input();
        let (mut output, mut expected) = (Vec::new(), Vec::new());
        let mut stretched = 0;
        for kind in [
            StretchKind::Accelerate,
            StretchKind::FastAccelerate,
            StretchKind::PreemptiveExpand,
        ] {
            for chunk in stereo.chunks_exact(2 * window) {
                let edit = st.plan(chunk, kind);
                let change = st.stretch(chunk, kind, &mut output);
                let Some(edit) = edit else {
                    assert_eq!(change, 0);
                    assert_eq!(output, chunk);
                    continue;
                };
                stretched += 1;
                assert_eq!(
                    output.len() as isize,
                    chunk.len() as isize + 2 * edit.change()
                );
                for channel in 0..2 {
                    let mono: Vec<i16> = chunk.iter().skip(channel).step_by(2).copied().collect();
                    expected.clear();
                    apply_edit(&mono, 1, edit, &mut expected);
                    let got: Vec<i16> = output.iter().skip(channel).step_by(2).copied().collect();
                    assert_eq!(got, expected, "{kind:?} channel {channel}");
                }
            }
        }
        println!("stereo: {stretched} edits, each identical on both channels");
        assert!(stretched > 50);
    }

    #[test]
    fn extend_periodic_continues_a_vowel_without_a_click() {
        for rate in [48_000u32, 16_000] {
            for f0 in [120.0, 210.0] {
                let history_len = rate as usize * 30 / 1000;
                let extra = rate as usize * 20 / 1000;
                let truth = vowel(f0, rate, history_len + extra);
                let (history, future) = truth.split_at(history_len);
                let mut st = TimeStretcher::new(rate, 1);
                let mut out = vec![0i16; extra];
                st.extend_periodic(history, &mut out);
                let joined: Vec<i16> = [&history[history_len - 2..], &out[..]].concat();
                let (f_in, _) = pitch(history, rate).unwrap();
                let (f_out, _) = pitch(&out, rate).unwrap();
                let err: f64 = out
                    .iter()
                    .zip(future)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                let sig: f64 = future.iter().map(|&b| f64::from(b).powi(2)).sum();
                let snr = 10.0 * (sig / err.max(1.0)).log10();
                println!(
                    "{rate} Hz f0 {f0}: continuation pitch {f_in:.2} -> {f_out:.2} Hz, SNR vs true continuation {snr:.1} dB, \
                     max step {} -> {}",
                    max_step(history),
                    max_step(&joined).max(max_step(&out))
                );
                assert!((f_out / f_in - 1.0).abs() < 0.02);
                assert!(snr > 15.0);
                assert!(
                    f64::from(max_step(&joined).max(max_step(&out)))
                        <= 1.2 * f64::from(max_step(history))
                );
            }
        }
    }

    #[test]
    fn extend_periodic_joins_real_speech_smoothly_in_stereo() {
        let (x, rate) = speech("speech_orig_16k.wav");
        let stereo: Vec<i16> = x.iter().flat_map(|&s| [s, s / 3]).collect();
        let mut st = TimeStretcher::new(rate, 2);
        let history_len = 2 * st.min_input();
        let mut out = vec![0i16; 2 * rate as usize / 100];
        let (mut worst, mut count) = (0.0f64, 0);
        for end in (history_len..stereo.len()).step_by(2 * rate as usize / 50) {
            let history = &stereo[end - history_len..end];
            st.extend_periodic(history, &mut out);
            for channel in 0..2 {
                let h: Vec<i16> = history.iter().skip(channel).step_by(2).copied().collect();
                let o: Vec<i16> = out.iter().skip(channel).step_by(2).copied().collect();
                let jump = (i32::from(o[0]) - i32::from(h[h.len() - 1])).abs();
                let typical = max_step(&h).max(1);
                worst = worst.max(f64::from(jump) / f64::from(typical));
                count += 1;
            }
        }
        println!(
            "real speech: worst join step / history's max step = {worst:.2} over {count} joins"
        );
        assert!(worst <= 1.5);
    }

    #[test]
    fn crossfade_into_ramps_from_one_signal_to_the_other() {
        let from = vec![1000i16; 10];
        let mut out = vec![-1000i16; 10];
        crossfade_into(&from, &mut out, 2);
        // Frames of 2: 5 frames, w = 1/6..5/6.
        assert_eq!(out, [667, 667, 333, 333, 0, 0, -333, -333, -667, -667]);
        let mut out = vec![i16::MIN; 7];
        crossfade_into(&[i16::MAX; 3], &mut out, 0);
        assert_eq!(&out[3..], &[i16::MIN; 4]);
        assert!(out[0] > out[1] && out[1] > out[2]);
        crossfade_into(&[], &mut out, 2);
        crossfade_into(&[1; 5], &mut [], 1);
    }

    #[test]
    fn edge_cases_never_panic() {
        let mut output = Vec::new();
        for rate in [
            8_000u32,
            12_000,
            16_000,
            24_000,
            48_000,
            44_100,
            0,
            u32::MAX,
        ] {
            for channels in [0usize, 1, 2, 3] {
                let mut st = TimeStretcher::new(rate, channels);
                let ch = channels.max(1);
                let n = st.min_input() * ch;
                // Full-scale square waves (period 5 ms and 9.7 ms-ish), plus alternating extremes.
                let square = |period: usize, len: usize| -> Vec<i16> {
                    (0..len)
                        .map(|i| {
                            if (i / ch / period) & 1 == 0 {
                                i16::MAX
                            } else {
                                i16::MIN
                            }
                        })
                        .collect()
                };
                let inputs = [
                    Vec::new(),
                    vec![5; ch],
                    vec![i16::MIN; n.saturating_sub(ch)],
                    vec![i16::MAX; n + 1],
                    square(rate.clamp(4000, 192_000) as usize / 400, n),
                    square(97, 3 * n),
                    (0..n)
                        .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
                        .collect(),
                    vec![i16::MIN; 10 * n],
                ];
                for input in &inputs {
                    for kind in [
                        StretchKind::Accelerate,
                        StretchKind::FastAccelerate,
                        StretchKind::PreemptiveExpand,
                    ] {
                        let change = st.stretch(input, kind, &mut output);
                        assert_eq!(
                            output.len() as isize,
                            input.len() as isize + change * ch as isize
                        );
                        if input.len() < n || input.len() / ch * ch != input.len() {
                            assert_eq!(change, 0);
                            assert_eq!(&output, input);
                        }
                    }
                    for len in [0, 1, 7, 3 * n] {
                        let mut out = vec![1i16; len];
                        st.extend_periodic(input, &mut out);
                    }
                }
            }
        }
    }

    #[test]
    fn timing_of_one_stretch() {
        let rate = 48_000;
        let mut st = TimeStretcher::new(rate, 1);
        let input = vowel(150.0, rate, st.min_input());
        let speechlike = {
            let (x, r) = speech("speech_orig_16k.wav");
            assert_eq!(r, 16_000);
            // Upsample 3x by repetition: a rough but real 48 kHz speech window.
            x[8000..8480]
                .iter()
                .flat_map(|&v| [v; 3])
                .collect::<Vec<_>>()
        };
        let noise_in = noise(st.min_input(), 3000.0, 9);
        let mut output = Vec::with_capacity(input.len() + rate as usize / 50);
        let iterations = 200;
        for (label, x) in [
            ("vowel", &input),
            ("speech", &speechlike),
            ("noise", &noise_in),
        ] {
            let started = Instant::now();
            let mut total = 0;
            for i in 0..iterations {
                let kind = if i % 2 == 0 {
                    StretchKind::Accelerate
                } else {
                    StretchKind::PreemptiveExpand
                };
                total += st.stretch(x, kind, &mut output);
            }
            let per_call = started.elapsed() / iterations;
            println!(
                "stretch of 30 ms at 48 kHz mono ({label}, {} profile): {per_call:?} per call (net change {total})",
                if cfg!(debug_assertions) {
                    "dev"
                } else {
                    "release"
                }
            );
        }
        let mut out = vec![0; 480];
        let started = Instant::now();
        for _ in 0..iterations {
            st.extend_periodic(&input, &mut out);
        }
        println!(
            "extend_periodic 30 ms -> 10 ms at 48 kHz: {:?} per call",
            started.elapsed() / iterations
        );
    }
}
