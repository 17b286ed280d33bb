//! A deterministic call on the network emulator for the congestion-control tests: flows of
//! frames sized to their controller's target, paced, over one shared bottleneck
//! (`tincan_netsim::Link`), transport-cc feedback back over an uncongested link.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tincan_abr::{
    ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, ProbeCluster,
    SendSideController, SentPacket,
};
use tincan_netsim::{CapacityStep, Link, LinkConfig, Poll};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

/// Simulation step.
pub const STEP: Duration = Duration::from_micros(250);
/// Media packet payload size.
pub const PACKET_BYTES: usize = 1200;
/// Frames per second of the synthetic encoder.
pub const FPS: u64 = 30;
/// The encoder skips frames once this much media waits in the pacer.
pub const MAX_PACER_QUEUE: Duration = Duration::from_millis(500);
/// One-way propagation delay of the RMCAT cases.
pub const ONE_WAY_MS: f64 = 50.0;
/// Bottleneck queue of the RMCAT cases.
pub const QUEUE_MS: f64 = 300.0;
/// The controller's ceiling: above every capacity of the cases (as in `tincan lab abr`:
/// 3 Mbps of video and audio), so the rate is found by the controller, not by its cap.
pub const MAX_BPS: u64 = 3_050_000;

/// A packet on the forward link.
#[derive(Debug, Clone)]
pub struct Packet {
    flow: usize,
    seq: u16,
    media: bool,
}

/// What one flow is asked to send.
#[derive(Debug, Clone, Copy)]
pub struct FlowSpec {
    /// When it starts.
    pub start: Duration,
    /// The most media the application has, bits per second (`None`: whatever the target).
    pub app_limit_bps: Option<u64>,
}

struct Flow {
    spec: FlowSpec,
    controller: SendSideController,
    receiver: FeedbackGenerator,
    back: Link<Vec<u8>>,
    queue: VecDeque<usize>,
    queue_bytes: usize,
    probe: Option<(ProbeCluster, u32, u32)>,
    next_seq: u16,
    next_frame: Instant,
    next_send: Instant,
    started: bool,
    rtcp: Vec<u8>,
    skipped_frames: u64,
}

/// One sample per flow per 100 ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Target at the end of the interval.
    pub target_bps: u64,
    /// Media bits sent in the interval, per second.
    pub sent_bps: f64,
    /// Media bits delivered in the interval, per second.
    pub delivered_bps: f64,
    /// Whether the controller saw the flow as application limited at the end.
    pub in_alr: bool,
}

/// Results of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Per 100 ms, per flow.
    pub samples: Vec<Vec<Sample>>,
    /// Queuing delay of every delivered packet (delay minus propagation and serialisation).
    pub queue_delays_ms: Vec<f64>,
    /// Forward link packets sent and dropped.
    pub sent: u64,
    /// See `sent`.
    pub dropped: u64,
    /// Media bits delivered per flow over the whole run.
    pub delivered_bits: Vec<f64>,
    /// The capacity trace's integral over the run, bits.
    pub capacity_bits: f64,
}

impl Report {
    /// Mean media delivery over capacity.
    pub fn utilisation(&self) -> f64 {
        self.delivered_bits.iter().sum::<f64>() / self.capacity_bits
    }

