//! The WAV reader on arbitrary files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tincan_media::wav::read_wav_from(data);
});
