//! Video frame buffer bench: the hot path of a receiver, packets in and frames out.
//!
//! One iteration is one frame of a 30 fps stream: its 10 packets are inserted (about
//! 1100 bytes each, FU-A fragments for H.264, OBU fragments for AV1), then the buffer is
//! polled until it names its next deadline, which hands out the frame that is due (the
//! playout delay keeps a few frames in flight). Time moves 33 ms per iteration, so the
//! stream runs indefinitely with wrapping sequence numbers and timestamps.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::rtp::payload::PayloadPackets;
use tincan::rtp::payload::av1::Av1Packetizer;
use tincan::rtp::payload::h264::H264Packetizer;
use tincan_jitter::video::{
    VideoCodec, VideoJitterBuffer, VideoJitterConfig, VideoOutput, VideoPacket,
};

const PACKETS_PER_FRAME: usize = 10;
const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);

/// A keyframe and a delta frame, packetized.
fn frames(codec: VideoCodec) -> [PayloadPackets; 2] {
    let body = |len: usize| (0..len).map(|i| (i % 251) as u8 + 1).collect::<Vec<u8>>();
    let mut out = [PayloadPackets::new(), PayloadPackets::new()];
    match codec {
        VideoCodec::H264 => {
            let mut packetizer = H264Packetizer::new(1100).expect("mtu");
            for (keyframe, packets) in [true, false].into_iter().zip(out.iter_mut()) {
                // Keyframes carry SPS and PPS in band, as OpenH264 and libwebrtc send them.
                let mut unit = Vec::new();
                if keyframe {
                    unit.extend([0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E]);
                    unit.extend([0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]);
                }
                unit.extend([0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x88]);
                // The slice NAL unit (header byte excluded) fills 10 FU-A payloads exactly.
                unit.extend(body(PACKETS_PER_FRAME * 1098 - 1));
                packetizer.packetize(&unit, packets).expect("packetize");
                // Plus one STAP-A with the parameter sets in front of a keyframe.
                assert_eq!(packets.len(), PACKETS_PER_FRAME + usize::from(keyframe));
            }
        }
        VideoCodec::Av1 => {
            let mut packetizer = Av1Packetizer::new(1100).expect("mtu");
            for (keyframe, packets) in [true, false].into_iter().zip(out.iter_mut()) {
                let mut unit = Vec::new();
                if keyframe {
                    unit.extend([0x0A, 4, 1, 2, 3, 4]); // sequence header
                }
                let len = PACKETS_PER_FRAME * 1096 - 20;
                unit.extend([0x32, (len as u8) | 0x80, (len >> 7) as u8]);
                unit.extend(body(len));
                packetizer.packetize(&unit, packets).expect("packetize");
                assert_eq!(packets.len(), PACKETS_PER_FRAME, "{keyframe}");
            }
        }
    }
    out
}

fn insert_and_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter_video");
    group.throughput(Throughput::Elements(1));
    for (name, codec) in [
        ("h264_30fps_10pkt_frame", VideoCodec::H264),
        ("av1_30fps_10pkt_frame", VideoCodec::Av1),
    ] {
        let frames = frames(codec);
        let mut buffer = VideoJitterBuffer::new(VideoJitterConfig {
            codec,
            ..VideoJitterConfig::default()
        })
        .expect("config");
        let start = Instant::now();
        let mut index = 0u32;
        let mut sequence = 0u16;
        let mut popped = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A keyframe every 10 s, as a real-time encoder would send.
                let packets = &frames[usize::from(index % 300 != 0)];
                let now = start + FRAME_INTERVAL * index;
                let timestamp = index.wrapping_mul(3000);
                for (payload, marker) in packets.iter() {
                    let packet = VideoPacket {
                        ssrc: 1,
                        sequence,
                        timestamp,
                        marker,
                        payload,
                    };
                    black_box(buffer.insert_packet(packet, now).expect("fits"));
                    sequence = sequence.wrapping_add(1);
                }
                loop {
                    match buffer.poll(now) {
                        VideoOutput::Frame(frame) => {
                            black_box(frame.data);
                            popped += 1;
                        }
                        VideoOutput::Timeout(_) | VideoOutput::Idle => break,
                        _ => {}
                    }
                }
                index += 1;
            })
        });
        // Every frame came out except the few still within the playout delay.
        assert!(popped + 10 >= u64::from(index), "{popped} of {index}");
        assert_eq!(buffer.stats().frames_dropped, 0);
    }
    group.finish();
}

criterion_group!(benches, insert_and_pop);
criterion_main!(benches);
