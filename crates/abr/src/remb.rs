//! Receive-side estimation for peers that use REMB instead of transport-cc (GCC's
//! `RemoteBitrateEstimatorAbsSendTime`): the same inter-arrival grouping, trendline detector
//! and AIMD control, fed with abs-send-time and arrival times, and the estimate sent back in
//! REMB packets at a bounded rate.

use std::time::{Duration, Instant};

use tincan_rtp::rtcp::RtcpWriter;

use crate::AbrError;
use crate::acknowledged::AcknowledgedBitrate;
use crate::aimd::AimdRateControl;
use crate::delay::{BandwidthUsage, DelayDetector};

/// abs-send-time is 24 bits of 6.18 fixed-point seconds: this many units per second.
pub const ABS_SEND_TIME_UNITS_PER_SECOND: i64 = 1 << 18;
/// The AIMD control runs at most this often while the verdict is not overuse (GCC's remote
/// estimator: on every packet; once per this interval is plenty and cheaper).
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(25);
/// A REMB is sent at least this often (GCC: 1 s)…
pub const REMB_INTERVAL: Duration = Duration::from_secs(1);
/// …and sooner, but not sooner than this after the last one (GCC: 200 ms), when the
/// estimate fell by more than [`REMB_DECREASE_RATIO`].
pub const REMB_MIN_INTERVAL: Duration = Duration::from_millis(200);
/// A fall of the estimate below this share of the last REMB sends one early (GCC: 0.97).
pub const REMB_DECREASE_RATIO: f64 = 0.97;
/// Most media SSRCs a REMB names (the RTCP field allows 255).
pub const MAX_REMB_SSRCS: usize = 16;
/// Round-trip time assumed by the receive side (it has none measured unless told).
pub const REMB_DEFAULT_RTT: Duration = Duration::from_millis(200);

/// Configuration of the [`RembEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RembConfig {
    /// Estimate before any measurement (default 300 kbps).
    pub start_bps: u64,
    /// Lowest estimate (default 30 kbps).
    pub min_bps: u64,
    /// Highest estimate (default 2.5 Mbps).
    pub max_bps: u64,
    /// SSRC written as the REMB's sender.
    pub sender_ssrc: u32,
}

impl Default for RembConfig {
    fn default() -> Self {
        let c = crate::ControllerConfig::default();
        Self {
            start_bps: c.start_bps,
            min_bps: c.min_bps,
            max_bps: c.max_bps,
            sender_ssrc: 0,
        }
    }
}

/// The receive-side estimator.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tincan_abr::{RembConfig, RembEstimator};
///
/// let t0 = Instant::now();
/// let mut remb = RembEstimator::new(RembConfig::default()).unwrap();
/// for i in 0..100u32 {
///     let at = t0 + Duration::from_millis(u64::from(i) * 10);
///     // abs-send-time: 2^18 units per second, so 10 ms is 2621.44 units.
///     remb.on_packet_received(at, i * 2621, 1000, 0x1234);
/// }
/// let mut out = Vec::new();
/// assert!(remb.poll_remb(t0 + Duration::from_secs(1), &mut out).unwrap());
/// assert!(!out.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RembEstimator {
    config: RembConfig,
    base: Option<Instant>,
    last_abs_ext: Option<i64>,
    delay: DelayDetector,
    aimd: AimdRateControl,
    incoming: AcknowledgedBitrate,
    last_update: Option<Instant>,
    last_remb: Option<(Instant, u64)>,
    ssrcs: Vec<u32>,
    scratch: Vec<u8>,
}

impl RembEstimator {
    /// An estimator at `config.start_bps`.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] when the bounds are out of order.
    pub fn new(config: RembConfig) -> Result<Self, AbrError> {
        crate::ControllerConfig {
            start_bps: config.start_bps,
            min_bps: config.min_bps,
            max_bps: config.max_bps,
        }
        .validate()?;
        Ok(Self {
            config,
            base: None,
            last_abs_ext: None,
            delay: DelayDetector::new(),
            aimd: AimdRateControl::new(
                config.start_bps,
                config.min_bps,
                config.max_bps,
                REMB_DEFAULT_RTT.as_micros() as i64,
            ),
            incoming: AcknowledgedBitrate::new(),
            last_update: None,
            last_remb: None,
            ssrcs: Vec::with_capacity(MAX_REMB_SSRCS),
            scratch: Vec::with_capacity(24 + 4 * MAX_REMB_SSRCS),
        })
    }

