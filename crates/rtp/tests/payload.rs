//! Payload formats on real media: H.264 from the OpenH264 encoder and AV1 from the IVF
//! fixture go through packetize → depacketize and must decode to exactly the pictures the
//! original bitstream decodes to. Also: loss on real frames, and frame sizes up to
//! several hundred kB through the public API.

use proptest::prelude::*;
use tincan_codec::av1::Av1Decoder;
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::{EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_media::ivf::IvfReader;
use tincan_media::source::TestPattern;
use tincan_media::{Resolution, VideoFrame};
use tincan_rtp::payload::av1::{Av1Depacketizer, Av1Packetizer};
use tincan_rtp::payload::h264::{H264Depacketizer, H264Packetizer, annex_b_nal_units};
use tincan_rtp::payload::{PacketInfo, PayloadPackets};

const AV1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/video/testsrc2_320x180_30f.ivf"
);

/// Real H.264 access units: a keyframe then delta frames of a moving test pattern.
fn h264_access_units(count: usize) -> Vec<Vec<u8>> {
    let resolution = Resolution::new(640, 360).unwrap();
    let mut encoder = H264Encoder::new(H264Config {
        resolution: Some(resolution),
        bitrate_bps: 2_000_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    let mut units = Vec::new();
    for _ in 0..count {
        let mut out = Vec::new();
        encoder
            .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
            .unwrap();
        if !out.is_empty() {
            units.push(out);
        }
    }
    units
}

fn av1_temporal_units() -> Vec<Vec<u8>> {
    let file = std::fs::File::open(AV1_FIXTURE).unwrap();
    let mut reader = IvfReader::new(file).unwrap();
    let mut units = Vec::new();
    while let Some(frame) = reader.read_frame().unwrap() {
        units.push(frame.data);
    }
    units
}

fn packed(frame: &VideoFrame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.write_packed_i420(&mut out);
    out
}

fn decode_all(decoder: &mut dyn VideoDecoder, units: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut pictures: Vec<Vec<u8>> = units
        .iter()
        .filter_map(|unit| decoder.decode(unit).unwrap())
        .map(|frame| packed(&frame))
        .collect();
    pictures.extend(decoder.flush().unwrap().iter().map(packed));
    pictures
}

/// Packetizes every unit with `packetize`, checks the MTU, and depacketizes with `push`;
/// returns the rebuilt units and whether each came out complete.
fn round_trip(
    units: &[Vec<u8>],
    mtu: usize,
    mut packetize: impl FnMut(&[u8], &mut PayloadPackets),
    mut push: impl FnMut(&[u8], PacketInfo) -> Option<(Vec<u8>, bool)>,
    drop: Option<(usize, usize)>,
) -> Vec<(Vec<u8>, bool)> {
    let mut packets = PayloadPackets::new();
    let mut sequence = 1000u16;
    let mut out = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        packetize(unit, &mut packets);
        assert!(packets.iter().all(|(p, _)| p.len() <= mtu));
        for (i, (payload, marker)) in packets.iter().enumerate() {
            sequence = sequence.wrapping_add(1);
            if drop == Some((u, i)) {
                continue;
            }
            let info = PacketInfo {
                sequence,
                timestamp: 3000 * u as u32,
                marker,
            };
            out.extend(push(payload, info));
        }
    }
    out
}

#[test]
fn h264_encoder_output_round_trips_and_decodes_identically() {
    let units = h264_access_units(12);
    assert!(units.len() >= 10);
    let mut packetizer = H264Packetizer::default();
    let mut depacketizer = H264Depacketizer::new();
    let rebuilt = round_trip(
        &units,
        1200,
        |unit, packets| packetizer.packetize(unit, packets).unwrap(),
        |payload, info| {
            depacketizer
                .push(payload, info)
                .unwrap()
                .map(|f| (f.data.to_vec(), f.complete))
        },
        None,
    );
    assert_eq!(rebuilt.len(), units.len());
    for (original, (data, complete)) in units.iter().zip(&rebuilt) {
        assert!(complete);
        assert!(annex_b_nal_units(original).eq(annex_b_nal_units(data)));
    }
    let rebuilt: Vec<Vec<u8>> = rebuilt.into_iter().map(|(data, _)| data).collect();
    let expected = decode_all(&mut H264Decoder::new().unwrap(), &units);
    let got = decode_all(&mut H264Decoder::new().unwrap(), &rebuilt);
    assert_eq!(expected.len(), units.len());
    assert!(expected == got, "decoded pictures differ");
    let stats = depacketizer.stats();
    assert_eq!(
        (stats.frames, stats.incomplete_frames),
        (units.len() as u64, 0)
    );
}

#[test]
fn h264_loss_of_a_middle_fragment_is_reported() {
    let units = h264_access_units(2);
    let mut packetizer = H264Packetizer::default();
    let mut packets = PayloadPackets::new();
    packetizer.packetize(&units[0], &mut packets).unwrap();
    assert!(
        packets.len() > 4,
        "keyframe fits in {} packets",
        packets.len()
    );
    let mut depacketizer = H264Depacketizer::new();
    let rebuilt = round_trip(
        &units,
        1200,
        |unit, packets| packetizer.packetize(unit, packets).unwrap(),
        |payload, info| {
            depacketizer
                .push(payload, info)
                .unwrap()
                .map(|f| (f.data.to_vec(), f.complete))
        },
        Some((0, packets.len() / 2)),
    );
    assert_eq!(rebuilt.len(), 2);
    assert!(
        !rebuilt[0].1,
        "a frame with a lost packet came out complete"
    );
    assert!(rebuilt[0].0.len() < units[0].len());
    // Every NAL unit that came out is one of the original's, whole.
    let originals: Vec<&[u8]> = annex_b_nal_units(&units[0]).collect();
    assert!(annex_b_nal_units(&rebuilt[0].0).all(|nal| originals.contains(&nal)));
    assert!(rebuilt[1].1);
    assert_eq!(depacketizer.stats().lost_packets, 1);
}

#[test]
fn av1_fixture_round_trips_and_decodes_identically() {
    let units = av1_temporal_units();
    assert_eq!(units.len(), 30);
    for mtu in [1200, 200] {
        let mut packetizer = Av1Packetizer::new(mtu).unwrap();
        let mut depacketizer = Av1Depacketizer::new();
        let rebuilt = round_trip(
            &units,
            mtu,
            |unit, packets| packetizer.packetize(unit, packets).unwrap(),
            |payload, info| {
                depacketizer
                    .push(payload, info)
                    .unwrap()
                    .map(|f| (f.data.to_vec(), f.complete))
            },
            None,
        );
        assert_eq!(rebuilt.len(), units.len());
        assert!(rebuilt.iter().all(|(_, complete)| *complete));
        let rebuilt: Vec<Vec<u8>> = rebuilt.into_iter().map(|(data, _)| data).collect();
        let expected = decode_all(&mut Av1Decoder::new().unwrap(), &units);
        let got = decode_all(&mut Av1Decoder::new().unwrap(), &rebuilt);
        // The fixture's OBUs carry minimal size fields after a temporal delimiter, which
        // is exactly what the depacketizer writes: the bytes come back unchanged.
        assert!(rebuilt == units);
        assert_eq!(expected.len(), units.len());
        assert!(expected == got, "decoded pictures differ at MTU {mtu}");
    }
}

#[test]
fn av1_loss_of_a_middle_packet_is_reported() {
    let units = av1_temporal_units();
    let mut packetizer = Av1Packetizer::new(300).unwrap();
    let mut packets = PayloadPackets::new();
    packetizer.packetize(&units[0], &mut packets).unwrap();
    assert!(packets.len() > 2);
    let mut depacketizer = Av1Depacketizer::new();
    let rebuilt = round_trip(
        &units[..2],
        300,
        |unit, packets| packetizer.packetize(unit, packets).unwrap(),
        |payload, info| {
            depacketizer
                .push(payload, info)
                .unwrap()
                .map(|f| (f.data.to_vec(), f.complete))
        },
        Some((0, packets.len() / 2)),
    );
    // The keyframe lost part of an OBU: whatever came out is marked incomplete.
    assert_eq!(rebuilt.len(), 2);
    assert!(!rebuilt[0].1, "a unit with a lost packet came out complete");
    assert!(rebuilt[0].0.len() < units[0].len());
    assert!(rebuilt[1].1);
    assert_eq!(depacketizer.stats().lost_packets, 1);
}

fn stream_bytes(len: usize, seed: u8) -> Vec<u8> {
    // No zero bytes: no start-code emulation to prevent, and no trailing zeros to trim.
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn h264_frames_up_to_several_hundred_kb(len in 1usize..600_000, mtu in 3usize..1500, seed in any::<u8>()) {
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(stream_bytes(len - 1, seed));
        let mut packets = PayloadPackets::new();
        H264Packetizer::new(mtu).unwrap().packetize(&au, &mut packets).unwrap();
        prop_assert!(packets.iter().all(|(p, _)| p.len() <= mtu));
        let mut depacketizer = H264Depacketizer::new();
        let mut out = None;
        for (i, (payload, marker)) in packets.iter().enumerate() {
            let info = PacketInfo { sequence: i as u16, timestamp: 0, marker };
            if let Some(frame) = depacketizer.push(payload, info).unwrap() {
                out = Some((frame.data.to_vec(), frame.keyframe, frame.complete));
            }
        }
        prop_assert_eq!(out, Some((au, true, true)));
    }

    #[test]
    fn av1_frames_up_to_several_hundred_kb(len in 0usize..600_000, mtu in 3usize..1500, seed in any::<u8>()) {
        // Temporal delimiter, then one frame OBU of `len` payload bytes.
        let mut tu = vec![0x12, 0, 0x32];
        let mut size = len;
        loop {
            let byte = (size & 0x7F) as u8;
            size >>= 7;
            if size == 0 { tu.push(byte); break; }
            tu.push(byte | 0x80);
        }
        tu.extend(stream_bytes(len, seed));
        let mut packets = PayloadPackets::new();
        Av1Packetizer::new(mtu).unwrap().packetize(&tu, &mut packets).unwrap();
        prop_assert!(packets.iter().all(|(p, _)| p.len() <= mtu));
        let mut depacketizer = Av1Depacketizer::new();
        let mut out = None;
        for (i, (payload, marker)) in packets.iter().enumerate() {
            let info = PacketInfo { sequence: i as u16, timestamp: 0, marker };
            if let Some(frame) = depacketizer.push(payload, info).unwrap() {
                out = Some(frame.data.to_vec());
            }
        }
        prop_assert!(out == Some(tu));
    }
}
