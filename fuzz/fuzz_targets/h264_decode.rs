//! The H.264 decoder on an arbitrary Annex B stream, split into access units at random points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_codec::VideoDecoder;
use tincan_codec::h264::H264Decoder;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = H264Decoder::new() else { return };
    // The first byte picks a chunk size, so both whole streams and fragments reach the decoder.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1) * 16;
    for unit in stream.chunks(chunk) {
        let _ = decoder.decode(unit);
    }
    let _ = decoder.flush();
});
