//! Criterion benches of the pacer: one element is one packet enqueued and polled out.
//!
//! `cargo bench --bench pacer` runs them; criterion reports packets per second. The pacer
//! is warm (its queues have grown to the burst) before timing, so these are the
//! allocation-free steady state.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::abr::PacketClass;
use tincan::abr::pacer::{Pacer, PacerConfig, PacerOutput};

/// Packets per timed batch: one video frame's worth of bursts.
const PACKETS: u64 = 256;
/// Pacing rate: 2.5 Mbit/s, the top of the ladder's pacing.
const PACING_BPS: u64 = 2_500_000;

/// Enqueues `PACKETS` (one audio packet every eighth, the rest video) and polls them out at
/// their departure times.
fn batch(pacer: &mut Pacer<u64>, now: &mut Instant) -> u64 {
    for i in 0..PACKETS {
        let (size, class) = if i % 8 == 0 {
            (120, PacketClass::Audio)
        } else {
            (1200, PacketClass::Video)
        };
        if pacer.enqueue(i, size, class, *now).is_err() {
            unreachable!("the bench stays under the queue's limits");
        }
    }
    let mut sent = 0;
    loop {
        match pacer.poll(*now) {
            PacerOutput::Send { packet, .. } => sent += black_box(packet) & 1,
            PacerOutput::Timeout(at) => *now = at,
            PacerOutput::Idle => return sent,
            other => {
                black_box(other);
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pacer");
    group.throughput(Throughput::Elements(PACKETS));
    group.bench_function("enqueue+poll, audio and video at 2.5 Mbit/s", |b| {
        let mut pacer = Pacer::new(PacerConfig::default()).expect("valid");
        pacer.set_rates(PACING_BPS, 0);
        let mut now = Instant::now();
        batch(&mut pacer, &mut now); // warm: queues at their working size
        b.iter(|| batch(&mut pacer, &mut now));
    });
    group.bench_function("enqueue+poll with padding at 2.5 Mbit/s", |b| {
        let mut pacer = Pacer::new(PacerConfig::default()).expect("valid");
        pacer.set_rates(PACING_BPS, PACING_BPS / 4);
        let mut now = Instant::now();
        // With padding the pacer is never idle: poll a fixed span of time per batch.
        let mut second = || {
            for i in 0..PACKETS {
                let class = if i % 8 == 0 {
                    PacketClass::Audio
                } else {
                    PacketClass::Video
                };
                let _ = pacer.enqueue(i, 1200, class, now);
            }
            let until = now + Duration::from_millis(1000);
            loop {
                match pacer.poll(now) {
                    PacerOutput::Timeout(at) if at <= until => now = at,
                    PacerOutput::Timeout(_) | PacerOutput::Idle => break,
                    other => {
                        black_box(other);
                    }
                }
            }
            now = until;
        };
        second(); // warm: queues at their working size
        b.iter(&mut second);
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
