//! The pacer: spreads packets over time at the controller's pacing rate, most important
//! class first, and sends probe clusters and padding when asked.
//!
//! Design (after libwebrtc's `PacingController` with an interval budget):
//!
//! - **Budget.** A leaky bucket in bits: it fills at the pacing rate and is capped at
//!   `pacing rate × burst window` ([`PacerConfig::burst_window`], default
//!   [`DEFAULT_BURST_WINDOW`]), so an idle pacer cannot save up a burst. A packet may
//!   leave while the budget is not negative; its size is then taken from the budget, which
//!   may go negative by at most one packet. Over any interval of length `d` the pacer
//!   therefore sends at most `rate × (d + burst window) + one packet` of media and padding
//!   (probes aside): that is the documented burst.
//! - **Priority.** Four queues, served strictly in the order of [`PacketClass`]: audio,
//!   retransmissions, video, FEC (padding is made by the pacer, never queued). Within a
//!   class, first in first out.
//! - **Bounds.** The queues together hold at most [`PacerConfig::max_queue_packets`] packets
//!   and [`PacerConfig::max_queue_bytes`] bytes. A packet that would exceed either makes
//!   room by dropping the *oldest packet of the least important non-empty class that is
//!   not more important than itself* (FEC first, then video, then retransmissions, audio
//!   last); if there is none, the new packet itself is refused. A packet that has waited
//!   longer than [`PacerConfig::max_queue_time`] is dropped as stale (a real-time receiver
//!   has given up on it). Every drop is handed back ([`PacerOutput::Dropped`] or the `Err`
//!   of [`Pacer::enqueue`]) with its reason, and counted in [`PacerCounters`].
//! - **Probes.** [`Pacer::start_probe`] queues a [`ProbeCluster`] (at most
//!   [`MAX_PENDING_PROBES`] wait; a newer one replaces the oldest). While a cluster runs the
//!   pacer sends at the cluster's rate instead of the pacing rate: packet `k` of the cluster
//!   leaves at `start + bits sent before it / cluster rate`, taken from the queues in
//!   priority order, or padding when they are empty, until the cluster has
//!   `min_packets` packets and `min_bytes` bytes (or has run for
//!   [`PacerConfig::max_probe_duration`]). Every output of the cluster carries its id.
//!   Probe traffic is taken from the media budget too (floored at minus one burst), so a
//!   probe is not followed by a second burst of media.
//! - **Padding.** With a padding rate set, an empty pacer sends padding packets of
//!   [`PacerConfig::padding_packet_bytes`] at that rate (never above the pacing rate: padding
//!   is taken from both budgets).
//!
//! Sans-IO: time comes in as an `Instant`; [`Pacer::poll`] answers with the next packet to
//! send, a drop to report, or the instant at which to poll again. Budget arithmetic is in
//! integers (bit-nanoseconds), so the timing is exact and deterministic. The queues are
//! `VecDeque`s that keep their allocation: after warm-up, enqueue and poll do not allocate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{AbrError, invalid};
use crate::types::{PacketClass, ProbeCluster};

/// Default cap on the budget, as time at the pacing rate (libwebrtc's interval budget uses a
/// similar few milliseconds): an idle pacer may send this much (plus one packet) at once.
pub const DEFAULT_BURST_WINDOW: Duration = Duration::from_millis(5);
/// Default limit on packets queued (all classes): 2 s of 1080p video at 2.5 Mbit/s in
/// 1200-byte packets is about 520 packets; this leaves room for audio and retransmissions.
pub const DEFAULT_MAX_QUEUE_PACKETS: usize = 2048;
/// Default limit on bytes queued (all classes): 1 MB, about 3 s at 2.5 Mbit/s.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 1_000_000;
/// Default age beyond which a queued packet is dropped as stale: after a second in the
/// sender a real-time receiver has played out past it (audio) or asked for a keyframe
/// (video).
pub const DEFAULT_MAX_QUEUE_TIME: Duration = Duration::from_secs(1);
/// Default size of a padding packet, bytes (RTP header and padding).
pub const DEFAULT_PADDING_PACKET_BYTES: usize = 250;
/// Default longest run of one probe cluster: a cluster whose `min_bytes` would take longer
/// at its rate is cut short (and counted as truncated).
pub const DEFAULT_MAX_PROBE_DURATION: Duration = Duration::from_millis(200);
/// Default pacing rate before the first [`Pacer::set_rates`]: 300 kbit/s, GCC's usual start.
pub const DEFAULT_START_PACING_BPS: u64 = 300_000;
/// Slowest pacing rate: a lower request (zero included) is raised to this, so a queued
/// packet always has a departure time (an audio packet every 20 ms at 8 kbit/s still fits).
pub const MIN_PACING_BPS: u64 = 8_000;
/// Fastest rate the pacer accepts, pacing, padding or probe (100 Gbit/s): keeps the integer
/// budget arithmetic far from overflow.
pub const MAX_RATE_BPS: u64 = 100_000_000_000;
/// Largest packet accepted, bytes: anything larger cannot be an RTP packet on any path.
pub const MAX_PACKET_BYTES: usize = 65_535;
/// Probe clusters that may wait behind the one running; a newer one replaces the oldest.
pub const MAX_PENDING_PROBES: usize = 4;

/// Nanoseconds per second: budgets are kept in bit-nanoseconds (bits × 10⁹).
const NANOS: i128 = 1_000_000_000;

/// Settings of a [`Pacer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Pacing rate until the first [`Pacer::set_rates`]. Default [`DEFAULT_START_PACING_BPS`].
    pub start_pacing_bps: u64,
    /// Cap on the budget as time at the pacing rate. Default [`DEFAULT_BURST_WINDOW`];
    /// at most one second.
    pub burst_window: Duration,
    /// Most packets queued. Default [`DEFAULT_MAX_QUEUE_PACKETS`]; at least 1.
    pub max_queue_packets: usize,
    /// Most bytes queued. Default [`DEFAULT_MAX_QUEUE_BYTES`]; at least
    /// [`MAX_PACKET_BYTES`].
    pub max_queue_bytes: usize,
    /// Age beyond which a queued packet is dropped. Default [`DEFAULT_MAX_QUEUE_TIME`];
    /// more than zero.
    pub max_queue_time: Duration,
    /// Size of a padding packet. Default [`DEFAULT_PADDING_PACKET_BYTES`]; 1 to
    /// [`MAX_PACKET_BYTES`].
    pub padding_packet_bytes: usize,
    /// Longest run of one probe cluster. Default [`DEFAULT_MAX_PROBE_DURATION`]; more than
    /// zero.
    pub max_probe_duration: Duration,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            start_pacing_bps: DEFAULT_START_PACING_BPS,
            burst_window: DEFAULT_BURST_WINDOW,
            max_queue_packets: DEFAULT_MAX_QUEUE_PACKETS,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_queue_time: DEFAULT_MAX_QUEUE_TIME,
            padding_packet_bytes: DEFAULT_PADDING_PACKET_BYTES,
            max_probe_duration: DEFAULT_MAX_PROBE_DURATION,
        }
    }
}

