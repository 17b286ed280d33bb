//! Fuzzes congestion control: the input is a script of operations on a send-side
//! controller, a feedback generator and a REMB estimator: packets sent (any sequence number,
//! size and time step), arbitrary bytes parsed as RTCP and handed over (transport-cc and
//! REMB), arrivals at the generator (any order, duplicates, wrap-around) whose feedback goes
//! to the controller, RTTs, timers and probes. Nothing may panic, and the target stays
//! within its bounds.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tincan_abr::{
    ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, RembConfig, RembEstimator,
    SendSideController, SentPacket,
};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

fn deliver(controller: &mut SendSideController, bytes: &[u8], now: Instant) {
    let Ok(compound) = RtcpCompound::parse(bytes) else {
        return;
    };
    for packet in compound.packets().flatten() {
        match packet {
            RtcpPacket::TransportCc(fb) => {
                let _ = controller.on_transport_feedback(&fb, now);
            }
            RtcpPacket::Remb(remb) => controller.on_remb(remb.bitrate_bps, now),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let config = ControllerConfig::default();
    let Ok(mut controller) = SendSideController::new(config, t0) else {
        return;
    };
    let Ok(mut generator) = FeedbackGenerator::new(FeedbackConfig::default()) else {
        return;
    };
    let Ok(mut remb) = RembEstimator::new(RembConfig::default()) else {
        return;
    };
    let mut now = t0;
    let mut out = Vec::new();
    let mut at = 0;
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    while at < data.len() {
        let op = data[at];
        let (a, b, c, d) = (byte(at + 1), byte(at + 2), byte(at + 3), byte(at + 4));
        let seq = u16::from_be_bytes([a, b]);
        at += 5;
        match op % 8 {
            0 => {
                now += Duration::from_micros(u64::from(c) * 200);
                controller.on_packet_sent(SentPacket {
                    transport_seq: seq,
                    size_bytes: usize::from(d) * 8,
                    send_time: now,
                    probe_cluster: (d & 1 == 1).then_some(u32::from(c % 4)),
                    class: PacketClass::Video,
                });
            }
            1 => {
                // Raw RTCP bytes of length `a`.
                let len = usize::from(a);
                let end = (at + len).min(data.len());
                let start = at.min(end);
                deliver(&mut controller, &data[start..end], now);
                at = end;
            }
            2 => {
                now += Duration::from_micros(u64::from(c) * 200);
                generator.on_packet_received(seq, now);
            }
            3 => {
                out.clear();
                if let Ok(true) = generator.poll_feedback(now, &mut out) {
                    deliver(&mut controller, &out, now);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(c) * 10);
                controller.handle_timeout(now);
                let _ = controller.poll_timeout();
                let _ = controller.poll_probe();
            }
            5 => controller.on_rtt(Duration::from_micros(u64::from(seq) * 100), now),
            6 => {
                now += Duration::from_micros(u64::from(c) * 100);
                let abs = u32::from_be_bytes([0, a, b, d]);
                remb.on_packet_received(now, abs, usize::from(c) * 8, u32::from(d));
                out.clear();
                if let Ok(true) = remb.poll_remb(now, &mut out) {
                    deliver(&mut controller, &out, now);
                }
            }
            _ => {
                // Feedback about what was just sent, through the generator, at once.
                generator.on_packet_received(seq, now);
                now += Duration::from_millis(60);
                out.clear();
                if let Ok(true) = generator.poll_feedback(now, &mut out) {
                    deliver(&mut controller, &out, now);
                }
            }
        }
        let target = controller.target_bps();
        assert!((config.min_bps..=config.max_bps).contains(&target));
        let _ = controller.stats();
    }
});
