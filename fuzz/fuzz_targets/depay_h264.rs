//! The H.264 depacketizer on an arbitrary sequence of payloads, split by
//! [`tincan_fuzz::video_payloads`].
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::payload::h264::H264Depacketizer;

const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut depacketizer = H264Depacketizer::with_max_frame_size(MAX_FRAME);
    for (payload, info) in tincan_fuzz::video_payloads(data) {
        if let Ok(Some(frame)) = depacketizer.push(payload, info) {
            assert!(frame.data.len() <= MAX_FRAME);
            assert!(frame.data.starts_with(&[0, 0, 0, 1]));
            assert_eq!(frame.timestamp, info.timestamp);
        }
    }
    let stats = depacketizer.stats();
    assert!(stats.incomplete_frames <= stats.frames);
});
