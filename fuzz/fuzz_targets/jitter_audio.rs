//! The audio jitter buffer driven by an arbitrary script of inserts, clock steps and pulls,
//! with a real Opus decoder (so garbage payloads reach libopus through the buffer).
//!
//! Each operation starts with an opcode byte:
//! - `0..=3` insert: SSRC (1 byte, mod 3), sequence step (i8), timestamp step in 2.5 ms
//!   units (i8), payload length (1 byte), payload;
//! - `4` insert with raw 16-bit sequence and 32-bit timestamp, then length and payload;
//! - `5..=6` advance the clock by the next byte in ms;
//! - anything else: pull 10 ms (and advance 10 ms).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tincan_codec::opus::OpusDecoder;
use tincan_jitter::{AudioJitterBuffer, AudioJitterConfig, AudioPacket, OpusPacketDecoder};
use tincan_media::Channels;

const MAX_PACKETS: usize = 24;

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let decoder = OpusPacketDecoder::new(OpusDecoder::new(16_000, Channels::Mono).expect("decoder"));
    let config = AudioJitterConfig {
        max_packets: MAX_PACKETS,
        max_payload_bytes: 200,
        ..AudioJitterConfig::default()
    };
    let mut jb = AudioJitterBuffer::new(decoder, config).expect("valid config");
    let mut now = start();
    let mut out = vec![0i16; jb.samples_per_pull()];
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    let mut rest = data;
    while let [op, tail @ ..] = rest {
        rest = tail;
        match op {
            0..=4 => {
                let (ssrc, header_len) = match (*op, rest) {
                    (4, [a, b, c, d, e, f, ..]) => {
                        sequence = u16::from_be_bytes([*a, *b]);
                        timestamp = u32::from_be_bytes([*c, *d, *e, *f]);
                        (0, 6)
                    }
                    (0..=3, [s, seq, ts, ..]) => {
                        sequence = sequence.wrapping_add(*seq as i8 as u16);
                        timestamp = timestamp.wrapping_add((*ts as i8 as i32 * 120) as u32);
                        (u32::from(*s % 3), 3)
                    }
                    _ => return,
                };
                rest = &rest[header_len..];
                let Some((&len, tail)) = rest.split_first() else {
                    return;
                };
                let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
                rest = tail;
                let packet = AudioPacket { ssrc, sequence, timestamp, payload };
                let _ = jb.insert(packet, now);
            }
            5 | 6 => {
                let Some((&ms, tail)) = rest.split_first() else {
                    return;
                };
                rest = tail;
                now += Duration::from_millis(u64::from(ms));
            }
            _ => {
                let info = jb.pull(now, &mut out).expect("one pull never fails");
                assert_eq!(info.samples, jb.samples_per_pull());
                now += Duration::from_millis(10);
            }
        }
        assert!(jb.packets_held() <= MAX_PACKETS);
        assert!(jb.samples_held() <= jb.max_samples_held());
    }
});
