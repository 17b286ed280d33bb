//! Mouth-to-ear delay measured from the audio itself.
//!
//! Every talk turn is cut into 1 s windows ([`WINDOW`]); each window of the talker's
//! microphone that holds speech is cross-correlated with what each listener heard from the
//! window's start up to [`MAX_LAG`] past its end. The lag of the best normalised
//! correlation is that direction's mouth-to-ear delay for the window, and the correlation
//! says whether the speech was heard at all. Windows rather than whole turns, because the
//! jitter buffer stretches and shrinks time during a turn, which moves the lag. Both signals share one clock: the frame pushed
//! at `t` holds the microphone's 10 ms before `t`, the frame pulled at `t` plays from `t`.
//!
//! The search is coarse then fine: the normalised cross-correlation at every lag of
//! 8 kHz versions (means of 6 samples) by FFT, then every 48 kHz lag within one coarse step
//! of the best, directly. Memory is bounded: each participant's tapes keep only the samples
//! from the oldest turn not measured yet (a slot and [`MAX_LAG`] at most).

use std::collections::VecDeque;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use tincan_pipeline::SAMPLE_RATE;

use super::talk::{TalkSchedule, Turn};

/// Longest mouth-to-ear delay searched for.
pub const MAX_LAG_MS: u64 = 1_000;
/// [`MAX_LAG_MS`] in samples at 48 kHz.
pub const MAX_LAG: usize = (MAX_LAG_MS * SAMPLE_RATE as u64 / 1000) as usize;
/// Decimation of the coarse search (48 kHz → 8 kHz).
const DECIMATE: usize = 6;
/// A turn whose microphone RMS is below this (16-bit units) has no speech to measure.
pub const MIN_SPEECH_RMS: f64 = 300.0;
/// Below this correlation the listener is taken not to have heard the turn: no lag is
/// given. Unrelated speech correlates at about 0.05 (`docs/PIPELINE.md`'s control).
pub const MIN_HEARD_CORRELATION: f64 = 0.3;
/// Length of one measurement window, samples at 48 kHz (1 s).
pub const WINDOW: u64 = SAMPLE_RATE as u64;
/// Most results kept (a 16-party call of two hours at 4 s slots has 81 000).
pub const MAX_RESULTS: usize = 200_000;

/// One window of a turn as one listener heard it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowResult {
    /// The turn's index.
    pub turn: u64,
    /// Who spoke (0-based).
    pub talker: usize,
    /// Who listened (0-based).
    pub listener: usize,
    /// When the window starts, seconds from the call's start.
    pub start_s: f64,
    /// The best normalised correlation (0 to 1).
    pub correlation: f64,
    /// Its lag, milliseconds, when the correlation shows the speech was heard.
    pub mouth_to_ear_ms: Option<f64>,
}

/// Samples from an absolute position on.
#[derive(Debug, Default)]
struct Tape {
    samples: VecDeque<i16>,
    /// Absolute index of `samples[0]`.
    base: u64,
}

impl Tape {
    fn end(&self) -> u64 {
        self.base + self.samples.len() as u64
    }

    fn push(&mut self, frame: &[i16]) {
        self.samples.extend(frame);
    }

    /// Drops samples before `from`.
    fn trim(&mut self, from: u64) {
        let drop = from
            .saturating_sub(self.base)
            .min(self.samples.len() as u64);
        self.samples.drain(..drop as usize);
        self.base += drop;
    }

    /// Samples `from..to` as f64 in full-scale units, zeros where the tape has none.
    fn read(&self, from: u64, to: u64, out: &mut Vec<f64>) {
        out.clear();
        out.extend((from..to).map(|i| {
            i.checked_sub(self.base)
                .and_then(|k| self.samples.get(k as usize))
                .map_or(0.0, |&s| f64::from(s) / 32_768.0)
        }));
    }
}

