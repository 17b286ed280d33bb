//! FlexFEC-03: header vectors, recovery by loss pattern, bad input, a property test and
//! an end-to-end run over the network emulator.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tincan_fec::flexfec::{
    FlexFecDecoder, FlexFecEncoder, FlexFecError, FlexFecHeader, MAX_PACKET_LEN, MaskType,
    Protection,
};
use tincan_netsim::{Link, LinkConfig, Poll};
use tincan_rtp::RtpPacketBuilder;
use tincan_rtp::extension::Extension;

const MEDIA_SSRC: u32 = 0x1111_2222;
const FEC_SSRC: u32 = 0x3333_4444;
const FEC_PT: u8 = 118;

/// A tiny deterministic generator (xorshift), so tests need no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A media packet with varied header features: marker, CSRCs, extensions, padding.
fn media_packet(seq: u16, timestamp: u32, len: usize, marker: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..len)
        .map(|i| (i as u8) ^ (seq as u8).wrapping_mul(31))
        .collect();
    let csrcs = [0xC0C0_0000 | u32::from(seq)];
    let level = [seq as u8];
    let extensions = [Extension::new(1, &level)];
    let mut builder = RtpPacketBuilder::new(96, seq, timestamp, MEDIA_SSRC)
        .marker(marker)
        .payload(&payload);
    if seq % 4 == 1 {
        builder = builder.csrcs(&csrcs);
    }
    if seq % 3 == 2 {
        builder = builder.extensions(&extensions);
    }
    if seq % 5 == 3 {
        builder = builder.padding(4);
    }
    let mut out = Vec::new();
    builder.write_vec(&mut out).unwrap();
    out
}

fn frame(first_seq: u16, timestamp: u32, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let seq = first_seq.wrapping_add(i as u16);
            media_packet(seq, timestamp, len - (i * 7) % 40, i + 1 == count)
        })
        .collect()
}

fn drain(decoder: &mut FlexFecDecoder) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(packet) = decoder.poll_recovered() {
        out.push(packet.to_vec());
    }
    out
}

