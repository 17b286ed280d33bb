//! The band limit: a low-pass above the talker's speech, where the input holds only noise.
//!
//! RNNoise lowers noise band by band but keeps its gains open wherever it hears speech, and
//! it expects speech to fill the whole band up to 20 kHz. A talker whose speech stops at
//! 4 kHz (a narrowband source: a telephone bridge, a Bluetooth headset's 8 kHz link, an old
//! recording) in wideband noise, or one whose high band is buried under broadband noise,
//! keeps a hiss above their speech for as long as they talk. The [`BandwidthDetector`]
//! finds those bands: per 10 ms frame it measures, at 48 kHz, the level of each band
//! between 4 and 20 kHz (Opus's bandwidth steps: 4, 6, 8, 12, 16 and 20 kHz), tracks each
//! band's noise level (its mean power over the frames outside the voice activity detector's
//! talkspurts, capped at 3 dB over its floor by minimum statistics, which stands in until
//! there are enough such frames) and counts, over the frames in talkspurts, how often the
//! band stands [`HIT_ABOVE_NOISE_DB`] above its noise. A band where speech almost never
//! does so carries no speech that can be heard over the noise. The talker's speech bandwidth is the top of the highest band that does carry
//! speech (never below 4 kHz, the telephone band); when some band above it holds noise
//! worth removing, the processor low-passes its output there (an 8th-order
//! Butterworth: no added delay, a few multiplications per sample). Clean input is never
//! filtered: its high bands hold no noise to remove.
//!
//! The limit changes at most once per [`HOLD_FRAMES`] frames, and each change is a 10 ms
//! crossfade from the old filter to the new one, which starts warmed up on the frame before.
//! No allocation after construction.

use std::f32::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::minimum::{MinimumStatistics, power_db};

/// Band edges (Hz) above the narrowband telephone band; a limit is always one of them.
pub const BAND_EDGES_HZ: [u32; 6] = [4_000, 6_000, 8_000, 12_000, 16_000, 20_000];
const BANDS: usize = BAND_EDGES_HZ.len() - 1;
/// The analysis runs on RNNoise's 10 ms frames at 48 kHz: 100 Hz per bin.
const ANALYSIS_FRAME: usize = 480;
const BIN_HZ: u32 = 100;
/// Bins of the voice band, 300 Hz to 4 kHz.
const VOICE_FIRST_BIN: usize = 3;
const VOICE_END_BIN: usize = 40;
/// Bins left out at the bottom of each band, so the window's leakage from strong speech
/// just under a band does not count as speech in it.
const GUARD_BINS: usize = 2;
/// A talkspurt frame is a hit in a band whose 30 ms level stands this far above its noise
/// level: beyond a steady noise's own swings (a standard deviation of about 0.6 dB for the
/// narrowest band, 2 kHz over 30 ms), while fricatives a little over the noise count.
pub const HIT_ABOVE_NOISE_DB: f32 = 3.0;
/// Frames outside talkspurts the noise level is averaged over, at most (500 ms).
const NOISE_FRAMES: u32 = 50;
/// Frames outside talkspurts from which their mean is the noise level rather than the
/// floor (the VAD can call the first second of a new noise speech, as it does with white
/// noise; then the floor stands in).
const NOISE_FRAMES_TRUSTED: u32 = 10;
/// The floor of a 30 ms level sits 1-2 dB under a steady noise's mean (the minimum of its
/// swings); the noise level is taken at most this far above the floor.
const FLOOR_MARGIN_DB: f32 = 3.0;
/// Frames at the start of the stream the floor does not see: the resamplers' start-up
/// leaves them partly empty, which would put the floor under the noise for 3.2 s.
const START_FRAMES_SKIPPED: u32 = 2;
/// Talkspurt frames with voiced speech (300 Hz-4 kHz standing over its noise) heard before
/// any band is judged (300 ms of speech).
const SPEECH_FRAMES_BEFORE_JUDGING: u32 = 30;
/// The hit rate is the mean over the first talkspurt frames, then a running mean over
/// about this many (1 s of talk).
const RATE_FRAMES: u32 = 100;
/// A band carries speech from this hit rate up, and no longer below the lower one.
const CARRIES_SPEECH_FROM: f32 = 0.02;
const NO_SPEECH_BELOW: f32 = 0.01;
/// Band noise levels (dB relative to full scale) below this hold no noise worth a filter.
pub const NOISE_WORTH_REMOVING_DB: f32 = -75.0;
/// Least number of frames between two changes of the limit (1 s).
pub const HOLD_FRAMES: u32 = 100;