/// Measures every turn for every listener as the call runs.
pub struct Measurer {
    schedule: TalkSchedule,
    /// Per participant, the sample ranges it is away from the call (not measured).
    away: Vec<Vec<(u64, u64)>>,
    mic: Vec<Tape>,
    heard: Vec<Tape>,
    next_turn: u64,
    results: Vec<WindowResult>,
    /// Windows skipped because the talker's microphone held no speech there.
    pub silent_windows: u64,
    /// Results not kept beyond [`MAX_RESULTS`].
    pub dropped_results: u64,
    planner: RealFftPlanner<f64>,
    reference: Vec<f64>,
    test: Vec<f64>,
}

impl std::fmt::Debug for Measurer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurer")
            .field("next_turn", &self.next_turn)
            .field("results", &self.results.len())
            .finish_non_exhaustive()
    }
}

impl Measurer {
    /// A measurer for `participants` following `schedule`.
    pub fn new(participants: usize, schedule: TalkSchedule) -> Self {
        Self {
            schedule,
            away: vec![Vec::new(); participants],
            mic: (0..participants).map(|_| Tape::default()).collect(),
            heard: (0..participants).map(|_| Tape::default()).collect(),
            next_turn: 0,
            results: Vec::new(),
            silent_windows: 0,
            dropped_results: 0,
            planner: RealFftPlanner::new(),
            reference: Vec::new(),
            test: Vec::new(),
        }
    }

    /// Marks `participant` as away from the call for samples `from..to`: windows it would
    /// speak or listen in are not measured.
    pub fn set_away(&mut self, participant: usize, from: u64, to: u64) {
        if let Some(away) = self.away.get_mut(participant) {
            away.push((from, to));
        }
    }

    fn is_away(&self, participant: usize, from: u64, to: u64) -> bool {
        self.away
            .get(participant)
            .is_some_and(|spans| spans.iter().any(|&(a, b)| a < to && from < b))
    }

    /// Appends what `participant`'s microphone captured next.
    pub fn push_mic(&mut self, participant: usize, frame: &[i16]) {
        if let Some(tape) = self.mic.get_mut(participant) {
            tape.push(frame);
        }
    }

    /// Appends what `participant` heard next.
    pub fn push_heard(&mut self, participant: usize, frame: &[i16]) {
        if let Some(tape) = self.heard.get_mut(participant) {
            tape.push(frame);
        }
    }

    /// The measurements so far.
    pub fn results(&self) -> &[WindowResult] {
        &self.results
    }

    fn heard_end(&self) -> u64 {
        self.heard.iter().map(Tape::end).min().unwrap_or(0)
    }

    fn mic_end(&self) -> u64 {
        self.mic.iter().map(Tape::end).min().unwrap_or(0)
    }

    /// Measures every turn whose listeners have heard [`MAX_LAG`] past its end.
    pub fn measure_ready(&mut self) {
        loop {
            let turn = self.schedule.turn(self.next_turn);
            if self.heard_end() < turn.end + MAX_LAG as u64 || self.mic_end() < turn.end {
                break;
            }
            self.measure(turn);
            self.next_turn += 1;
        }
        let keep = self.schedule.turn(self.next_turn).start;
        for tape in self.mic.iter_mut().chain(self.heard.iter_mut()) {
            tape.trim(keep);
        }
    }

    /// At the end of the call: measures the whole windows of the last turn cut short that
    /// can be searched over the whole lag range.
    pub fn finish(&mut self) {
        self.measure_ready();
        let mut turn = self.schedule.turn(self.next_turn);
        turn.end = turn
            .end
            .min(self.heard_end().saturating_sub(MAX_LAG as u64))
            .min(self.mic_end());
        if turn.end >= turn.start + WINDOW {
            self.measure(turn);
            self.next_turn += 1;
        }
    }

    fn measure(&mut self, turn: Turn) {
        let mut start = turn.start;
        while start + WINDOW <= turn.end {
            self.measure_window(turn, start);
            start += WINDOW;
        }
    }

