//! Voice processing benches: the cost of one 10 ms frame through the whole
//! [`VoiceProcessor`](tincan::denoise::VoiceProcessor) (RNNoise, VAD, levels; AGC where
//! named) with real noisy speech, at 48 kHz mono (RNNoise's own rate), at 16 kHz (resampled
//! to 48 kHz and back) and at 48 kHz stereo; and at 48 kHz mono without the band limit. A median of 200 µs is 2% of one core (one
//! frame per 10 ms of real time).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tincan::codec::resample::resample_all;
use tincan::denoise::{VoiceConfig, VoiceProcessor};
use tincan::media::{Channels, wav};

/// 10.8 s of the speech fixture at `rate` with a deterministic hiss about 10 dB below it,
/// as ±1 samples.
fn noisy_speech(rate: u32) -> Vec<f32> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/speech/speech_orig_16k.wav"
    );
    let speech = wav::read_wav(path).expect("fixture");
    let speech = resample_all(&speech, rate).expect("resample");
    let mut state = 1u32;
    speech
        .samples()
        .iter()
        .map(|&s| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let hiss = ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0) * 0.02;
            f32::from(s) / 32_768.0 + hiss
        })
        .collect()
}

fn bench_frames(c: &mut Criterion, name: &str, config: VoiceConfig) {
    let channels = config.channels().count();
    let mono = noisy_speech(config.sample_rate());
    let signal: Vec<f32> = mono
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, channels))
        .collect();
    let mut processor = VoiceProcessor::new(&config).expect("processor");
    let size = processor.frame_samples();
    let frames: Vec<&[f32]> = signal.chunks_exact(size).collect();
    let mut frame = vec![0.0f32; size];
    let mut next = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            frame.copy_from_slice(frames[next]);
            next = (next + 1) % frames.len();
            black_box(processor.process(black_box(&mut frame)).expect("frame"))
        })
    });
}

fn processor(c: &mut Criterion) {
    bench_frames(
        c,
        "denoise/48k_mono_10ms",
        VoiceConfig::new(48_000, Channels::Mono),
    );
    // The same without the band limit (its FFT analysis and low-pass), for the ratio.
    bench_frames(
        c,
        "denoise/48k_mono_10ms_no_band_limit",
        VoiceConfig::new(48_000, Channels::Mono).with_band_limit(false),
    );
    bench_frames(
        c,
        "denoise/16k_mono_10ms_resampled",
        VoiceConfig::new(16_000, Channels::Mono),
    );
    bench_frames(
        c,
        "denoise/48k_mono_10ms_agc",
        VoiceConfig::new(48_000, Channels::Mono).with_agc(-20.0, 30.0),
    );
    bench_frames(
        c,
        "denoise/48k_stereo_10ms",
        VoiceConfig::new(48_000, Channels::Stereo),
    );
}

criterion_group!(benches, processor);
criterion_main!(benches);
