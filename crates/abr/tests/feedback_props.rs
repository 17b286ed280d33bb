//! Property tests: feedback with gaps, duplicates, reordering and wrap-around never panics,
//! keeps the target within its bounds, and the generator reports exactly what arrived.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tincan_abr::{
    ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, RembConfig, RembEstimator,
    SendSideController, SentPacket,
};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter, TwccBuilder};

fn feed_bytes(c: &mut SendSideController, bytes: &[u8], now: Instant) -> usize {
    let Ok(compound) = RtcpCompound::parse(bytes) else {
        return 0;
    };
    let mut n = 0;
    for p in compound.packets() {
        if let Ok(RtcpPacket::TransportCc(fb)) = p {
            c.on_transport_feedback(&fb, now).unwrap();
            n += 1;
        }
    }
    n
}

fn check_bounds(c: &SendSideController) {
    let cfg = c.config();
    let target = c.target_bps();
    assert!((cfg.min_bps..=cfg.max_bps).contains(&target), "{target}");
    assert_eq!(c.pacing_bps(), (target as f64 * 2.5) as u64);
    let s = c.stats();
    assert!((0.0..=1.0).contains(&s.loss_fraction));
    assert!(s.trend_ms.is_finite() && s.threshold_ms.is_finite());
}

/// One feedback as the test builds it: (sequence offset from a base, arrival µs or lost).
type Report = Vec<(u16, Option<i64>)>;

