//! Fuzzes RTCP parsing: frame the compound packet, parse every packet, walk every report
//! block, SDES item, NACK entry, FIR entry, REMB source and transport-cc status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::rtcp::{Ntp64, RtcpCompound, RtcpPacket, RtcpWriter, TwccBuilder};

/// Arrival times survive a rebuild modulo the 24-bit reference time's range.
const TIME_WRAP_US: i64 = (1 << 24) * 64_000;

fuzz_target!(|data: &[u8]| {
    let Ok(compound) = RtcpCompound::parse(data) else {
        return;
    };
    for raw in compound.raw() {
        assert!(raw.body.len() <= data.len());
    }
    for packet in compound.packets().flatten() {
        match packet {
            RtcpPacket::SenderReport(sr) => {
                for block in sr.report_blocks() {
                    let _ = block.rtt(sr.info.ntp);
                }
            }
            RtcpPacket::ReceiverReport(rr) => {
                for block in rr.report_blocks() {
                    let _ = block.rtt(Ntp64(u64::MAX));
                }
            }
            RtcpPacket::Sdes(sdes) => {
                for chunk in sdes.chunks() {
                    for item in chunk.items() {
                        assert!(item.value.len() <= 255);
                    }
                }
            }
            RtcpPacket::Bye(bye) => {
                let _ = bye.ssrcs().count();
                let _ = bye.reason();
            }
            RtcpPacket::Nack(nack) => {
                let _ = nack.lost().count();
            }
            RtcpPacket::Fir(fir) => {
                let _ = fir.entries().count();
            }
            RtcpPacket::Remb(remb) => {
                let _ = remb.ssrcs().count();
            }
            RtcpPacket::TransportCc(twcc) => {
                // Parsing checked every chunk and delta, so the walk covers every status.
                assert_eq!(twcc.packets().count(), usize::from(twcc.status_count));
                // Rebuild from what parsed: the same statuses and arrival times must
                // come back (times modulo the reference time's wrap).
                let parsed: Vec<_> = twcc.packets().collect();
                let mut out = Vec::new();
                let mut writer = RtcpWriter::new(&mut out);
                TwccBuilder::new()
                    .write(&mut writer, 1, 2, twcc.feedback_count, &parsed)
                    .expect("rebuild parsed feedback");
                let again = RtcpCompound::parse(&out).expect("parse rebuilt");
                let Some(Ok(RtcpPacket::TransportCc(again))) = again.packets().next() else {
                    panic!("rebuilt packet is not transport-cc");
                };
                let rebuilt: Vec<_> = again.packets().collect();
                assert_eq!(rebuilt.len(), parsed.len());
                for ((seq, time), (seq2, time2)) in parsed.iter().zip(&rebuilt) {
                    assert_eq!(seq, seq2);
                    match (time, time2) {
                        (Some(a), Some(b)) => assert_eq!((a - b).rem_euclid(TIME_WRAP_US), 0),
                        (None, None) => {}
                        _ => panic!("status changed for {seq}"),
                    }
                }
            }
            _ => {}
        }
    }
});
