//! The H.264 depacketizer on an arbitrary sequence of payloads.
//!
//! The input is split into packets: a length byte, a flags byte (bit 0 marker, bits 1-2
//! sequence step: +1, +0 (duplicate), +2 (gap), -1 (late), bit 3 next timestamp), then
//! that many payload bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::payload::PacketInfo;
use tincan_rtp::payload::h264::H264Depacketizer;

const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut depacketizer = H264Depacketizer::with_max_frame_size(MAX_FRAME);
    let mut info = PacketInfo::default();
    let mut rest = data;
    while let [len, flags, tail @ ..] = rest {
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        info.marker = flags & 1 != 0;
        info.sequence = info
            .sequence
            .wrapping_add([1, 0, 2, u16::MAX][usize::from(flags >> 1 & 3)]);
        if flags & 8 != 0 {
            info.timestamp = info.timestamp.wrapping_add(3000);
        }
        if let Ok(Some(frame)) = depacketizer.push(payload, info) {
            assert!(frame.data.len() <= MAX_FRAME);
            assert!(frame.data.starts_with(&[0, 0, 0, 1]));
            assert_eq!(frame.timestamp, info.timestamp);
        }
    }
    let stats = depacketizer.stats();
    assert!(stats.incomplete_frames <= stats.frames);
});