/// Which media packets each FEC packet protects (indices into the frame).
fn groups(encoder: &FlexFecEncoder, frame: &[Vec<u8>]) -> Vec<Vec<usize>> {
    encoder
        .packets()
        .map(|fec| {
            let (header, _) = FlexFecHeader::parse(&fec[12..]).unwrap();
            let seqs: Vec<u16> = header.protected().collect();
            frame
                .iter()
                .enumerate()
                .filter(|(_, p)| seqs.contains(&u16::from_be_bytes([p[2], p[3]])))
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

#[test]
fn header_known_vector_from_the_draft_layout() {
    // Built by hand from the layout: R=0 F=0 P=1 X=0 CC=3 | M=1 PT=96 | length 0x1234 |
    // TS 0xDEADBEEF | SSRCCount 1, reserved | SSRC 0x11223344 | SN base 0x0102 |
    // k=1, mask bits 0 and 2 → 0b1_101000000000000 = 0xD000.
    let short = [
        0x23, 0xE0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33,
        0x44, 0x01, 0x02, 0xD0, 0x00,
    ];
    let expected = FlexFecHeader {
        padding: true,
        extension: false,
        csrc_count: 3,
        marker: true,
        payload_type: 96,
        length_recovery: 0x1234,
        timestamp_recovery: 0xDEAD_BEEF,
        protected_ssrc: 0x1122_3344,
        seq_num_base: 0x0102,
        mask: 0b101,
    };
    assert_eq!(FlexFecHeader::parse(&short), Ok((expected, 20)));
    let mut buf = [0xFFu8; 32];
    assert_eq!(expected.write(&mut buf), Ok(20));
    assert_eq!(buf[..20], short);
    assert_eq!(expected.protected().collect::<Vec<_>>(), [0x0102, 0x0104]);

    // 46-bit form: bit 15 → the first bit after k1 in the second word; bit 0 too.
    let mut medium = short;
    medium[18..20].copy_from_slice(&[0x40, 0x00]); // k0=0, bit 0
    let mut medium = medium.to_vec();
    medium.extend_from_slice(&[0xC0, 0x00, 0x00, 0x00]); // k1=1, bit 15
    let (header, len) = FlexFecHeader::parse(&medium).unwrap();
    assert_eq!((header.mask, len), (1 | 1 << 15, 24));
    let mut buf = [0u8; 32];
    assert_eq!(header.write(&mut buf), Ok(24));
    assert_eq!(buf[..24], medium[..]);

    // 109-bit form: bits 45 (last of the second word) and 46, 108.
    let mut long = short[..18].to_vec();
    long.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x01]); // k0=0, k1=0, bit 45
    long.extend_from_slice(&[0xC0, 0, 0, 0, 0, 0, 0, 0x01]); // k2=1, bit 46, bit 108
    let (header, len) = FlexFecHeader::parse(&long).unwrap();
    assert_eq!((header.mask, len), (1 << 45 | 1 << 46 | 1 << 108, 32));
    assert_eq!(header.write(&mut buf), Ok(32));
    assert_eq!(buf[..32], long[..]);
}

#[test]
fn header_rejects_bad_input_with_typed_errors() {
    let good = FlexFecHeader {
        mask: 1,
        ..FlexFecHeader::default()
    };
    let mut buf = [0u8; 32];
    good.write(&mut buf).unwrap();
    let mut r = buf;
    r[0] |= 0x80;
    assert!(matches!(
        FlexFecHeader::parse(&r),
        Err(FlexFecError::Unsupported { .. })
    ));
    let mut f = buf;
    f[0] |= 0x40;
    assert!(matches!(
        FlexFecHeader::parse(&f),
        Err(FlexFecError::Unsupported { .. })
    ));
    let mut count = buf;
    count[8] = 2;
    assert_eq!(
        FlexFecHeader::parse(&count),
        Err(FlexFecError::SsrcCount { count: 2 })
    );
    let mut no_k = [0u8; 32];
    no_k[8] = 1;
    no_k[19] = 1;
    assert_eq!(
        FlexFecHeader::parse(&no_k),
        Err(FlexFecError::MaskNotTerminated)
    );
    let mut empty = buf;
    empty[18] = 0x80;
    empty[19] = 0;
    assert_eq!(FlexFecHeader::parse(&empty), Err(FlexFecError::EmptyMask));
    assert_eq!(
        FlexFecHeader::parse(&buf[..19]),
        Err(FlexFecError::TooShort {
            what: "FlexFEC header",
            needed: 20,
            got: 19
        })
    );
    assert_eq!(
        good.write(&mut [0u8; 19]),
        Err(FlexFecError::BufferTooSmall {
            needed: 20,
            got: 19
        })
    );
}

#[test]
fn fec_packets_are_rtp_on_their_own_ssrc_and_sequence() {
    let media = frame(500, 9000, 10, 1200);
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 65_534).unwrap();
    let n = encoder
        .encode(&media, Protection::new(0.3, MaskType::Interleaved))
        .unwrap();
    assert_eq!(n, 3);
    let seqs: Vec<u16> = encoder
        .packets()
        .map(|p| {
            let rtp = tincan_rtp::RtpPacket::parse(p).unwrap();
            assert_eq!(rtp.ssrc(), FEC_SSRC);
            assert_eq!(rtp.payload_type(), FEC_PT);
            assert_eq!(rtp.timestamp().0, 9000);
            let (header, _) = FlexFecHeader::parse(rtp.payload()).unwrap();
            assert_eq!(header.protected_ssrc, MEDIA_SSRC);
            assert_eq!(header.seq_num_base, 500);
            rtp.sequence_number().0
        })
        .collect();
    assert_eq!(seqs, [65_534, 65_535, 0]);
    assert_eq!(encoder.next_sequence(), 1);
    assert_eq!(
        groups(&encoder, &media),
        [vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]
    );
    encoder
        .encode(&media, Protection::new(0.3, MaskType::Bursty))
        .unwrap();
    assert_eq!(
        groups(&encoder, &media),
        [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]
    );
}

