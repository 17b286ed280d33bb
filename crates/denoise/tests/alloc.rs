//! The processor's real-time path does not allocate once warmed up: RNNoise, both
//! resamplers, the VAD, levels and the AGC, mono and stereo, at 16 and 48 kHz.
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
    let configs = [
        VoiceConfig::new(16_000, Channels::Mono).with_agc(-20.0, 30.0),
        VoiceConfig::new(48_000, Channels::Stereo).with_strength(0.7),
        VoiceConfig::new(44_100, Channels::Mono).with_agc(-18.0, 20.0),
    ];
    for config in configs {
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
                *sample = if (k + n) % 997 == 0 {
                    f32::NAN
                } else {
                    s + hiss
                };
            }
            processor.process(&mut frame).expect("frame");
            for (dst, &src) in i16_frame.iter_mut().zip(&frame) {
                *dst = (src * 20_000.0) as i16;
            }
            processor.process_i16(&mut i16_frame).expect("i16 frame");
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
    }
}
