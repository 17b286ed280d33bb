//! Loss recovery benches: RTX (store a sent packet, answer a NACK with an RTX packet, restore
//! it), FlexFEC encode and recover, and one adaptive policy decision. (DRED's cost per
//! recovered frame is in `benches/codecs.rs`.)

#[path = "fec/flexfec.rs"]
mod flexfec;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::fec::policy::{AudioPolicy, AudioPolicyConfig, LossReport};
use tincan::fec::rtx::{RtxConfig, RtxReceiver, RtxSender};
use tincan::rtp::RtpPacketBuilder;

/// Per packet: remember it, NACK it, send its RTX packet, restore the original.
fn rtx(c: &mut Criterion) {
    let config = RtxConfig::new(0x1111, 96, 0x2222, 97);
    let mut sender = RtxSender::new(config.clone()).expect("valid");
    let mut receiver = RtxReceiver::new(config);
    let payload = vec![0x5Au8; 1200];
    let mut packet = Vec::new();
    let start = Instant::now();
    let mut rtx = [0u8; 1500];
    let mut restored = Vec::with_capacity(1500);
    let mut sequence = 0u16;
    let mut group = c.benchmark_group("rtx");
    group.throughput(Throughput::Elements(1));
    group.bench_function("store_nack_retransmit_restore_1200B", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            packet.clear();
            RtpPacketBuilder::new(96, sequence, u32::from(sequence) * 3000, 0x1111)
                .payload(&payload)
                .write_vec(&mut packet)
                .expect("valid");
            let now = start + Duration::from_millis(u64::from(sequence));
            sender.on_sent(&packet, now);
            sender.handle_nack(&[sequence], Duration::from_millis(50), now);
            let len = sender.poll_transmit(&mut rtx).unwrap_or(0);
            black_box(receiver.unwrap(&rtx[..len], &mut restored).ok())
        })
    });
    group.finish();
}

/// One policy decision per receiver report.
fn policy(c: &mut Criterion) {
    let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
    let start = Instant::now();
    let mut second = 0u64;
    c.bench_function("audio_policy_update", |b| {
        b.iter(|| {
            second += 1;
            let loss = (second % 10) as f64 / 20.0;
            let report = LossReport {
                loss,
                mean_burst: 1.5,
                rtt: Duration::from_millis(80),
            };
            black_box(policy.update(report, 128_000, start + Duration::from_secs(second)))
        })
    });
}

criterion_group!(benches, rtx, policy, flexfec::flexfec_benches);
criterion_main!(benches);