impl PacerConfig {
    fn validate(&self) -> Result<(), AbrError> {
        if !(MIN_PACING_BPS..=MAX_RATE_BPS).contains(&self.start_pacing_bps) {
            return invalid(
                "start_pacing_bps",
                self.start_pacing_bps,
                "8000 to 1e11 bit/s",
            );
        }
        if self.burst_window > Duration::from_secs(1) {
            return invalid(
                "burst_window",
                format!("{:?}", self.burst_window),
                "at most 1 s",
            );
        }
        if self.max_queue_packets == 0 {
            return invalid("max_queue_packets", "0", "at least 1");
        }
        if self.max_queue_bytes < MAX_PACKET_BYTES {
            return invalid(
                "max_queue_bytes",
                self.max_queue_bytes,
                "at least 65535 (one largest packet)",
            );
        }
        if self.max_queue_time.is_zero() {
            return invalid("max_queue_time", "0", "more than zero");
        }
        if !(1..=MAX_PACKET_BYTES).contains(&self.padding_packet_bytes) {
            return invalid(
                "padding_packet_bytes",
                self.padding_packet_bytes,
                "1 to 65535 bytes",
            );
        }
        if self.max_probe_duration.is_zero() {
            return invalid("max_probe_duration", "0", "more than zero");
        }
        Ok(())
    }
}

/// Why the pacer dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was at its packet or byte limit (the packet made room for a more
    /// important or newer one, or there was no room for it).
    QueueFull,
    /// It waited longer than [`PacerConfig::max_queue_time`].
    Expired,
    /// It could not be queued: size 0 or above [`MAX_PACKET_BYTES`], or class
    /// [`PacketClass::Padding`] (the pacer makes padding itself).
    Invalid,
}

/// A packet the pacer did not send, handed back with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped<T> {
    /// The packet.
    pub packet: T,
    /// Its size as given to [`Pacer::enqueue`].
    pub size_bytes: usize,
    /// Its class.
    pub class: PacketClass,
    /// Why.
    pub reason: DropReason,
}

/// What [`Pacer::poll`] has to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacerOutput<T> {
    /// Send this packet now; poll again.
    Send {
        /// The packet.
        packet: T,
        /// Its size as given to [`Pacer::enqueue`].
        size_bytes: usize,
        /// Its class.
        class: PacketClass,
        /// The probe cluster it was sent for, if any.
        probe_cluster: Option<u32>,
    },
    /// Send a padding packet of this size now; poll again.
    Padding {
        /// Bytes of the padding packet.
        size_bytes: usize,
        /// The probe cluster it was sent for, or `None` for padding at the padding rate.
        probe_cluster: Option<u32>,
    },
    /// A packet was dropped (queue full or stale); poll again.
    Dropped(Dropped<T>),
    /// Nothing to do before this instant (or before the next enqueue, rate change or probe).
    Timeout(Instant),
    /// Nothing queued, no padding rate, no probe: nothing to do until the next call.
    Idle,
}

/// Counts per [`PacketClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    /// Audio.
    pub audio: u64,
    /// Retransmissions.
    pub retransmission: u64,
    /// Video.
    pub video: u64,
    /// FEC.
    pub fec: u64,
    /// Padding.
    pub padding: u64,
}

impl ClassCounts {
    /// The count of `class`.
    pub fn get(&self, class: PacketClass) -> u64 {
        match class {
            PacketClass::Audio => self.audio,
            PacketClass::Retransmission => self.retransmission,
            PacketClass::Video => self.video,
            PacketClass::Fec => self.fec,
            PacketClass::Padding => self.padding,
        }
    }

    fn add(&mut self, class: PacketClass, n: u64) {
        let slot = match class {
            PacketClass::Audio => &mut self.audio,
            PacketClass::Retransmission => &mut self.retransmission,
            PacketClass::Video => &mut self.video,
            PacketClass::Fec => &mut self.fec,
            PacketClass::Padding => &mut self.padding,
        };
        *slot += n;
    }

    /// The sum over the classes.
    pub fn total(&self) -> u64 {
        self.audio + self.retransmission + self.video + self.fec + self.padding
    }
}

/// What a pacer has done. Conservation per queued class: `enqueued = sent + dropped_full
/// + dropped_expired + queued` (refused packets were never enqueued).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerCounters {
    /// Packets accepted by [`Pacer::enqueue`] (later dropped ones included).
    pub enqueued: ClassCounts,
    /// Packets sent (padding included, by class).
    pub sent_packets: ClassCounts,
    /// Bytes sent, by class.
    pub sent_bytes: ClassCounts,
    /// Queued packets dropped to make room for a new one, by class.
    pub dropped_full: ClassCounts,
    /// New packets refused because the queue was full of packets at least as important.
    pub refused_full: ClassCounts,
    /// Queued packets dropped as stale, by class.
    pub dropped_expired: ClassCounts,
    /// Bytes dropped or refused (full and stale).
    pub dropped_bytes: u64,
    /// Packets refused as invalid.
    pub refused_invalid: u64,
    /// Probe clusters started.
    pub probes_started: u64,
    /// Probe clusters that reached their `min_packets` and `min_bytes`.
    pub probes_completed: u64,
    /// Probe clusters cut short by [`PacerConfig::max_probe_duration`].
    pub probes_truncated: u64,
    /// Waiting probe clusters replaced by newer ones.
    pub probes_replaced: u64,
    /// Packets sent for probes (media and padding).
    pub probe_packets: u64,
    /// Bytes sent for probes.
    pub probe_bytes: u64,
}

/// A queued packet.
#[derive(Debug)]
struct Queued<T> {
    packet: T,
    size_bytes: usize,
    enqueued_at: Instant,
}

/// The probe cluster being sent.
#[derive(Debug, Clone, Copy)]
struct ActiveProbe {
    cluster: ProbeCluster,
    /// Set by the first poll after the cluster became active.
    start: Option<Instant>,
    packets: u32,
    bytes: u64,
}

