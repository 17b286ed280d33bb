//! The voice processor on arbitrary sample bits (NaN, infinities, huge values) and frame
//! sizes: every call gives a typed error or a finite output within full scale.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_denoise::{SUPPORTED_RATES, VoiceConfig, VoiceProcessor};
use tincan_media::Channels;

fuzz_target!(|data: &[u8]| {
    let Some((&[setup, strength, agc], mut stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let rate = SUPPORTED_RATES[usize::from(setup) % SUPPORTED_RATES.len()];
    let channels = if setup & 0x80 == 0 {
        Channels::Mono
    } else {
        Channels::Stereo
    };
    let mut config = VoiceConfig::new(rate, channels)
        .with_strength(f32::from(strength) / 200.0)
        .with_bypass(setup & 0x40 != 0);
    if agc & 1 == 1 {
        config = config.with_agc(-f32::from(agc >> 1) / 2.0, f32::from(agc) / 4.0);
    }
    let Ok(mut processor) = VoiceProcessor::new(&config) else {
        return;
    };
    let expected = processor.frame_samples();
    let mut frame = Vec::with_capacity(expected * 2);
    // Each chunk: one length byte (0 = the right size, else a wrong size up to 255 samples
    // off), then samples as little-endian f32 bits, repeated to fill the frame.
    while let Some((&size, rest)) = stream.split_first() {
        let len = if size == 0 {
            expected
        } else {
            expected.abs_diff(usize::from(size))
        };
        let bytes = rest.len().min(len * 4);
        let (samples, rest) = rest.split_at(bytes);
        stream = rest;
        let bits: Vec<f32> = samples
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        frame.clear();
        frame.extend((0..len).map(|n| {
            if bits.is_empty() {
                0.0
            } else {
                bits[n % bits.len()]
            }
        }));
        match processor.process(&mut frame) {
            Ok(report) => {
                assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
                assert!(report.voice_probability.is_finite() && report.gain_db.is_finite());
            }
            Err(_) => assert_ne!(len, expected),
        }
    }
});
