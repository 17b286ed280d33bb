//! RTCP through the public API: compound build → parse, reduced-size, malformed input,
//! and interop with the independent `rtcp-types` parser.

use proptest::prelude::*;
use rtcp_types::prelude::*;
use std::time::Duration;
use tincan_rtp::RtpError;
use tincan_rtp::rtcp::{
    FirEntry, Ntp64, ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SdesItem, SenderInfo,
    TwccBuilder, rtt_from_report_block,
};

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 12,
        cumulative_lost: -3,
        highest_sequence: 70_000,
        jitter: 99,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 0x0001_0000,
    }
}

fn full_compound(out: &mut Vec<u8>) {
    let mut w = RtcpWriter::new(out);
    let info = SenderInfo {
        ntp: Ntp64::new(3_900_000_000, 0x8000_0000),
        rtp_timestamp: 48_000,
        packet_count: 50,
        octet_count: 5_000,
    };
    w.sender_report(1, &info, &[block(2), block(3)]).unwrap();
    w.sdes(1, &[SdesItem::new(SdesItem::CNAME, b"tincan@host")])
        .unwrap();
    w.nack(1, 2, &[10, 11, 30]).unwrap();
    w.pli(1, 2).unwrap();
    w.fir(
        1,
        &[FirEntry {
            ssrc: 2,
            sequence_number: 7,
        }],
    )
    .unwrap();
    w.remb(1, 1_500_000, &[2, 3]).unwrap();
    let packets = [(100, Some(1_000_000)), (101, None), (103, Some(1_020_000))];
    w.transport_cc(&mut TwccBuilder::new(), 1, 2, 4, &packets)
        .unwrap();
    w.receiver_report(1, &[]).unwrap();
    w.bye(&[1], Some(b"done")).unwrap();
}

#[test]
fn full_compound_round_trips() {
    let mut out = Vec::new();
    full_compound(&mut out);
    let compound = RtcpCompound::parse(&out).unwrap();
    let packets: Vec<_> = compound.packets().collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len(), 9);
    let RtcpPacket::SenderReport(sr) = packets[0] else {
        panic!("{:?}", packets[0])
    };
    assert_eq!(sr.ssrc, 1);
    assert_eq!(sr.info.packet_count, 50);
    assert_eq!(sr.report_blocks().collect::<Vec<_>>(), [block(2), block(3)]);
    let RtcpPacket::Sdes(sdes) = packets[1] else {
        panic!()
    };
    assert_eq!(
        sdes.chunks().next().unwrap().cname(),
        Some(&b"tincan@host"[..])
    );
    let RtcpPacket::Nack(nack) = packets[2] else {
        panic!()
    };
    assert_eq!(nack.lost().collect::<Vec<_>>(), [10, 11, 30]);
    assert!(matches!(packets[3], RtcpPacket::Pli(_)));
    let RtcpPacket::Fir(fir) = packets[4] else {
        panic!()
    };
    assert_eq!(
        fir.entries().collect::<Vec<_>>(),
        [FirEntry {
            ssrc: 2,
            sequence_number: 7
        }]
    );
    let RtcpPacket::Remb(remb) = packets[5] else {
        panic!()
    };
    assert!(remb.bitrate_bps <= 1_500_000 && remb.bitrate_bps > 1_499_000);
    assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [2, 3]);
    let RtcpPacket::TransportCc(twcc) = packets[6] else {
        panic!()
    };
    assert_eq!(
        twcc.packets().collect::<Vec<_>>(),
        [
            (100, Some(1_000_000)),
            (101, None),
            (102, None),
            (103, Some(1_020_000))
        ]
    );
    assert!(matches!(packets[7], RtcpPacket::ReceiverReport(_)));
    let RtcpPacket::Bye(bye) = packets[8] else {
        panic!()
    };
    assert_eq!(bye.reason(), Some(&b"done"[..]));
}

