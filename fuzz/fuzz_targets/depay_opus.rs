//! The Opus depacketizer on an arbitrary sequence of payloads.
//!
//! The input is split into packets: a two-byte length (the payload limit is 4000 bytes,
//! so both sides of it are reachable), a sequence step byte, then that many payload bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::payload::PacketInfo;
use tincan_rtp::payload::opus::{MAX_PACKET_LEN, OpusDepacketizer, depacketize, packetize};

fuzz_target!(|data: &[u8]| {
    let mut depacketizer = OpusDepacketizer::new();
    let mut info = PacketInfo::default();
    let mut rest = data;
    while let [hi, lo, step, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (payload, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        info.sequence = info
            .sequence
            .wrapping_add(u16::from(*step) << 8 | u16::from(*step));
        match depacketizer.push(payload, info) {
            Ok(packet) => {
                assert_eq!(packet.data, payload);
                assert!(!payload.is_empty() && payload.len() <= MAX_PACKET_LEN);
                assert_eq!(packetize(packet.data), Ok(payload));
            }
            Err(_) => assert!(depacketize(payload).is_err()),
        }
    }
});
