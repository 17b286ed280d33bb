//! The processor's real-time path does not allocate once warmed up: RNNoise, both
//! resamplers, the VAD, levels and the AGC, mono and stereo, at 16 and 48 kHz, and the band
//! limit switching on (narrowband speech in white noise).
//!
//! One test in this file: the counting allocator is global to the test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tincan_denoise::{VoiceConfig, VoiceProcessor};
use tincan_media::{Channels, wav};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `speech` low-passed at 3 kHz (two 8th-order Butterworth filters at 16 kHz, as RBJ
/// biquads) with white noise at -40 dBov: a narrowband talker in wideband noise.
fn narrowband_in_noise(speech: &[f32]) -> Vec<f32> {
    let w0 = 2.0 * std::f32::consts::PI * 3_000.0 / 16_000.0;
    let (sin, cos) = w0.sin_cos();
    let mut out = speech.to_vec();
    for _ in 0..2 {
        for k in 0..4 {
            let q = 1.0 / (2.0 * ((2 * k + 1) as f32 * std::f32::consts::PI / 16.0).cos());
            let alpha = sin / (2.0 * q);
            let a0 = 1.0 + alpha;
            let (b0, b1, a1, a2) = (
                (1.0 - cos) / 2.0 / a0,
                (1.0 - cos) / a0,
                -2.0 * cos / a0,
                (1.0 - alpha) / a0,
            );
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for x in out.iter_mut() {
                let y = b0 * *x + s1;
                s1 = b1 * *x - a1 * y + s2;
                s2 = b0 * *x - a2 * y;
                *x = y;
            }
        }
    }
    let mut state = 1u32;
    for x in out.iter_mut() {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let uniform = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
        *x += uniform * 0.01 * 12f32.sqrt();
    }
    out
}

#[test]
fn processing_does_not_allocate_after_warm_up() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/speech/speech_orig_16k.wav"
    );
    let speech: Vec<f32> = wav::read_wav(path)
        .expect("fixture")
        .into_samples()
        .into_iter()
        .map(|s| f32::from(s) / 32_768.0)
        .collect();
    let narrowband = narrowband_in_noise(&speech);
    let configs = [
        (
            VoiceConfig::new(16_000, Channels::Mono).with_agc(-20.0, 30.0),
            &speech,
            false,
        ),
        (
            VoiceConfig::new(48_000, Channels::Stereo).with_strength(0.7),
            &speech,
            false,
        ),
        (
            VoiceConfig::new(44_100, Channels::Mono).with_agc(-18.0, 20.0),
            &speech,
            false,
        ),
        (VoiceConfig::new(16_000, Channels::Mono), &narrowband, true),
    ];
    for (config, speech, band_limited) in configs {
        let mut limited_frames = 0;
        let mut processor = VoiceProcessor::new(&config).expect("processor");
        let size = processor.frame_samples();
        let mut frame = vec![0.0f32; size];
        let mut i16_frame = vec![0i16; size];
        let mut feed = |processor: &mut VoiceProcessor, k: usize| {
            for (n, sample) in frame.iter_mut().enumerate() {
                // Speech plus a little hiss, and now and then a NaN to sanitise.
                let s = speech[(k * size + n) % speech.len()];
                let hiss = if (k * size + n) % 7 == 0 {
                    0.003
                } else {
                    -0.002
                };
                // (Not in the narrowband run: the sanitised samples are clicks, which reach
                // the bands above its speech.)
                *sample = if (k + n) % 997 == 0 && !band_limited {
                    f32::NAN
                } else {
                    s + hiss
                };
            }
            let report = processor.process(&mut frame).expect("frame");
            limited_frames += usize::from(report.band_limit_hz.is_some());
            // The i16 path too, on the output (not in the narrowband run, whose stream must
            // stay one talker in one noise for the band limit to judge).
            if !band_limited {
                for (dst, &src) in i16_frame.iter_mut().zip(&frame) {
                    *dst = (src * 20_000.0) as i16;
                }
                processor.process_i16(&mut i16_frame).expect("i16 frame");
            }
            processor.take_packet_audio_level();
        };
        // Warm-up: RNNoise's FFT plans and scratch are created per thread on first use.
        for k in 0..5 {
            feed(&mut processor, k);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for k in 5..600 {
            feed(&mut processor, k);
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(allocations, 0, "{config:?}: {allocations} allocations");
        if band_limited {
            // The limit switched on within the measured frames.
            assert!(
                limited_frames > 100,
                "{config:?}: {limited_frames} frames limited"
            );
        }
    }
}