    /// A round-trip time, if the receiver knows one (from its own sender reports).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.aimd
            .set_rtt(i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX));
    }

    /// Records a media packet: when it arrived, its 24-bit abs-send-time, its size and
    /// SSRC (named in the REMB; at most [`MAX_REMB_SSRCS`] are kept).
    pub fn on_packet_received(
        &mut self,
        arrival: Instant,
        abs_send_time: u32,
        size_bytes: usize,
        ssrc: u32,
    ) {
        let base = *self.base.get_or_insert(arrival);
        let arrival_us =
            i64::try_from(arrival.saturating_duration_since(base).as_micros()).unwrap_or(i64::MAX);
        let raw = i64::from(abs_send_time & 0x00FF_FFFF);
        let ext = match self.last_abs_ext {
            None => raw,
            Some(last) => {
                let modulus = 1i64 << 24;
                let mut diff = (raw - last).rem_euclid(modulus);
                if diff >= modulus / 2 {
                    diff -= modulus;
                }
                last + diff
            }
        };
        self.last_abs_ext = Some(self.last_abs_ext.map_or(ext, |l| l.max(ext)));
        let send_us = ext.saturating_mul(1_000_000) / ABS_SEND_TIME_UNITS_PER_SECOND;
        if !self.ssrcs.contains(&ssrc) && self.ssrcs.len() < MAX_REMB_SSRCS {
            self.ssrcs.push(ssrc);
        }
        self.incoming.update(arrival_us, size_bytes, false);
        self.delay.on_packet(send_us, arrival_us, size_bytes);
        let due = self
            .last_update
            .is_none_or(|l| arrival.saturating_duration_since(l) >= UPDATE_INTERVAL);
        if due || self.delay.usage() == BandwidthUsage::Overusing {
            self.aimd
                .update(self.delay.usage(), self.incoming.bitrate_bps(), arrival_us);
            self.last_update = Some(arrival);
        }
    }

    /// The current estimate.
    pub fn estimate_bps(&self) -> u64 {
        self.aimd.estimate_bps()
    }

    /// The delay detector's verdict.
    pub fn usage(&self) -> BandwidthUsage {
        self.delay.usage()
    }

    /// When a REMB is next due (`None` before any packet).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.base?;
        match self.last_remb {
            None => self.base,
            Some((at, bps)) => {
                if (self.estimate_bps() as f64) < REMB_DECREASE_RATIO * bps as f64 {
                    at.checked_add(REMB_MIN_INTERVAL)
                } else {
                    at.checked_add(REMB_INTERVAL)
                }
            }
        }
    }

    /// Appends a REMB RTCP packet to `out` when one is due; returns whether it wrote one.
    ///
    /// # Errors
    ///
    /// [`AbrError::Rtp`] if the packet cannot be written (not expected).
    pub fn poll_remb(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<bool, AbrError> {
        let Some(due) = self.poll_timeout() else {
            return Ok(false);
        };
        if now < due {
            return Ok(false);
        }
        let bps = self.estimate_bps();
        RtcpWriter::new(&mut self.scratch).remb(self.config.sender_ssrc, bps, &self.ssrcs)?;
        out.extend_from_slice(&self.scratch);
        self.last_remb = Some((now, bps));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

    /// Sends 1000-byte packets at `send_bps` through a `capacity_bps` bottleneck for `secs`.
    fn run(send_bps: f64, capacity_bps: f64, secs: f64) -> RembEstimator {
        let t0 = Instant::now();
        let mut r = RembEstimator::new(RembConfig::default()).unwrap();
        let gap = 8000.0 / send_bps;
        let service = 8000.0 / capacity_bps;
        let mut link_free = 0.0f64;
        let mut t = 0.0;
        while t < secs {
            let arrive = link_free.max(t) + service;
            link_free = arrive;
            let abs = ((t * ABS_SEND_TIME_UNITS_PER_SECOND as f64) as u32) & 0xFF_FFFF;
            r.on_packet_received(t0 + Duration::from_secs_f64(arrive + 0.05), abs, 1000, 7);
            t += gap;
        }
        r
    }

    #[test]
    fn overuse_lowers_the_estimate_to_about_the_capacity() {
        let r = run(1_000_000.0, 500_000.0, 5.0);
        assert!(r.estimate_bps() < 500_000, "{}", r.estimate_bps());
    }

    #[test]
    fn an_uncongested_path_lets_it_grow() {
        let r = run(400_000.0, 5_000_000.0, 5.0);
        assert!(r.estimate_bps() > 300_000, "{}", r.estimate_bps());
    }

    #[test]
    fn remb_is_written_and_bounded_in_rate() {
        let t0 = Instant::now();
        let mut r = RembEstimator::new(RembConfig::default()).unwrap();
        let mut out = Vec::new();
        assert!(!r.poll_remb(t0, &mut out).unwrap());
        r.on_packet_received(t0, 0, 1000, 42);
        assert!(r.poll_remb(t0, &mut out).unwrap());
        let c = RtcpCompound::parse(&out).unwrap();
        let Some(Ok(RtcpPacket::Remb(remb))) = c.packets().next() else {
            panic!("no REMB");
        };
        assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [42]);
        assert!(remb.bitrate_bps <= 300_000 && remb.bitrate_bps > 290_000);
        assert!(
            !r.poll_remb(t0 + Duration::from_millis(500), &mut out)
                .unwrap()
        );
        assert!(r.poll_remb(t0 + Duration::from_secs(1), &mut out).unwrap());
    }
}
