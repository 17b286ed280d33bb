//! Render timing: where a frame's RTP timestamp lands on the local clock, and how long
//! after that it is rendered (the playout delay).
//!
//! - The timestamp mapping is the nominal clock rate anchored at a base frame plus a
//!   smoothed offset: the mean lateness of frames against the nominal line. Averaging
//!   (instead of anchoring on the earliest frame) puts typical frames on the line; the
//!   playout delay then covers the late ones. Clock drift between sender and receiver
//!   moves the offset slowly, and the filter follows it. A jump of more than a second
//!   (a paused sender, a clock step) re-anchors the mapping.
//! - The target delay is the jitter estimate ([`JitterEstimator`]) plus the decode time
//!   (95th percentile of recent reports) plus the render delay, plus one RTT while recent
//!   frames needed retransmission (so a retransmitted packet can still make its frame's
//!   render time), clamped to the configured minimum and maximum.
//! - The current delay moves toward the target by at most 100 ms per second of media,
//!   so rendering speeds up or slows down smoothly; a frame that is released late raises
//!   it at once by its lateness, as the video was late anyway.

use super::estimator::JitterEstimator;
use std::time::{Duration, Instant};

/// Largest change of the current delay per second of media time, in ms.
const MAX_DELAY_CHANGE_MS_PER_S: f64 = 100.0;
/// Deviation from the mapping beyond which it is re-anchored, in ms.
const REANCHOR_MS: f64 = 1_000.0;
/// Slowest gain of the offset filter (time constant 64 frames).
const MIN_OFFSET_GAIN: f64 = 1.0 / 64.0;
/// Frames further apart than this (ms of RTP time) do not give a jitter measurement.
const MAX_MEASUREMENT_GAP_MS: f64 = 5_000.0;
/// Decode-time reports kept for the percentile.
const DECODE_SAMPLES: usize = 64;
/// How long after a retransmitted frame the RTT stays part of the target.
const RETRANSMISSION_MEMORY: Duration = Duration::from_secs(10);

/// Bounds and fixed parts of the delay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DelayLimits {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    pub(crate) render_delay: Duration,
}

/// The timing state of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    ticks_per_ms: f64,
    limits: DelayLimits,
    /// Extra delay asked for by lip sync, added to the own target.
    extra_delay: Duration,
    rtt: Duration,
    /// Base frame of the mapping: extended RTP timestamp and local time.
    base: Option<(i64, Instant)>,
    /// Smoothed lateness of frames against the nominal line from `base`, ms.
    offset_ms: f64,
    mapped_frames: u32,
    /// The previous frame measured: extended timestamp and completion time.
    previous: Option<(i64, Instant)>,
    estimator: JitterEstimator,
    decode_times: [Duration; DECODE_SAMPLES],
    decode_count: usize,
    /// The delay in use, ms, once a frame has been released.
    current_ms: Option<f64>,
    /// Timestamp of the last frame that moved the current delay.
    last_released_ts: Option<i64>,
    last_retransmission: Option<Instant>,
}

impl Timing {
    pub(crate) fn new(clock_rate: u32, limits: DelayLimits) -> Self {
        Self {
            ticks_per_ms: f64::from(clock_rate) / 1000.0,
            limits,
            extra_delay: Duration::ZERO,
            rtt: Duration::from_millis(100),
            base: None,
            offset_ms: 0.0,
            mapped_frames: 0,
            previous: None,
            estimator: JitterEstimator::default(),
            decode_times: [Duration::ZERO; DECODE_SAMPLES],
            decode_count: 0,
            current_ms: None,
            last_released_ts: None,
            last_retransmission: None,
        }
    }

    /// Forgets the stream (new SSRC) but keeps settings and decode-time reports.
    pub(crate) fn reset_stream(&mut self) {
        self.base = None;
        self.offset_ms = 0.0;
        self.mapped_frames = 0;
        self.previous = None;
        self.estimator = JitterEstimator::default();
        self.current_ms = None;
        self.last_released_ts = None;
        self.last_retransmission = None;
    }

    pub(crate) fn set_limits(&mut self, limits: DelayLimits) {
        self.limits = limits;
    }

    pub(crate) fn set_extra_delay(&mut self, delay: Duration) {
        self.extra_delay = delay;
    }

    pub(crate) fn extra_delay(&self) -> Duration {
        self.extra_delay
    }

