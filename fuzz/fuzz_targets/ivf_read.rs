//! The IVF reader on arbitrary files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_media::ivf::IvfReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = IvfReader::new(data) else { return };
    let mut buf = Vec::new();
    for _ in 0..1024 {
        match reader.read_frame_into(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
