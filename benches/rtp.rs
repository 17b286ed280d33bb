//! RTP benches: RTP packet parse/build, RTCP compound parse and transport-cc build,
//! payloaders, and RED encode/split per packet.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tincan::codec::h264::{H264Config, H264Encoder};
use tincan::codec::{EncodeRequest, VideoEncoder};
use tincan::media::Resolution;
use tincan::media::ivf::IvfReader;
use tincan::media::source::TestPattern;
use tincan::rtp::extension::{
    AbsSendTime, AudioLevel, Extension, ExtensionKind, ExtensionMap, KnownExtensions, TransportCc,
};
use tincan::rtp::payload::av1::{Av1Depacketizer, Av1Packetizer};
use tincan::rtp::payload::h264::{H264Depacketizer, H264Packetizer};
use tincan::rtp::payload::{PacketInfo, PayloadPackets};
use tincan::rtp::rtcp::{
    Ntp64, ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SdesItem, SenderInfo, TwccBuilder,
};
use tincan::rtp::{RtpPacket, RtpPacketBuilder};

/// RTP parse and build per packet: 3 extensions, 1200-byte payload.
fn rtp_packets(c: &mut Criterion) {
    let map = ExtensionMap::new()
        .with(1, ExtensionKind::AudioLevel)
        .and_then(|m| m.with(2, ExtensionKind::AbsSendTime))
        .and_then(|m| m.with(3, ExtensionKind::TransportCc))
        .expect("valid ids");
    let level = AudioLevel::new(true, 30).expect("level").to_bytes();
    let send = AbsSendTime::from_micros(1_234_567).to_bytes();
    let tcc = TransportCc(4_242).to_bytes();
    let elements = [
        Extension::new(1, &level),
        Extension::new(2, &send),
        Extension::new(3, &tcc),
    ];
    let payload = vec![0xA5u8; 1200];
    let builder = RtpPacketBuilder::new(96, 1_000, 90_000, 0x1234_5678)
        .marker(true)
        .extensions(&elements)
        .payload(&payload);
    let mut buf = vec![0u8; 1500];
    let len = builder.write(&mut buf).expect("fits");
    let packet = buf[..len].to_vec();

    let mut group = c.benchmark_group("rtp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_3ext_1200B", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&packet)).expect("valid");
            let known = KnownExtensions::read(&p, &map).expect("valid");
            black_box((p.payload().len(), known))
        })
    });
    group.bench_function("build_3ext_1200B", |b| {
        b.iter(|| black_box(black_box(&builder).write(&mut buf).expect("fits")))
    });
    group.finish();
}

/// RTCP: parse a compound SR + SDES + NACK + TWCC; build TWCC feedback for 100 packets.
fn rtcp_packets(c: &mut Criterion) {
    let arrivals: Vec<(u16, Option<i64>)> = (0..100u16)
        .map(|i| {
            let seq = 65_500u16.wrapping_add(i);
            // Every tenth packet lost; 5 ms spacing with some jitter.
            let arrival =
                (i % 10 != 9).then(|| 1_000_000 + i64::from(i) * 5_000 + i64::from(i % 3) * 750);
            (seq, arrival)
        })
        .collect();
    let mut twcc = TwccBuilder::new();
    let mut compound = Vec::new();
    {
        let mut w = RtcpWriter::new(&mut compound);
        let info = SenderInfo {
            ntp: Ntp64::new(3_900_000_000, 1 << 31),
            rtp_timestamp: 90_000,
            packet_count: 1_000,
            octet_count: 1_200_000,
        };
        let block = ReportBlock {
            ssrc: 2,
            ..ReportBlock::default()
        };
        w.sender_report(1, &info, &[block]).expect("sr");
        w.sdes(1, &[SdesItem::new(SdesItem::CNAME, b"bench@tincan")])
            .expect("sdes");
        w.nack(1, 2, &[100, 101, 105, 130]).expect("nack");
        w.transport_cc(&mut twcc, 1, 2, 0, &arrivals).expect("twcc");
    }

    let mut group = c.benchmark_group("rtcp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_sr_sdes_nack_twcc", |b| {
        b.iter(|| {
            let parsed = RtcpCompound::parse(black_box(&compound)).expect("valid");
            let mut statuses = 0usize;
            for packet in parsed.packets() {
                match packet.expect("valid") {
                    RtcpPacket::TransportCc(fb) => statuses += fb.packets().count(),
                    RtcpPacket::Nack(nack) => statuses += nack.lost().count(),
                    _ => {}
                }
            }
            black_box(statuses)
        })
    });
    let mut out = Vec::with_capacity(1500);
    group.bench_function("build_twcc_100", |b| {
        b.iter(|| {
            let mut w = RtcpWriter::new(&mut out);
            w.transport_cc(&mut twcc, 1, 2, 0, black_box(&arrivals))
                .expect("twcc");
            black_box(w.as_bytes().len())
        })
    });
    group.finish();
}

