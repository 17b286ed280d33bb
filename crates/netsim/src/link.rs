//! One direction of a network path.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::rng::{Rng, splitmix64};
use crate::{LinkConfig, NetsimError};

/// Internal times are nanoseconds since the link's epoch, capped here (about 100 years) so
/// that sums never overflow and converting back to an `Instant` stays in range.
const MAX_NS: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

/// Normal jitter is cut at this many standard deviations either side of the base delay.
pub const JITTER_SIGMAS: f64 = 4.0;

/// Milliseconds (validated: finite, non-negative) to whole nanoseconds.
pub(crate) fn ms_to_ns(ms: f64) -> u64 {
    f64_to_ns(ms * 1e6)
}

/// Rounds a non-negative nanosecond count; negative or NaN becomes 0, huge saturates.
fn f64_to_ns(ns: f64) -> u64 {
    if ns > 0.0 {
        // `as` saturates, and MAX_NS bounds the result anyway.
        (ns.round() as u64).min(MAX_NS)
    } else {
        0
    }
}

/// What [`Link::poll`] has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T> {
    /// A packet whose delivery time has come; poll again, there may be more.
    Deliver(Delivery<T>),
    /// Nothing is due yet; the earliest delivery is at this instant.
    Timeout(Instant),
    /// Nothing is in flight.
    Idle,
}

/// A delivered packet and its story.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<T> {
    /// The packet, as given to [`Link::send`].
    pub packet: T,
    /// Its size as given to [`Link::send`].
    pub size_bytes: usize,
    /// When it was sent (the `now` of its `send`, or the epoch if that was earlier).
    pub sent_at: Instant,
    /// When the network delivered it: its scheduled time, which is at or before the `now`
    /// of the `poll` that returned it.
    pub delivered_at: Instant,
    /// Its send index on this link, from 0; both copies of a duplicate share it.
    pub sequence: u64,
    /// True for the second copy of a duplicated packet.
    pub duplicate: bool,
}

impl<T> Delivery<T> {
    /// Time from send to delivery.
    pub fn delay(&self) -> Duration {
        self.delivered_at.saturating_duration_since(self.sent_at)
    }
}

/// What a link has done so far. Conservation: `sent + duplicated = delivered + dropped() +
/// in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Packets given to `send`.
    pub sent: u64,
    /// Bytes given to `send`.
    pub bytes_sent: u64,
    /// Packets returned by `poll` (copies included).
    pub delivered: u64,
    /// Bytes returned by `poll`.
    pub bytes_delivered: u64,
    /// Second copies scheduled by duplication.
    pub duplicated: u64,
    /// Deliveries whose sequence is below one already delivered (they were overtaken).
    pub reordered: u64,
    /// Packets held back by the `reorder_probability` knob.
    pub held_back: u64,
    /// Packets that got a heavy-tailed delay spike.
    pub spiked: u64,
    /// Packets that had to wait at the bottleneck before serialisation.
    pub queued: u64,
    /// Sum over deliveries of (delivery - send) time.
    pub total_delay: Duration,
    /// Longest send-to-delivery time.
    pub max_delay: Duration,
    /// Longest wait at the bottleneck before serialisation of an admitted packet.
    pub max_queue_delay: Duration,
    /// Dropped by the Bernoulli or Gilbert-Elliott loss model.
    pub dropped_loss: u64,
    /// Dropped because they were sent during an outage.
    pub dropped_outage: u64,
    /// Dropped by the bottleneck's drop-tail queue (byte or time limit).
    pub dropped_queue: u64,
    /// Dropped because the link already held `max_in_flight_packets`.
    pub dropped_overflow: u64,
}

impl Counters {
    /// All drops, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_outage + self.dropped_queue + self.dropped_overflow
    }

    /// Mean send-to-delivery time, or zero before the first delivery.
    pub fn mean_delay(&self) -> Duration {
        if self.delivered == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.total_delay.as_nanos() / u128::from(self.delivered)) as u64)
        }
    }
}