#[test]
fn any_single_loss_per_group_is_recovered_byte_exact() {
    let mut checked = 0;
    for mask in [MaskType::Interleaved, MaskType::Bursty] {
        for fraction in [0.1, 0.25, 0.3, 0.5, 1.0] {
            for count in [1, 2, 5, 10, 17, 48] {
                let media = frame(65_500, 1234, count, 300);
                let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
                encoder
                    .encode(&media, Protection::new(fraction, mask))
                    .unwrap();
                let groups = groups(&encoder, &media);
                // Lose the k-th packet of every group at once.
                for k in 0..groups.iter().map(Vec::len).max().unwrap() {
                    let lost: Vec<usize> =
                        groups.iter().filter_map(|g| g.get(k).copied()).collect();
                    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
                    for (i, packet) in media.iter().enumerate() {
                        if !lost.contains(&i) {
                            decoder.insert_media(packet).unwrap();
                        }
                    }
                    for fec in encoder.packets() {
                        decoder.insert_fec(fec).unwrap();
                    }
                    let mut recovered = drain(&mut decoder);
                    recovered.sort_by_key(|p| u16::from_be_bytes([p[2], p[3]]).wrapping_add(100));
                    let expected: Vec<Vec<u8>> = lost.iter().map(|&i| media[i].clone()).collect();
                    assert_eq!(recovered, expected, "{mask:?} {fraction} {count} k={k}");
                    checked += 1;
                }
            }
        }
    }
    println!("single loss per group: {checked} patterns recovered byte-exact");
}

#[test]
fn two_losses_in_one_group_are_not_recovered() {
    let media = frame(10, 0, 6, 200);
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
    encoder
        .encode(&media, Protection::new(0.2, MaskType::Interleaved))
        .unwrap();
    assert_eq!(encoder.packets().len(), 1);
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    for packet in &media[2..] {
        decoder.insert_media(packet).unwrap();
    }
    for fec in encoder.packets() {
        assert_eq!(decoder.insert_fec(fec), Ok(0));
    }
    assert_eq!(decoder.poll_recovered(), None);
    assert_eq!(decoder.stats().recovered, 0);
    assert_eq!(decoder.pending_fec(), 1);
    // The late arrival of one of the two completes the group.
    decoder.insert_media(&media[1]).unwrap();
    assert_eq!(drain(&mut decoder), [media[0].clone()]);
}

#[test]
fn recovery_cascades_through_fec_packets() {
    // Bursty 2 FEC over 4 packets: {0,1} and {2,3}; plus a 100 % interleaved set
    // gives chains where one recovery enables the next.
    let media = frame(7, 0, 4, 100);
    let mut bursty = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
    bursty
        .encode(&media, Protection::new(0.25, MaskType::Bursty))
        .unwrap(); // one FEC over all four
    let all: Vec<Vec<u8>> = bursty.packets().map(<[u8]>::to_vec).collect();
    let mut pairs = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 10).unwrap();
    pairs
        .encode(&media[..2], Protection::new(0.5, MaskType::Bursty))
        .unwrap(); // {0,1}
    let pair: Vec<Vec<u8>> = pairs.packets().map(<[u8]>::to_vec).collect();
    // Lose 0 and 1: the pair FEC can't help, the all-FEC can't help; then packet 1
    // arrives → the pair recovers 0 (and the all-FEC becomes complete).
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    decoder.insert_fec(&all[0]).unwrap();
    decoder.insert_fec(&pair[0]).unwrap();
    decoder.insert_media(&media[2]).unwrap();
    decoder.insert_media(&media[3]).unwrap();
    assert_eq!(decoder.stats().recovered, 0);
    // Losing only 0 and 1 with 2 and 3 lost too would be hopeless; instead feed a
    // third FEC over {1} alone, which recovers 1, which lets the pair recover 0.
    let mut single = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 20).unwrap();
    single
        .encode(&media[1..2], Protection::new(1.0, MaskType::Bursty))
        .unwrap();
    let one = single.packets().next().unwrap().to_vec();
    assert_eq!(decoder.insert_fec(&one), Ok(2));
    let mut got = drain(&mut decoder);
    got.sort();
    let mut want = vec![media[0].clone(), media[1].clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(decoder.pending_fec(), 0);
}