#[derive(Debug, Clone)]
struct Band {
    first_bin: usize,
    end_bin: usize,
    floor: MinimumStatistics,
    /// Mean power over the last frames outside talkspurts, and how many (up to
    /// [`NOISE_FRAMES`]).
    noise_power: f64,
    noise_frames: u32,
    hit_rate: f32,
    carries_speech: bool,
}

impl Band {
    fn new(first_bin: usize, end_bin: usize) -> Self {
        Self {
            first_bin,
            end_bin,
            floor: MinimumStatistics::new(),
            noise_power: 0.0,
            noise_frames: 0,
            hit_rate: 1.0,
            carries_speech: true,
        }
    }

    /// Takes the band's power in one frame; returns whether it is a hit (only meaningful
    /// in a talkspurt), after updating the noise outside talkspurts.
    fn update(&mut self, power: f64, talking: bool) -> bool {
        let level_db = self.floor.update(power);
        if !talking {
            self.noise_frames = (self.noise_frames + 1).min(NOISE_FRAMES);
            self.noise_power += (power - self.noise_power) / f64::from(self.noise_frames);
        }
        level_db > self.noise_db() + HIT_ABOVE_NOISE_DB
    }

    /// The band's noise level, dB: the mean outside talkspurts, but never more than
    /// [`FLOOR_MARGIN_DB`] over the floor (faint speech outside the talkspurts would raise
    /// the mean of a band whose noise is far under its speech).
    fn noise_db(&self) -> f32 {
        let ceiling = self.floor.floor_db() + FLOOR_MARGIN_DB;
        if self.noise_frames >= NOISE_FRAMES_TRUSTED {
            power_db(self.noise_power).min(ceiling)
        } else {
            ceiling
        }
    }
}

/// Finds the bands above the talker's speech (see the [module docs](self)); works on
/// RNNoise's 48 kHz frames.
pub struct BandwidthDetector {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    bands: [Band; BANDS],
    /// 300 Hz to 4 kHz, where every talker's voiced speech is: the evidence that a
    /// talkspurt holds speech and not a noise the VAD took for it.
    voice: Band,
    /// Frames in talkspurts, and those of them with voiced speech over the noise.
    talk_frames: u32,
    speech_frames: u32,
    frames: u32,
    /// Where the processor's output ends: half its rate.
    nyquist_hz: u32,
    limit_hz: Option<u32>,
    frames_since_change: u32,
}

impl std::fmt::Debug for BandwidthDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BandwidthDetector")
            .field("speech_frames", &self.speech_frames)
            .field("limit_hz", &self.limit_hz)
            .finish_non_exhaustive()
    }
}