/// A packet waiting for its delivery time.
#[derive(Debug)]
struct Scheduled<T> {
    at: u64,
    /// Insertion counter: ties in `at` leave in the order they were scheduled.
    order: u64,
    sent: u64,
    sequence: u64,
    duplicate: bool,
    size: usize,
    packet: T,
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl<T> Eq for Scheduled<T> {}
impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Scheduled<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// One independent random stream per impairment, so that turning one impairment on does
/// not change the pattern of another (the loss pattern is the same with or without jitter).
#[derive(Debug, Clone)]
struct Streams {
    loss: Rng,
    gilbert: Rng,
    jitter: Rng,
    spike: Rng,
    reorder: Rng,
    duplicate: Rng,
}

/// One direction of a network path: a sans-IO, seeded emulator.
///
/// Time comes in as `std::time::Instant`s given to [`send`](Self::send) and
/// [`poll`](Self::poll); the link never reads the clock. The first instant it is given
/// becomes its *epoch*, the zero of `outages` and `capacity_trace` (or call
/// [`set_epoch`](Self::set_epoch) first). Instants earlier than the epoch count as the epoch.
///
/// Each packet goes through: outage and loss at entry, the bottleneck (drop-tail queue and
/// serialisation at the current capacity), then propagation delay, jitter, spikes and the
/// reorder knob, then duplication. Its delivery time is fixed when it is sent.
#[derive(Debug)]
pub struct Link<T> {
    config: LinkConfig,
    rng: Streams,
    epoch: Option<Instant>,
    heap: BinaryHeap<Reverse<Scheduled<T>>>,
    /// Finish times and sizes of packets in the bottleneck, oldest first.
    backlog: VecDeque<(u64, usize)>,
    backlog_bytes: u64,
    /// When the bottleneck finishes serialising the last admitted packet.
    link_free_at: u64,
    /// Latest delivery time scheduled, for the in-order rule.
    last_at: u64,
    ge_bad: bool,
    next_order: u64,
    next_sequence: u64,
    /// Highest sequence delivered plus one (0: none yet), for the reordered counter.
    delivered_high: u64,
    outages_ns: Vec<(u64, u64)>,
    trace_ns: Vec<(u64, f64)>,
    /// Delay trace steps: (send time in ns since the epoch, base delay in ms).
    delay_trace_ns: Vec<(u64, f64)>,
    queue_limit_ns: Option<u64>,
    has_bottleneck: bool,
    counters: Counters,
}

impl<T> Link<T> {
    /// A link with this configuration and seed. The same seed and the same calls give the
    /// same deliveries at the same times, bit for bit, on every platform.
    ///
    /// # Errors
    ///
    /// The first invalid field of `config` (see [`LinkConfig::validate`]).
    pub fn new(config: LinkConfig, seed: u64) -> Result<Self, NetsimError> {
        config.validate()?;
        let mut sm = seed;
        let rng = Streams {
            loss: Rng::new(splitmix64(&mut sm)),
            jitter: Rng::new(splitmix64(&mut sm)),
            spike: Rng::new(splitmix64(&mut sm)),
            reorder: Rng::new(splitmix64(&mut sm)),
            duplicate: Rng::new(splitmix64(&mut sm)),
            // Last, so that adding it did not change the other streams.
            gilbert: Rng::new(splitmix64(&mut sm)),
        };
        let outages_ns = config
            .outages
            .iter()
            .map(|o| {
                let start = ms_to_ns(o.start_ms);
                (start, start + ms_to_ns(o.duration_ms))
            })
            .collect();
        let trace_ns = config
            .capacity_trace
            .iter()
            .map(|s| (ms_to_ns(s.at_ms), s.capacity_bps))
            .collect();
        let delay_trace_ns = config
            .delay_trace
            .iter()
            .map(|s| (ms_to_ns(s.at_ms), s.delay_ms))
            .collect();
        Ok(Self {
            queue_limit_ns: config.queue_limit_ms.map(ms_to_ns),
            has_bottleneck: config.capacity_bps.is_some() || !config.capacity_trace.is_empty(),
            config,
            rng,
            epoch: None,
            heap: BinaryHeap::new(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            link_free_at: 0,
            last_at: 0,
            ge_bad: false,
            next_order: 0,
            next_sequence: 0,
            delivered_high: 0,
            outages_ns,
            trace_ns,
            delay_trace_ns,
            counters: Counters::default(),
        })
    }

    /// The configuration the link was built from.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// What the link has done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Packets scheduled but not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.heap.len()
    }