impl ActiveProbe {
    fn done(&self) -> bool {
        self.packets >= self.cluster.min_packets && self.bytes >= u64::from(self.cluster.min_bytes)
    }

    /// When its next packet is due: `start + bits sent / rate`.
    fn next_send(&self, start: Instant) -> Instant {
        let ns = (self.bytes as u128 * 8 * NANOS as u128)
            .div_ceil(u128::from(self.cluster.bitrate_bps.max(1)));
        start + Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64)
    }
}

/// Classes with queues, in the order they are served.
const QUEUED_CLASSES: [PacketClass; 4] = [
    PacketClass::Audio,
    PacketClass::Retransmission,
    PacketClass::Video,
    PacketClass::Fec,
];

/// A leaky bucket in bit-nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Budget {
    rate_bps: u64,
    /// Bits × 10⁹ available; negative is debt.
    level: i128,
}

impl Budget {
    fn cap(&self, window: Duration) -> i128 {
        i128::from(self.rate_bps) * window.as_nanos() as i128
    }

    fn refill(&mut self, elapsed: Duration, window: Duration) {
        let gained = i128::from(self.rate_bps) * elapsed.as_nanos() as i128;
        self.level = (self.level + gained).min(self.cap(window));
    }

    fn spend(&mut self, bytes: usize, floor: i128) {
        self.level = (self.level - bytes as i128 * 8 * NANOS).max(floor);
    }

    /// Time until the level is back at zero (zero if it is not negative).
    fn wait(&self) -> Duration {
        if self.level >= 0 || self.rate_bps == 0 {
            return Duration::ZERO;
        }
        let rate = i128::from(self.rate_bps);
        let ns = (-self.level + rate - 1) / rate; // ceiling; both positive
        Duration::from_nanos(ns.min(i128::from(u64::MAX)) as u64)
    }
}

/// The pacer; `T` is the caller's packet type (opaque: its size is given on enqueue).
#[derive(Debug)]
pub struct Pacer<T> {
    config: PacerConfig,
    queues: [VecDeque<Queued<T>>; 4],
    queued_bytes: usize,
    queued_packets: usize,
    media: Budget,
    padding: Budget,
    last_update: Option<Instant>,
    dropped: VecDeque<Dropped<T>>,
    probe: Option<ActiveProbe>,
    pending_probes: VecDeque<ProbeCluster>,
    counters: PacerCounters,
}

fn queue_index(class: PacketClass) -> Option<usize> {
    match class {
        PacketClass::Audio => Some(0),
        PacketClass::Retransmission => Some(1),
        PacketClass::Video => Some(2),
        PacketClass::Fec => Some(3),
        PacketClass::Padding => None,
    }
}

