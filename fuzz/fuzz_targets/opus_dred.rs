//! DRED parsing and recovery from arbitrary packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_codec::opus::{DredDecoder, OpusDecoder};
use tincan_media::Channels;

fuzz_target!(|data: &[u8]| {
    let Some((&lost, packet)) = data.split_first() else { return };
    let Ok(mut decoder) = OpusDecoder::new(48_000, Channels::Mono) else { return };
    let Ok(mut dred) = DredDecoder::new(48_000) else { return };
    let _ = dred.parse(packet, 48_000);
    let lost_frames = usize::from(lost % 8);
    let mut pcm = vec![0i16; 960 * 8];
    let _ = decoder.recover_with_dred(&mut dred, packet, lost_frames, 960, &mut pcm);
});