#[test]
fn reordering_duplicates_and_sequence_wrap() {
    let mut rng = Rng(0x5EED);
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 65_530).unwrap();
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    let mut seq: u16 = 65_000;
    let mut lost_total = 0;
    let mut recovered_total = 0;
    for f in 0..400u32 {
        let media = frame(seq, f * 3000, 5, 400);
        seq = seq.wrapping_add(5);
        encoder
            .encode(&media, Protection::new(0.4, MaskType::Interleaved))
            .unwrap();
        let lost = rng.below(5) as usize;
        lost_total += 1;
        let mut packets: Vec<(bool, Vec<u8>)> = media
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lost)
            .map(|(_, p)| (false, p.clone()))
            .chain(encoder.packets().map(|p| (true, p.to_vec())))
            .collect();
        // Shuffle, and duplicate a few.
        for i in (1..packets.len()).rev() {
            packets.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let dup = packets[0].clone();
        packets.push(dup);
        for (is_fec, packet) in &packets {
            if *is_fec {
                decoder.insert_fec(packet).unwrap();
            } else {
                decoder.insert_media(packet).unwrap();
            }
        }
        // A packet that is merely late may be recovered before it arrives; every
        // recovered packet must be an original, and the lost one must be among them.
        let recovered = drain(&mut decoder);
        assert!(recovered.iter().all(|r| media.contains(r)), "frame {f}");
        assert!(recovered.contains(&media[lost]), "frame {f}");
        recovered_total += 1;
    }
    let stats = *decoder.stats();
    assert_eq!(recovered_total, lost_total);
    assert!(stats.duplicates >= 400, "{stats:?}");
    assert_eq!(stats.malformed, 0);
    println!("wrap/reorder/dup: {recovered_total}/{lost_total} recovered, {stats:?}");
}

#[test]
fn random_loss_over_many_frames_matches_theory() {
    // 10-packet frames, 30 % interleaved protection: 3 FEC packets over groups of 4, 3, 3
    // media. A media packet is lost with p and not recovered when its FEC is lost too
    // or another packet of its group is lost (ignoring the cascade, which cannot occur
    // with disjoint groups).
    let p: f64 = 0.1;
    let mut rng = Rng(42);
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    let (mut sent, mut lost, mut residual) = (0u64, 0u64, 0u64);
    let frames = 3000u32;
    for f in 0..frames {
        let media = frame((f * 10) as u16, f * 3000, 10, 200);
        encoder
            .encode(&media, Protection::new(0.3, MaskType::Interleaved))
            .unwrap();
        let mut arrived = vec![false; media.len()];
        for (i, packet) in media.iter().enumerate() {
            sent += 1;
            if rng.chance(p) {
                lost += 1;
            } else {
                arrived[i] = true;
                decoder.insert_media(packet).unwrap();
            }
        }
        for fec in encoder.packets() {
            if !rng.chance(p) {
                decoder.insert_fec(fec).unwrap();
            }
        }
        for packet in drain(&mut decoder) {
            let i = media.iter().position(|m| *m == packet).expect("byte-exact");
            assert!(!arrived[i]);
            arrived[i] = true;
        }
        residual += arrived.iter().filter(|a| !**a).count() as u64;
    }
    // Per-packet residual loss in a group of g media: p · (1 − (1−p)^g) (FEC lost, or
    // another of the group) — averaged over group sizes 4, 3, 3.
    let theory = [4.0, 3.0, 3.0]
        .iter()
        .map(|&g: &f64| g * p * (1.0 - (1.0 - p).powf(g)))
        .sum::<f64>()
        / 10.0;
    let measured = residual as f64 / sent as f64;
    println!(
        "random loss {p}: sent {sent}, lost {lost} ({:.2} %), residual {residual} ({:.2} %), theory {:.2} %",
        100.0 * lost as f64 / sent as f64,
        100.0 * measured,
        100.0 * theory
    );
    assert!((measured - theory).abs() < 0.006, "{measured} vs {theory}");
}

