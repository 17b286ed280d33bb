//! Objective comparisons of decoded media against its source: delay alignment, SNR,
//! correlation and level for audio waveforms; log spectrograms and the distances between
//! them for codecs (vocoders, concealment) that keep the spectrum but not the waveform;
//! a tone's frequency; and Adler-32 checksums for bit-exact video. (Video PSNR is
//! [`VideoFrame::psnr`](crate::VideoFrame::psnr).)
//!
//! Audio measures take mono `f32` samples at full scale (-1.0..=1.0); convert 16-bit
//! audio with [`Sample::to_f32`](crate::Sample::to_f32), which is exact.
//!
//! These are the cheap, dependency-free measures tests and the demo use; perceptual
//! scores (PESQ, STOI) come from the quality labs.

use std::f64::consts::PI;

/// One 16-bit step squared in full-scale units (2^-30, about -90.3 dB): the floor
/// [`level_difference_db`] puts under a signal's power.
const LSB_POWER: f64 = 1.0 / (32_768.0 * 32_768.0);

/// Power floor added to every spectrogram bin before the logarithm: 1000 16-bit units
/// squared (about -60.3 dB), some 60 dB below speech, so silence does not dominate.
const SPECTRAL_FLOOR: f64 = 1e3 * LSB_POWER;

/// The lag (in samples, `test` later than `reference`) within `0..=max_lag` that
/// maximises the cross-correlation of the two mono signals.
///
/// Codecs delay their output (Opus by its look-ahead), so decoded audio has to be
/// shifted back before it can be compared sample by sample.
pub fn best_lag(reference: &[f32], test: &[f32], max_lag: usize) -> usize {
    let mut best = (0, f64::MIN);
    for lag in 0..=max_lag.min(test.len()) {
        let n = reference.len().min(test.len() - lag);
        let score: f64 = reference[..n]
            .iter()
            .zip(&test[lag..lag + n])
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        if score > best.1 {
            best = (lag, score);
        }
    }
    best.0
}

/// Normalised correlation of pairs: Σxy / √(Σx² Σy²), 0 when either side is all zero.
fn normalised_dot(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in pairs {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Normalised cross-correlation (cosine similarity) of two equally long stretches:
/// 1.0 for identical shape, 0 for unrelated, and 0 when either is silent. Only the
/// common length is compared; it does not depend on either signal's level.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    normalised_dot(a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y))))
}

/// Signal-to-noise ratio in dB of `test` against `reference` (noise = their difference),
/// over the common length. `f64::INFINITY` when they are identical.
pub fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &t) in reference.iter().zip(test) {
        let (r, t) = (f64::from(r), f64::from(t));
        signal += r * r;
        noise += (r - t) * (r - t);
    }
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// How well a decoded signal matches its source once aligned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignedComparison {
    /// Samples the decoded signal lags the source.
    pub lag: usize,
    /// SNR in dB after alignment.
    pub snr_db: f64,
    /// Normalised correlation after alignment.
    pub correlation: f64,
}

/// Aligns `decoded` to `reference` (searching lags up to `max_lag`, see [`best_lag`])
/// and compares `reference[i]` with `decoded[i + lag]` over their overlap.
pub fn compare_aligned(reference: &[f32], decoded: &[f32], max_lag: usize) -> AlignedComparison {
    let lag = best_lag(reference, decoded, max_lag);
    let n = reference.len().min(decoded.len().saturating_sub(lag));
    let (r, d) = (&reference[..n], &decoded[lag..lag + n]);
    AlignedComparison {
        lag,
        snr_db: snr_db(r, d),
        correlation: correlation(r, d),
    }
}

/// Mean power (mean of the squared samples) of `signal`; 0 for an empty one. A
/// full-scale sine has 0.5.
pub fn mean_square(signal: &[f32]) -> f64 {
    signal
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / signal.len().max(1) as f64
}

/// Root-mean-square level of `signal` (full scale 1.0); 0 for an empty one.
pub fn rms(signal: &[f32]) -> f64 {
    mean_square(signal).sqrt()
}

/// Level of `test` relative to `reference` in dB: 10·log10 of their
/// [`mean_square`] ratio, positive when `test` is louder.
///
/// Each power is floored at one 16-bit step squared (2^-30, about -90.3 dB), so a
/// silent signal gives a large but finite figure instead of ±∞ (silence against
/// speech at -20 dB comes out near -70 dB).
pub fn level_difference_db(reference: &[f32], test: &[f32]) -> f64 {
    10.0 * (mean_square(test).max(LSB_POWER) / mean_square(reference).max(LSB_POWER)).log10()
}

