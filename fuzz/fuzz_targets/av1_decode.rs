//! The AV1 decoder on arbitrary temporal units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_codec::VideoDecoder;
use tincan_codec::av1::Av1Decoder;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = Av1Decoder::new() else { return };
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1) * 16;
    for unit in stream.chunks(chunk) {
        let _ = decoder.decode(unit);
    }
    let _ = decoder.flush();
});