#[test]
fn garbage_and_truncated_packets_are_errors_not_panics() {
    let media = frame(1, 0, 5, 300);
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
    encoder
        .encode(&media, Protection::new(0.4, MaskType::Interleaved))
        .unwrap();
    let fec = encoder.packets().next().unwrap().to_vec();
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    for cut in 0..fec.len().min(40) {
        let _ = decoder.insert_fec(&fec[..cut]);
    }
    assert!(decoder.insert_fec(&fec[..12]).is_err());
    assert!(decoder.insert_fec(&fec[..31]).is_err());
    assert!(decoder.insert_media(&[0x80, 0x60]).is_err());
    assert!(matches!(
        decoder.insert_media(&vec![0x80; MAX_PACKET_LEN + 1]),
        Err(FlexFecError::PacketTooLarge { .. })
    ));
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let len = rng.below(80) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len > 0 {
            bytes[0] = 0x80 | (bytes[0] & 0x3F);
        }
        if len >= 32 && rng.chance(0.7) {
            // Aim some at the protected SSRC so they reach the recovery code.
            bytes[0] = 0x80;
            bytes[8..12].copy_from_slice(&MEDIA_SSRC.to_be_bytes());
            bytes[12] &= 0x3F;
            bytes[20] = 1;
            bytes[24..28].copy_from_slice(&MEDIA_SSRC.to_be_bytes());
            bytes[28] = (rng.below(3) as u8).wrapping_sub(1);
        }
        let _ = decoder.insert_fec(&bytes);
        let _ = decoder.insert_media(&bytes);
        while let Some(packet) = decoder.poll_recovered() {
            assert!(tincan_rtp::RtpPacket::parse(packet).is_ok());
        }
    }
    let stats = decoder.stats();
    assert!(stats.malformed > 0);
    assert!(decoder.pending_fec() <= 256);
    println!("garbage: {stats:?}");
}

#[test]
fn state_is_bounded_and_old_packets_are_counted() {
    let mut decoder = FlexFecDecoder::with_limits(MEDIA_SSRC, 128, 4).unwrap();
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 0).unwrap();
    for f in 0..200u16 {
        let media = frame(f * 4, 0, 4, 100);
        encoder
            .encode(&media, Protection::new(0.25, MaskType::Interleaved))
            .unwrap();
        // Two losses per group: every FEC waits, and must be evicted or aged out.
        for packet in &media[2..] {
            decoder.insert_media(packet).unwrap();
        }
        for fec in encoder.packets() {
            decoder.insert_fec(fec).unwrap();
        }
        assert!(decoder.pending_fec() <= 4);
        assert!(decoder.stored_media() <= 128);
    }
    let old = media_packet(0, 0, 10, false);
    assert_eq!(decoder.insert_media(&old), Ok(0));
    let stats = decoder.stats();
    assert!(
        stats.dropped_old >= 1 && stats.unrecoverable >= 190,
        "{stats:?}"
    );
    assert!(decoder.buffered_bytes() <= (128 + 4 + 1) * MAX_PACKET_LEN);
    assert!(matches!(
        FlexFecDecoder::with_limits(MEDIA_SSRC, 50, 4),
        Err(FlexFecError::InvalidLimit { .. })
    ));
    println!("bounded: {stats:?}");
}

#[test]
fn netsim_ten_percent_loss_thirty_percent_protection() {
    let config = LinkConfig {
        delay_ms: 30.0,
        jitter_ms: 5.0,
        loss: 0.1,
        ..LinkConfig::default()
    };
    let mut link: Link<Vec<u8>> = Link::new(config, 2024).unwrap();
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 100).unwrap();
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    let start = Instant::now();
    let mut originals = std::collections::HashMap::new();
    let mut received = std::collections::HashSet::new();
    let mut recovered = std::collections::HashSet::new();
    let mut seq: u16 = 60_000;
    let (mut media_sent, mut fec_sent) = (0usize, 0usize);
    for f in 0..300u32 {
        let now = start + Duration::from_millis(u64::from(f) * 33);
        let count = 4 + (f % 3) as usize; // 4..=6 packets, ~5 on average
        let media = frame(seq, f * 3000, count, 1000);
        seq = seq.wrapping_add(count as u16);
        // Keyframes every 100 frames get more protection.
        let protection = if f % 100 == 0 { 0.5 } else { 0.3 };
        encoder
            .encode(&media, Protection::new(protection, MaskType::Interleaved))
            .unwrap();
        for packet in &media {
            originals.insert(u16::from_be_bytes([packet[2], packet[3]]), packet.clone());
            link.send(packet.clone(), packet.len(), now);
            media_sent += 1;
        }
        for fec in encoder.packets() {
            link.send(fec.to_vec(), fec.len(), now);
            fec_sent += 1;
        }
        while let Poll::Deliver(d) = link.poll(now + Duration::from_millis(33)) {
            let packet = d.packet;
            let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
            if ssrc == FEC_SSRC {
                decoder.insert_fec(&packet).unwrap();
            } else {
                received.insert(u16::from_be_bytes([packet[2], packet[3]]));
                decoder.insert_media(&packet).unwrap();
            }
            while let Some(r) = decoder.poll_recovered() {
                let s = u16::from_be_bytes([r[2], r[3]]);
                assert_eq!(originals[&s], r, "recovered packet differs");
                recovered.insert(s);
            }
        }
    }
    let lost = media_sent - received.len();
    let residual = originals
        .keys()
        .filter(|s| !received.contains(s) && !recovered.contains(s))
        .count();
    let overhead = fec_sent as f64 / media_sent as f64;
    println!(
        "netsim loss 0.1: media {media_sent}, fec {fec_sent} ({:.0} % overhead), lost {lost} ({:.2} %), recovered {}, residual {residual} ({:.2} %), link {:?}",
        100.0 * overhead,
        100.0 * lost as f64 / media_sent as f64,
        recovered.len(),
        100.0 * residual as f64 / media_sent as f64,
        link.counters().dropped_loss,
    );
    assert!((residual as f64) < 0.04 * media_sent as f64);
    assert!(residual < lost / 2);
}

