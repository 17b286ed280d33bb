//! Statistical checks: over 10^6 packets the measured behaviour matches the configuration.
//!
//! Each test prints its measured figures (`cargo test -p tincan-netsim -- --nocapture`).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tincan_netsim::{
    CapacityStep, DelayStep, Delivery, GilbertElliott, Link, LinkConfig, Outage, Poll, Profile,
};

const N: u64 = 1_000_000;

/// Sends `n` packets of `size` bytes every `interval`, polling as a real driver would, and
/// hands every delivery to `seen`. The first send is at `t0`. Returns `t0`.
fn drive(
    link: &mut Link<u64>,
    t0: Instant,
    n: u64,
    interval: Duration,
    size: usize,
    mut seen: impl FnMut(&Delivery<u64>),
) -> Instant {
    let mut drain = |link: &mut Link<u64>, now: Instant| {
        while let Poll::Deliver(d) = link.poll(now) {
            seen(&d);
        }
    };
    for i in 0..n {
        let now = t0 + interval * i as u32;
        link.send(i, size, now);
        drain(link, now);
    }
    loop {
        match link.poll(t0) {
            Poll::Idle => break,
            Poll::Timeout(at) => drain(link, at),
            Poll::Deliver(_) => unreachable!("drained above"),
        }
    }
    t0
}

fn link(config: LinkConfig, seed: u64) -> Link<u64> {
    Link::new(config, seed).unwrap()
}

#[test]
fn bernoulli_loss_rate() {
    for loss in [0.01, 0.2, 0.8] {
        let mut l = link(
            LinkConfig {
                loss,
                ..LinkConfig::default()
            },
            1,
        );
        let mut delivered = 0u64;
        drive(
            &mut l,
            Instant::now(),
            N,
            Duration::from_millis(1),
            100,
            |_| delivered += 1,
        );
        let measured = l.counters().dropped_loss as f64 / N as f64;
        println!("bernoulli: configured {loss}, measured {measured:.5}");
        assert!(
            (measured - loss).abs() <= 0.003,
            "loss {measured} vs {loss}"
        );
        assert_eq!(delivered + l.counters().dropped_loss, N);
    }
}

#[test]
fn gilbert_elliott_loss_and_burst_length() {
    let (p, r) = (0.05, 0.4);
    let mut l = link(
        LinkConfig {
            gilbert_elliott: Some(GilbertElliott {
                p,
                r,
                loss_good: 0.0,
                loss_bad: 1.0,
            }),
            ..LinkConfig::default()
        },
        2,
    );
    // No delay: deliveries come in order, so gaps in the sequence are the loss bursts.
    let mut next = 0u64;
    let (mut bursts, mut lost) = (0u64, 0u64);
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |d| {
            if d.sequence > next {
                bursts += 1;
                lost += d.sequence - next;
            }
            next = d.sequence + 1;
        },
    );
    if next < N {
        bursts += 1;
        lost += N - next;
    }
    let rate = lost as f64 / N as f64;
    let burst = lost as f64 / bursts as f64;
    let (want_rate, want_burst) = (p / (p + r), 1.0 / r);
    println!(
        "gilbert-elliott: loss {rate:.5} (analytic {want_rate:.5}), mean burst {burst:.4} (analytic {want_burst})"
    );
    assert_eq!(lost, l.counters().dropped_loss);
    assert!((rate / want_rate - 1.0).abs() < 0.03, "loss {rate}");
    assert!((burst / want_burst - 1.0).abs() < 0.03, "burst {burst}");
}

#[test]
fn bursty_30_profile_matches_its_description() {
    let mut l = link(Profile::named("bursty-30").unwrap().link, 3);
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |_| {},
    );
    let rate = l.counters().dropped_loss as f64 / N as f64;
    println!("bursty-30: loss {rate:.5}");
    assert!((rate - 0.30).abs() < 0.01, "loss {rate}");
}

