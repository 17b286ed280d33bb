//! The FlexFEC-03 header parser and decoder on an arbitrary sequence of packets.
//!
//! The input is split into packets: a two-byte length (packets above the decoder's
//! 2048-byte limit are reachable), a kind byte (odd: FEC packet, even: media packet), then
//! that many bytes. The decoder protects SSRC 0 so that zero-filled inputs reach the
//! recovery code. After every packet the recovered packets are drained and the bounds
//! checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_fec::flexfec::{FlexFecDecoder, FlexFecHeader, MAX_HEADER_LEN, MAX_PACKET_LEN};
use tincan_rtp::RtpPacket;

const MAX_MEDIA: usize = 128;
const MAX_FEC: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = FlexFecDecoder::with_limits(0, MAX_MEDIA, MAX_FEC) else {
        return;
    };
    let mut rest = data;
    while let [hi, lo, kind, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (packet, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        if let Ok((header, header_len)) = FlexFecHeader::parse(packet) {
            assert!((20..=MAX_HEADER_LEN).contains(&header_len));
            assert_ne!(header.mask, 0);
            let mut buf = [0u8; MAX_HEADER_LEN];
            let written = header.write(&mut buf).expect("a parsed header writes");
            assert_eq!(FlexFecHeader::parse(&buf[..written]), Ok((header, written)));
        }
        let _ = if kind & 1 == 1 {
            decoder.insert_fec(packet)
        } else {
            decoder.insert_media(packet)
        };
        assert!(decoder.pending_fec() <= MAX_FEC);
        assert!(decoder.stored_media() <= MAX_MEDIA);
        while let Some(recovered) = decoder.poll_recovered() {
            assert!(recovered.len() <= MAX_PACKET_LEN);
            let parsed = RtpPacket::parse(recovered).expect("recovered packets are RTP");
            assert_eq!(parsed.ssrc(), 0);
        }
    }
    assert!(decoder.buffered_bytes() <= (MAX_MEDIA + MAX_FEC + 1) * MAX_PACKET_LEN);
});