    pub(crate) fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    pub(crate) fn rtt(&self) -> Duration {
        self.rtt
    }

    fn ts_ms(&self, from: i64, to: i64) -> f64 {
        (to - from) as f64 / self.ticks_per_ms
    }

    /// A frame became complete at `at`. Frames that waited for a retransmission say
    /// nothing about network jitter and only mark that NACK is in use.
    pub(crate) fn frame_complete(
        &mut self,
        timestamp: i64,
        at: Instant,
        size: usize,
        retransmitted: bool,
    ) {
        if retransmitted {
            self.last_retransmission = Some(at);
            return;
        }
        self.update_mapping(timestamp, at);
        let delay = match self.previous {
            Some((prev_ts, prev_at)) if timestamp > prev_ts => {
                let media_ms = self.ts_ms(prev_ts, timestamp);
                if media_ms > MAX_MEASUREMENT_GAP_MS {
                    None
                } else {
                    Some(signed_ms(at, prev_at) - media_ms)
                }
            }
            // Out of order (reordered frames) or a timestamp step back: no measurement,
            // and the chain restarts from the newest frame.
            Some((prev_ts, _)) if timestamp <= prev_ts => return,
            _ => None,
        };
        self.previous = Some((timestamp, at));
        self.estimator.update(delay, size);
    }

    fn update_mapping(&mut self, timestamp: i64, at: Instant) {
        let Some((base_ts, base_at)) = self.base else {
            self.base = Some((timestamp, at));
            self.offset_ms = 0.0;
            self.mapped_frames = 1;
            return;
        };
        let lateness = signed_ms(at, base_at) - self.ts_ms(base_ts, timestamp);
        if !lateness.is_finite() || (lateness - self.offset_ms).abs() > REANCHOR_MS {
            self.base = Some((timestamp, at));
            self.offset_ms = 0.0;
            self.mapped_frames = 1;
            self.previous = None;
            return;
        }
        self.mapped_frames = self.mapped_frames.saturating_add(1);
        let gain = (1.0 / f64::from(self.mapped_frames)).max(MIN_OFFSET_GAIN);
        self.offset_ms += gain * (lateness - self.offset_ms);
    }

    /// Expected local arrival of the frame with `timestamp`, if the mapping has a base.
    pub(crate) fn expected_arrival(&self, timestamp: i64) -> Option<Instant> {
        let (base_ts, base_at) = self.base?;
        Some(offset_instant(
            base_at,
            self.ts_ms(base_ts, timestamp) + self.offset_ms,
        ))
    }

    /// A decode took `duration`.
    pub(crate) fn decode_time(&mut self, duration: Duration) {
        self.decode_times[self.decode_count % DECODE_SAMPLES] = duration;
        self.decode_count += 1;
    }

    /// 95th percentile of recent decode times (zero before any report).
    pub(crate) fn decode_estimate(&self) -> Duration {
        let n = self.decode_count.min(DECODE_SAMPLES);
        if n == 0 {
            return Duration::ZERO;
        }
        let mut sorted = self.decode_times;
        let sorted = &mut sorted[..n];
        sorted.sort_unstable();
        sorted[(n * 95).div_ceil(100).saturating_sub(1).min(n - 1)]
    }

    pub(crate) fn jitter_estimate(&self) -> Duration {
        duration_ms(self.estimator.estimate_ms())
    }

    /// The delay the stream needs on its own at `now` (without the lip-sync extra).
    pub(crate) fn own_target_delay(&self, now: Instant) -> Duration {
        let mut target = self
            .jitter_estimate()
            .saturating_add(self.decode_estimate())
            .saturating_add(self.limits.render_delay);
        if self
            .last_retransmission
            .is_some_and(|at| now.saturating_duration_since(at) < RETRANSMISSION_MEMORY)
        {
            target = target.saturating_add(self.rtt);
        }
        target.max(self.limits.min).min(self.limits.max)
    }

    /// The delay the buffer aims for at `now`: its own plus the lip-sync extra, within
    /// the maximum.
    pub(crate) fn target_delay(&self, now: Instant) -> Duration {
        self.own_target_delay(now)
            .saturating_add(self.extra_delay)
            .min(self.limits.max)
    }

    /// The delay in use (the target before the first frame).
    pub(crate) fn current_delay(&self, now: Instant) -> Duration {
        self.current_ms
            .map_or_else(|| self.target_delay(now), duration_ms)
    }

