//! Video loss recovery benches: one decision of the video protection policy per receiver
//! report (the FEC tables for every frame size rebuilt), the per-frame protection look-up,
//! and the per-frame protect-and-recover path (FlexFEC encode of a frame with the policy's
//! protection at 10% loss, then the receiver rebuilding one lost packet) for a 3-packet
//! delta frame and a 20-packet keyframe of 1200-byte packets.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::fec::flexfec::{FlexFecDecoder, FlexFecEncoder};
use tincan::fec::policy::LossReport;
use tincan::fec::video_policy::{VideoPolicyConfig, VideoProtectionPolicy};
use tincan::rtp::RtpPacketBuilder;

const MEDIA_SSRC: u32 = 0x1111;

fn report(loss: f64) -> LossReport {
    LossReport {
        loss,
        mean_burst: 1.0,
        rtt: Duration::from_millis(100),
    }
}

/// One report: smoothing, hysteresis and (when the decision moves) the FEC tables.
fn policy(c: &mut Criterion) {
    let start = Instant::now();
    let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
    let mut tick = 0u64;
    let mut group = c.benchmark_group("video_policy");
    group.bench_function("update_every_report_moves_the_tables", |b| {
        b.iter(|| {
            tick += 1;
            // Loss alternating up and down with the budget moving: every call retabulates.
            let loss = if tick % 2 == 0 { 0.05 } else { 0.20 };
            let budget = 300_000 + (tick % 7) * 10_000;
            let now = start + Duration::from_secs(tick * 10);
            black_box(policy.update(report(loss), 800_000, budget, now))
        })
    });
    policy.update(report(0.1), 800_000, 400_000, start);
    group.bench_function("protection_lookup_per_frame", |b| {
        let mut n = 0usize;
        b.iter(|| {
            n = n % 48 + 1;
            black_box(policy.protection(n % 30 == 0, n))
        })
    });
    group.finish();
}

fn frame(first_sequence: u16, packets: usize) -> Vec<Vec<u8>> {
    (0..packets)
        .map(|i| {
            let mut packet = Vec::new();
            let payload: Vec<u8> = (0..1200).map(|j| (i * 31 + j) as u8).collect();
            RtpPacketBuilder::new(96, first_sequence + i as u16, 90_000, MEDIA_SSRC)
                .marker(i + 1 == packets)
                .payload(&payload)
                .write_vec(&mut packet)
                .expect("valid packet");
            packet
        })
        .collect()
}

/// A frame protected as the policy says at 10% loss, one media packet lost, rebuilt.
fn protect_and_recover(c: &mut Criterion) {
    let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
    policy.update(report(0.1), 800_000, 400_000, Instant::now());
    let mut group = c.benchmark_group("video_fec_frame");
    for (name, packets, keyframe) in [("delta_3x1200B", 3, false), ("key_20x1200B", 20, true)] {
        let media = frame(1000, packets);
        let mut encoder = FlexFecEncoder::new(118, 0x2222, 0).expect("valid");
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || FlexFecDecoder::new(MEDIA_SSRC),
                |decoder| {
                    let protection = policy.protection(keyframe, media.len());
                    encoder.encode(&media, protection).expect("encode");
                    for packet in &media[1..] {
                        decoder.insert_media(packet).expect("media");
                    }
                    for fec in encoder.packets() {
                        decoder.insert_fec(fec).expect("fec");
                    }
                    black_box(decoder.poll_recovered().map(<[u8]>::len))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, policy, protect_and_recover);
criterion_main!(benches);
