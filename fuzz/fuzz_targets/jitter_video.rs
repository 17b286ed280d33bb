//! The video frame buffer driven by a script of operations read from the input: insert
//! a packet (fields and payload from the bytes), advance time, poll until the next
//! deadline, set the RTT, report a frame decoded or rendered. After every operation the
//! held packets, frames and NACK entries must stay within the configured bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use tincan_jitter::video::{
    VideoCodec, VideoJitterBuffer, VideoJitterConfig, VideoOutput, VideoPacket,
};

fuzz_target!(|data: &[u8]| {
    let [codec, rest @ ..] = data else {
        return;
    };
    let config = VideoJitterConfig {
        codec: if codec & 1 == 0 {
            VideoCodec::H264
        } else {
            VideoCodec::Av1
        },
        max_packets: 64,
        max_frames: 8,
        max_nack_list: 32,
        max_payload_bytes: 200,
        max_frame_bytes: 4096,
        max_nack_retries: 3,
        ..VideoJitterConfig::default()
    };
    let Ok(mut buffer) = VideoJitterBuffer::new(config.clone()) else {
        return;
    };
    let start = Instant::now();
    let mut now = start;
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    let mut script = rest;
    while let [op, tail @ ..] = script {
        script = tail;
        match op % 6 {
            0 => {
                // Insert: flags (marker, SSRC, timestamp step, sequence jump), step, length.
                let [flags, step, len, tail @ ..] = script else {
                    break;
                };
                let (payload, tail) = tail.split_at(usize::from(*len).min(tail.len()));
                script = tail;
                sequence = if flags & 0x40 != 0 {
                    u16::from_le_bytes([*step, *len])
                } else {
                    sequence
                        .wrapping_add(u16::from(*step & 0x0F))
                        .wrapping_sub(4)
                };
                if flags & 0x04 != 0 {
                    timestamp = timestamp.wrapping_add(3000 * u32::from(flags >> 3 & 3));
                }
                if flags & 0x80 != 0 {
                    timestamp = timestamp.wrapping_add(u32::from(*step) << 24);
                }
                let packet = VideoPacket {
                    ssrc: u32::from(flags >> 1 & 1),
                    sequence,
                    timestamp,
                    marker: flags & 1 != 0,
                    payload,
                };
                let _ = buffer.insert_packet(packet, now);
            }
            1 => {
                let [ms, tail @ ..] = script else { break };
                script = tail;
                now += Duration::from_millis(u64::from(*ms) * 4);
            }
            2 => {
                for _ in 0..10_000 {
                    match buffer.poll(now) {
                        VideoOutput::Frame(frame) => {
                            assert!(frame.data.len() <= config.max_frame_bytes);
                        }
                        VideoOutput::Nack(list) => {
                            assert!(!list.is_empty() && list.len() <= config.max_nack_list);
                        }
                        VideoOutput::KeyframeRequest => {}
                        VideoOutput::Timeout(at) => {
                            assert!(at > now);
                            break;
                        }
                        VideoOutput::Idle => break,
                    }
                }
            }
            3 => {
                let [ms, tail @ ..] = script else { break };
                script = tail;
                buffer.handle_rtt(Duration::from_millis(u64::from(*ms) * 8));
            }
            4 => buffer.frame_rendered(now),
            _ => buffer.frame_decoded(Duration::from_millis(u64::from(*op >> 3))),
        }
        let memory = buffer.memory();
        assert!(memory.packets <= config.max_packets);
        assert!(memory.frames <= config.max_frames);
        assert!(memory.nack_entries <= config.max_nack_list);
        assert!(memory.payload_bytes <= config.max_packets * config.max_payload_bytes);
    }
});
