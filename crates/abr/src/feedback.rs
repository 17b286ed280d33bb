//! The receive side of transport-wide congestion control: records when each transport-wide
//! sequence number arrived and writes transport-cc feedback at a fixed interval.

use std::time::{Duration, Instant};

use tincan_rtp::rtcp::{RtcpWriter, TwccBuilder};

use crate::AbrError;

/// Arrivals remembered (a power of two): packets later than this behind the newest are
/// counted as too old and not reported.
pub const RECEIVE_WINDOW: usize = 8192;
/// Most statuses one feedback packet describes; more pending packets go in the next one,
/// due at once. Keeps a feedback packet well under an MTU at any delta mix.
pub const MAX_STATUSES_PER_FEEDBACK: usize = 400;
/// Largest arrival-time step between two reported packets: the wire's signed 16-bit delta of
/// 250 µs units reaches ±8.19 s; a bigger step starts a new feedback packet.
pub const MAX_ARRIVAL_STEP_US: i64 = 8_000_000;
/// Shortest and longest feedback interval accepted.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_millis(1000));

/// Configuration of the [`FeedbackGenerator`].
///
/// ```
/// let c = tincan_abr::FeedbackConfig::default();
/// assert_eq!(c.interval, std::time::Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// Time between feedback packets (default 50 ms: the low end of GCC's 50-100 ms, since a
    /// faster report makes overuse seen sooner, at about 8 kbps of feedback at 2.5 Mbps).
    pub interval: Duration,
    /// SSRC written as the feedback's sender.
    pub sender_ssrc: u32,
    /// SSRC written as the feedback's media source.
    pub media_ssrc: u32,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(50),
            sender_ssrc: 0,
            media_ssrc: 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ext_seq: i64,
    arrival_us: i64,
}

/// Counters of the generator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackStats {
    /// Packets recorded.
    pub received: u64,
    /// Packets received twice (the first arrival is kept).
    pub duplicates: u64,
    /// Packets too far behind the newest to be reported.
    pub too_old: u64,
    /// Feedback packets written.
    pub feedbacks: u64,
}

/// Writes transport-cc feedback (sans-IO: arrivals and time in, RTCP bytes out).
#[derive(Debug, Clone)]
pub struct FeedbackGenerator {
    config: FeedbackConfig,
    base: Option<Instant>,
    slots: Vec<Option<Slot>>,
    highest: Option<i64>,
    /// First sequence number the next feedback starts at.
    next_start: Option<i64>,
    last_feedback: Option<Instant>,
    due: Option<Instant>,
    feedback_count: u8,
    builder: TwccBuilder,
    statuses: Vec<(u16, Option<i64>)>,
    scratch: Vec<u8>,
    stats: FeedbackStats,
}