    fn measure_window(&mut self, turn: Turn, start: u64) {
        let talker = turn.talker;
        let end = start + WINDOW;
        let Some(mic) = self.mic.get(talker) else {
            return;
        };
        if self.is_away(talker, start, end) {
            return;
        }
        mic.read(start, end, &mut self.reference);
        let energy: f64 = self.reference.iter().map(|x| x * x).sum();
        let rms = (energy / self.reference.len().max(1) as f64).sqrt() * 32_768.0;
        if rms < MIN_SPEECH_RMS {
            self.silent_windows += 1;
            return;
        }
        for listener in 0..self.heard.len() {
            if listener == talker || self.is_away(listener, start, end + MAX_LAG as u64) {
                continue;
            }
            self.heard[listener].read(start, end + MAX_LAG as u64, &mut self.test);
            let (lag, correlation) =
                best_lag(&mut self.planner, &self.reference, &self.test, MAX_LAG);
            if self.results.len() >= MAX_RESULTS {
                self.dropped_results += 1;
                continue;
            }
            let rate = f64::from(SAMPLE_RATE);
            self.results.push(WindowResult {
                turn: turn.index,
                talker,
                listener,
                start_s: start as f64 / rate,
                correlation,
                mouth_to_ear_ms: (correlation >= MIN_HEARD_CORRELATION)
                    .then(|| lag as f64 * 1000.0 / rate),
            });
        }
    }
}

/// Means of `factor` samples.
fn decimate(signal: &[f64], factor: usize) -> Vec<f64> {
    signal
        .chunks(factor)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}

