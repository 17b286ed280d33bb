//! Helpers shared by the audio call tests (`call_audio`, `group_audio`).

use std::path::Path;

use tincan_codec::resample::resample_all;
use tincan_media::wav::read_wav;
use tincan_pipeline::SAMPLE_RATE;

/// The 10.8 s speech fixture at 48 kHz.
pub fn speech() -> Vec<i16> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/speech/speech_orig_16k.wav");
    let clip = read_wav(&path).expect("speech fixture");
    let clip = resample_all(&clip, SAMPLE_RATE).expect("resample");
    clip.into_samples()
}

/// Normalised correlation of `a[i]` with `b[i + lag]` over `a`'s length.
pub fn correlation(a: &[f64], b: &[f64], lag: usize) -> f64 {
    let n = a.len().min(b.len().saturating_sub(lag));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (a[i], b[i + lag]);
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

/// Means of `factor` samples at a time.
pub fn decimate(x: &[i16], factor: usize) -> Vec<f64> {
    x.chunks(factor)
        .map(|c| c.iter().map(|&s| f64::from(s)).sum::<f64>() / c.len() as f64)
        .collect()
}
