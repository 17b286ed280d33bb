//! Criterion benches of congestion control, per packet: the send side (a packet recorded as
//! sent, then its transport-cc report parsed and processed), the receive side (an arrival
//! recorded and its share of a feedback packet written) and the REMB estimator.
//!
//! `cargo bench --bench abr` runs them; criterion reports packets per second. Each batch
//! starts from a clone of a warmed-up component, made outside the timing.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::abr::{
    ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, RembConfig, RembEstimator,
    SendSideController, SentPacket,
};
use tincan::rtp::rtcp::{RtcpCompound, RtcpPacket};

/// Packets per timed batch: 2 s of 1200-byte packets at 2.5 Mbit/s.
const PACKETS: usize = 520;
/// Spacing of the packets: 1200 bytes at 2.5 Mbit/s.
const GAP: Duration = Duration::from_micros(3_840);
/// One-way delay of the simulated path.
const DELAY: Duration = Duration::from_millis(50);

/// Arrival of packet `i`: the path delay plus a small repeating jitter, so the delay
/// detector does real work.
fn arrival(t0: Instant, i: usize) -> Instant {
    t0 + GAP * i as u32 + DELAY + Duration::from_micros((i % 7) as u64 * 300)
}

fn sent(t0: Instant, i: usize) -> SentPacket {
    SentPacket {
        transport_seq: i as u16,
        size_bytes: 1200,
        send_time: t0 + GAP * i as u32,
        probe_cluster: None,
        class: PacketClass::Video,
    }
}

/// The feedback a receiver writes for packets `0..n` (every 50 ms), with the packet index
/// each one covers up to and the time it reaches the sender.
fn feedbacks(t0: Instant, from: usize, n: usize) -> Vec<(usize, Vec<u8>, Instant)> {
    let mut g = FeedbackGenerator::new(FeedbackConfig::default()).expect("config");
    let mut all = Vec::new();
    for i in from..from + n {
        let at = arrival(t0, i);
        g.on_packet_received(i as u16, at);
        let mut out = Vec::new();
        if g.poll_feedback(at, &mut out).expect("feedback") {
            all.push((i + 1, out, at + DELAY));
        }
    }
    all
}

/// Send side: `on_packet_sent` for every packet and `on_transport_feedback` for every
/// feedback (parse included).
fn controller(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut warm = SendSideController::new(ControllerConfig::default(), t0).expect("config");
    // Warm up on the first 2 s, then time the next 2 s.
    let warmup = feedbacks(t0, 0, PACKETS);
    let mut next = 0;
    for (upto, bytes, at) in &warmup {
        while next < *upto {
            warm.on_packet_sent(sent(t0, next));
            next += 1;
        }
        let compound = RtcpCompound::parse(bytes).expect("rtcp");
        for p in compound.packets() {
            if let Ok(RtcpPacket::TransportCc(fb)) = p {
                warm.on_transport_feedback(&fb, *at).expect("feedback");
            }
        }
    }
    let timed = feedbacks(t0, PACKETS, PACKETS);
    let mut group = c.benchmark_group("abr");
    group.throughput(Throughput::Elements(PACKETS as u64));
    group.bench_function("controller sent + feedback per packet", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut ctl| {
                let mut next = PACKETS;
                for (upto, bytes, at) in &timed {
                    while next < *upto {
                        ctl.on_packet_sent(sent(t0, next));
                        next += 1;
                    }
                    let compound = RtcpCompound::parse(bytes).expect("rtcp");
                    for p in compound.packets() {
                        if let Ok(RtcpPacket::TransportCc(fb)) = p {
                            ctl.on_transport_feedback(&fb, *at).expect("feedback");
                        }
                    }
                }
                black_box(ctl.target_bps())
            },
            BatchSize::SmallInput,
        );
    });

    // Receive side: an arrival recorded, feedback written every 50 ms.
    let mut warm_gen = FeedbackGenerator::new(FeedbackConfig::default()).expect("config");
    let mut out = Vec::with_capacity(1500);
    for i in 0..PACKETS {
        let at = arrival(t0, i);
        warm_gen.on_packet_received(i as u16, at);
        out.clear();
        warm_gen.poll_feedback(at, &mut out).expect("feedback");
    }
    group.bench_function("feedback generator per packet", |b| {
        b.iter_batched(
            || (warm_gen.clone(), Vec::with_capacity(1500)),
            |(mut g, mut out)| {
                for i in PACKETS..2 * PACKETS {
                    let at = arrival(t0, i);
                    g.on_packet_received(i as u16, at);
                    out.clear();
                    g.poll_feedback(at, &mut out).expect("feedback");
                }
                black_box(out.len())
            },
            BatchSize::SmallInput,
        );
    });

    // REMB: the receive-side estimator per packet.
    let abs =
        |i: usize| ((GAP.as_micros() as u64 * i as u64 * (1 << 18) / 1_000_000) as u32) & 0xFF_FFFF;
    let mut warm_remb = RembEstimator::new(RembConfig::default()).expect("config");
    for i in 0..PACKETS {
        warm_remb.on_packet_received(arrival(t0, i), abs(i), 1200, 7);
    }
    group.bench_function("remb estimator per packet", |b| {
        b.iter_batched(
            || (warm_remb.clone(), Vec::with_capacity(64)),
            |(mut r, mut out)| {
                for i in PACKETS..2 * PACKETS {
                    let at = arrival(t0, i);
                    r.on_packet_received(at, abs(i), 1200, 7);
                    r.poll_remb(at, &mut out).expect("remb");
                }
                black_box(r.estimate_bps())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, controller);
criterion_main!(benches);