    /// The epoch (zero of outages and capacity trace), once known.
    pub fn epoch(&self) -> Option<Instant> {
        self.epoch
    }

    /// Sets the epoch if no instant has been seen yet; returns the epoch in force.
    pub fn set_epoch(&mut self, epoch: Instant) -> Instant {
        *self.epoch.get_or_insert(epoch)
    }

    fn ns_since_epoch(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_nanos())
            .unwrap_or(MAX_NS)
            .min(MAX_NS)
    }

    /// `epoch + ns`; MAX_NS keeps this in range on every platform we know, and the fallback
    /// only keeps it total.
    fn at_instant(epoch: Instant, ns: u64) -> Instant {
        epoch.checked_add(Duration::from_nanos(ns)).unwrap_or(epoch)
    }

    /// Gives a packet of `size_bytes` to the link at `now`. It may be dropped (see
    /// [`counters`](Self::counters)); otherwise [`poll`](Self::poll) returns it later.
    ///
    /// `T: Clone` is needed only to make the duplicate copy, and no clone happens otherwise.
    pub fn send(&mut self, packet: T, size_bytes: usize, now: Instant)
    where
        T: Clone,
    {
        let t = self.ns_since_epoch(now);
        self.counters.sent += 1;
        self.counters.bytes_sent += size_bytes as u64;
        let sequence = self.next_sequence;
        self.next_sequence += 1;

        // The loss chain steps for every packet, so outages do not shift its pattern.
        let lost = self.loss_decision();
        if self.outages_ns.iter().any(|&(s, e)| t >= s && t < e) {
            self.counters.dropped_outage += 1;
            return;
        }
        if lost {
            self.counters.dropped_loss += 1;
            return;
        }
        if self.heap.len() >= self.config.max_in_flight_packets {
            self.counters.dropped_overflow += 1;
            return;
        }
        let Some(exit) = self.bottleneck(t, size_bytes) else {
            self.counters.dropped_queue += 1;
            return;
        };
        let duplicate = self.config.duplicate_probability > 0.0
            && self.rng.duplicate.chance(self.config.duplicate_probability);
        let copy = if duplicate {
            Some(packet.clone())
        } else {
            None
        };
        let at = self.delivery_time(t, exit);
        self.push(at, t, sequence, false, size_bytes, packet);
        if let Some(copy) = copy {
            // Duplication happens after the bottleneck, so the copy costs no capacity.
            if self.heap.len() < self.config.max_in_flight_packets {
                self.counters.duplicated += 1;
                let at = self.delivery_time(t, exit);
                self.push(at, t, sequence, true, size_bytes, copy);
            }
        }
    }