    /// The `q` quantile of queuing delay, ms.
    pub fn queue_delay_quantile(&self, q: f64) -> f64 {
        let mut d = self.queue_delays_ms.clone();
        d.sort_by(f64::total_cmp);
        d.get(((d.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// Share of forward packets dropped.
    pub fn loss(&self) -> f64 {
        self.dropped as f64 / self.sent.max(1) as f64
    }

    /// Jain's fairness index of the flows' delivered rates between `from` and `to`.
    pub fn jain(&self, from: Duration, to: Duration) -> f64 {
        let (a, b) = (
            (from.as_millis() / 100) as usize,
            (to.as_millis() / 100) as usize,
        );
        let rates: Vec<f64> = (0..self.samples[0].len())
            .map(|f| {
                self.samples[a..b]
                    .iter()
                    .map(|s| s[f].delivered_bps)
                    .sum::<f64>()
            })
            .collect();
        let sum: f64 = rates.iter().sum();
        let sq: f64 = rates.iter().map(|r| r * r).sum();
        sum * sum / (rates.len() as f64 * sq)
    }

    /// Mean delivered rate of flow `f` between two times.
    pub fn mean_delivered(&self, f: usize, from: Duration, to: Duration) -> f64 {
        let (a, b) = (
            (from.as_millis() / 100) as usize,
            (to.as_millis() / 100) as usize,
        );
        self.samples[a..b]
            .iter()
            .map(|s| s[f].delivered_bps)
            .sum::<f64>()
            / (b - a) as f64
    }
}

/// Capacity at `t` under a trace of (seconds, bps).
pub fn capacity_at(trace: &[(f64, f64)], t: f64) -> f64 {
    trace
        .iter()
        .rev()
        .find(|(at, _)| *at <= t)
        .map_or(trace[0].1, |s| s.1)
}

/// Runs `flows` over a bottleneck following `trace` for `duration`.
pub fn run(trace: &[(f64, f64)], flows: &[FlowSpec], duration: Duration, seed: u64) -> Report {
    let t0 = Instant::now();
    let forward_config = LinkConfig {
        capacity_bps: Some(trace[0].1),
        capacity_trace: trace
            .iter()
            .map(|&(at, bps)| CapacityStep {
                at_ms: at * 1000.0,
                capacity_bps: bps,
            })
            .collect(),
        queue_limit_ms: Some(QUEUE_MS),
        delay_ms: ONE_WAY_MS,
        ..LinkConfig::default()
    };
    let mut forward: Link<Packet> = Link::new(forward_config, seed).unwrap();
    forward.set_epoch(t0);
    let back_config = LinkConfig {
        delay_ms: ONE_WAY_MS,
        ..LinkConfig::default()
    };
    let mut state: Vec<Flow> = flows
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let start = t0 + spec.start;
            let mut back = Link::new(back_config.clone(), seed + 1 + i as u64).unwrap();
            back.set_epoch(t0);
            Flow {
                spec: *spec,
                controller: SendSideController::new(
                    ControllerConfig {
                        max_bps: MAX_BPS,
                        ..ControllerConfig::default()
                    },
                    start,
                )
                .unwrap(),
                receiver: FeedbackGenerator::new(FeedbackConfig::default()).unwrap(),
                back,
                queue: VecDeque::new(),
                queue_bytes: 0,
                probe: None,
                next_seq: 0,
                next_frame: start,
                next_send: start,
                started: false,
                rtcp: Vec::new(),
                skipped_frames: 0,
            }
        })
        .collect();
    let n = flows.len();
    let mut report = Report {
        delivered_bits: vec![0.0; n],
        ..Report::default()
    };
    let mut interval = vec![Sample::default(); n];
    let mut next_sample = t0 + Duration::from_millis(100);
    let end = t0 + duration;
    let mut now = t0;
    while now < end {
        let t_s = now.duration_since(t0).as_secs_f64();
        for (i, f) in state.iter_mut().enumerate() {
            if now < t0 + f.spec.start {
                continue;
            }
            f.started = true;
            // The encoder: one frame per 1/FPS at the target (or the application's limit).
            while f.next_frame <= now {
                let mut rate = f.controller.target_bps();
                if let Some(limit) = f.spec.app_limit_bps {
                    rate = rate.min(limit);
                }
                let frame_bytes = (rate / FPS / 8) as usize;
                let pacing = f.controller.pacing_bps().max(1);
                let max_queue = (pacing as f64 * MAX_PACER_QUEUE.as_secs_f64() / 8.0) as usize;
                if f.queue_bytes + frame_bytes > max_queue {
                    f.skipped_frames += 1;
                } else {
                    let mut left = frame_bytes;
                    while left > 0 {
                        let size = left.min(PACKET_BYTES);
                        f.queue.push_back(size);
                        f.queue_bytes += size;
                        left -= size;
                    }
                }
                f.next_frame += Duration::from_nanos(1_000_000_000 / FPS);
            }
            // Probes first, as padding at the cluster's rate.
            if f.probe.is_none()
                && let Some(cluster) = f.controller.poll_probe()
            {
                let size = (cluster.min_bytes / cluster.min_packets.max(1)).clamp(200, 1200);
                let count = cluster.min_bytes.div_ceil(size).max(cluster.min_packets);
                f.probe = Some((cluster, count, size));
                f.next_send = f.next_send.max(now);
            }
            // The pacer.
            while f.next_send <= now {
                let (size, cluster, rate, media) = if let Some((c, left, size)) = f.probe {
                    f.probe = (left > 1).then_some((c, left - 1, size));
                    (size as usize, Some(c.id), c.bitrate_bps, false)
                } else if let Some(size) = f.queue.pop_front() {
                    f.queue_bytes -= size;
                    (size, None, f.controller.pacing_bps(), true)
                } else {
                    f.next_send = now + STEP;
                    break;
                };
                let at = f.next_send;
                f.controller.on_packet_sent(SentPacket {
                    transport_seq: f.next_seq,
                    size_bytes: size,
                    send_time: at,
                    probe_cluster: cluster,
                    class: if media {
                        PacketClass::Video
                    } else {
                        PacketClass::Padding
                    },
                });
                forward.send(
                    Packet {
                        flow: i,
                        seq: f.next_seq,
                        media,
                    },
                    size,
                    now,
                );
                if media {
                    interval[i].sent_bps += size as f64 * 8.0;
                }
                f.next_seq = f.next_seq.wrapping_add(1);
                f.next_send = at + Duration::from_secs_f64(size as f64 * 8.0 / rate.max(1) as f64);
            }
        }
        // Deliveries at the receivers.
        while let Poll::Deliver(d) = forward.poll(now) {
            let f = &mut state[d.packet.flow];
            f.receiver.on_packet_received(d.packet.seq, d.delivered_at);
            let cap = capacity_at(trace, d.sent_at.duration_since(t0).as_secs_f64());
            let queue_ms = d.delay().as_secs_f64() * 1000.0
                - ONE_WAY_MS
                - d.size_bytes as f64 * 8.0 / cap * 1000.0;
            report.queue_delays_ms.push(queue_ms.max(0.0));
            if d.packet.media {
                interval[d.packet.flow].delivered_bps += d.size_bytes as f64 * 8.0;
                report.delivered_bits[d.packet.flow] += d.size_bytes as f64 * 8.0;
            }
        }
        // Feedback there and back.
        for f in state.iter_mut().filter(|f| f.started) {
            f.rtcp.clear();
            if f.receiver.poll_feedback(now, &mut f.rtcp).unwrap() {
                let size = f.rtcp.len();
                f.back.send(f.rtcp.clone(), size, now);
            }
            while let Poll::Deliver(d) = f.back.poll(now) {
                let compound = RtcpCompound::parse(&d.packet).unwrap();
                for p in compound.packets() {
                    if let Ok(RtcpPacket::TransportCc(fb)) = p {
                        f.controller.on_transport_feedback(&fb, now).unwrap();
                        trace_feedback(&f.controller, now.duration_since(t0));
                    }
                }
            }
            if f.controller.poll_timeout().is_some_and(|at| at <= now) {
                f.controller.handle_timeout(now);
            }
        }
        now += STEP;
        if now >= next_sample {
            let row = state
                .iter()
                .zip(&interval)
                .map(|(f, s)| Sample {
                    target_bps: f.controller.target_bps(),
                    sent_bps: s.sent_bps * 10.0,
                    delivered_bps: s.delivered_bps * 10.0,
                    in_alr: f.controller.stats().in_alr,
                })
                .collect();
            report.samples.push(row);
            interval.iter_mut().for_each(|s| *s = Sample::default());
            next_sample += Duration::from_millis(100);
        }
        let _ = t_s;
    }
    let c = forward.counters();
    report.sent = c.sent;
    report.dropped = c.dropped();
    let secs = duration.as_secs_f64();
    let mut cap = 0.0;
    let mut t = 0.0;
    while t < secs {
        cap += capacity_at(trace, t) * 0.01;
        t += 0.01;
    }
    report.capacity_bits = cap;
    report
}

/// Prints the controller's state after each feedback inside the window given by
/// `ABR_SIM_TRACE=from_s,to_s`.
fn trace_feedback(c: &SendSideController, at: Duration) {
    let Some(window) = std::env::var_os("ABR_SIM_TRACE") else {
        return;
    };
    let window = window.to_string_lossy().to_string();
    let mut parts = window.split(',').filter_map(|p| p.parse::<f64>().ok());
    let (Some(from), Some(to)) = (parts.next(), parts.next()) else {
        return;
    };
    let t = at.as_secs_f64();
    if t < from || t > to {
        return;
    }
    let s = c.stats();
    eprintln!(
        "{t:8.3} tgt {:5}k delay {:5}k acked {:?} {:?} trend {:7.2} thr {:6.2} probing {} loss {:.3}",
        s.target_bps / 1000,
        s.delay_based_bps / 1000,
        s.acknowledged_bps.map(|a| a / 1000),
        s.usage,
        s.trend_ms,
        s.threshold_ms,
        s.probing,
        s.loss_fraction
    );
}

/// Prints a compact timeline (one line per second) when `ABR_SIM_VERBOSE` is set.
pub fn print(report: &Report, trace: &[(f64, f64)]) {
    if std::env::var_os("ABR_SIM_VERBOSE").is_none() {
        return;
    }
    for (s, rows) in report.samples.chunks(10).enumerate() {
        let cap = capacity_at(trace, s as f64);
        let mut line = format!("{s:3}s cap {:5.0}k", cap / 1000.0);
        for f in 0..rows[0].len() {
            let target = rows.last().map_or(0, |r| r[f].target_bps);
            let sent: f64 = rows.iter().map(|r| r[f].sent_bps).sum::<f64>() / rows.len() as f64;
            let got: f64 = rows.iter().map(|r| r[f].delivered_bps).sum::<f64>() / rows.len() as f64;
            line += &format!(
                " | tgt {:5}k sent {:5.0}k got {:5.0}k",
                target / 1000,
                sent / 1000.0,
                got / 1000.0
            );
        }
        eprintln!("{line}");
    }
}