/// Packetize and depacketize one frame each, in a group named `name`.
fn payload_bench(
    c: &mut Criterion,
    name: &str,
    frames: [(&str, &[u8]); 2],
    mut packetize: impl FnMut(&[u8], &mut PayloadPackets),
    mut depacketize: impl FnMut(&[u8], PacketInfo) -> usize,
) {
    let mut group = c.benchmark_group(name);
    let mut packets = PayloadPackets::new();
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    for (kind, frame) in frames {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(format!("packetize_{kind}"), |b| {
            b.iter(|| {
                packetize(black_box(frame), &mut packets);
                black_box(packets.len())
            })
        });
        packetize(frame, &mut packets);
        group.bench_function(format!("depacketize_{kind}"), |b| {
            b.iter(|| {
                // A new timestamp per frame, consecutive sequence numbers: no loss.
                timestamp = timestamp.wrapping_add(3000);
                let mut len = 0;
                for (payload, marker) in packets.iter() {
                    sequence = sequence.wrapping_add(1);
                    let info = PacketInfo {
                        sequence,
                        timestamp,
                        marker,
                    };
                    len += depacketize(black_box(payload), info);
                }
                black_box(len)
            })
        });
    }
    group.finish();
}

/// H.264 payloader per frame: a real 640×360 keyframe and delta frame, MTU 1200.
fn h264_payload(c: &mut Criterion) {
    let resolution = Resolution::new(640, 360).expect("resolution");
    let mut encoder = H264Encoder::new(H264Config {
        resolution: Some(resolution),
        ..H264Config::default()
    })
    .expect("encoder");
    let mut pattern = TestPattern::new(resolution, 30);
    let mut encoded = Vec::new();
    while encoded.len() < 2 {
        let mut out = Vec::new();
        let frame = pattern.next_frame();
        encoder
            .encode(&frame, EncodeRequest::default(), &mut out)
            .expect("encode");
        if !out.is_empty() {
            encoded.push(out);
        }
    }
    let mut packetizer = H264Packetizer::default();
    let mut depacketizer = H264Depacketizer::new();
    payload_bench(
        c,
        "payload_h264_640x360",
        [("keyframe", &encoded[0]), ("delta", &encoded[1])],
        |frame, packets| packetizer.packetize(frame, packets).expect("packetize"),
        |payload, info| {
            let frame = depacketizer.push(payload, info).expect("valid");
            frame.map_or(0, |f| f.data.len())
        },
    );
}

/// AV1 payloader per temporal unit: the fixture's keyframe and first delta frame, MTU 1200.
fn av1_payload(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/video/testsrc2_320x180_30f.ivf"
    );
    let mut reader = IvfReader::new(std::fs::File::open(path).expect("fixture")).expect("ivf");
    let keyframe = reader.read_frame().expect("read").expect("frame").data;
    let delta = reader.read_frame().expect("read").expect("frame").data;
    let mut packetizer = Av1Packetizer::default();
    let mut depacketizer = Av1Depacketizer::new();
    payload_bench(
        c,
        "payload_av1_320x180",
        [("keyframe", &keyframe), ("delta", &delta)],
        |frame, packets| packetizer.packetize(frame, packets).expect("packetize"),
        |payload, info| {
            let frame = depacketizer.push(payload, info).expect("valid");
            frame.map_or(0, |f| f.data.len())
        },
    );
}

/// RED (RFC 2198) per packet, as the audio sender and receiver use it: encode a 20 ms
/// Opus-sized frame (60 bytes) with two 40-byte copies, and parse and split a received
/// payload into its blocks (what the receiver does before filling holes).
fn red_payload(c: &mut Criterion) {
    use tincan::rtp::payload::red::{RedEncoder, RedPayload};
    let mut group = c.benchmark_group("red");
    group.throughput(Throughput::Elements(1));
    let primary = [0x5Au8; 60];
    let copy = [0x3Cu8; 40];
    let mut encoder = RedEncoder::new(2).expect("depth 2");
    let mut out = Vec::with_capacity(256);
    let mut timestamp = 0u32;
    group.bench_function("encode_depth2_with_copies", |b| {
        b.iter(|| {
            timestamp = timestamp.wrapping_add(960);
            encoder
                .encode_with_copy(111, timestamp, black_box(&primary), &copy, &mut out)
                .expect("encode");
            black_box(out.len())
        })
    });
    let payload = out.clone();
    group.bench_function("parse_and_split_depth2", |b| {
        b.iter(|| {
            let red = RedPayload::parse(black_box(&payload)).expect("parse");
            let mut bytes = 0;
            for block in red.redundant() {
                bytes += block.data.len() + usize::from(block.timestamp_offset & 1);
            }
            black_box(bytes + red.primary().data.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    rtp_packets,
    rtcp_packets,
    h264_payload,
    av1_payload,
    red_payload
);
criterion_main!(benches);