/// Normalised correlation of `a` with `b[lag..]` over `a`'s length (0 when either is
/// silent or `b` is too short).
fn correlation_at(a: &[f64], b: &[f64], lag: usize) -> f64 {
    let Some(b) = b.get(lag..lag + a.len()) else {
        return 0.0;
    };
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// The lag in `0..=max_lag` (samples, `test` later than `reference`) of the best
/// normalised correlation of `reference` with `test[lag..]`, and that correlation.
/// `test` should hold `reference.len() + max_lag` samples (missing ones count as silence).
pub fn best_lag(
    planner: &mut RealFftPlanner<f64>,
    reference: &[f64],
    test: &[f64],
    max_lag: usize,
) -> (usize, f64) {
    let a = decimate(reference, DECIMATE);
    let b = decimate(test, DECIMATE);
    let coarse_lags = max_lag / DECIMATE;
    let n = a.len();
    let size = (n + b.len()).next_power_of_two().max(2);
    let forward: Arc<dyn RealToComplex<f64>> = planner.plan_fft_forward(size);
    let inverse: Arc<dyn ComplexToReal<f64>> = planner.plan_fft_inverse(size);
    let mut a_time = forward.make_input_vec();
    a_time[..n].copy_from_slice(&a);
    let mut b_time = forward.make_input_vec();
    b_time[..b.len()].copy_from_slice(&b);
    let mut a_freq = forward.make_output_vec();
    let mut b_freq = forward.make_output_vec();
    // The buffers are made by the plans themselves, so their sizes always fit.
    if forward.process(&mut a_time, &mut a_freq).is_err()
        || forward.process(&mut b_time, &mut b_freq).is_err()
    {
        return (0, 0.0);
    }
    // Σ a[i] b[i + l] = IFFT(conj(A) · B)[l].
    for (x, y) in a_freq.iter().zip(b_freq.iter_mut()) {
        *y *= x.conj();
    }
    let last = b_freq.len() - 1;
    b_freq[0] = Complex::new(b_freq[0].re, 0.0);
    b_freq[last] = Complex::new(b_freq[last].re, 0.0);
    let mut cross = inverse.make_output_vec();
    if inverse.process(&mut b_freq, &mut cross).is_err() {
        return (0, 0.0);
    }
    let energy_a: f64 = a.iter().map(|x| x * x).sum();
    let mut prefix = Vec::with_capacity(b.len() + 1);
    prefix.push(0.0);
    let mut sum = 0.0;
    for y in &b {
        sum += y * y;
        prefix.push(sum);
    }
    let mut best = (0usize, f64::MIN);
    for lag in 0..=coarse_lags.min(b.len().saturating_sub(1)) {
        let end = (lag + n).min(b.len());
        let energy_b = prefix[end] - prefix[lag];
        // A stretch 60 dB below the reference's level is silence, not a match.
        if energy_b <= energy_a * 1e-6 || energy_a <= 0.0 {
            continue;
        }
        let score = cross[lag] / size as f64 / (energy_a * energy_b).sqrt();
        if score > best.1 {
            best = (lag, score);
        }
    }
    if best.1 == f64::MIN {
        return (0, 0.0);
    }
    let centre = best.0 * DECIMATE;
    let from = centre.saturating_sub(DECIMATE);
    let to = (centre + DECIMATE).min(max_lag);
    (from..=to)
        .map(|lag| (lag, correlation_at(reference, test, lag)))
        .fold((centre, f64::MIN), |b, c| if c.1 > b.1 { c } else { b })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic speech-like signal: noise bursts shaped by a slow envelope.
    fn babble(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let envelope = ((i as f64 / 2_400.0).sin()).abs();
                noise * envelope * 0.5
            })
            .collect()
    }

    #[test]
    fn finds_a_known_delay_to_the_sample() {
        let mut planner = RealFftPlanner::new();
        let reference = babble(48_000, 1);
        for delay in [0usize, 1, 3_173, 9_600, MAX_LAG] {
            let mut test = vec![0.0; delay];
            test.extend(reference.iter().map(|x| x * 0.5));
            test.resize(reference.len() + MAX_LAG, 0.0);
            let (lag, correlation) = best_lag(&mut planner, &reference, &test, MAX_LAG);
            assert_eq!(lag, delay);
            assert!(correlation > 0.99, "{correlation}");
        }
    }

    #[test]
    fn unrelated_or_silent_audio_correlates_poorly() {
        let mut planner = RealFftPlanner::new();
        let reference = babble(48_000, 1);
        let other = babble(48_000 + MAX_LAG, 2);
        let (_, correlation) = best_lag(&mut planner, &reference, &other, MAX_LAG);
        assert!(correlation < MIN_HEARD_CORRELATION, "{correlation}");
        let silence = vec![0.0; 48_000 + MAX_LAG];
        assert_eq!(
            best_lag(&mut planner, &reference, &silence, MAX_LAG),
            (0, 0.0)
        );
    }

    #[test]
    fn measures_each_turn_for_each_listener_and_keeps_little() {
        let schedule = TalkSchedule::new(3, 1_000, 500).unwrap();
        let mut measurer = Measurer::new(3, schedule);
        let delays = [480usize * 5, 480 * 9, 480 * 13]; // per listener
        let speech: Vec<i16> = babble(400 * 480, 3)
            .iter()
            .map(|x| (x * 30_000.0) as i16)
            .collect();
        let mut mics: Vec<Vec<i16>> = vec![Vec::new(); 3];
        for tick in 0..400usize {
            for (p, mic) in mics.iter_mut().enumerate() {
                let from = tick * 480;
                let frame: Vec<i16> = (from..from + 480)
                    .map(|s| match schedule.talker_at(s as u64) {
                        Some(t) if t == p => speech[s],
                        _ => 0,
                    })
                    .collect();
                measurer.push_mic(p, &frame);
                mic.extend(&frame);
            }
            for (listener, &delay) in delays.iter().enumerate() {
                let frame: Vec<i16> = (tick * 480..tick * 480 + 480)
                    .map(|s| {
                        (0..3)
                            .filter(|&t| t != listener)
                            .map(|t| s.checked_sub(delay).map_or(0, |k| mics[t][k]))
                            .sum()
                    })
                    .collect();
                measurer.push_heard(listener, &frame);
            }
            measurer.measure_ready();
            assert!(
                measurer
                    .heard
                    .iter()
                    .all(|t| t.samples.len() <= 48_000 + MAX_LAG + 480)
            );
        }
        measurer.finish();
        let results = measurer.results();
        // Slots of 1.5 s in 4 s of audio: turns 0 and 1 in full (one window each), turn 2
        // not at all (it cannot be searched over the whole lag range).
        assert_eq!(results.len(), 2 * 2, "{results:?}");
        for r in results {
            let expected = delays[r.listener] as f64 / 48.0;
            assert_eq!(r.mouth_to_ear_ms, Some(expected), "{r:?}");
            assert!(r.correlation > 0.99);
        }
    }
}