impl BandwidthDetector {
    /// A detector for an output whose content ends at `nyquist_hz` (half the processor's
    /// rate); this is where its FFT plan and buffers are made.
    pub fn new(nyquist_hz: u32) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(ANALYSIS_FRAME);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        // Periodic Hann.
        let window = (0..ANALYSIS_FRAME)
            .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f32 / ANALYSIS_FRAME as f32).cos())
            .collect();
        let bands = std::array::from_fn(|b| {
            Band::new(
                (BAND_EDGES_HZ[b] / BIN_HZ) as usize + GUARD_BINS,
                (BAND_EDGES_HZ[b + 1] / BIN_HZ) as usize,
            )
        });
        Self {
            fft,
            window,
            input: vec![0.0; ANALYSIS_FRAME],
            spectrum,
            scratch,
            bands,
            voice: Band::new(VOICE_FIRST_BIN, VOICE_END_BIN),
            talk_frames: 0,
            speech_frames: 0,
            frames: 0,
            nyquist_hz,
            limit_hz: None,
            frames_since_change: HOLD_FRAMES,
        }
    }

    /// The talker's speech bandwidth, Hz: the top of the highest band that carries speech
    /// (at least 4 kHz), once 300 ms of speech have been heard.
    pub fn speech_bandwidth_hz(&self) -> Option<u32> {
        (self.speech_frames >= SPEECH_FRAMES_BEFORE_JUDGING).then(|| self.bandwidth())
    }

    fn bandwidth(&self) -> u32 {
        self.bands
            .iter()
            .rposition(|band| band.carries_speech)
            .map_or(BAND_EDGES_HZ[0], |b| BAND_EDGES_HZ[b + 1])
    }

    /// The low-pass the output should have now, Hz, as the last [`update`](Self::update)
    /// decided; `None` for none.
    pub fn limit_hz(&self) -> Option<u32> {
        self.limit_hz
    }

    /// Takes one 10 ms frame at 48 kHz (interleaved `channels`, full scale ±1; channels
    /// are averaged) and whether the voice activity detector calls it speech (its talkspurts,
    /// hangover included, hold the unvoiced sounds between vowels, which RNNoise's own
    /// probability often puts under one half, and which are most of speech above 4 kHz).
    /// Returns the limit for the output.
    pub fn update(&mut self, frame: &[f32], channels: usize, speech: bool) -> Option<u32> {
        let channels = channels.max(1);
        let mut silent = true;
        for (k, sample) in self.input.iter_mut().enumerate() {
            let sum: f32 = frame.iter().skip(k * channels).take(channels).sum();
            let mono = sum / channels as f32;
            silent &= mono == 0.0;
            *sample = mono * self.window[k];
        }
        // Parseval with a one-sided spectrum and the Hann window's mean square of 3/8: a
        // band's share of the frame's mean square.
        let scale = 16.0 / (3.0 * (ANALYSIS_FRAME * ANALYSIS_FRAME) as f64);
        let analysed = !silent
            && self
                .fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
                .is_ok();
        self.frames = self.frames.saturating_add(1);
        if self.frames <= START_FRAMES_SKIPPED {
            return self.limit_hz;
        }
        let spectrum = &self.spectrum;
        let power = |band: &Band| {
            if !analysed {
                return 0.0;
            }
            let sum: f64 = spectrum[band.first_bin..band.end_bin]
                .iter()
                .map(|bin| f64::from(bin.norm_sqr()))
                .sum();
            if sum.is_finite() { sum * scale } else { 0.0 }
        };
        let voiced = self.voice.update(power(&self.voice), speech);
        if speech {
            self.talk_frames = self.talk_frames.saturating_add(1);
            if voiced {
                self.speech_frames = self.speech_frames.saturating_add(1);
            }
        }
        let judging = self.speech_frames >= SPEECH_FRAMES_BEFORE_JUDGING;
        let weight = 1.0 / self.talk_frames.clamp(1, RATE_FRAMES) as f32;
        for band in &mut self.bands {
            let hit = band.update(power(band), speech);
            if speech {
                band.hit_rate += weight * (f32::from(u8::from(hit)) - band.hit_rate);
                if judging {
                    band.carries_speech = if band.carries_speech {
                        band.hit_rate >= NO_SPEECH_BELOW
                    } else {
                        band.hit_rate >= CARRIES_SPEECH_FROM
                    };
                }
            }
        }
        let wanted = self.wanted_limit();
        self.frames_since_change = self.frames_since_change.saturating_add(1);
        if wanted != self.limit_hz && self.frames_since_change >= HOLD_FRAMES {
            self.limit_hz = wanted;
            self.frames_since_change = 0;
        }
        self.limit_hz
    }

    fn wanted_limit(&self) -> Option<u32> {
        let nyquist_hz = self.nyquist_hz;
        if self.speech_frames < SPEECH_FRAMES_BEFORE_JUDGING {
            return None;
        }
        let limit = self.bandwidth();
        let noise_above = self.bands.iter().enumerate().any(|(b, band)| {
            BAND_EDGES_HZ[b] >= limit
                && BAND_EDGES_HZ[b] < nyquist_hz
                && band.noise_db() > NOISE_WORTH_REMOVING_DB
        });
        (limit < nyquist_hz && noise_above).then_some(limit)
    }
}

/// Sections of the 8th-order Butterworth low-pass.
const SECTIONS: usize = 4;
/// Channels a limiter serves.
const MAX_CHANNELS: usize = 2;

/// One biquad's coefficients, normalised (`a0 = 1`).
#[derive(Debug, Clone, Copy)]
struct Section {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
}