impl<T> Pacer<T> {
    /// A pacer with `config`.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] naming the first field out of its documented range.
    pub fn new(config: PacerConfig) -> Result<Self, AbrError> {
        config.validate()?;
        Ok(Self {
            config,
            queues: std::array::from_fn(|_| VecDeque::new()),
            queued_bytes: 0,
            queued_packets: 0,
            media: Budget {
                rate_bps: config.start_pacing_bps,
                level: 0,
            },
            padding: Budget {
                rate_bps: 0,
                level: 0,
            },
            last_update: None,
            dropped: VecDeque::new(),
            probe: None,
            pending_probes: VecDeque::with_capacity(MAX_PENDING_PROBES),
            counters: PacerCounters::default(),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &PacerConfig {
        &self.config
    }

    /// Sets the pacing rate (raised to [`MIN_PACING_BPS`], capped at [`MAX_RATE_BPS`]) and
    /// the padding rate (0 = no padding; capped at the pacing rate). Takes effect from the
    /// last instant the pacer saw; the budgets are re-capped to the new rates.
    pub fn set_rates(&mut self, pacing_bps: u64, padding_bps: u64) {
        let pacing = pacing_bps.clamp(MIN_PACING_BPS, MAX_RATE_BPS);
        self.media.rate_bps = pacing;
        self.padding.rate_bps = padding_bps.min(pacing);
        let window = self.config.burst_window;
        self.media.level = self.media.level.min(self.media.cap(window));
        self.padding.level = self.padding.level.min(self.padding.cap(window));
    }

    /// The pacing rate in force.
    pub fn pacing_bps(&self) -> u64 {
        self.media.rate_bps
    }

    /// The padding rate in force.
    pub fn padding_bps(&self) -> u64 {
        self.padding.rate_bps
    }

    /// Queues a packet of `size_bytes` and `class` at `now`. When the queue is at a limit,
    /// older less important packets are dropped to make room (returned by later polls as
    /// [`PacerOutput::Dropped`]).
    ///
    /// # Errors
    ///
    /// The packet itself, handed back as [`Dropped`] when it is invalid (size 0 or above
    /// [`MAX_PACKET_BYTES`], class padding) or when the queue is full of packets at least
    /// as important as it.
    pub fn enqueue(
        &mut self,
        packet: T,
        size_bytes: usize,
        class: PacketClass,
        now: Instant,
    ) -> Result<(), Dropped<T>> {
        self.advance(now);
        let index = match queue_index(class) {
            Some(index) if (1..=MAX_PACKET_BYTES).contains(&size_bytes) => index,
            _ => {
                self.counters.refused_invalid += 1;
                return Err(Dropped {
                    packet,
                    size_bytes,
                    class,
                    reason: DropReason::Invalid,
                });
            }
        };
        // Make room: the oldest packet of the least important class not above this one.
        while self.queued_packets + 1 > self.config.max_queue_packets
            || self.queued_bytes + size_bytes > self.config.max_queue_bytes
        {
            let Some(victim) = (index..self.queues.len())
                .rev()
                .find(|&i| !self.queues[i].is_empty())
            else {
                self.counters.refused_full.add(class, 1);
                self.counters.dropped_bytes += size_bytes as u64;
                return Err(Dropped {
                    packet,
                    size_bytes,
                    class,
                    reason: DropReason::QueueFull,
                });
            };
            // Safe: the queue was just found non-empty.
            if let Some(old) = self.pop(victim) {
                self.record_drop(old, QUEUED_CLASSES[victim], DropReason::QueueFull);
            }
        }
        self.counters.enqueued.add(class, 1);
        self.queued_packets += 1;
        self.queued_bytes += size_bytes;
        self.queues[index].push_back(Queued {
            packet,
            size_bytes,
            enqueued_at: now,
        });
        Ok(())
    }

    /// Asks for a probe cluster to be sent (after the one running, if any). A cluster with
    /// a rate of zero or above [`MAX_RATE_BPS`] is ignored; one beyond
    /// [`MAX_PENDING_PROBES`] waiting replaces the oldest waiting.
    pub fn start_probe(&mut self, cluster: ProbeCluster) {
        if cluster.bitrate_bps == 0 || cluster.bitrate_bps > MAX_RATE_BPS {
            return;
        }
        if self.pending_probes.len() >= MAX_PENDING_PROBES {
            self.pending_probes.pop_front();
            self.counters.probes_replaced += 1;
        }
        self.pending_probes.push_back(cluster);
    }

    /// The probe cluster being sent, if any.
    pub fn active_probe(&self) -> Option<ProbeCluster> {
        self.probe.map(|p| p.cluster)
    }

    /// What to do at `now`: drain until [`PacerOutput::Timeout`] or [`PacerOutput::Idle`].
    pub fn poll(&mut self, now: Instant) -> PacerOutput<T> {
        self.advance(now);
        if let Some(dropped) = self.dropped.pop_front() {
            return PacerOutput::Dropped(dropped);
        }
        if let Some(dropped) = self.expire(now) {
            return PacerOutput::Dropped(dropped);
        }
        if self.probe.is_none() {
            self.probe = self.pending_probes.pop_front().map(|cluster| {
                self.counters.probes_started += 1;
                ActiveProbe {
                    cluster,
                    start: None,
                    packets: 0,
                    bytes: 0,
                }
            });
        }
        if let Some(output) = self.poll_probe(now) {
            return output;
        }
        if self.queued_packets > 0 {
            if self.media.level < 0 {
                return PacerOutput::Timeout(now + self.media.wait());
            }
            let Some((queued, class)) = self.pop_next() else {
                return PacerOutput::Idle; // unreachable: queued_packets > 0
            };
            self.media.spend(queued.size_bytes, i128::MIN);
            self.count_sent(class, queued.size_bytes, None);
            return PacerOutput::Send {
                packet: queued.packet,
                size_bytes: queued.size_bytes,
                class,
                probe_cluster: None,
            };
        }
        if self.padding.rate_bps > 0 {
            if self.media.level < 0 || self.padding.level < 0 {
                let wait = self.media.wait().max(self.padding.wait());
                return PacerOutput::Timeout(now + wait);
            }
            let size = self.config.padding_packet_bytes;
            self.media.spend(size, i128::MIN);
            self.padding.spend(size, i128::MIN);
            self.count_sent(PacketClass::Padding, size, None);
            return PacerOutput::Padding {
                size_bytes: size,
                probe_cluster: None,
            };
        }
        PacerOutput::Idle
    }

    /// The next instant [`poll`](Self::poll) has something to do, as far as known without
    /// changing state: `Some(now)` if something is due, `None` when idle.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let elapsed = self
            .last_update
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        let mut media = self.media;
        media.refill(elapsed, self.config.burst_window);
        let mut padding = self.padding;
        padding.refill(elapsed, self.config.burst_window);
        if !self.dropped.is_empty() || (self.probe.is_none() && !self.pending_probes.is_empty()) {
            return Some(now);
        }
        // A running probe's padding goes on its own clock (queued media goes on the media
        // budget's, counted in the probe); it ends at its deadline at the latest.
        let probe = self.probe.map(|p| match p.start {
            Some(start) if !p.done() => p
                .next_send(start)
                .min(start + self.config.max_probe_duration)
                .max(now),
            _ => now,
        });
        let oldest_expiry = self
            .queues
            .iter()
            .filter_map(|q| q.front())
            .map(|q| q.enqueued_at + self.config.max_queue_time)
            .min();
        let send = if self.queued_packets > 0 {
            Some(now + media.wait())
        } else if padding.rate_bps > 0 {
            Some(now + media.wait().max(padding.wait()))
        } else {
            None
        };
        let send = match (send, probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (send, oldest_expiry) {
            (Some(a), Some(b)) => Some(a.min(b.max(now))),
            (a, b) => a.or(b.map(|b| b.max(now))),
        }
    }

    /// How long the oldest queued packet has waited at `now` (zero when empty).
    pub fn queue_delay(&self, now: Instant) -> Duration {
        self.queues
            .iter()
            .filter_map(|q| q.front())
            .map(|q| now.saturating_duration_since(q.enqueued_at))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Time to send everything queued at the pacing rate.
    pub fn expected_drain_time(&self) -> Duration {
        let bits = self.queued_bytes as u128 * 8;
        Duration::from_nanos(
            (bits * NANOS as u128 / u128::from(self.media.rate_bps.max(1))).min(u64::MAX as u128)
                as u64,
        )
    }

    /// Packets queued (all classes).
    pub fn queued_packets(&self) -> usize {
        self.queued_packets
    }

    /// Bytes queued (all classes).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Packets of `class` queued (always 0 for padding).
    pub fn queued_packets_of(&self, class: PacketClass) -> usize {
        queue_index(class).map_or(0, |i| self.queues[i].len())
    }

    /// What the pacer has done so far.
    pub fn counters(&self) -> &PacerCounters {
        &self.counters
    }

    /// Refills the budgets for the time since the last call.
    fn advance(&mut self, now: Instant) {
        if let Some(last) = self.last_update {
            let elapsed = now.saturating_duration_since(last);
            let window = self.config.burst_window;
            self.media.refill(elapsed, window);
            self.padding.refill(elapsed, window);
            if now > last {
                self.last_update = Some(now);
            }
        } else {
            self.last_update = Some(now);
        }
    }

    fn pop(&mut self, index: usize) -> Option<Queued<T>> {
        let queued = self.queues[index].pop_front()?;
        self.queued_packets -= 1;
        self.queued_bytes -= queued.size_bytes;
        Some(queued)
    }

    fn pop_next(&mut self) -> Option<(Queued<T>, PacketClass)> {
        let index = self.queues.iter().position(|q| !q.is_empty())?;
        self.pop(index).map(|q| (q, QUEUED_CLASSES[index]))
    }

    fn record_drop(&mut self, queued: Queued<T>, class: PacketClass, reason: DropReason) {
        match reason {
            DropReason::QueueFull => self.counters.dropped_full.add(class, 1),
            DropReason::Expired => self.counters.dropped_expired.add(class, 1),
            DropReason::Invalid => self.counters.refused_invalid += 1,
        }
        self.counters.dropped_bytes += queued.size_bytes as u64;
        let dropped = Dropped {
            packet: queued.packet,
            size_bytes: queued.size_bytes,
            class,
            reason,
        };
        // Bounded: beyond the queue's packet limit the caller is not polling; the packet is
        // then only counted.
        if self.dropped.len() < self.config.max_queue_packets {
            self.dropped.push_back(dropped);
        }
    }

    /// Drops and returns one packet older than the queue time limit, if any.
    fn expire(&mut self, now: Instant) -> Option<Dropped<T>> {
        let limit = self.config.max_queue_time;
        let index = self.queues.iter().position(|q| {
            q.front()
                .is_some_and(|f| now.saturating_duration_since(f.enqueued_at) > limit)
        })?;
        let queued = self.pop(index)?;
        let class = QUEUED_CLASSES[index];
        self.record_drop(queued, class, DropReason::Expired);
        self.dropped.pop_back()
    }

    fn count_sent(&mut self, class: PacketClass, size: usize, probe: Option<u32>) {
        self.counters.sent_packets.add(class, 1);
        self.counters.sent_bytes.add(class, size as u64);
        if probe.is_some() {
            self.counters.probe_packets += 1;
            self.counters.probe_bytes += size as u64;
        }
    }

    /// The running probe's next output, a wait for it, or `None` when no probe runs.
    fn poll_probe(&mut self, now: Instant) -> Option<PacerOutput<T>> {
        let mut probe = self.probe?;
        let start = *probe.start.get_or_insert(now);
        if probe.done() || now.saturating_duration_since(start) > self.config.max_probe_duration {
            if probe.done() {
                self.counters.probes_completed += 1;
            } else {
                self.counters.probes_truncated += 1;
            }
            self.probe = None;
            return None;
        }
        let due = probe.next_send(start);
        // Media never waits for the probe's clock (a probe below the pacing rate would
        // hold it back): what the media budget allows goes now, counted in the probe, and
        // padding fills up to the probe's rate.
        let media_ready = self.queued_packets > 0 && self.media.level >= 0;
        if due > now && !media_ready {
            self.probe = Some(probe);
            let wake = if self.queued_packets > 0 {
                due.min(now + self.media.wait())
            } else {
                due
            };
            return Some(PacerOutput::Timeout(wake));
        }
        let id = Some(probe.cluster.id);
        let floor =
            -(self.media.cap(self.config.burst_window) + MAX_PACKET_BYTES as i128 * 8 * NANOS);
        let output = match self.pop_next() {
            Some((queued, class)) => {
                self.media.spend(queued.size_bytes, floor);
                probe.packets += 1;
                probe.bytes += queued.size_bytes as u64;
                self.count_sent(class, queued.size_bytes, id);
                PacerOutput::Send {
                    packet: queued.packet,
                    size_bytes: queued.size_bytes,
                    class,
                    probe_cluster: id,
                }
            }
            None => {
                // Whole padding packets: the cluster may end up to one packet over its
                // `min_bytes`.
                let size = self.config.padding_packet_bytes;
                self.media.spend(size, floor);
                probe.packets += 1;
                probe.bytes += size as u64;
                self.count_sent(PacketClass::Padding, size, id);
                PacerOutput::Padding {
                    size_bytes: size,
                    probe_cluster: id,
                }
            }
        };
        self.probe = Some(probe);
        Some(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pacer(rate: u64) -> Pacer<u32> {
        let mut pacer = Pacer::new(PacerConfig::default()).expect("valid");
        pacer.set_rates(rate, 0);
        pacer
    }

    /// Everything the pacer does from `from` to `until`, following its timeouts.
    fn run(
        pacer: &mut Pacer<u32>,
        from: Instant,
        until: Instant,
    ) -> Vec<(Instant, PacerOutput<u32>)> {
        let mut now = from;
        let mut out = Vec::new();
        loop {
            match pacer.poll(now) {
                PacerOutput::Timeout(at) if at <= until => {
                    assert!(at > now, "a timeout must be in the future");
                    now = at;
                }
                PacerOutput::Timeout(_) | PacerOutput::Idle => return out,
                output => out.push((now, output)),
            }
        }
    }

    #[test]
    fn bad_configuration_is_refused_with_the_field_named() {
        let cases = [
            PacerConfig {
                max_queue_packets: 0,
                ..PacerConfig::default()
            },
            PacerConfig {
                max_queue_bytes: 1000,
                ..PacerConfig::default()
            },
            PacerConfig {
                max_queue_time: Duration::ZERO,
                ..PacerConfig::default()
            },
            PacerConfig {
                padding_packet_bytes: 0,
                ..PacerConfig::default()
            },
            PacerConfig {
                start_pacing_bps: 0,
                ..PacerConfig::default()
            },
            PacerConfig {
                burst_window: Duration::from_secs(2),
                ..PacerConfig::default()
            },
        ];
        for config in cases {
            assert!(matches!(
                Pacer::<u32>::new(config),
                Err(AbrError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn packets_leave_at_the_pacing_rate() {
        let t0 = Instant::now();
        let mut pacer = pacer(800_000); // 1000 bytes every 10 ms
        for i in 0..50 {
            pacer
                .enqueue(i, 1000, PacketClass::Video, t0)
                .expect("room");
        }
        let out = run(&mut pacer, t0, t0 + Duration::from_secs(1));
        assert_eq!(out.len(), 50);
        for (k, (at, output)) in out.iter().enumerate() {
            assert_eq!(*at, t0 + ms(10 * k as u64), "packet {k}");
            assert!(matches!(output, PacerOutput::Send { packet, .. } if *packet == k as u32));
        }
        assert_eq!(pacer.counters().sent_bytes.video, 50_000);
    }

    #[test]
    fn audio_and_retransmissions_go_before_video_and_fec() {
        let t0 = Instant::now();
        let mut pacer = pacer(100_000);
        pacer.enqueue(1, 1000, PacketClass::Fec, t0).expect("room");
        pacer
            .enqueue(2, 1000, PacketClass::Video, t0)
            .expect("room");
        pacer
            .enqueue(3, 1000, PacketClass::Retransmission, t0)
            .expect("room");
        pacer.enqueue(4, 100, PacketClass::Audio, t0).expect("room");
        let order: Vec<u32> = run(&mut pacer, t0, t0 + Duration::from_secs(1))
            .into_iter()
            .filter_map(|(_, o)| match o {
                PacerOutput::Send { packet, .. } => Some(packet),
                _ => None,
            })
            .collect();
        assert_eq!(order, [4, 3, 2, 1]);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_video_never_audio_for_video() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(PacerConfig {
            max_queue_packets: 3,
            ..PacerConfig::default()
        })
        .expect("valid");
        pacer
            .enqueue(1, 1000, PacketClass::Video, t0)
            .expect("room");
        pacer
            .enqueue(2, 1000, PacketClass::Video, t0)
            .expect("room");
        pacer.enqueue(3, 100, PacketClass::Audio, t0).expect("room");
        // Audio pushes out the oldest video.
        pacer.enqueue(4, 100, PacketClass::Audio, t0).expect("room");
        assert!(matches!(
            pacer.poll(t0),
            PacerOutput::Dropped(Dropped {
                packet: 1,
                class: PacketClass::Video,
                reason: DropReason::QueueFull,
                ..
            })
        ));
        pacer.enqueue(5, 100, PacketClass::Audio, t0).expect("room");
        // Now all audio: a video packet finds nothing less important to push out.
        let refused = pacer.enqueue(6, 1000, PacketClass::Video, t0);
        assert!(matches!(
            refused,
            Err(Dropped {
                packet: 6,
                reason: DropReason::QueueFull,
                ..
            })
        ));
        assert_eq!(pacer.queued_packets_of(PacketClass::Audio), 3);
        assert_eq!(pacer.counters().dropped_full.video, 2);
        assert_eq!(pacer.counters().refused_full.video, 1);
        assert_eq!(pacer.counters().dropped_full.audio, 0);
    }

    #[test]
    fn the_byte_limit_holds_too() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(PacerConfig {
            max_queue_bytes: MAX_PACKET_BYTES,
            ..PacerConfig::default()
        })
        .expect("valid");
        for i in 0..100 {
            pacer
                .enqueue(i, 1200, PacketClass::Video, t0)
                .expect("room");
            assert!(pacer.queued_bytes() <= MAX_PACKET_BYTES);
        }
        assert_eq!(pacer.queued_packets(), MAX_PACKET_BYTES / 1200);
    }

    #[test]
    fn stale_packets_are_dropped_and_said() {
        let t0 = Instant::now();
        let mut pacer = pacer(MIN_PACING_BPS); // 1000 bytes per second
        for i in 0..5 {
            pacer
                .enqueue(i, 1000, PacketClass::Video, t0)
                .expect("room");
        }
        let out = run(&mut pacer, t0, t0 + Duration::from_secs(3));
        let sent = out
            .iter()
            .filter(|(_, o)| matches!(o, PacerOutput::Send { .. }))
            .count();
        let expired = out
            .iter()
            .filter(
                |(_, o)| matches!(o, PacerOutput::Dropped(d) if d.reason == DropReason::Expired),
            )
            .count();
        assert_eq!(sent + expired, 5);
        assert!(expired >= 3, "{out:?}");
        assert_eq!(pacer.counters().dropped_expired.video, expired as u64);
    }

    #[test]
    fn invalid_packets_are_refused() {
        let t0 = Instant::now();
        let mut pacer = pacer(1_000_000);
        for (size, class) in [
            (0, PacketClass::Video),
            (MAX_PACKET_BYTES + 1, PacketClass::Audio),
            (100, PacketClass::Padding),
        ] {
            let refused = pacer.enqueue(7, size, class, t0);
            assert!(matches!(
                refused,
                Err(Dropped {
                    reason: DropReason::Invalid,
                    ..
                })
            ));
        }
        assert_eq!(pacer.counters().refused_invalid, 3);
        assert_eq!(pacer.queued_packets(), 0);
        assert_eq!(pacer.poll(t0), PacerOutput::Idle);
    }

    #[test]
    fn an_idle_pacer_saves_no_burst() {
        let t0 = Instant::now();
        let mut pacer = pacer(1_000_000);
        assert_eq!(pacer.poll(t0), PacerOutput::Idle);
        let later = t0 + Duration::from_secs(10);
        for i in 0..20 {
            pacer
                .enqueue(i, 1200, PacketClass::Video, later)
                .expect("room");
        }
        // 5 ms at 1 Mbit/s is 625 bytes: one packet may go at once, then 9.6 ms apart.
        let out = run(&mut pacer, later, later + ms(50));
        let at_once = out.iter().filter(|(at, _)| *at == later).count();
        assert_eq!(at_once, 1);
        assert_eq!(out.len(), 1 + (50.0 / 9.6f64).floor() as usize);
    }

    #[test]
    fn padding_fills_the_padding_rate_when_the_queue_is_empty() {
        let t0 = Instant::now();
        let mut pacer = pacer(1_000_000);
        pacer.set_rates(1_000_000, 200_000);
        let out = run(&mut pacer, t0, t0 + Duration::from_secs(1));
        let bytes: usize = out
            .iter()
            .map(|(_, o)| match o {
                PacerOutput::Padding {
                    size_bytes,
                    probe_cluster: None,
                } => *size_bytes,
                other => panic!("{other:?}"),
            })
            .sum();
        // 200 kbit/s for 1 s is 25 000 bytes, plus what the first instant may send.
        assert!(
            (25_000..=25_000 + 2 * DEFAULT_PADDING_PACKET_BYTES).contains(&bytes),
            "{bytes}"
        );
    }

    #[test]
    fn a_probe_is_sent_at_its_rate_with_media_then_padding_and_tagged() {
        let t0 = Instant::now();
        let mut pacer = pacer(300_000);
        for i in 0..3 {
            pacer
                .enqueue(i, 1000, PacketClass::Video, t0)
                .expect("room");
        }
        let cluster = ProbeCluster {
            id: 9,
            bitrate_bps: 2_000_000,
            min_packets: 6,
            min_bytes: 5000,
        };
        pacer.start_probe(cluster);
        let out = run(&mut pacer, t0, t0 + ms(100));
        let probe: Vec<_> = out
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    PacerOutput::Send {
                        probe_cluster: Some(9),
                        ..
                    } | PacerOutput::Padding {
                        probe_cluster: Some(9),
                        ..
                    }
                )
            })
            .collect();
        assert!(probe.len() >= 6, "{out:?}");
        assert!(matches!(probe[0].1, PacerOutput::Send { packet: 0, .. }));
        assert!(matches!(probe[3].1, PacerOutput::Padding { .. }));
        let bytes = pacer.counters().probe_bytes;
        assert!(bytes >= 5000 && bytes < 5000 + DEFAULT_PADDING_PACKET_BYTES as u64 + 1000);
        // Sent at 2 Mbit/s: the last packet leaves at (bytes before it) × 8 / 2e6.
        let last = probe.last().expect("some").0;
        let before_last = bytes - DEFAULT_PADDING_PACKET_BYTES as u64;
        let expected = t0 + Duration::from_nanos(before_last * 8 * 1_000_000_000 / 2_000_000);
        assert!(
            last.duration_since(expected) < Duration::from_micros(10),
            "{last:?} {expected:?}"
        );
        assert_eq!(pacer.counters().probes_completed, 1);
        assert_eq!(pacer.active_probe(), None);
    }

    #[test]
    fn poll_timeout_names_the_next_departure_without_polling() {
        let t0 = Instant::now();
        let mut pacer = pacer(800_000);
        assert_eq!(pacer.poll_timeout(t0), None);
        pacer
            .enqueue(1, 1000, PacketClass::Video, t0)
            .expect("room");
        pacer
            .enqueue(2, 1000, PacketClass::Video, t0)
            .expect("room");
        assert_eq!(pacer.poll_timeout(t0), Some(t0));
        assert!(matches!(
            pacer.poll(t0),
            PacerOutput::Send { packet: 1, .. }
        ));
        // 1000 bytes at 800 kbit/s: the next one 10 ms later, as poll says too.
        assert_eq!(pacer.poll_timeout(t0), Some(t0 + ms(10)));
        assert_eq!(pacer.poll(t0), PacerOutput::Timeout(t0 + ms(10)));
        assert_eq!(pacer.queue_delay(t0 + ms(4)), ms(4));
        assert_eq!(pacer.expected_drain_time(), ms(10));
        assert!(matches!(
            pacer.poll(t0 + ms(10)),
            PacerOutput::Send { packet: 2, .. }
        ));
        assert_eq!(pacer.poll_timeout(t0 + ms(10)), None);
        assert_eq!(pacer.poll(t0 + ms(10)), PacerOutput::Idle);
    }

    #[test]
    fn poll_timeout_follows_a_running_probe_without_spinning() {
        let t0 = Instant::now();
        let mut pacer = pacer(300_000);
        pacer.start_probe(ProbeCluster {
            id: 3,
            bitrate_bps: 200_000,
            min_packets: 5,
            min_bytes: 1250,
        });
        assert_eq!(pacer.poll_timeout(t0), Some(t0), "a probe waits to start");
        assert!(matches!(pacer.poll(t0), PacerOutput::Padding { .. }));
        // 250 bytes at 200 kbit/s: the next padding 10 ms later, and poll_timeout says so
        // (a caller that trusted `Some(now)` would spin at t0).
        assert_eq!(pacer.poll(t0), PacerOutput::Timeout(t0 + ms(10)));
        assert_eq!(pacer.poll_timeout(t0), Some(t0 + ms(10)));
        // Media queued meanwhile does not wait for the probe's clock but for the media
        // budget (the padding spent some of it), and goes in the probe; at every wait,
        // poll_timeout names the instant poll does.
        pacer.enqueue(9, 250, PacketClass::Video, t0).expect("room");
        let mut now = t0;
        let mut out = Vec::new();
        for _ in 0..100 {
            let wake = pacer.poll_timeout(now);
            match pacer.poll(now) {
                PacerOutput::Timeout(at) => {
                    assert_eq!(wake, Some(at));
                    now = at;
                }
                PacerOutput::Idle => break,
                output => out.push((now, output)),
            }
        }
        let media_at = out
            .iter()
            .find_map(|(at, o)| {
                matches!(
                    o,
                    PacerOutput::Send {
                        packet: 9,
                        probe_cluster: Some(3),
                        ..
                    }
                )
                .then_some(*at)
            })
            .expect("the media packet, in the probe");
        assert!(media_at < t0 + ms(10), "{media_at:?}");
        // Five packets, 1250 bytes: the padding, the media packet, three more paddings.
        let paddings = out
            .iter()
            .filter(|(_, o)| matches!(o, PacerOutput::Padding { .. }))
            .count();
        assert_eq!(paddings, 3, "{out:?}");
        assert_eq!(pacer.counters().probes_completed, 1);
        assert_eq!(pacer.poll_timeout(t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn an_endless_probe_is_cut_short() {
        let t0 = Instant::now();
        let mut pacer = pacer(300_000);
        pacer.start_probe(ProbeCluster {
            id: 1,
            bitrate_bps: 100_000,
            min_packets: 1,
            min_bytes: u32::MAX,
        });
        let out = run(&mut pacer, t0, t0 + Duration::from_secs(5));
        assert_eq!(pacer.counters().probes_truncated, 1);
        // 200 ms at 100 kbit/s: 2500 bytes, in 250-byte packets, plus the first.
        assert!(out.len() <= 12, "{}", out.len());
    }

    /// Counts allocations made by the current thread only, so that tests running in
    /// parallel do not disturb each other's counts.
    struct Counting;

    thread_local! {
        static THREAD_ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn count_allocation() {
        let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    fn thread_allocations() -> u64 {
        THREAD_ALLOCATIONS.with(std::cell::Cell::get)
    }

    // SAFETY: forwards to the system allocator unchanged; only counts calls.
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's contract for `alloc` is passed on as is.
            unsafe { std::alloc::System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: the caller's contract for `dealloc` is passed on as is.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(
            &self,
            ptr: *mut u8,
            layout: std::alloc::Layout,
            new_size: usize,
        ) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's contract for `realloc` is passed on as is.
            unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// One second of a call through the pacer: audio every 20 ms, a 30 fps video frame of
    /// 6 packets, a probe every 250 ms, drops when the rate is too low for the queue.
    fn one_second(pacer: &mut Pacer<u32>, start: Instant, pacing_bps: u64) -> Instant {
        pacer.set_rates(pacing_bps, pacing_bps / 10);
        let mut now = start;
        for t in 0..1000u64 {
            now = start + ms(t);
            if t % 20 == 0 {
                let _ = pacer.enqueue(0, 120, PacketClass::Audio, now);
            }
            if t % 33 == 0 {
                for _ in 0..6 {
                    let _ = pacer.enqueue(1, 1200, PacketClass::Video, now);
                }
            }
            if t % 250 == 0 {
                pacer.start_probe(ProbeCluster {
                    id: t as u32,
                    bitrate_bps: pacing_bps * 2,
                    min_packets: 5,
                    min_bytes: 4000,
                });
            }
            while !matches!(pacer.poll(now), PacerOutput::Timeout(_) | PacerOutput::Idle) {}
        }
        now
    }

    #[test]
    fn steady_state_enqueue_and_poll_do_not_allocate() {
        let mut pacer = Pacer::new(PacerConfig {
            max_queue_packets: 64,
            ..PacerConfig::default()
        })
        .expect("valid");
        // Warm-up: the same rates once (below and above the offered load), so every
        // class's queue and the drop list grow to their working size.
        let rates = [500_000, 3_000_000, 200_000, 1_000_000];
        let mut now = Instant::now();
        for rate in rates {
            now = one_second(&mut pacer, now, rate);
        }
        let before = thread_allocations();
        for _ in 0..3 {
            for rate in rates {
                now = one_second(&mut pacer, now, rate);
            }
        }
        let allocations = thread_allocations() - before;
        assert!(
            pacer.counters().dropped_full.video > 0,
            "the queue limit was reached"
        );
        assert!(pacer.counters().probes_completed > 0);
        assert_eq!(allocations, 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Enqueue { size: usize, class: u8 },
        Advance { us: u64 },
        Rates { pacing: u64, padding: u64 },
        Probe { rate: u64, packets: u32, bytes: u32 },
    }

    fn op(probes: bool) -> impl Strategy<Value = Op> {
        let probe_weight = if probes { 1 } else { 0 };
        prop_oneof![
            6 => (1usize..1500, 0u8..4).prop_map(|(size, class)| Op::Enqueue { size, class }),
            4 => (0u64..50_000).prop_map(|us| Op::Advance { us }),
            1 => (0u64..5_000_000, 0u64..1_000_000).prop_map(|(pacing, padding)| Op::Rates { pacing, padding }),
            probe_weight => (1u64..10_000_000, 0u32..20, 0u32..20_000)
                .prop_map(|(rate, packets, bytes)| Op::Probe { rate, packets, bytes }),
        ]
    }

    const CLASSES: [PacketClass; 4] = QUEUED_CLASSES;

    /// Runs `ops`, checking bounds, priority and conservation at every step; returns the
    /// bytes sent outside probes and the bytes the rates allowed (integral + burst).
    fn check(ops: &[Op]) -> (u64, u64) {
        let config = PacerConfig {
            max_queue_packets: 64,
            max_queue_bytes: MAX_PACKET_BYTES,
            max_queue_time: ms(300),
            ..PacerConfig::default()
        };
        let mut pacer = Pacer::new(config).expect("valid");
        let t0 = Instant::now();
        let mut now = t0;
        let mut rate = config.start_pacing_bps;
        let mut allowed_bits: u128 = 0;
        let mut max_cap_bits: u128 = 0;
        let mut sent_bytes = 0u64;
        let mut next = 0u32;
        let mut handed_back = 0u64;
        for op in ops {
            match *op {
                Op::Enqueue { size, class } => {
                    if pacer
                        .enqueue(next, size, CLASSES[usize::from(class)], now)
                        .is_err()
                    {
                        handed_back += 1;
                    }
                    next += 1;
                }
                Op::Rates { pacing, padding } => {
                    pacer.set_rates(pacing, padding);
                    rate = pacer.pacing_bps();
                }
                Op::Probe {
                    rate,
                    packets,
                    bytes,
                } => pacer.start_probe(ProbeCluster {
                    id: next,
                    bitrate_bps: rate,
                    min_packets: packets,
                    min_bytes: bytes,
                }),
                Op::Advance { us } => {
                    let until = now + Duration::from_micros(us);
                    loop {
                        let waiting: Vec<usize> = CLASSES
                            .iter()
                            .map(|&c| pacer.queued_packets_of(c))
                            .collect();
                        match pacer.poll(now) {
                            PacerOutput::Timeout(at) if at <= until => {
                                assert!(at > now);
                                allowed_bits +=
                                    u128::from(rate) * (at - now).as_nanos() / 1_000_000_000;
                                now = at;
                            }
                            PacerOutput::Timeout(_) | PacerOutput::Idle => break,
                            PacerOutput::Send {
                                class,
                                size_bytes,
                                probe_cluster,
                                ..
                            } => {
                                // Strict priority: nothing more important was waiting.
                                let rank = CLASSES
                                    .iter()
                                    .position(|&c| c == class)
                                    .expect("queued class");
                                assert!(
                                    waiting[..rank].iter().all(|&n| n == 0),
                                    "{class:?} before {waiting:?}"
                                );
                                if probe_cluster.is_none() {
                                    sent_bytes += size_bytes as u64;
                                }
                            }
                            PacerOutput::Padding {
                                size_bytes,
                                probe_cluster,
                            } => {
                                if probe_cluster.is_none() {
                                    sent_bytes += size_bytes as u64;
                                }
                            }
                            PacerOutput::Dropped(_) => handed_back += 1,
                        }
                    }
                    allowed_bits += u128::from(rate) * (until - now).as_nanos() / 1_000_000_000;
                    now = until;
                }
            }
            max_cap_bits =
                max_cap_bits.max(u128::from(rate) * config.burst_window.as_nanos() / 1_000_000_000);
            // Bounded.
            assert!(pacer.queued_packets() <= config.max_queue_packets);
            assert!(pacer.queued_bytes() <= config.max_queue_bytes);
            // Conservation per class.
            let c = pacer.counters();
            for class in CLASSES {
                assert_eq!(
                    c.enqueued.get(class),
                    c.sent_packets.get(class)
                        + c.dropped_full.get(class)
                        + c.dropped_expired.get(class)
                        + pacer.queued_packets_of(class) as u64,
                    "{class:?}"
                );
            }
        }
        // Every drop is handed back: drain the ones not yet polled.
        loop {
            match pacer.poll(now) {
                PacerOutput::Dropped(_) => handed_back += 1,
                PacerOutput::Timeout(_) | PacerOutput::Idle => break,
                _ => {}
            }
        }
        let c = pacer.counters();
        assert_eq!(
            handed_back,
            c.dropped_full.total()
                + c.dropped_expired.total()
                + c.refused_full.total()
                + c.refused_invalid
        );
        let burst_bits = max_cap_bits + 2 * MAX_PACKET_BYTES as u128 * 8;
        (sent_bytes, ((allowed_bits + burst_bits) / 8) as u64)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_sequence_is_bounded_ordered_and_within_the_rate(ops in proptest::collection::vec(op(false), 1..300)) {
            let (sent, allowed) = check(&ops);
            prop_assert!(sent <= allowed, "sent {sent} allowed {allowed}");
        }

        #[test]
        fn any_sequence_with_probes_is_bounded_and_ordered(ops in proptest::collection::vec(op(true), 1..300)) {
            check(&ops);
        }
    }
}
