//! The Y4M reader on arbitrary files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_media::y4m::Y4mReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Y4mReader::new(data) else { return };
    // A frame is at least 6 bytes ("FRAME\n"), so this ends; the cap keeps runs short.
    for _ in 0..64 {
        match reader.read_frame() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