fn reports() -> impl Strategy<Value = Vec<(u16, Report, u64)>> {
    // Each feedback: a base sequence, a list of (step, arrival) and the time it comes in.
    prop::collection::vec(
        (
            any::<u16>(),
            prop::collection::vec(
                (
                    1u16..40,
                    prop::option::weighted(0.8, -2_000_000i64..4_000_000),
                ),
                0..60,
            ),
            0u64..5_000,
        ),
        1..12,
    )
    .prop_map(|feedbacks| {
        feedbacks
            .into_iter()
            .map(|(base, steps, at_ms)| {
                let mut seq = base;
                let mut out = Vec::with_capacity(steps.len());
                for (step, arrival) in steps {
                    out.push((seq, arrival));
                    seq = seq.wrapping_add(step);
                }
                (base, out, at_ms)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary (well-formed) feedback about packets that were, or were never, sent: gaps,
    /// duplicates, reordering, wrap-around and wild arrival times.
    #[test]
    fn arbitrary_feedback_never_panics(
        first_seq in any::<u16>(),
        sent in prop::collection::vec((1u16..4, 50usize..1500, 0u64..30, any::<bool>()), 1..400),
        feedbacks in reports(),
        near in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        let mut seq = first_seq;
        let mut t = t0;
        let mut seqs = Vec::with_capacity(sent.len());
        for (step, size, gap_ms, probe) in sent {
            t += Duration::from_millis(gap_ms);
            c.on_packet_sent(SentPacket {
                transport_seq: seq,
                size_bytes: size,
                send_time: t,
                probe_cluster: probe.then_some(u32::from(seq % 3)),
                class: PacketClass::Video,
            });
            seqs.push(seq);
            seq = seq.wrapping_add(step);
        }
        let _ = c.poll_probe();
        let mut builder = TwccBuilder::new();
        let mut out = Vec::new();
        for (i, (_, mut packets, at_ms)) in feedbacks.into_iter().enumerate() {
            if near && !packets.is_empty() {
                // Rebase onto sequence numbers that were sent, so reports match the history.
                let base = seqs[i % seqs.len()];
                let first = packets[0].0;
                for p in &mut packets {
                    p.0 = base.wrapping_add(p.0.wrapping_sub(first));
                }
            }
            let mut w = RtcpWriter::new(&mut out);
            if w.transport_cc(&mut builder, 1, 2, i as u8, &packets).is_err() {
                continue;
            }
            let now = t0 + Duration::from_millis(at_ms);
            feed_bytes(&mut c, &out, now);
            // The same feedback again: all duplicates.
            feed_bytes(&mut c, &out, now);
            c.handle_timeout(now);
            check_bounds(&c);
        }
    }

    /// Random bytes as RTCP: whatever parses goes to the controller.
    #[test]
    fn random_rtcp_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        for i in 0..50u16 {
            c.on_packet_sent(SentPacket {
                transport_seq: i,
                size_bytes: 1000,
                send_time: t0,
                probe_cluster: None,
                class: PacketClass::Audio,
            });
        }
        feed_bytes(&mut c, &bytes, t0 + Duration::from_millis(100));
        check_bounds(&c);
    }

    /// The generator reports every packet it got (within its window), with its arrival time
    /// to the wire's 250 µs, and never reports one it did not get.
    #[test]
    fn generator_reports_exactly_what_arrived(
        first in any::<u16>(),
        arrivals in prop::collection::vec(
            (-20i32..40, prop_oneof![20 => 0u64..30_000, 1 => 8_000_000u64..20_000_000], any::<bool>()),
            1..500,
        ),
        interval_ms in 10u64..200,
    ) {
        let t0 = Instant::now();
        let config = FeedbackConfig {
            interval: Duration::from_millis(interval_ms),
            ..FeedbackConfig::default()
        };
        let mut g = FeedbackGenerator::new(config).unwrap();
        let mut truth: BTreeMap<u16, i64> = BTreeMap::new();
        let mut reported: BTreeMap<u16, i64> = BTreeMap::new();
        let mut seq = first;
        let mut t_us = 0u64;
        let mut out = Vec::new();
        let mut drain = |g: &mut FeedbackGenerator, now: Instant, reported: &mut BTreeMap<u16, i64>| {
            loop {
                out.clear();
                if !g.poll_feedback(now, &mut out).unwrap() {
                    break;
                }
                let compound = RtcpCompound::parse(&out).unwrap();
                for p in compound.packets() {
                    let Ok(RtcpPacket::TransportCc(fb)) = p else {
                        panic!("not transport-cc");
                    };
                    for (s, a) in fb.packets() {
                        if let Some(a) = a {
                            reported.insert(s, a);
                        }
                    }
                }
            }
        };
        for (step, gap_us, duplicate) in arrivals {
            // Steps back and forth (reordering), gaps, wrap-around.
            seq = seq.wrapping_add(step as u16);
            t_us += gap_us;
            let at = t0 + Duration::from_micros(t_us);
            g.on_packet_received(seq, at);
            truth.entry(seq).or_insert(t_us as i64);
            if duplicate {
                g.on_packet_received(seq, at + Duration::from_millis(1));
            }
            if let Some(due) = g.poll_timeout()
                && due <= at
            {
                drain(&mut g, at, &mut reported);
            }
        }
        drain(&mut g, t0 + Duration::from_micros(t_us) + Duration::from_secs(2), &mut reported);
        for s in reported.keys() {
            prop_assert!(truth.contains_key(s), "reported {} that never arrived", s);
        }
        // Every arrival is reported (the run is far shorter than the window), and arrival
        // differences are kept to within the rounding of the deltas.
        for s in truth.keys() {
            prop_assert!(reported.contains_key(s), "{} never reported", s);
        }
        let first_truth = truth.values().min().copied().unwrap();
        let first_reported = reported.values().min().copied().unwrap();
        for (s, a) in &reported {
            let relative = a - first_reported;
            let truth_relative = truth[s] - first_truth;
            // Each time is rounded to 250 µs on the wire.
            prop_assert!((relative - truth_relative).abs() <= 250, "{} {} {}", s, relative, truth_relative);
        }
    }

    /// End to end on a perfect path: no loss and no unknown reports, however the sequence
    /// numbers wrap.
    #[test]
    fn lossless_round_trip(first in any::<u16>(), n in 1usize..600, gap_us in 100u64..20_000) {
        let t0 = Instant::now();
        let mut c = SendSideController::new(ControllerConfig::default(), t0).unwrap();
        let mut g = FeedbackGenerator::new(FeedbackConfig::default()).unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            let now = t0 + Duration::from_micros(gap_us * i as u64);
            let seq = first.wrapping_add(i as u16);
            c.on_packet_sent(SentPacket {
                transport_seq: seq,
                size_bytes: 800,
                send_time: now,
                probe_cluster: None,
                class: PacketClass::Video,
            });
            let arrival = now + Duration::from_millis(40);
            g.on_packet_received(seq, arrival);
            out.clear();
            if g.poll_feedback(arrival, &mut out).unwrap() {
                feed_bytes(&mut c, &out, arrival + Duration::from_millis(40));
            }
        }
        let s = c.stats();
        prop_assert_eq!(s.unknown_reports, 0);
        prop_assert_eq!(s.loss_fraction, 0.0);
        check_bounds(&c);
    }

    /// The REMB estimator with arbitrary abs-send-times and arrivals.
    #[test]
    fn remb_never_panics(
        packets in prop::collection::vec((any::<u32>(), 0u64..100_000, 0usize..1500, 0u32..40), 1..300),
    ) {
        let t0 = Instant::now();
        let mut r = RembEstimator::new(RembConfig::default()).unwrap();
        let mut t = t0;
        let mut out = Vec::new();
        for (abs, gap_us, size, ssrc) in packets {
            t += Duration::from_micros(gap_us);
            r.on_packet_received(t, abs, size, ssrc);
            r.poll_remb(t, &mut out).unwrap();
        }
        let e = r.estimate_bps();
        prop_assert!((30_000..=2_500_000).contains(&e));
        if !out.is_empty() {
            prop_assert!(RtcpCompound::parse(&out).is_ok());
        }
    }
}
