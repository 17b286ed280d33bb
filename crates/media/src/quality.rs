//! Objective comparisons of decoded media against its source: delay alignment,
//! SNR and correlation for audio. (Video PSNR is [`VideoFrame::psnr`](crate::VideoFrame::psnr).)
//!
//! These are the cheap, dependency-free measures tests and the demo use; perceptual
//! scores (PESQ, STOI) come from the quality labs.

/// The lag (in samples, `test` later than `reference`) within `0..=max_lag` that
/// maximises the cross-correlation of the two mono signals.
///
/// Codecs delay their output (Opus by its look-ahead), so decoded audio has to be
/// shifted back before it can be compared sample by sample.
pub fn best_lag(reference: &[f32], test: &[f32], max_lag: usize) -> usize {
    let mut best = (0, f64::MIN);
    for lag in 0..=max_lag.min(test.len()) {
        let n = reference.len().min(test.len() - lag);
        let score: f64 = reference[..n].iter().zip(&test[lag..lag + n]).map(|(a, b)| f64::from(a * b)).sum();
        if score > best.1 {
            best = (lag, score);
        }
    }
    best.0
}

/// Normalised cross-correlation (cosine similarity) of two equally long stretches:
/// 1.0 for identical shape, 0 for unrelated, and 0 when either is silent.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 { 0.0 } else { ab / (aa * bb).sqrt() }
}

/// Signal-to-noise ratio in dB of `test` against `reference` (noise = their difference),
/// over the common length. `f64::INFINITY` when they are identical.
pub fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &t) in reference.iter().zip(test) {
        signal += f64::from(r) * f64::from(r);
        noise += f64::from(r - t) * f64::from(r - t);
    }
    if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal / noise).log10() }
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

/// Aligns `decoded` to `reference` (searching lags up to `max_lag`) and compares them.
pub fn compare_aligned(reference: &[f32], decoded: &[f32], max_lag: usize) -> AlignedComparison {
    let lag = best_lag(reference, decoded, max_lag);
    let n = reference.len().min(decoded.len().saturating_sub(lag));
    let (r, d) = (&reference[..n], &decoded[lag..lag + n]);
    AlignedComparison { lag, snr_db: snr_db(r, d), correlation: correlation(r, d) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chirp(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * i) as f32 * 0.0005).sin() * 0.5).collect()
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
        let noisy: Vec<f32> =
            reference.iter().enumerate().map(|(i, s)| s + if i % 2 == 0 { 0.05 } else { -0.05 }).collect();
        let snr = snr_db(&reference, &noisy);
        // Signal power ~0.125, noise power 0.0025: about 17 dB.
        assert!((16.0..18.0).contains(&snr), "{snr}");
        assert!(correlation(&reference, &noisy) < 0.999);
        assert_eq!(correlation(&reference, &vec![0.0; 4000]), 0.0);
    }
}