/// Log-power spectrogram of a mono signal, for comparing audio whose waveform is not
/// expected to match (vocoders such as Opus DRED, packet-loss concealment).
///
/// Frames are 20 ms Hann windows (`sample_rate / 50` samples) every 10 ms (half a
/// window); a trailing stretch shorter than a window is left out, so a signal shorter
/// than 20 ms gives no frames. Each frame holds the DFT bins at k·50 Hz for
/// 1 ≤ k < `max_hz` / 50 (DC and `max_hz` itself are excluded), as
/// 10·log10(|X_k|² + floor) where X_k is the unnormalised DFT of the windowed
/// full-scale samples and the floor is 1000 16-bit units squared (about -60.3 dB),
/// some 60 dB below speech, so silence does not dominate the comparisons.
///
/// The DFT is computed directly for just those bins (with a table of the window's
/// twiddle factors), which costs `window × bins` multiply-adds per frame: about 77 000
/// for 0-4 kHz at 48 kHz, cheap for the seconds of audio tests look at.
pub fn log_spectrogram(signal: &[f32], sample_rate: u32, max_hz: f64) -> Vec<Vec<f64>> {
    let window = sample_rate as usize / 50;
    if window == 0 {
        return Vec::new();
    }
    let hop = (window / 2).max(1);
    let bins = (max_hz * window as f64 / f64::from(sample_rate)) as usize;
    let hann: Vec<f64> = (0..window)
        .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f64 / window as f64).cos())
        .collect();
    // e^(-2πi j / window) for j in 0..window; bin k at sample n uses j = k·n mod window.
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..window)
        .map(|j| {
            let phase = 2.0 * PI * j as f64 / window as f64;
            (phase.cos(), phase.sin())
        })
        .unzip();
    let mut windowed = vec![0.0f64; window];
    let mut frames = Vec::new();
    let mut start = 0;
    while start + window <= signal.len() {
        for ((out, &v), &w) in windowed
            .iter_mut()
            .zip(&signal[start..start + window])
            .zip(&hann)
        {
            *out = f64::from(v) * w;
        }
        frames.push(
            (1..bins)
                .map(|k| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (n, &v) in windowed.iter().enumerate() {
                        let j = (k * n) % window;
                        re += v * cos[j];
                        im -= v * sin[j];
                    }
                    10.0 * (re * re + im * im + SPECTRAL_FLOOR).log10()
                })
                .collect(),
        );
        start += hop;
    }
    frames
}

/// Pearson correlation of two [`log_spectrogram`]s over all bins of all frames (frames
/// and bins paired up to the shorter of the two): 1.0 for spectrograms that differ only
/// by a constant gain, near 0 for unrelated ones, and 0 when either is flat.
pub fn spectrogram_correlation(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let a: Vec<f64> = a.iter().flatten().copied().collect();
    let b: Vec<f64> = b.iter().flatten().copied().collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    normalised_dot(a.iter().zip(&b).map(|(&x, &y)| (x - ma, y - mb)))
}

/// Mean log-spectral distance in dB between two [`log_spectrogram`]s: per frame, the
/// root-mean-square difference of the bins in dB, averaged over the frames (paired up
/// to the shorter of the two). 0 for identical spectrograms; lower is closer.
pub fn log_spectral_distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let frames = a.len().min(b.len());
    let total: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let squares: f64 = x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum();
            (squares / x.len().max(1) as f64).sqrt()
        })
        .sum();
    total / frames.max(1) as f64
}

/// Frequency in Hz of a tone, from the interpolated upward zero crossings of `signal`:
/// whole cycles between the first and the last crossing over the time between them.
/// `None` with fewer than two upward crossings.
pub fn tone_frequency(signal: &[f32], sample_rate: u32) -> Option<f64> {
    let mut first = None;
    let mut last = 0.0;
    let mut crossings = 0usize;
    for (n, pair) in signal.windows(2).enumerate() {
        let (a, b) = (f64::from(pair[0]), f64::from(pair[1]));
        if a < 0.0 && b >= 0.0 {
            last = n as f64 + a / (a - b);
            first.get_or_insert(last);
            crossings += 1;
        }
    }
    let first = first?;
    (crossings >= 2).then(|| (crossings - 1) as f64 * f64::from(sample_rate) / (last - first))
}

/// Adler-32 checksum (RFC 1950) of `bytes`, as zlib computes it (starting from 1).
///
/// FFmpeg's `framecrc` muxer starts from 0 instead: compare decoded pictures against
/// its per-frame checksums with [`adler32_update`]`(0, bytes)`.
pub fn adler32(bytes: &[u8]) -> u32 {
    adler32_update(1, bytes)
}