    /// Render time of a frame from its timestamp; frames with no mapping yet render
    /// `current delay` after they were complete.
    pub(crate) fn render_time(&self, timestamp: i64, completed: Instant, now: Instant) -> Instant {
        let arrival = self.expected_arrival(timestamp).unwrap_or(completed);
        let max = self.limits.max;
        // Never hold a frame longer than the maximum delay past its completion, whatever
        // the mapping says (a stale mapping must not stall the stream).
        (arrival + self.current_delay(now)).min(completed + max)
    }

    /// When a frame should leave the buffer: its render time less decode and render time.
    pub(crate) fn release_time(&self, render_at: Instant) -> Instant {
        let lead = self
            .decode_estimate()
            .saturating_add(self.limits.render_delay);
        render_at.checked_sub(lead).unwrap_or(render_at)
    }

    /// A frame was released at `now`, due at `release_at`: move the current delay.
    pub(crate) fn frame_released(&mut self, timestamp: i64, release_at: Instant, now: Instant) {
        let target = self.target_delay(now).as_secs_f64() * 1000.0;
        let max = self.limits.max.as_secs_f64() * 1000.0;
        let mut current = match self.current_ms {
            None => target,
            Some(current) => {
                let media_ms = self
                    .last_released_ts
                    .map_or(0.0, |prev| self.ts_ms(prev, timestamp).clamp(0.0, 1000.0));
                let step = MAX_DELAY_CHANGE_MS_PER_S * media_ms / 1000.0;
                current + (target - current).clamp(-step, step)
            }
        };
        let late_ms = signed_ms(now, release_at);
        if late_ms > 0.0 {
            current = (current + late_ms).min(target.max(current));
        }
        self.current_ms = Some(current.clamp(0.0, max));
        self.last_released_ts = Some(timestamp);
    }
}

/// `a - b` in ms, signed.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -((b - a).as_secs_f64() * 1000.0)
    }
}

fn duration_ms(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        // About 31 years: far beyond any delay limit, and safe for `Duration`.
        Duration::from_secs_f64((ms / 1000.0).min(1e9))
    } else {
        Duration::ZERO
    }
}

fn offset_instant(at: Instant, ms: f64) -> Instant {
    let magnitude = duration_ms(ms.abs());
    if ms >= 0.0 {
        at.checked_add(magnitude).unwrap_or(at)
    } else {
        at.checked_sub(magnitude).unwrap_or(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DelayLimits {
        DelayLimits {
            min: Duration::ZERO,
            max: Duration::from_secs(2),
            render_delay: Duration::from_millis(10),
        }
    }

    #[test]
    fn mapping_follows_the_mean_arrival() {
        let start = Instant::now();
        let mut timing = Timing::new(90_000, limits());
        for i in 0..200i64 {
            // Arrivals alternate 0 and 20 ms late against the nominal line.
            let late = if i % 2 == 0 { 0 } else { 20 };
            let at = start + Duration::from_millis((i * 33 + late) as u64);
            timing.frame_complete(i * 2970, at, 1000, false);
        }
        let expected = timing.expected_arrival(200 * 2970).unwrap();
        let nominal = start + Duration::from_millis(6600);
        let off = signed_ms(expected, nominal);
        assert!((off - 10.0).abs() < 3.0, "offset {off}");
    }

    #[test]
    fn decode_estimate_is_the_95th_percentile() {
        let mut timing = Timing::new(90_000, limits());
        assert_eq!(timing.decode_estimate(), Duration::ZERO);
        for ms in 1..=100u64 {
            timing.decode_time(Duration::from_millis(ms));
        }
        // The last 64 reports are 37..=100 ms; the 95th percentile of them is 97 ms.
        assert_eq!(timing.decode_estimate(), Duration::from_millis(97));
    }

    #[test]
    fn current_delay_moves_at_bounded_speed() {
        let start = Instant::now();
        let mut timing = Timing::new(90_000, limits());
        timing.frame_released(0, start, start);
        let first = timing.current_delay(start);
        timing.set_extra_delay(Duration::from_millis(500));
        // One frame later (33 ms of media) the delay may move by at most 3.3 ms.
        timing.frame_released(2970, start, start);
        let second = timing.current_delay(start);
        let moved = (second - first).as_secs_f64() * 1000.0;
        assert!(moved > 3.0 && moved <= 3.31, "moved {moved} ms");
    }
}
