//! Opus decoder entry points on arbitrary packets: normal decode, FEC decode, concealment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_codec::AudioDecoder;
use tincan_codec::opus::OpusDecoder;
use tincan_media::Channels;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else { return };
    let rate = [8_000, 12_000, 16_000, 24_000, 48_000][usize::from(selector % 5)];
    let channels = if selector & 0x80 != 0 { Channels::Stereo } else { Channels::Mono };
    let Ok(mut decoder) = OpusDecoder::new(rate, channels) else { return };
    // Room for the longest Opus packet (120 ms) in stereo.
    let mut pcm = vec![0i16; rate as usize * 120 / 1000 * 2];
    let _ = decoder.decode(packet, &mut pcm);
    let frame = rate as usize / 50;
    let _ = decoder.decode_fec(packet, frame, &mut pcm);
    let _ = decoder.conceal(frame, &mut pcm);
    let mut pcm_f32 = vec![0f32; pcm.len()];
    if decoder.decode_f32(packet, &mut pcm_f32).is_ok() {
        assert!(pcm_f32.iter().all(|s| s.is_finite()));
    }
});