fn build_stream(frames: usize, per_frame: usize, fraction: f32, mask: MaskType) -> Stream {
    let mut encoder = FlexFecEncoder::new(FEC_PT, FEC_SSRC, 65_520).unwrap();
    let mut media = Vec::new();
    let mut fec = Vec::new();
    let mut seq: u16 = 65_500;
    for f in 0..frames {
        let packets = frame(seq, f as u32 * 3000, per_frame, 60);
        seq = seq.wrapping_add(per_frame as u16);
        encoder
            .encode(&packets, Protection::new(fraction, mask))
            .unwrap();
        fec.extend(encoder.packets().map(<[u8]>::to_vec));
        media.extend(packets);
    }
    Stream { media, fec }
}

struct Stream {
    media: Vec<Vec<u8>>,
    fec: Vec<Vec<u8>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Recovery from any set of received packets, in any order, never panics, keeps
    /// state bounded, and every recovered packet is byte-identical to the original.
    #[test]
    fn any_delivery_recovers_only_exact_packets(
        frames in 1usize..8,
        per_frame in 1usize..12,
        fraction in 0.0f32..=1.0,
        bursty in any::<bool>(),
        keep in proptest::collection::vec(any::<bool>(), 200),
        order in proptest::collection::vec(any::<u32>(), 200),
        limits in any::<bool>(),
    ) {
        let mask = if bursty { MaskType::Bursty } else { MaskType::Interleaved };
        let stream = build_stream(frames, per_frame, fraction, mask);
        let mut deliveries: Vec<(bool, usize)> = (0..stream.media.len())
            .map(|i| (false, i))
            .chain((0..stream.fec.len()).map(|i| (true, i)))
            .enumerate()
            .filter(|(k, _)| keep[k % keep.len()])
            .map(|(_, d)| d)
            .collect();
        let n = deliveries.len();
        for i in (1..n).rev() {
            deliveries.swap(i, order[i % order.len()] as usize % (i + 1));
        }
        let (max_media, max_fec) = if limits { (109, 2) } else { (512, 256) };
        let mut decoder = FlexFecDecoder::with_limits(MEDIA_SSRC, max_media, max_fec).unwrap();
        let mut got = std::collections::HashSet::new();
        for (is_fec, i) in deliveries {
            if is_fec {
                decoder.insert_fec(&stream.fec[i]).unwrap();
            } else {
                decoder.insert_media(&stream.media[i]).unwrap();
                got.insert(i);
            }
            prop_assert!(decoder.pending_fec() <= max_fec);
            prop_assert!(decoder.stored_media() <= max_media);
            while let Some(packet) = decoder.poll_recovered() {
                let index = stream.media.iter().position(|m| m == packet);
                prop_assert!(index.is_some(), "recovered packet is not an original");
                prop_assert!(got.insert(index.unwrap()), "recovered a packet already had");
            }
        }
        prop_assert!(decoder.buffered_bytes() <= (max_media + max_fec + 1) * MAX_PACKET_LEN);
        prop_assert_eq!(decoder.stats().malformed, 0);
    }
}