/// An 8th-order Butterworth low-pass, per channel, transposed direct form II.
#[derive(Debug, Clone, Copy)]
struct LowPass {
    cutoff_hz: u32,
    sections: [Section; SECTIONS],
    state: [[[f32; 2]; SECTIONS]; MAX_CHANNELS],
}

impl LowPass {
    fn new(cutoff_hz: u32, rate: u32) -> Self {
        let w0 = 2.0 * PI * cutoff_hz as f32 / rate as f32;
        let (sin, cos) = w0.sin_cos();
        let sections = std::array::from_fn(|k| {
            // The Butterworth poles' quality factors: 1 / (2 cos((2k + 1) pi / 16)).
            let q = 1.0 / (2.0 * ((2 * k + 1) as f32 * PI / (4 * SECTIONS) as f32).cos());
            let alpha = sin / (2.0 * q);
            let a0 = 1.0 + alpha;
            Section {
                b0: (1.0 - cos) / 2.0 / a0,
                b1: (1.0 - cos) / a0,
                b2: (1.0 - cos) / 2.0 / a0,
                a1: -2.0 * cos / a0,
                a2: (1.0 - alpha) / a0,
            }
        });
        Self {
            cutoff_hz,
            sections,
            state: [[[0.0; 2]; SECTIONS]; MAX_CHANNELS],
        }
    }

    /// Filters interleaved samples in place.
    fn process(&mut self, samples: &mut [f32], channels: usize) {
        for (k, y) in samples.iter_mut().enumerate() {
            let state = &mut self.state[k % channels];
            let mut value = *y;
            for (section, s) in self.sections.iter().zip(state.iter_mut()) {
                let out = section.b0 * value + s[0];
                s[0] = section.b1 * value - section.a1 * out + s[1];
                s[1] = section.b2 * value - section.a2 * out;
                value = out;
            }
            *y = value;
        }
        // Flush what has decayed to nothing, so silence never runs on subnormal numbers.
        for s in self.state.iter_mut().flatten().flatten() {
            if s.abs() < 1e-20 {
                *s = 0.0;
            }
        }
    }
}

/// Applies the [`BandwidthDetector`]'s limit to the output, at the processor's rate.
#[derive(Debug, Clone)]
pub(crate) struct BandLimiter {
    rate: u32,
    channels: usize,
    active: Option<LowPass>,
    /// The last frame before limiting, to warm a new filter on.
    previous: Vec<f32>,
    scratch: Vec<f32>,
}

impl BandLimiter {
    /// A limiter for interleaved frames of `frame_samples` (at most two channels).
    pub(crate) fn new(rate: u32, channels: usize, frame_samples: usize) -> Self {
        Self {
            rate,
            channels: channels.clamp(1, MAX_CHANNELS),
            active: None,
            previous: vec![0.0; frame_samples],
            scratch: vec![0.0; frame_samples],
        }
    }

    /// The low-pass applied now, Hz.
    pub(crate) fn cutoff_hz(&self) -> Option<u32> {
        self.active.map(|filter| filter.cutoff_hz)
    }