#[test]
fn rtcp_types_parses_what_we_build() {
    let mut out = Vec::new();
    full_compound(&mut out);
    let compound = rtcp_types::Compound::parse(&out).unwrap();
    let mut seen = 0;
    for packet in compound {
        match packet.unwrap() {
            rtcp_types::Packet::Sr(sr) => {
                assert_eq!(sr.ntp_timestamp(), Ntp64::new(3_900_000_000, 0x8000_0000).0);
                assert_eq!(sr.report_blocks().count(), 2);
            }
            rtcp_types::Packet::TransportFeedback(fb) => {
                if let Ok(nack) = fb.parse_fci::<rtcp_types::Nack>() {
                    assert_eq!(nack.entries().collect::<Vec<_>>(), [10, 11, 30]);
                } else {
                    let twcc = fb.parse_fci::<rtcp_types::Twcc>().unwrap();
                    assert_eq!(twcc.base_sequence_number(), 100);
                    assert_eq!(twcc.feedback_packet_count(), 4);
                    let statuses: Vec<_> = twcc.packets().collect::<Result<_, _>>().unwrap();
                    assert_eq!(statuses.len(), 4);
                }
            }
            _ => {}
        }
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn rtt_from_a_parsed_receiver_report() {
    // The sender sent an SR at NTP 1000.5 s; the receiver held it 0.25 s; it came back
    // at 1000.9 s, so RTT is 0.15 s.
    let sr_time = Ntp64::from_duration(Duration::from_millis(1_000_500));
    let mut out = Vec::new();
    let mut w = RtcpWriter::new(&mut out);
    let block = ReportBlock {
        ssrc: 1,
        last_sr: sr_time.middle32(),
        delay_since_last_sr: 1 << 14,
        ..ReportBlock::default()
    };
    w.receiver_report(2, &[block]).unwrap();
    let compound = RtcpCompound::parse(&out).unwrap();
    let Some(Ok(RtcpPacket::ReceiverReport(rr))) = compound.packets().next() else {
        panic!()
    };
    let parsed = rr.report_blocks().next().unwrap();
    let arrival = Ntp64::from_duration(Duration::from_millis(1_000_900));
    let rtt = parsed.rtt(arrival).unwrap();
    assert!(rtt.abs_diff(Duration::from_millis(150)) < Duration::from_micros(50));
    assert_eq!(
        rtt_from_report_block(block.last_sr, block.delay_since_last_sr, sr_time.middle32()),
        None
    );
}

#[test]
fn malformed_packets_inside_sound_framing_are_reported_per_packet() {
    // A valid PLI, then an SR whose count promises a block that is not there.
    let mut data = Vec::new();
    RtcpWriter::new(&mut data).pli(1, 2).unwrap();
    data.extend_from_slice(&[0x81, 200, 0, 6]);
    data.extend_from_slice(&[0; 24]);
    let compound = RtcpCompound::parse(&data).unwrap();
    let results: Vec<_> = compound.packets().collect();
    assert!(results[0].is_ok());
    assert_eq!(
        results[1],
        Err(RtpError::RtcpCount {
            packet_type: 200,
            count: 1,
            len: 24
        })
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(compound) = RtcpCompound::parse(&data) {
            for packet in compound.packets().flatten() {
                match packet {
                    RtcpPacket::SenderReport(sr) => { let _ = sr.report_blocks().count(); }
                    RtcpPacket::ReceiverReport(rr) => { let _ = rr.report_blocks().count(); }
                    RtcpPacket::Sdes(s) => { for c in s.chunks() { let _ = c.items().count(); } }
                    RtcpPacket::Bye(b) => { let _ = b.ssrcs().count(); }
                    RtcpPacket::Nack(n) => { let _ = n.lost().count(); }
                    RtcpPacket::Fir(f) => { let _ = f.entries().count(); }
                    RtcpPacket::Remb(r) => { let _ = r.ssrcs().count(); }
                    RtcpPacket::TransportCc(t) => {
                        prop_assert_eq!(t.packets().count(), usize::from(t.status_count));
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn report_and_bye_round_trip(ssrc: u32, ssrcs in proptest::collection::vec(any::<u32>(), 0..=31),
                                 reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=255)),
                                 cname in proptest::collection::vec(any::<u8>(), 0..=255)) {
        let blocks: Vec<_> = ssrcs.iter().map(|&s| block(s)).collect();
        let mut out = Vec::new();
        let mut w = RtcpWriter::new(&mut out);
        w.receiver_report(ssrc, &blocks).unwrap();
        w.sdes(ssrc, &[SdesItem::new(SdesItem::CNAME, &cname)]).unwrap();
        w.bye(&ssrcs, reason.as_deref()).unwrap();
        let compound = RtcpCompound::parse(&out).unwrap();
        let packets: Vec<_> = compound.packets().collect::<Result<_, _>>().unwrap();
        let RtcpPacket::ReceiverReport(rr) = packets[0] else { panic!() };
        prop_assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);
        let RtcpPacket::Sdes(sdes) = packets[1] else { panic!() };
        prop_assert_eq!(sdes.chunks().next().unwrap().cname(), Some(&cname[..]));
        let RtcpPacket::Bye(bye) = packets[2] else { panic!() };
        prop_assert_eq!(bye.ssrcs().collect::<Vec<_>>(), ssrcs);
        prop_assert_eq!(bye.reason(), reason.as_deref());
    }

    #[test]
    fn nack_round_trips(mut lost in proptest::collection::btree_set(any::<u16>(), 0..60)) {
        let lost: Vec<u16> = std::mem::take(&mut lost).into_iter().collect();
        let mut out = Vec::new();
        RtcpWriter::new(&mut out).nack(1, 2, &lost).unwrap();
        let compound = RtcpCompound::parse(&out).unwrap();
        let Some(Ok(RtcpPacket::Nack(nack))) = compound.packets().next() else { panic!() };
        prop_assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
    }
}

/// Wraps an FCI built by rtcp-types in an RTPFB header of our own.
fn wrap_twcc_fci(fci: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x8F, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
    packet.extend_from_slice(fci);
    while packet.len() % 4 != 0 {
        packet.push(0);
    }
    let words = (packet.len() / 4 - 1) as u16;
    packet[2..4].copy_from_slice(&words.to_be_bytes());
    packet
}

proptest! {
    #[test]
    fn we_parse_what_rtcp_types_builds(
        base: u16,
        reference in 0u32..1 << 24,
        deltas in proptest::collection::vec(proptest::option::of(any::<i16>()), 1..200),
    ) {
        let statuses: Vec<_> = deltas
            .iter()
            .map(|d| match d {
                Some(delta) => rtcp_types::TwccPacketStatus::Received { delta: *delta },
                None => rtcp_types::TwccPacketStatus::NotReceived,
            })
            .collect();
        let builder = rtcp_types::TwccBuilder::new(base, reference, 3, &statuses, None);
        let mut fci = vec![0u8; builder.calculate_size().unwrap()];
        builder.write_into(&mut fci).unwrap();
        let packet = wrap_twcc_fci(&fci);
        let compound = RtcpCompound::parse(&packet).unwrap();
        let Some(Ok(RtcpPacket::TransportCc(twcc))) = compound.packets().next() else { panic!() };
        prop_assert_eq!(twcc.reference_time, reference);
        let mut time = i64::from(reference) * 64_000;
        let expected: Vec<_> = deltas
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let arrival = d.map(|d| {
                    time += i64::from(d) * 250;
                    time
                });
                (base.wrapping_add(i as u16), arrival)
            })
            .collect();
        prop_assert_eq!(twcc.packets().collect::<Vec<_>>(), expected);
    }
}
