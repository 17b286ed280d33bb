//! Criterion benches of the network emulator: one element is one packet sent and delivered.
//!
//! `cargo bench --bench netsim` runs them; criterion reports packets per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::netsim::{CapacityStep, GilbertElliott, Link, LinkConfig, Outage, Poll, Profile};

const PACKETS: u32 = 1000;

/// Every impairment on at once, at rates that exercise each path often.
fn everything() -> LinkConfig {
    LinkConfig {
        loss: 0.02,
        gilbert_elliott: Some(GilbertElliott {
            p: 0.01,
            r: 0.3,
            loss_good: 0.001,
            loss_bad: 0.5,
        }),
        outages: vec![Outage {
            start_ms: 500.0,
            duration_ms: 50.0,
        }],
        capacity_bps: Some(20e6),
        capacity_trace: vec![
            CapacityStep {
                // Just under the 9.6 Mbit/s offered: the queue fills and drops now and then.
                at_ms: 1000.0,
                capacity_bps: 9e6,
            },
            CapacityStep {
                at_ms: 1_000_000.0,
                capacity_bps: 20e6,
            },
        ],
        queue_limit_bytes: Some(200_000),
        queue_limit_ms: Some(100.0),
        delay_ms: 30.0,
        delay_trace: Vec::new(),
        jitter_ms: 5.0,
        spike_probability: 0.01,
        spike_scale_ms: 20.0,
        spike_shape: 1.5,
        spike_max_ms: 500.0,
        allow_reorder: true,
        reorder_probability: 0.01,
        reorder_delay_ms: 10.0,
        duplicate_probability: 0.01,
        max_in_flight_packets: 100_000,
    }
}

/// Sends `PACKETS` packets of 1200 bytes, 1 ms apart (9.6 Mbit/s offered), polling after
/// each send, then drains the link. The clock carries on across iterations.
fn run(link: &mut Link<u32>, now: &mut Instant) -> u64 {
    let mut delivered = 0u64;
    for i in 0..PACKETS {
        link.send(i, 1200, *now);
        while let Poll::Deliver(d) = link.poll(*now) {
            delivered += u64::from(black_box(d.packet) & 1);
        }
        *now += Duration::from_millis(1);
    }
    loop {
        match link.poll(*now) {
            Poll::Deliver(d) => delivered += u64::from(black_box(d.packet) & 1),
            Poll::Timeout(at) => *now = at,
            Poll::Idle => break,
        }
    }
    delivered
}

fn netsim(c: &mut Criterion) {
    let mut group = c.benchmark_group("netsim_send_poll");
    group.throughput(Throughput::Elements(u64::from(PACKETS)));
    let configs = [
        ("all_impairments", everything()),
        ("perfect", Profile::named("perfect").expect("profile").link),
        ("wifi", Profile::named("wifi").expect("profile").link),
    ];
    for (name, config) in configs {
        let mut link = Link::new(config, 1).expect("valid config");
        let mut now = Instant::now();
        group.bench_function(name, |b| b.iter(|| run(&mut link, &mut now)));
    }
    group.finish();
}

criterion_group!(benches, netsim);
criterion_main!(benches);