/// p-quantile of sorted data (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn normal_jitter_percentiles() {
    let (delay, sigma) = (50.0, 10.0);
    let mut l = link(
        LinkConfig {
            delay_ms: delay,
            jitter_ms: sigma,
            allow_reorder: true,
            ..LinkConfig::default()
        },
        4,
    );
    let mut delays = Vec::with_capacity(N as usize);
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |d| delays.push(d.delay().as_secs_f64() * 1e3),
    );
    delays.sort_by(f64::total_cmp);
    let (p50, p95) = (quantile(&delays, 0.5), quantile(&delays, 0.95));
    let want95 = delay + 1.644_853_6 * sigma;
    println!("jitter: p50 {p50:.3} ms (analytic {delay}), p95 {p95:.3} ms (analytic {want95:.3})");
    assert!((p50 - delay).abs() < 0.1, "p50 {p50}");
    assert!((p95 - want95).abs() < 0.1, "p95 {p95}");
    assert!(
        l.counters().reordered > 0,
        "jitter 10 ms on 1 ms spacing must reorder"
    );
}

#[test]
fn saturated_bottleneck_throughput_and_queue_limit() {
    let capacity = 1e6;
    let mut l = link(
        LinkConfig {
            capacity_bps: Some(capacity),
            queue_limit_ms: Some(100.0),
            ..LinkConfig::default()
        },
        5,
    );
    // 1000-byte packets take 8 ms; one every 4 ms offers twice the capacity.
    let (mut bytes, mut last, mut worst) = (0u64, None, Duration::ZERO);
    let t0 = drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(4),
        1000,
        |d| {
            bytes += d.size_bytes as u64;
            last = Some(d.delivered_at);
            worst = worst.max(d.delay());
        },
    );
    let elapsed = last.unwrap().duration_since(t0).as_secs_f64();
    let throughput = bytes as f64 * 8.0 / elapsed;
    let c = l.counters();
    println!(
        "bottleneck: throughput {throughput:.0} bit/s (capacity {capacity}), dropped_queue {}, max queue delay {:?}, worst delay {worst:?}",
        c.dropped_queue, c.max_queue_delay
    );
    assert!((throughput / capacity - 1.0).abs() < 0.01);
    assert!(c.dropped_queue > N / 3, "an over-driven queue must drop");
    assert!(c.max_queue_delay <= Duration::from_millis(100));
    // Waiting at most 100 ms, then 8 ms of serialisation.
    assert!(worst <= Duration::from_millis(108));
}

#[test]
fn byte_limited_queue() {
    let mut l = link(
        LinkConfig {
            capacity_bps: Some(1e6),
            queue_limit_bytes: Some(10_000),
            ..LinkConfig::default()
        },
        6,
    );
    let mut worst = Duration::ZERO;
    drive(
        &mut l,
        Instant::now(),
        100_000,
        Duration::from_millis(4),
        1000,
        |d| worst = worst.max(d.delay()),
    );
    println!(
        "byte limit: worst delay {worst:?}, dropped_queue {}",
        l.counters().dropped_queue
    );
    // At most 10 packets of 8 ms each in the bottleneck, the new one included.
    assert!(worst <= Duration::from_millis(80));
    assert!(l.counters().dropped_queue > 0);
}

#[test]
fn capacity_trace_steps_take_effect_at_their_times() {
    let mut l = link(
        LinkConfig {
            capacity_bps: Some(1e6),
            capacity_trace: vec![
                CapacityStep {
                    at_ms: 10_000.0,
                    capacity_bps: 2e6,
                },
                CapacityStep {
                    at_ms: 20_000.0,
                    capacity_bps: 500e3,
                },
            ],
            queue_limit_ms: Some(50.0),
            ..LinkConfig::default()
        },
        7,
    );
    // Offer 4 Mbit/s for 30 s so every phase is saturated.
    let t0 = Instant::now();
    let mut bytes = [0u64; 3];
    drive(&mut l, t0, 15_000, Duration::from_millis(2), 1000, |d| {
        let ms = d.delivered_at.duration_since(t0).as_secs_f64() * 1e3;
        // Skip 200 ms after each step for the queue to settle at the new rate.
        let phase = match ms {
            x if (200.0..10_000.0).contains(&x) => 0,
            x if (10_200.0..20_000.0).contains(&x) => 1,
            x if (20_200.0..30_000.0).contains(&x) => 2,
            _ => return,
        };
        bytes[phase] += d.size_bytes as u64;
    });
    let rates: Vec<f64> = bytes.iter().map(|&b| b as f64 * 8.0 / 9.8).collect();
    println!("capacity trace: measured {rates:?} bit/s, configured [1e6, 2e6, 5e5]");
    for (rate, want) in rates.iter().zip([1e6, 2e6, 500e3]) {
        assert!((rate / want - 1.0).abs() < 0.01, "{rate} vs {want}");
    }
}

