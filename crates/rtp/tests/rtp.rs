//! RTP packets through the public API: build → parse round trips, wrap-around and
//! malformed input.

use proptest::prelude::*;
use tincan_media::time::{RtpTimestamp, SeqNo};
use tincan_rtp::extension::{
    AbsSendTime, AudioLevel, Extension, ExtensionForm, ExtensionKind, ExtensionMap,
    KnownExtensions, TransportCc,
};
use tincan_rtp::packet::HeaderExtension;
use tincan_rtp::sequence::StreamExtender;
use tincan_rtp::{RtpError, RtpPacket, RtpPacketBuilder};

fn map() -> ExtensionMap {
    ExtensionMap::new()
        .with(1, ExtensionKind::AudioLevel)
        .unwrap()
        .with(3, ExtensionKind::AbsSendTime)
        .unwrap()
        .with(5, ExtensionKind::TransportCc)
        .unwrap()
}

#[test]
fn typed_extensions_round_trip_in_both_forms() {
    let level = AudioLevel::new(true, 42).unwrap().to_bytes();
    let send = AbsSendTime::from_raw(0xAB_CDEF).to_bytes();
    let tcc = TransportCc(0xFFFE).to_bytes();
    let elements = [
        Extension::new(1, &level),
        Extension::new(3, &send),
        Extension::new(5, &tcc),
    ];
    for form in [ExtensionForm::OneByte, ExtensionForm::TwoByte] {
        let mut buf = [0u8; 200];
        let len = RtpPacketBuilder::new(96, 1, 2, 3)
            .header_extension(HeaderExtension::ElementsIn(form, &elements))
            .payload(&[9; 50])
            .write(&mut buf)
            .unwrap();
        let packet = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(packet.extensions().form(), Some(form));
        let known = KnownExtensions::read(&packet, &map()).unwrap();
        assert_eq!(known.transport_cc, Some(TransportCc(0xFFFE)));
        assert_eq!(known.abs_send_time, Some(AbsSendTime::from_raw(0xAB_CDEF)));
        assert_eq!(known.audio_level, Some(AudioLevel::new(true, 42).unwrap()));
        assert_eq!(packet.payload(), &[9; 50]);
    }
}

#[test]
fn ids_past_14_force_the_two_byte_form() {
    let tcc = TransportCc(7).to_bytes();
    let elements = [Extension::new(200, &tcc)];
    let mut buf = [0u8; 64];
    let len = RtpPacketBuilder::new(96, 1, 2, 3)
        .extensions(&elements)
        .write(&mut buf)
        .unwrap();
    let packet = RtpPacket::parse(&buf[..len]).unwrap();
    assert_eq!(packet.extensions().form(), Some(ExtensionForm::TwoByte));
    let map = ExtensionMap::new()
        .with(200, ExtensionKind::TransportCc)
        .unwrap();
    assert_eq!(
        KnownExtensions::read(&packet, &map).unwrap().transport_cc,
        Some(TransportCc(7))
    );
    // The one-byte form cannot carry id 200.
    assert_eq!(
        RtpPacketBuilder::new(96, 1, 2, 3)
            .header_extension(HeaderExtension::ElementsIn(
                ExtensionForm::OneByte,
                &elements
            ))
            .write(&mut buf),
        Err(RtpError::ExtensionIdOutOfRange { id: 200, max: 14 })
    );
}

#[test]
fn sequence_and_timestamps_extend_across_wrap_per_ssrc() {
    let mut extender = StreamExtender::default();
    let mut buf = [0u8; 64];
    let mut last = None;
    for i in 0..70_000u32 {
        let seq = (65_000 + i) as u16;
        let ts = (u32::MAX - 100_000).wrapping_add(i.wrapping_mul(960));
        let len = RtpPacketBuilder::new(111, seq, ts, 0xA)
            .write(&mut buf)
            .unwrap();
        let packet = RtpPacket::parse(&buf[..len]).unwrap();
        let ext = extender.extend(packet.ssrc(), packet.sequence_number(), packet.timestamp());
        assert_eq!(ext.sequence_number, 65_000 + i64::from(i));
        if let Some(previous) = last {
            assert_eq!(ext.timestamp - previous, 960);
        }
        last = Some(ext.timestamp);
        // Another stream interleaved does not disturb the first.
        let other = extender.extend(0xB, SeqNo(i as u16), RtpTimestamp(i));
        assert_eq!(other.sequence_number, i64::from(i));
    }
}

#[test]
fn malformed_packets_are_errors_not_panics() {
    let mut buf = [0u8; 64];
    let len = RtpPacketBuilder::new(96, 1, 2, 3)
        .csrcs(&[1, 2])
        .payload(&[1, 2, 3])
        .padding(4)
        .write(&mut buf)
        .unwrap();
    let good = &buf[..len];
    assert_eq!(RtpPacket::parse(good).unwrap().padding(), 4);
    for cut in 0..len {
        // Every truncation either fails or (once past the header) loses only padding
        // semantics: none may panic.
        let _ = RtpPacket::parse(&good[..cut]);
    }
    let mut bad = good.to_vec();
    *bad.last_mut().unwrap() = 200;
    assert!(matches!(
        RtpPacket::parse(&bad),
        Err(RtpError::BadPadding { padding: 200, .. })
    ));
    // Extension block longer than the packet.
    let mut ext = [0u8; 20];
    ext[0] = 0x90;
    ext[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 9]);
    assert!(matches!(
        RtpPacket::parse(&ext),
        Err(RtpError::TooShort {
            needed: 52,
            got: 20
        })
    ));
}

fn elements_strategy() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    proptest::collection::vec(
        (1u8..=255, proptest::collection::vec(any::<u8>(), 0..24)),
        0..6,
    )
}

proptest! {
    #[test]
    fn build_then_parse_round_trips(
        marker: bool,
        payload_type in 0u8..128,
        seq: u16,
        ts: u32,
        ssrc: u32,
        csrcs in proptest::collection::vec(any::<u32>(), 0..=15),
        raw in elements_strategy(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        padding: u8,
    ) {
        let elements: Vec<_> = raw.iter().map(|(id, d)| Extension::new(*id, d)).collect();
        let mut builder = RtpPacketBuilder::new(payload_type, seq, ts, ssrc)
            .marker(marker)
            .csrcs(&csrcs)
            .payload(&payload)
            .padding(padding);
        if !elements.is_empty() {
            builder = builder.extensions(&elements);
        }
        let mut out = Vec::new();
        builder.write_vec(&mut out).unwrap();
        prop_assert_eq!(out.len(), builder.len().unwrap());
        let packet = RtpPacket::parse(&out).unwrap();
        prop_assert_eq!(packet.marker(), marker);
        prop_assert_eq!(packet.payload_type(), payload_type);
        prop_assert_eq!(packet.sequence_number(), SeqNo(seq));
        prop_assert_eq!(packet.timestamp(), RtpTimestamp(ts));
        prop_assert_eq!(packet.ssrc(), ssrc);
        prop_assert_eq!(packet.csrcs().collect::<Vec<_>>(), csrcs);
        let parsed: Vec<_> = packet.extensions().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parsed, elements);
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_eq!(packet.padding(), usize::from(padding));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(packet) = RtpPacket::parse(&data) {
            prop_assert!(packet.header_len() + packet.payload().len() + packet.padding() == data.len());
            for element in packet.extensions() {
                let _ = element;
            }
            let _ = KnownExtensions::read(&packet, &map());
        }
    }
}