impl FeedbackGenerator {
    /// A generator with nothing received.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] when the interval is outside [`INTERVAL_RANGE`].
    pub fn new(config: FeedbackConfig) -> Result<Self, AbrError> {
        if !(INTERVAL_RANGE.0..=INTERVAL_RANGE.1).contains(&config.interval) {
            return Err(AbrError::InvalidConfig {
                field: "interval",
                value: format!("{:?}", config.interval),
                expected: "10 ms to 1 s",
            });
        }
        Ok(Self {
            config,
            base: None,
            slots: vec![None; RECEIVE_WINDOW],
            highest: None,
            next_start: None,
            last_feedback: None,
            due: None,
            feedback_count: 0,
            builder: TwccBuilder::new(),
            statuses: Vec::with_capacity(MAX_STATUSES_PER_FEEDBACK),
            scratch: Vec::with_capacity(1500),
            stats: FeedbackStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> FeedbackStats {
        self.stats
    }

    fn slot(ext: i64) -> usize {
        (ext as usize) & (RECEIVE_WINDOW - 1)
    }

    /// Records that the packet with transport-wide number `transport_seq` arrived.
    pub fn on_packet_received(&mut self, transport_seq: u16, arrival: Instant) {
        let base = *self.base.get_or_insert(arrival);
        let arrival_us =
            i64::try_from(arrival.saturating_duration_since(base).as_micros()).unwrap_or(i64::MAX);
        let ext = match self.highest {
            None => i64::from(transport_seq),
            Some(h) => {
                let diff = transport_seq.wrapping_sub(h as u16) as i16;
                h + i64::from(diff)
            }
        };
        let highest = self.highest.map_or(ext, |h| h.max(ext));
        if highest - ext >= RECEIVE_WINDOW as i64 {
            self.stats.too_old += 1;
            return;
        }
        let slot = &mut self.slots[Self::slot(ext)];
        if slot.is_some_and(|s| s.ext_seq == ext) {
            self.stats.duplicates += 1;
            return;
        }
        *slot = Some(Slot {
            ext_seq: ext,
            arrival_us,
        });
        self.stats.received += 1;
        self.highest = Some(highest);
        let oldest = highest - RECEIVE_WINDOW as i64 + 1;
        // A late packet behind what was reported moves the start back: it is reported again
        // with its neighbours (the sender ignores the repeats).
        let start = self.next_start.map_or(ext, |s| s.min(ext)).max(oldest);
        self.next_start = Some(start);
        if self.due.is_none() {
            let periodic = self
                .last_feedback
                .and_then(|l| l.checked_add(self.config.interval))
                .unwrap_or(arrival);
            self.due = Some(periodic.max(arrival));
        }
    }

    /// When the next feedback is due (`None`: nothing to report).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Appends at most one transport-cc RTCP packet to `out` when one is due; returns
    /// whether it wrote one.
    ///
    /// # Errors
    ///
    /// [`AbrError::Rtp`] if the packet cannot be written (not expected: statuses and
    /// deltas are kept within the wire's limits).
    pub fn poll_feedback(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<bool, AbrError> {
        let (Some(due), Some(start), Some(highest)) = (self.due, self.next_start, self.highest)
        else {
            return Ok(false);
        };
        if now < due {
            return Ok(false);
        }
        let start = start.max(highest - RECEIVE_WINDOW as i64 + 1);
        self.statuses.clear();
        let mut last_arrival: Option<i64> = None;
        let mut ext = start;
        let mut cut = false;
        while ext <= highest {
            if self.statuses.len() >= MAX_STATUSES_PER_FEEDBACK {
                cut = true;
                break;
            }
            let arrival = self.slots[Self::slot(ext)]
                .filter(|s| s.ext_seq == ext)
                .map(|s| s.arrival_us);
            if let (Some(a), Some(l)) = (arrival, last_arrival)
                && (a - l).abs() > MAX_ARRIVAL_STEP_US
            {
                cut = true;
                break;
            }
            if arrival.is_some() {
                last_arrival = arrival;
            }
            self.statuses.push((ext as u16, arrival));
            ext += 1;
        }
        // Trailing packets not received are left for the next feedback (they may still come).
        while self.statuses.last().is_some_and(|s| s.1.is_none()) {
            self.statuses.pop();
            ext -= 1;
        }
        if self.statuses.is_empty() {
            self.due = None;
            return Ok(false);
        }
        let mut writer = RtcpWriter::new(&mut self.scratch);
        writer.transport_cc(
            &mut self.builder,
            self.config.sender_ssrc,
            self.config.media_ssrc,
            self.feedback_count,
            &self.statuses,
        )?;
        out.extend_from_slice(&self.scratch);
        self.feedback_count = self.feedback_count.wrapping_add(1);
        self.stats.feedbacks += 1;
        self.last_feedback = Some(now);
        self.next_start = Some(ext);
        self.due = if cut {
            // The packet was full or the next step too long for it: the rest at once.
            Some(now)
        } else if ext <= highest {
            // Packets not (yet) received at the end: at the next interval.
            now.checked_add(self.config.interval)
        } else {
            None
        };
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

    fn parse(bytes: &[u8]) -> Vec<(u16, Option<i64>)> {
        let c = RtcpCompound::parse(bytes).unwrap();
        let mut all = Vec::new();
        for p in c.packets() {
            if let Ok(RtcpPacket::TransportCc(fb)) = p {
                all.extend(fb.packets());
            }
        }
        all
    }

    #[test]
    fn reports_arrivals_and_gaps_at_the_interval() {
        let t0 = Instant::now();
        let mut g = FeedbackGenerator::new(FeedbackConfig::default()).unwrap();
        assert_eq!(g.poll_timeout(), None);
        g.on_packet_received(65_534, t0);
        g.on_packet_received(0, t0 + Duration::from_millis(2));
        assert_eq!(g.poll_timeout(), Some(t0));
        let mut out = Vec::new();
        assert!(
            g.poll_feedback(t0 + Duration::from_millis(3), &mut out)
                .unwrap()
        );
        let p = parse(&out);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].0, 65_534);
        assert_eq!(p[1], (65_535, None));
        assert_eq!(p[2].1.unwrap() - p[0].1.unwrap(), 2_000);
        assert_eq!(g.poll_timeout(), None);
        g.on_packet_received(1, t0 + Duration::from_millis(10));
        assert_eq!(g.poll_timeout(), Some(t0 + Duration::from_millis(53)));
        out.clear();
        assert!(
            !g.poll_feedback(t0 + Duration::from_millis(20), &mut out)
                .unwrap()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn late_packets_are_reported_again() {
        let t0 = Instant::now();
        let mut g = FeedbackGenerator::new(FeedbackConfig::default()).unwrap();
        g.on_packet_received(10, t0);
        g.on_packet_received(12, t0);
        let mut out = Vec::new();
        g.poll_feedback(t0, &mut out).unwrap();
        g.on_packet_received(11, t0 + Duration::from_millis(60));
        out.clear();
        g.poll_feedback(t0 + Duration::from_millis(60), &mut out)
            .unwrap();
        let p = parse(&out);
        // 11 and the packets after it, which the sender has seen already and ignores.
        assert_eq!(p.iter().map(|p| p.0).collect::<Vec<_>>(), [11, 12]);
    }

    #[test]
    fn long_silences_split_feedback() {
        let t0 = Instant::now();
        let mut g = FeedbackGenerator::new(FeedbackConfig::default()).unwrap();
        g.on_packet_received(0, t0);
        g.on_packet_received(1, t0 + Duration::from_secs(20));
        let mut out = Vec::new();
        assert!(
            g.poll_feedback(t0 + Duration::from_secs(20), &mut out)
                .unwrap()
        );
        assert_eq!(parse(&out).len(), 1);
        out.clear();
        assert!(
            g.poll_feedback(t0 + Duration::from_secs(20), &mut out)
                .unwrap()
        );
        assert_eq!(parse(&out)[0].0, 1);
    }

    #[test]
    fn bad_interval_is_rejected() {
        let c = FeedbackConfig {
            interval: Duration::ZERO,
            ..FeedbackConfig::default()
        };
        assert!(matches!(
            FeedbackGenerator::new(c),
            Err(AbrError::InvalidConfig {
                field: "interval",
                ..
            })
        ));
    }
}