    /// Limits one frame in place to `limit_hz` (`None`: no filter), crossfading over the
    /// frame when the limit changes.
    pub(crate) fn process(&mut self, frame: &mut [f32], limit_hz: Option<u32>) {
        let limit_hz = limit_hz.filter(|&hz| hz < self.rate / 2);
        let channels = self.channels;
        if limit_hz == self.cutoff_hz() {
            self.previous.copy_from_slice(frame);
            if let Some(filter) = self.active.as_mut() {
                filter.process(frame, channels);
            }
            return;
        }
        // The old path's output of this frame in `scratch`.
        self.scratch.copy_from_slice(frame);
        if let Some(filter) = self.active.as_mut() {
            filter.process(&mut self.scratch, channels);
        }
        let mut next = limit_hz.map(|hz| LowPass::new(hz, self.rate));
        if let Some(filter) = next.as_mut() {
            // Warm the new filter on the frame before (which is then spent), then run it
            // on this one.
            filter.process(&mut self.previous, channels);
        }
        self.previous.copy_from_slice(frame);
        if let Some(filter) = next.as_mut() {
            filter.process(frame, channels);
        }
        let per_channel = frame.len() / channels;
        for (k, (new, &old)) in frame.iter_mut().zip(&self.scratch).enumerate() {
            let t = (k / channels + 1) as f32 / per_channel as f32;
            *new = t * *new + (1.0 - t) * old;
        }
        self.active = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic white noise of the given RMS.
    struct Noise(u32);

    impl Noise {
        fn sample(&mut self, rms: f32) -> f32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let uniform = (self.0 >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            uniform * rms * 12f32.sqrt()
        }
    }

    /// A talker in 300 ms bursts with 200 ms gaps, low-passed at `talker_hz` (`None`:
    /// full band), over white noise at `noise_rms`; returns the detector after `frames`.
    fn listen(talker_hz: Option<u32>, noise_rms: f32, frames: usize) -> BandwidthDetector {
        listen_with(talker_hz, noise_rms, frames, 0.05)
    }

    /// As [`listen`], with the speech probability RNNoise gives the gaps.
    fn listen_with(
        talker_hz: Option<u32>,
        noise_rms: f32,
        frames: usize,
        gap_probability: f32,
    ) -> BandwidthDetector {
        let mut detector = BandwidthDetector::new(24_000);
        // Two filters in series: a 16th-order talker's spectrum ends within half an octave.
        let mut shaping = talker_hz.map(|hz| [LowPass::new(hz, 48_000); 2]);
        let (mut talker, mut background) = (Noise(1), Noise(2));
        let mut frame = [0.0f32; ANALYSIS_FRAME];
        for k in 0..frames {
            let speaking = k % 50 >= 20;
            for sample in frame.iter_mut() {
                *sample = if speaking { talker.sample(0.1) } else { 0.0 };
            }
            for filter in shaping.iter_mut().flatten() {
                filter.process(&mut frame, 1);
            }
            for sample in frame.iter_mut() {
                *sample += background.sample(noise_rms);
            }
            let probability = if speaking { 0.95 } else { gap_probability };
            detector.update(&frame, 1, probability > 0.5);
        }
        detector
    }

    #[test]
    fn a_narrowband_talker_in_wideband_noise_is_limited_to_4_khz() {
        let detector = listen(Some(3_000), 0.003, 300);
        assert_eq!(detector.speech_bandwidth_hz(), Some(4_000));
        assert_eq!(detector.limit_hz(), Some(4_000));
    }

    #[test]
    fn the_floor_stands_in_while_rnnoise_calls_the_noise_speech() {
        // RNNoise can call the first second of a steady noise speech: with no frame called
        // non-speech, the noise level is the floor's.
        let detector = listen_with(Some(3_000), 0.003, 300, 0.9);
        assert_eq!(detector.limit_hz(), Some(4_000));
    }

    #[test]
    fn noise_the_vad_takes_for_speech_is_not_judged() {
        // White noise alone, every frame in a talkspurt: no voiced speech stands over the
        // noise, so nothing is judged and nothing limited.
        let mut detector = BandwidthDetector::new(24_000);
        let mut noise = Noise(3);
        let mut frame = [0.0f32; ANALYSIS_FRAME];
        for _ in 0..300 {
            frame.iter_mut().for_each(|s| *s = noise.sample(0.01));
            detector.update(&frame, 1, true);
        }
        assert_eq!(detector.speech_bandwidth_hz(), None);
        assert_eq!(detector.limit_hz(), None);
    }

    #[test]
    fn a_talker_up_to_6_khz_keeps_8_khz() {
        let detector = listen(Some(6_000), 0.003, 300);
        assert_eq!(detector.speech_bandwidth_hz(), Some(8_000));
        assert_eq!(detector.limit_hz(), Some(8_000));
    }

    #[test]
    fn a_full_band_talker_is_never_limited() {
        let detector = listen(None, 0.003, 300);
        assert_eq!(detector.speech_bandwidth_hz(), Some(20_000));
        assert_eq!(detector.limit_hz(), None);
    }

    #[test]
    fn clean_input_is_not_filtered_and_nothing_is_judged_before_speech() {
        // Noise 90 dB under full scale: nothing worth removing (and the talker's faint
        // spectral tail above 4 kHz may count as speech over so low a floor).
        let detector = listen(Some(3_000), 0.000_03, 300);
        assert!(detector.speech_bandwidth_hz().is_some());
        assert_eq!(detector.limit_hz(), None);
        // 200 ms of speech is too little to judge.
        let detector = listen(Some(3_000), 0.003, 45);
        assert_eq!(detector.speech_bandwidth_hz(), None);
        assert_eq!(detector.limit_hz(), None);
    }

    /// RMS of `signal` through a limiter at `cutoff`, over the second half of 20 frames.
    fn through(signal: impl Fn(usize) -> f32, rate: u32, cutoff: Option<u32>) -> f32 {
        let frame = rate as usize / 100;
        let mut limiter = BandLimiter::new(rate, 1, frame);
        let mut kept = Vec::new();
        for k in 0..20 {
            let mut samples: Vec<f32> = (k * frame..(k + 1) * frame).map(&signal).collect();
            limiter.process(&mut samples, cutoff);
            if k >= 10 {
                kept.extend_from_slice(&samples);
            }
        }
        assert_eq!(limiter.cutoff_hz(), cutoff.filter(|&hz| hz < rate / 2));
        rms(&kept)
    }

    fn tone(hz: f32, rate: u32) -> impl Fn(usize) -> f32 {
        move |n| 0.5 * (2.0 * PI * hz * n as f32 / rate as f32).sin()
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn the_low_pass_keeps_speech_and_removes_the_band_above() {
        let tone_rms = 0.5 / 2f32.sqrt();
        for (rate, low, high, cutoff) in [
            (16_000, 1_000.0, 6_000.0, 4_000),
            (48_000, 2_000.0, 7_000.0, 4_000),
            (48_000, 5_000.0, 14_000.0, 8_000),
        ] {
            let kept = through(tone(low, rate), rate, Some(cutoff));
            assert!(
                (kept / tone_rms - 1.0).abs() < 0.05,
                "{rate} Hz, {low} Hz: {kept}"
            );
            let removed = through(tone(high, rate), rate, Some(cutoff));
            assert!(removed < tone_rms * 0.01, "{rate} Hz, {high} Hz: {removed}");
        }
        // At or above the rate's Nyquist there is nothing to limit.
        let all = through(tone(6_000.0, 16_000), 16_000, Some(8_000));
        assert!((all / tone_rms - 1.0).abs() < 0.01);
    }

    #[test]
    fn switching_the_limit_is_a_crossfade_without_a_click() {
        let rate = 16_000;
        let frame = 160;
        let mut limiter = BandLimiter::new(rate, 1, frame);
        let signal = tone(500.0, rate);
        let mut output = Vec::new();
        for k in 0..40 {
            let limit = match k {
                10..20 => Some(4_000),
                20..30 => Some(6_000),
                _ => None,
            };
            let mut samples: Vec<f32> = (k * frame..(k + 1) * frame).map(&signal).collect();
            limiter.process(&mut samples, limit);
            output.extend_from_slice(&samples);
        }
        // A 500 Hz tone of 0.5 moves by at most 0.1 per sample at 16 kHz; a filter started
        // cold, or a hard switch, would jump.
        let largest_step = output
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(largest_step < 0.11, "{largest_step}");
    }

    proptest! {
        #[test]
        fn the_limiter_output_is_finite_and_bounded(
            frames in prop::collection::vec(
                (prop::collection::vec(-1.0f32..=1.0, 320), prop::option::of(0usize..6)),
                1..40,
            ),
        ) {
            let mut limiter = BandLimiter::new(16_000, 2, 320);
            for (mut samples, limit) in frames {
                limiter.process(&mut samples, limit.map(|b| BAND_EDGES_HZ[b]));
                prop_assert!(samples.iter().all(|s| s.is_finite() && s.abs() <= 4.0));
            }
        }

        #[test]
        fn the_detector_takes_any_input(
            frames in prop::collection::vec((any::<f32>(), any::<bool>()), 1..200),
        ) {
            let mut detector = BandwidthDetector::new(24_000);
            for (value, speech) in frames {
                let frame = [value; ANALYSIS_FRAME * 2];
                let limit = detector.update(&frame, 2, speech);
                prop_assert!(limit.is_none_or(|hz| BAND_EDGES_HZ.contains(&hz)));
            }
        }
    }
}