#[test]
fn outages_drop_everything_inside_the_window() {
    let mut l = link(
        LinkConfig {
            delay_ms: 20.0,
            outages: vec![
                Outage {
                    start_ms: 1000.0,
                    duration_ms: 1000.0,
                },
                Outage {
                    start_ms: 3000.0,
                    duration_ms: 0.5,
                },
            ],
            ..LinkConfig::default()
        },
        8,
    );
    let mut delivered = Vec::new();
    drive(
        &mut l,
        Instant::now(),
        5000,
        Duration::from_millis(1),
        100,
        |d| delivered.push(d.sequence),
    );
    // Packet i is sent at i ms: 1000..2000 and 3000 fall in the windows.
    let expected: Vec<u64> = (0..5000)
        .filter(|&i| !(1000..2000).contains(&i) && i != 3000)
        .collect();
    assert_eq!(delivered, expected);
    assert_eq!(l.counters().dropped_outage, 1001);
}

#[test]
fn duplication_rate() {
    let p = 0.1;
    let mut l = link(
        LinkConfig {
            delay_ms: 10.0,
            jitter_ms: 1.0,
            duplicate_probability: p,
            ..LinkConfig::default()
        },
        9,
    );
    let (mut delivered, mut copies) = (0u64, 0u64);
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |d| {
            delivered += 1;
            copies += u64::from(d.duplicate);
        },
    );
    let c = l.counters();
    let rate = c.duplicated as f64 / N as f64;
    println!("duplication: configured {p}, measured {rate:.5}");
    assert!((rate - p).abs() <= 0.003);
    assert_eq!(copies, c.duplicated);
    assert_eq!(delivered, N + c.duplicated);
    assert_eq!(c.reordered, 0, "in-order link");
}

#[test]
fn in_order_links_never_reorder() {
    let mut l = link(
        LinkConfig {
            delay_ms: 40.0,
            jitter_ms: 10.0,
            spike_probability: 0.02,
            spike_scale_ms: 30.0,
            ..LinkConfig::default()
        },
        10,
    );
    let mut last = None;
    drive(
        &mut l,
        Instant::now(),
        100_000,
        Duration::from_millis(1),
        100,
        |d| {
            if let Some((seq, at)) = last {
                assert!(d.sequence > seq && d.delivered_at >= at);
            }
            last = Some((d.sequence, d.delivered_at));
        },
    );
    assert_eq!(l.counters().reordered, 0);
    assert!(l.counters().spiked > 0);
}

#[test]
fn reorder_knob_holds_packets_back() {
    let p = 0.05;
    let mut l = link(
        LinkConfig {
            delay_ms: 10.0,
            allow_reorder: true,
            reorder_probability: p,
            reorder_delay_ms: 5.0,
            ..LinkConfig::default()
        },
        11,
    );
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |_| {},
    );
    let c = l.counters();
    let held = c.held_back as f64 / N as f64;
    println!(
        "reorder: held back {held:.5} (configured {p}), reordered deliveries {}",
        c.reordered
    );
    assert!((held - p).abs() <= 0.003);
    // Without jitter, exactly the held-back packets arrive after a later one (5 ms hold on
    // 1 ms spacing), unless the next packets are held back too; so at most `held_back`.
    assert!(c.reordered > 0 && c.reordered <= c.held_back);
}