/// Continues the Adler-32 checksum `adler` over `bytes` (zlib's `adler32(adler, ...)`,
/// FFmpeg's `av_adler32_update`). `adler32_update(1, b)` is the standard [`adler32`];
/// FFmpeg's `framecrc` muxer prints `adler32_update(0, frame)` per frame, so decoded
/// pictures can be checked pixel for pixel against FFmpeg's decode.
pub fn adler32_update(adler: u32, bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (adler & 0xffff, adler >> 16);
    // 5552 is the longest run whose sums cannot overflow u32 before the modulo.
    for chunk in bytes.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_the_rfc_example_and_a_bytewise_reference() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(&[]), 1);
        // Long input exercises the deferred modulo; the reference reduces every byte.
        let long: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + 3) as u8 | 0x80).collect();
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &long {
            a = (a + u32::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), (b << 16) | a);
    }

    #[test]
    fn adler32_update_continues_and_takes_ffmpegs_zero_seed() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 31 + 7) as u8).collect();
        let (head, tail) = data.split_at(7_777);
        assert_eq!(adler32_update(adler32(head), tail), adler32(&data));
        // Seeded with 0, `a` starts one lower and `b` one lower per byte (mod 65521).
        assert_eq!(adler32_update(0, b"Wikipedia"), 0x11E6_0398 - (9 << 16) - 1);
        assert_eq!(adler32_update(0, &[]), 0);
    }

    fn chirp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * i) as f32 * 0.0005).sin() * 0.5)
            .collect()
    }

    fn tone(hz: f64, rate: u32, seconds: f64, amplitude: f32) -> Vec<f32> {
        let n = (seconds * f64::from(rate)) as usize;
        (0..n)
            .map(|i| amplitude * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    #[test]
    fn finds_a_known_delay() {
        let reference = chirp(4000);
        let mut delayed = vec![0.0; 312];
        delayed.extend_from_slice(&reference);
        let result = compare_aligned(&reference, &delayed, 1000);
        assert_eq!(result.lag, 312);
        assert!(result.snr_db.is_infinite());
        assert!((result.correlation - 1.0).abs() < 1e-9);
    }

    #[test]
    fn noise_lowers_snr_and_correlation() {
        let reference = chirp(4000);
        let noisy: Vec<f32> = reference
            .iter()
            .enumerate()
            .map(|(i, s)| s + if i % 2 == 0 { 0.05 } else { -0.05 })
            .collect();
        let snr = snr_db(&reference, &noisy);
        // Signal power ~0.125, noise power 0.0025: about 17 dB.
        assert!((16.0..18.0).contains(&snr), "{snr}");
        assert!(correlation(&reference, &noisy) < 0.999);
        assert_eq!(correlation(&reference, &vec![0.0; 4000]), 0.0);
    }

    #[test]
    fn snr_and_correlation_ignore_level_where_they_should() {
        let reference = chirp(4000);
        let half: Vec<f32> = reference.iter().map(|s| s * 0.5).collect();
        // Same shape: correlation 1. Half the amplitude: the error is half the signal, 6 dB.
        assert!((correlation(&reference, &half) - 1.0).abs() < 1e-12);
        assert!((snr_db(&reference, &half) - 20.0 * 2f64.log10()).abs() < 1e-9);
        let inverted: Vec<f32> = reference.iter().map(|s| -s).collect();
        assert!((correlation(&reference, &inverted) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn levels_have_known_values() {
        assert_eq!(mean_square(&[]), 0.0);
        assert_eq!(mean_square(&[0.5, -0.5, 0.5, -0.5]), 0.25);
        assert_eq!(rms(&[0.5, -0.5]), 0.5);
        // A sine's power is half its amplitude squared.
        let sine = tone(1000.0, 48_000, 0.1, 0.5);
        assert!(
            (mean_square(&sine) - 0.125).abs() < 1e-7,
            "{}",
            mean_square(&sine)
        );
        let quieter = tone(1000.0, 48_000, 0.1, 0.05);
        assert!((level_difference_db(&sine, &quieter) + 20.0).abs() < 1e-6);
        assert!((level_difference_db(&quieter, &sine) - 20.0).abs() < 1e-6);
        assert_eq!(level_difference_db(&sine, &sine), 0.0);
        // Silence is floored at one 16-bit step: 0.125 / 2^-30 is about 81.3 dB.
        let silence = vec![0.0; sine.len()];
        let expected = -10.0 * (mean_square(&sine) * 32_768.0 * 32_768.0).log10();
        assert!((level_difference_db(&sine, &silence) - expected).abs() < 1e-9);
        assert_eq!(level_difference_db(&silence, &[]), 0.0);
    }

    #[test]
    fn spectrogram_shape_and_tone_bin() {
        let rate = 16_000;
        // 1 s: 20 ms (320-sample) windows every 160 samples fit 99 times.
        let a = tone(1000.0, rate, 1.0, 0.5);
        let spectrogram = log_spectrogram(&a, rate, 4000.0);
        assert_eq!(spectrogram.len(), 99);
        // Bins at 50, 100, ..., 3950 Hz.
        assert!(spectrogram.iter().all(|frame| frame.len() == 79));
        for frame in &spectrogram {
            let peak = (0..frame.len())
                .max_by(|&x, &y| frame[x].total_cmp(&frame[y]))
                .unwrap();
            assert_eq!((peak + 1) * 50, 1000);
            // Hann-windowed sine on a bin: |X| = amplitude × window / 4 = 40, 32 dB.
            assert!(
                (frame[peak] - 20.0 * 40f64.log10()).abs() < 0.01,
                "{}",
                frame[peak]
            );
        }
        // Silence sits at the floor; too short a signal has no frames.
        let quiet = log_spectrogram(&vec![0.0; 640], rate, 4000.0);
        assert_eq!(quiet.len(), 3);
        let floor = 10.0 * (1e3 / (32_768.0 * 32_768.0f64)).log10();
        assert!(quiet.iter().flatten().all(|&db| (db - floor).abs() < 1e-9));
        assert!(log_spectrogram(&a[..319], rate, 4000.0).is_empty());
        assert!(log_spectrogram(&a, 0, 4000.0).is_empty());
    }

    #[test]
    fn spectral_measures_of_identical_and_different_tones() {
        let rate = 48_000;
        let speechlike = |hz: f64| {
            // A tone switching on and off every 100 ms, so the spectrogram has structure in time.
            let mut signal = tone(hz, rate, 1.0, 0.3);
            for (i, s) in signal.iter_mut().enumerate() {
                if (i / 4800) % 2 == 1 {
                    *s = 0.0;
                }
            }
            signal
        };
        let a = log_spectrogram(&speechlike(440.0), rate, 4000.0);
        assert!((spectrogram_correlation(&a, &a) - 1.0).abs() < 1e-12);
        assert_eq!(log_spectral_distance(&a, &a), 0.0);
        // A gain raises every bin by the same number of dB, except where the floor holds
        // it down (silences, sidelobes): still closely correlated, and the distance is at
        // most that shift.
        let loud: Vec<f32> = speechlike(440.0).iter().map(|s| s * 2.0).collect();
        let b = log_spectrogram(&loud, rate, 4000.0);
        assert!(spectrogram_correlation(&a, &b) > 0.99);
        let shift = log_spectral_distance(&a, &b);
        assert!(shift > 1.0 && shift < 20.0 * 2f64.log10() + 1e-9, "{shift}");
        // Another tone in the same on/off pattern shares the time structure (half the
        // frames are silent in both) but not the bins: measured corr 0.47, LSD 16.9 dB.
        let c = log_spectrogram(&speechlike(2500.0), rate, 4000.0);
        let other = spectrogram_correlation(&a, &c);
        assert!(other < 0.6, "{other}");
        let distance = log_spectral_distance(&a, &c);
        assert!(distance > 10.0, "{distance}");
        // A steady tone against another steady tone has nothing in common: measured corr
        // -0.12, LSD 32.7 dB.
        let d = log_spectrogram(&tone(440.0, rate, 1.0, 0.3), rate, 4000.0);
        let e = log_spectrogram(&tone(2500.0, rate, 1.0, 0.3), rate, 4000.0);
        let unrelated = spectrogram_correlation(&d, &e);
        assert!(unrelated < 0.2, "{unrelated}");
        let distance = log_spectral_distance(&d, &e);
        assert!(distance > 25.0, "{distance}");
        assert_eq!(spectrogram_correlation(&[], &[]), 0.0);
        assert_eq!(log_spectral_distance(&[], &[]), 0.0);
    }

    #[test]
    fn tone_frequency_is_accurate() {
        for (hz, rate) in [(1000.0, 48_000), (440.0, 44_100), (3000.0, 8_000)] {
            let f = tone_frequency(&tone(hz, rate, 0.5, 0.5), rate).unwrap();
            assert!((f - hz).abs() < 1e-3 * hz, "{hz} Hz at {rate}: {f}");
        }
        assert_eq!(tone_frequency(&[0.0; 100], 48_000), None);
        assert_eq!(tone_frequency(&[-1.0, 1.0, 1.0], 48_000), None);
        assert_eq!(tone_frequency(&[-1.0, 1.0, -1.0, 1.0], 4), Some(2.0));
    }
}