    fn push(&mut self, at: u64, sent: u64, sequence: u64, duplicate: bool, size: usize, packet: T) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            order,
            sent,
            sequence,
            duplicate,
            size,
            packet,
        }));
    }

    fn loss_decision(&mut self) -> bool {
        let mut lost = self.config.loss > 0.0 && self.rng.loss.chance(self.config.loss);
        if let Some(ge) = self.config.gilbert_elliott {
            let p_loss = if self.ge_bad {
                ge.loss_bad
            } else {
                ge.loss_good
            };
            lost |= self.rng.gilbert.chance(p_loss);
            let switch = if self.ge_bad { ge.r } else { ge.p };
            if self.rng.gilbert.chance(switch) {
                self.ge_bad = !self.ge_bad;
            }
        }
        lost
    }

    /// Admits a packet to the bottleneck at `t`; returns when its last bit leaves, or
    /// `None` if the drop-tail queue refuses it.
    fn bottleneck(&mut self, t: u64, size: usize) -> Option<u64> {
        if !self.has_bottleneck {
            return Some(t);
        }
        self.drain_backlog(t);
        let start = t.max(self.link_free_at);
        let wait = start - t;
        if self.queue_limit_ns.is_some_and(|limit| wait > limit) {
            return None;
        }
        if self
            .config
            .queue_limit_bytes
            .is_some_and(|limit| self.backlog_bytes + size as u64 > limit)
        {
            return None;
        }
        let finish = self.serialise(start, size as f64 * 8.0);
        self.link_free_at = finish;
        self.backlog.push_back((finish, size));
        self.backlog_bytes += size as u64;
        if wait > 0 {
            self.counters.queued += 1;
            let wait = Duration::from_nanos(wait);
            self.counters.max_queue_delay = self.counters.max_queue_delay.max(wait);
        }
        Some(finish)
    }

    fn drain_backlog(&mut self, t: u64) {
        while let Some(&(finish, size)) = self.backlog.front() {
            if finish > t {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= size as u64;
        }
    }

    /// The capacity at `t` (`None`: unlimited) and the time of the next trace step after `t`.
    fn rate_at(&self, t: u64) -> (Option<f64>, Option<u64>) {
        let i = self.trace_ns.partition_point(|&(at, _)| at <= t);
        let rate = if i == 0 {
            self.config.capacity_bps
        } else {
            Some(self.trace_ns[i - 1].1)
        };
        (rate, self.trace_ns.get(i).map(|&(at, _)| at))
    }

    /// When `bits` starting at `start` have been serialised, following trace steps that
    /// happen mid-packet. Ends after at most one round per trace step.
    fn serialise(&self, start: u64, bits: f64) -> u64 {
        let mut now = start;
        let mut remaining = bits;
        loop {
            let (rate, next) = self.rate_at(now);
            let Some(rate) = rate else {
                return now;
            };
            let need_ns = remaining * 1e9 / rate;
            match next {
                Some(next) if need_ns > (next - now) as f64 => {
                    remaining -= rate * (next - now) as f64 / 1e9;
                    now = next;
                }
                _ => return now.saturating_add(f64_to_ns(need_ns)).min(MAX_NS),
            }
        }
    }

    /// Base propagation delay (ms) of a packet sent at `t`: the last delay trace step at or
    /// before `t`, else `delay_ms`.
    fn base_delay_ms(&self, t: u64) -> f64 {
        let i = self.delay_trace_ns.partition_point(|&(at, _)| at <= t);
        if i == 0 {
            self.config.delay_ms
        } else {
            self.delay_trace_ns[i - 1].1
        }
    }

    /// Delivery time of a packet sent at `sent` and leaving the bottleneck at `exit`.
    fn delivery_time(&mut self, sent: u64, exit: u64) -> u64 {
        let mut delay = self.base_delay_ms(sent);
        let c = &self.config;
        if c.jitter_ms > 0.0 {
            // Truncated at JITTER_SIGMAS either side: a packet is never faster than the
            // path allows (see `min_delay`), and the cut moves about 1 draw in 16 000.
            let z = self
                .rng
                .jitter
                .normal()
                .clamp(-JITTER_SIGMAS, JITTER_SIGMAS);
            delay += c.jitter_ms * z;
        }
        if c.spike_probability > 0.0 && self.rng.spike.chance(c.spike_probability) {
            self.counters.spiked += 1;
            let spike = self.rng.spike.pareto(c.spike_scale_ms, c.spike_shape);
            delay += spike.min(c.spike_max_ms);
        }
        if c.reorder_probability > 0.0 && self.rng.reorder.chance(c.reorder_probability) {
            self.counters.held_back += 1;
            delay += c.reorder_delay_ms;
        }
        let mut at = exit.saturating_add(ms_to_ns(delay)).min(MAX_NS);
        if !c.allow_reorder {
            at = at.max(self.last_at);
        }
        self.last_at = self.last_at.max(at);
        at
    }

    /// The next delivery due at `now`, else the time of the next one, else idle.
    #[must_use = "a delivered packet would be lost"]
    pub fn poll(&mut self, now: Instant) -> Poll<T> {
        let t = self.ns_since_epoch(now);
        let epoch = self.set_epoch(now);
        // The bottleneck's backlog is not drained here but on the next send: a send may
        // be stamped earlier than this poll (see `min_delay`), and must see the bytes
        // still queued at its own instant. It stays bounded: only sends add to it.
        match self.heap.peek() {
            None => Poll::Idle,
            Some(Reverse(top)) if top.at > t => Poll::Timeout(Self::at_instant(epoch, top.at)),
            Some(_) => {
                let Some(Reverse(s)) = self.heap.pop() else {
                    return Poll::Idle;
                };
                let c = &mut self.counters;
                c.delivered += 1;
                c.bytes_delivered += s.size as u64;
                let delay = Duration::from_nanos(s.at.saturating_sub(s.sent));
                c.total_delay = c.total_delay.saturating_add(delay);
                c.max_delay = c.max_delay.max(delay);
                if s.sequence + 1 < self.delivered_high {
                    c.reordered += 1;
                }
                self.delivered_high = self.delivered_high.max(s.sequence + 1);
                Poll::Deliver(Delivery {
                    sent_at: Self::at_instant(epoch, s.sent),
                    delivered_at: Self::at_instant(epoch, s.at),
                    packet: s.packet,
                    size_bytes: s.size,
                    sequence: s.sequence,
                    duplicate: s.duplicate,
                })
            }
        }
    }

    /// The least delay any packet sent on this link can have
    /// ([`LinkConfig::min_delay`]).
    ///
    /// A simulator may use it as *lookahead*: what is sent at `t` is not delivered before
    /// `t + min_delay()`, so the receiving side can be run ahead to that instant before
    /// the sending side's sends of the same span are given to the link. Sends must still
    /// come in time order, but may be stamped earlier than a poll already made.
    pub fn min_delay(&self) -> Duration {
        self.config.min_delay()
    }

    /// The next delivery time, without delivering (`None`: nothing in flight).
    pub fn next_deadline(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        self.heap
            .peek()
            .map(|Reverse(s)| Self::at_instant(epoch, s.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CapacityStep, DelayStep, Outage};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn idle_timeout_deliver() {
        let mut link = Link::new(
            LinkConfig {
                delay_ms: 30.0,
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = Instant::now();
        assert_eq!(link.poll(t0), Poll::Idle);
        assert_eq!(link.next_deadline(), None);
        link.send("a", 10, t0);
        assert_eq!(link.poll(t0), Poll::Timeout(t0 + ms(30)));
        assert_eq!(link.next_deadline(), Some(t0 + ms(30)));
        assert_eq!(link.poll(t0 + ms(29)), Poll::Timeout(t0 + ms(30)));
        let Poll::Deliver(d) = link.poll(t0 + ms(31)) else {
            panic!("due")
        };
        assert_eq!(
            (d.packet, d.size_bytes, d.sequence, d.duplicate),
            ("a", 10, 0, false)
        );
        assert_eq!((d.sent_at, d.delivered_at), (t0, t0 + ms(30)));
        assert_eq!(link.poll(t0 + ms(31)), Poll::Idle);
        let c = link.counters();
        assert_eq!((c.sent, c.delivered, c.bytes_delivered), (1, 1, 10));
        assert_eq!(c.mean_delay(), ms(30));
    }

    #[test]
    fn no_packet_is_faster_than_min_delay() {
        let config = LinkConfig {
            delay_ms: 20.0,
            jitter_ms: 5.0,
            allow_reorder: true,
            delay_trace: vec![DelayStep {
                at_ms: 500.0,
                delay_ms: 25.0,
            }],
            ..LinkConfig::default()
        };
        // The lowest base (20 ms) less 4 sigma of 5 ms: nothing to run ahead by.
        let link = Link::<u64>::new(config, 7).unwrap();
        assert_eq!(link.min_delay(), Duration::ZERO);
        let mut link = Link::new(
            LinkConfig {
                delay_ms: 30.0,
                jitter_ms: 5.0,
                allow_reorder: true,
                ..LinkConfig::default()
            },
            7,
        )
        .unwrap();
        assert_eq!(link.min_delay(), ms(10));
        let t0 = Instant::now();
        let mut least = Duration::MAX;
        for i in 0..200_000u64 {
            link.send(i, 100, t0 + Duration::from_micros(i * 10));
            while let Poll::Deliver(d) = link.poll(t0 + Duration::from_micros(i * 10)) {
                least = least.min(d.delay());
            }
        }
        // 200 000 normal draws reach beyond 4 sigma about a dozen times: the cut is hit.
        assert_eq!(least, link.min_delay());
    }

    #[test]
    fn a_send_stamped_before_a_poll_sees_the_queue_at_its_own_instant() {
        // 8 kbit/s, 100-byte packets: 100 ms each; the queue holds 250 bytes.
        let config = LinkConfig {
            capacity_bps: Some(8000.0),
            queue_limit_bytes: Some(250),
            delay_ms: 50.0,
            ..LinkConfig::default()
        };
        let t0 = Instant::now();
        let deliveries = |polls_first: bool| {
            let mut link = Link::new(config.clone(), 3).unwrap();
            link.set_epoch(t0);
            link.send(1, 100, t0);
            link.send(2, 100, t0);
            if polls_first {
                // A receiver run ahead to 250 ms before the sender's send at 150 ms.
                assert!(matches!(link.poll(t0 + ms(250)), Poll::Deliver(_)));
            }
            // At 150 ms packet 2 is still in the bottleneck: 100 bytes + 200 do not fit.
            link.send(3, 200, t0 + ms(150));
            let mut got = Vec::new();
            while let Poll::Deliver(d) = link.poll(t0 + ms(1000)) {
                got.push((d.packet, d.delivered_at));
            }
            (got, link.counters().dropped_queue)
        };
        let (interleaved, dropped) = deliveries(false);
        let (ahead, dropped_ahead) = deliveries(true);
        assert_eq!((dropped, dropped_ahead), (1, 1));
        assert_eq!(interleaved[1..], ahead[..]);
    }

    #[test]
    fn epoch_anchors_outages_and_earlier_instants_clamp() {
        let t0 = Instant::now();
        let mut link = Link::new(
            LinkConfig {
                outages: vec![Outage {
                    start_ms: 0.0,
                    duration_ms: 100.0,
                }],
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        assert_eq!(link.set_epoch(t0 + ms(1000)), t0 + ms(1000));
        // A second call does not move it.
        assert_eq!(link.set_epoch(t0), t0 + ms(1000));
        link.send(1, 1, t0); // before the epoch: counts as the epoch, inside the outage
        link.send(2, 1, t0 + ms(1050));
        link.send(3, 1, t0 + ms(1100));
        assert_eq!(link.counters().dropped_outage, 2);
        let Poll::Deliver(d) = link.poll(t0 + ms(1100)) else {
            panic!("due")
        };
        assert_eq!(d.packet, 3);
    }

    #[test]
    fn serialisation_follows_a_step_mid_packet() {
        let mut link = Link::new(
            LinkConfig {
                capacity_bps: Some(1000.0),
                capacity_trace: vec![CapacityStep {
                    at_ms: 500.0,
                    capacity_bps: 2000.0,
                }],
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = Instant::now();
        // 1000 bits: 500 in the first 500 ms at 1 kbit/s, the other 500 in 250 ms at 2 kbit/s.
        link.send((), 125, t0);
        assert_eq!(link.poll(t0), Poll::Timeout(t0 + ms(750)));
        // The next packet queues behind it: 1000 bits at 2 kbit/s.
        link.send((), 125, t0 + ms(100));
        assert_eq!(link.counters().queued, 1);
        assert_eq!(link.counters().max_queue_delay, ms(650));
        let mut times = Vec::new();
        while let Poll::Deliver(d) = link.poll(t0 + ms(2000)) {
            times.push(d.delivered_at - t0);
        }
        assert_eq!(times, [ms(750), ms(1250)]);
    }

    /// Sends a packet every 20 ms for 2 s and returns each one's delay in ms.
    fn delays_with_trace(allow_reorder: bool, before_ms: f64, after_ms: f64) -> Vec<f64> {
        let mut link = Link::new(
            LinkConfig {
                delay_ms: before_ms,
                delay_trace: vec![DelayStep {
                    at_ms: 1000.0,
                    delay_ms: after_ms,
                }],
                allow_reorder,
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = Instant::now();
        for k in 0..100u64 {
            link.send(k, 100, t0 + ms(20 * k));
        }
        let mut out = Vec::new();
        let mut last_seq = None;
        while let Poll::Deliver(d) = link.poll(t0 + ms(10_000)) {
            if let Some(last) = last_seq {
                assert!(d.sequence > last, "reordered: {} after {last}", d.sequence);
            }
            last_seq = Some(d.sequence);
            assert_eq!(d.sent_at, t0 + ms(20 * d.packet));
            out.push(d.delay().as_secs_f64() * 1000.0);
        }
        assert_eq!(out.len(), 100);
        out
    }

    #[test]
    fn delay_step_shifts_packets_sent_after_it() {
        let delays = delays_with_trace(false, 40.0, 240.0);
        // Packets 0..50 were sent before 1 s, 50.. at or after it.
        for (k, d) in delays.iter().enumerate() {
            let want = if k < 50 { 40.0 } else { 240.0 };
            assert!((d - want).abs() < 1e-6, "packet {k}: {d} ms, want {want}");
        }
    }

    #[test]
    fn delay_step_down_does_not_reorder_an_in_order_link() {
        let delays = delays_with_trace(false, 240.0, 40.0);
        // The last packet sent before the step leaves at 980 + 240 = 1220 ms; packets sent
        // after it bunch behind it until their own 40 ms delay is later.
        let t_last = 980.0 + 240.0;
        for (k, d) in delays.iter().enumerate() {
            let sent = 20.0 * k as f64;
            let want = if k < 50 {
                240.0
            } else {
                (sent + 40.0).max(t_last) - sent
            };
            assert!((d - want).abs() < 1e-6, "packet {k}: {d} ms, want {want}");
        }
        // With reordering allowed the step takes effect at once.
        let mut link = Link::new(
            LinkConfig {
                delay_ms: 240.0,
                delay_trace: vec![DelayStep {
                    at_ms: 1000.0,
                    delay_ms: 40.0,
                }],
                allow_reorder: true,
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = link.set_epoch(Instant::now());
        link.send(0, 1, t0 + ms(980));
        link.send(1, 1, t0 + ms(1000));
        let Poll::Deliver(d) = link.poll(t0 + ms(2000)) else {
            panic!("due")
        };
        assert_eq!((d.packet, d.delay()), (1, ms(40)));
        assert_eq!(link.counters().reordered, 0);
    }

    #[test]
    fn in_flight_limit_drops_and_counts() {
        let mut link = Link::new(
            LinkConfig {
                delay_ms: 10.0,
                duplicate_probability: 1.0,
                max_in_flight_packets: 5,
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = Instant::now();
        for i in 0..10 {
            link.send(i, 1, t0);
        }
        let c = *link.counters();
        // Packets 0 and 1 with copies, packet 2 whose copy found no room, then overflow.
        assert_eq!((c.duplicated, c.dropped_overflow), (2, 7));
        assert_eq!(link.in_flight(), 5);
        assert_eq!(c.sent + c.duplicated, c.dropped() + link.in_flight() as u64);
        let mut got = Vec::new();
        while let Poll::Deliver(d) = link.poll(t0 + ms(10)) {
            got.push((d.packet, d.duplicate));
        }
        assert_eq!(
            got,
            [(0, false), (0, true), (1, false), (1, true), (2, false)]
        );
    }

    #[test]
    fn time_limited_queue_refuses_long_waits() {
        let mut link = Link::new(
            LinkConfig {
                capacity_bps: Some(8000.0), // 1 byte per ms
                queue_limit_ms: Some(25.0),
                ..LinkConfig::default()
            },
            1,
        )
        .unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            link.send((), 10, t0); // waits 0, 10, 20 ms; then 30 > 25: dropped
        }
        let c = link.counters();
        assert_eq!((c.dropped_queue, c.queued), (2, 2));
        assert_eq!(c.max_queue_delay, ms(20));
    }
}