#[test]
fn heavy_tailed_spikes() {
    let mut l = link(
        LinkConfig {
            delay_ms: 10.0,
            allow_reorder: true,
            spike_probability: 0.01,
            spike_scale_ms: 20.0,
            spike_shape: 1.5,
            spike_max_ms: 500.0,
            ..LinkConfig::default()
        },
        12,
    );
    let mut delays = Vec::new();
    drive(
        &mut l,
        Instant::now(),
        N,
        Duration::from_millis(1),
        100,
        |d| delays.push(d.delay().as_secs_f64() * 1e3),
    );
    let spikes: Vec<f64> = delays
        .iter()
        .filter(|&&d| d > 10.0)
        .map(|d| d - 10.0)
        .collect();
    let rate = spikes.len() as f64 / N as f64;
    // Pareto(20, 1.5): P(X > 80) = (20/80)^1.5 = 0.125.
    let tail = spikes.iter().filter(|&&x| x > 80.0).count() as f64 / spikes.len() as f64;
    println!(
        "spikes: rate {rate:.5} (configured 0.01), P(spike > 80 ms) {tail:.4} (analytic 0.125)"
    );
    assert!((rate - 0.01).abs() < 0.001);
    assert!(
        spikes
            .iter()
            .all(|&x| (20.0 - 1e-6..=500.0 + 1e-6).contains(&x))
    );
    assert!((tail - 0.125).abs() < 0.01);
}

/// Everything a delivery says, for bit-for-bit comparisons.
fn trace(profile: &str, seed: u64, n: u64) -> Vec<(u64, u64, bool, u128)> {
    let mut l = link(Profile::named(profile).unwrap().link, seed);
    let t0 = Instant::now();
    let mut out = Vec::new();
    drive(&mut l, t0, n, Duration::from_micros(700), 1200, |d| {
        out.push((
            d.packet,
            d.sequence,
            d.duplicate,
            d.delivered_at.duration_since(t0).as_nanos(),
        ))
    });
    out
}

#[test]
fn same_seed_same_output() {
    for profile in Profile::NAMES {
        let a = trace(profile, 99, 20_000);
        assert_eq!(a, trace(profile, 99, 20_000), "{profile}");
        if *profile != "perfect" {
            assert_ne!(a, trace(profile, 100, 20_000), "{profile}");
        }
    }
}

