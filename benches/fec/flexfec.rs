//! FlexFEC-03 benches: encoding a frame and recovering a lost packet.
//!
//! Wire with `mod flexfec;` (path `benches/fec/flexfec.rs`) and
//! `criterion_group!(…, flexfec::flexfec_benches)` in `benches/fec.rs`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use tincan_fec::flexfec::{FlexFecDecoder, FlexFecEncoder, MaskType, Protection};
use tincan_rtp::RtpPacketBuilder;

const MEDIA_SSRC: u32 = 0x1234_5678;

/// A frame of `count` media packets of `len` bytes.
fn frame(first_seq: u16, count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let payload: Vec<u8> = (0..len - 12).map(|b| (b ^ i) as u8).collect();
            let mut packet = Vec::new();
            RtpPacketBuilder::new(96, first_seq.wrapping_add(i as u16), 90_000, MEDIA_SSRC)
                .marker(i + 1 == count)
                .payload(&payload)
                .write_vec(&mut packet)
                .expect("bench packet");
            packet
        })
        .collect()
}

/// FlexFEC benches: encode a 10 × 1200-byte frame at 30 % protection; recover one lost
/// packet of it.
pub fn flexfec_benches(c: &mut Criterion) {
    let media = frame(1000, 10, 1200);
    let protection = Protection::new(0.3, MaskType::Interleaved);
    let mut group = c.benchmark_group("flexfec");
    group.throughput(Throughput::Bytes((10 * 1200) as u64));

    let mut encoder = FlexFecEncoder::new(118, 0xFEC0, 0).expect("encoder");
    group.bench_function(BenchmarkId::new("encode", "10x1200B@30%"), |b| {
        b.iter(|| {
            black_box(
                encoder
                    .encode(black_box(&media), protection)
                    .expect("encode"),
            )
        })
    });

    encoder.encode(&media, protection).expect("encode");
    let fec: Vec<Vec<u8>> = encoder.packets().map(<[u8]>::to_vec).collect();
    // Lose media packet 3; its FEC packet (3 % 3 = 0) protects 0, 3, 6, 9.
    let mut decoder = FlexFecDecoder::new(MEDIA_SSRC);
    group.bench_function(BenchmarkId::new("recover_one", "10x1200B@30%"), |b| {
        b.iter(|| {
            // Forget the previous round (buffers are kept) so nothing is a duplicate.
            decoder.reset();
            let mut recovered = 0;
            for (i, packet) in media.iter().enumerate() {
                if i != 3 {
                    decoder.insert_media(packet).expect("media");
                }
            }
            for packet in &fec {
                recovered += decoder.insert_fec(packet).expect("fec");
            }
            while let Some(packet) = decoder.poll_recovered() {
                black_box(packet);
            }
            black_box(recovered)
        })
    });
    group.finish();
}