/// FNV-1a over a delivery trace: a fingerprint to pin the output across platforms.
fn fingerprint(trace: &[(u64, u64, bool, u128)]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &(p, s, d, t) in trace {
        for b in p
            .to_le_bytes()
            .into_iter()
            .chain(s.to_le_bytes())
            .chain([u8::from(d)])
            .chain(t.to_le_bytes())
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[test]
fn output_is_pinned_across_platforms() {
    // Changing these numbers means every recorded lab result changes: do it on purpose.
    // Last changed when normal jitter was truncated at 4 sigma (a handful of the 50 000
    // draws in `wifi` and `4g`; `congested`, at 2 ms, had none that far out).
    let got: Vec<u64> = ["wifi", "4g", "congested"]
        .iter()
        .map(|p| fingerprint(&trace(p, 2026, 50_000)))
        .collect();
    println!("fingerprints {got:x?}");
    assert_eq!(
        got,
        [
            0x8e38_a1f9_ea6f_aaba,
            0xc88c_44bb_95b3_73b2,
            0xbb2a_98a6_fe4f_e5be
        ]
    );
}

fn arb_config() -> impl Strategy<Value = LinkConfig> {
    (
        (
            0.0..=1.0f64,
            proptest::option::of((0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64)),
        ),
        (
            proptest::option::of(1_000.0..1e8f64),
            proptest::option::of(1u64..100_000),
            proptest::option::of(0.0..500.0f64),
        ),
        (
            0.0..500.0f64,
            0.0..100.0f64,
            0.0..=1.0f64,
            0.0..100.0f64,
            0.1..5.0f64,
        ),
        (
            any::<bool>(),
            0.0..=1.0f64,
            0.0..100.0f64,
            0.0..=1.0f64,
            1usize..2000,
        ),
        proptest::collection::vec((0.0..2000.0f64, 0.0..500.0f64), 0..3),
        proptest::collection::vec((0.0..2000.0f64, 1_000.0..1e7f64), 0..3),
        proptest::collection::vec((0.0..2000.0f64, 0.0..500.0f64), 0..3),
    )
        .prop_map(|(loss, bottleneck, delay, order, outages, trace, steps)| {
            let mut delay_trace: Vec<DelayStep> = steps
                .into_iter()
                .map(|(at_ms, delay_ms)| DelayStep { at_ms, delay_ms })
                .collect();
            delay_trace.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
            let mut trace: Vec<CapacityStep> = trace
                .into_iter()
                .map(|(at_ms, capacity_bps)| CapacityStep {
                    at_ms,
                    capacity_bps,
                })
                .collect();
            trace.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
            LinkConfig {
                loss: loss.0,
                gilbert_elliott: loss.1.map(|(p, r, loss_good, loss_bad)| GilbertElliott {
                    p,
                    r,
                    loss_good,
                    loss_bad,
                }),
                capacity_bps: bottleneck.0,
                queue_limit_bytes: bottleneck.1,
                queue_limit_ms: bottleneck.2,
                capacity_trace: trace,
                outages: outages
                    .into_iter()
                    .map(|(start_ms, duration_ms)| Outage {
                        start_ms,
                        duration_ms,
                    })
                    .collect(),
                delay_ms: delay.0,
                delay_trace,
                jitter_ms: delay.1,
                spike_probability: delay.2,
                spike_scale_ms: delay.3,
                spike_shape: delay.4,
                spike_max_ms: 2000.0,
                allow_reorder: order.0,
                reorder_probability: if order.0 { order.1 } else { 0.0 },
                reorder_delay_ms: order.2,
                duplicate_probability: order.3,
                max_in_flight_packets: order.4,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conservation_and_no_panic(
        config in arb_config(),
        seed in any::<u64>(),
        sends in proptest::collection::vec((0u64..5_000_000, 0usize..3000), 1..500),
    ) {
        let mut l = link(config, seed);
        let t0 = Instant::now();
        let mut now = t0;
        let mut delivered = 0u64;
        for (step_ns, size) in sends {
            now += Duration::from_nanos(step_ns);
            l.send(0, size, now);
            while let Poll::Deliver(d) = l.poll(now) {
                prop_assert!(d.delivered_at <= now && d.delivered_at >= d.sent_at);
                delivered += 1;
            }
        }
        let c = *l.counters();
        prop_assert_eq!(c.sent + c.duplicated, c.delivered + c.dropped() + l.in_flight() as u64);
        loop {
            match l.poll(now) {
                Poll::Idle => break,
                Poll::Timeout(at) => { prop_assert!(at > now); now = at; }
                Poll::Deliver(_) => delivered += 1,
            }
        }
        let c = *l.counters();
        prop_assert_eq!(delivered, c.delivered);
        prop_assert_eq!(c.sent + c.duplicated, c.delivered + c.dropped());
    }
}

#[test]
fn named_profiles_lose_what_they_advertise() {
    // (profile, analytic loss rate): Bernoulli `loss`, or the Gilbert-Elliott stationary
    // rate pi_bad * loss_bad + pi_good * loss_good.
    let wifi_bad = 0.005 / (0.005 + 0.3);
    let expected = [
        ("perfect", 0.0),
        ("good", 0.001),
        ("wifi", wifi_bad * 0.5 + (1.0 - wifi_bad) * 0.002),
        ("4g", 0.01),
        ("lossy-20", 0.2),
        ("bursty-30", 0.3),
        ("congested", 0.001),
        ("satellite", 0.005),
        ("extreme-80", 0.8),
    ];
    assert_eq!(expected.len(), Profile::NAMES.len());
    for (name, want) in expected {
        let mut l = link(Profile::named(name).unwrap().link, 13);
        // 200-byte packets every 20 ms (80 kbit/s) stay under every profile's capacity.
        let mut delays = Vec::with_capacity(N as usize);
        drive(
            &mut l,
            Instant::now(),
            N,
            Duration::from_millis(20),
            200,
            |d| {
                if !d.duplicate {
                    delays.push(d.delay().as_secs_f64() * 1e3)
                }
            },
        );
        delays.sort_by(f64::total_cmp);
        let c = l.counters();
        let loss = c.dropped_loss as f64 / N as f64;
        println!(
            "{name}: loss {loss:.5} (analytic {want:.5}), delay p50 {:.2} ms, p95 {:.2} ms, p99.9 {:.2} ms, reordered {}, duplicated {}",
            quantile(&delays, 0.5),
            quantile(&delays, 0.95),
            quantile(&delays, 0.999),
            c.reordered,
            c.duplicated
        );
        assert!((loss - want).abs() < 0.005, "{name}: loss {loss} vs {want}");
        assert_eq!(c.dropped_queue + c.dropped_overflow + c.dropped_outage, 0);
    }
}
