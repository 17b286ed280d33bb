//! Measurements shared by the video paths: rates over a window, rendered frame rate, and
//! freezes and pauses as the WebRTC statistics specification defines them.

use std::time::{Duration, Instant};

/// Window of the measured bitrates and frame rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// An interval between rendered frames at least this long is a pause (the sender stopped,
/// e.g. camera off), not a freeze: `RTCInboundRtpStreamStats.pauseCount`'s 5 s.
pub const PAUSE_THRESHOLD: Duration = Duration::from_secs(5);
/// Intervals in the freeze detector's average (libwebrtc and the specification: the last
/// 30 frames).
const FREEZE_WINDOW: usize = 30;
/// Intervals needed before freezes are judged.
const FREEZE_MIN_INTERVALS: usize = 5;

/// Bytes and events per [`RATE_WINDOW`]: the last complete window's figure, so a reading
/// does not jump within a window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateMeter {
    start: Option<Instant>,
    bytes: u64,
    events: u64,
    bps: u64,
    per_second: f64,
}

impl RateMeter {
    /// Counts `bytes` (one event) at `now`.
    pub(crate) fn add(&mut self, bytes: usize, now: Instant) {
        self.roll(now);
        self.bytes += bytes as u64;
        self.events += 1;
    }

    /// Closes the window if it is over at `now`.
    pub(crate) fn roll(&mut self, now: Instant) {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let secs = elapsed.as_secs_f64();
            // A window that ran long (nothing happened for a while) averages over its
            // whole length.
            self.bps = (self.bytes as f64 * 8.0 / secs) as u64;
            self.per_second = self.events as f64 / secs;
            self.bytes = 0;
            self.events = 0;
            self.start = Some(now);
        }
    }

    /// Bits per second of the last complete window.
    pub(crate) fn bps(&self) -> u64 {
        self.bps
    }

    /// Events per second of the last complete window.
    pub(crate) fn per_second(&self) -> f64 {
        self.per_second
    }
}

/// Freezes and pauses of rendered video.
///
/// A freeze is an interval between two rendered frames longer than
/// `max(3 × average, average + 150 ms)` over the previous 30 intervals (the WebRTC
/// statistics specification's `freezeCount`, as libwebrtc measures it); an interval of
/// [`PAUSE_THRESHOLD`] or more is a pause instead (`pauseCount`), which is what switching
/// video off looks like from the receiver, and is left out of the average.
#[derive(Debug, Clone)]
pub(crate) struct FreezeTracker {
    last: Option<Instant>,
    intervals: [Duration; FREEZE_WINDOW],
    count: usize,
    sum: Duration,
    pub(crate) freeze_count: u64,
    pub(crate) total_freezes_duration: Duration,
    pub(crate) pause_count: u64,
    pub(crate) total_pauses_duration: Duration,
    pub(crate) longest_interval: Duration,
    /// The sender was known to stop (see [`FreezeTracker::pause`]): the next interval is a
    /// pause whatever its length.
    paused: bool,
}

impl Default for FreezeTracker {
    fn default() -> Self {
        Self {
            last: None,
            intervals: [Duration::ZERO; FREEZE_WINDOW],
            count: 0,
            sum: Duration::ZERO,
            freeze_count: 0,
            total_freezes_duration: Duration::ZERO,
            pause_count: 0,
            total_pauses_duration: Duration::ZERO,
            longest_interval: Duration::ZERO,
            paused: false,
        }
    }
}

impl FreezeTracker {
    /// The stream stopped (its owner knows: no packets for a while, the sender's camera
    /// off): the interval up to the next rendered frame is a pause, not a freeze, even
    /// when shorter than [`PAUSE_THRESHOLD`].
    pub(crate) fn pause(&mut self) {
        self.paused = self.last.is_some();
    }

    /// A frame was rendered at `at` (not before the previous one).
    pub(crate) fn rendered(&mut self, at: Instant) {
        let Some(previous) = self.last.replace(at) else {
            return;
        };
        let interval = at.saturating_duration_since(previous);
        if interval >= PAUSE_THRESHOLD || std::mem::take(&mut self.paused) {
            self.pause_count += 1;
            self.total_pauses_duration += interval;
            return;
        }
        self.longest_interval = self.longest_interval.max(interval);
        let known = self.count.min(FREEZE_WINDOW);
        if known >= FREEZE_MIN_INTERVALS {
            let average = self.sum / known as u32;
            let threshold = (average * 3).max(average + Duration::from_millis(150));
            if interval > threshold {
                self.freeze_count += 1;
                self.total_freezes_duration += interval;
            }
        }
        let slot = self.count % FREEZE_WINDOW;
        if self.count >= FREEZE_WINDOW {
            self.sum = self.sum.saturating_sub(self.intervals[slot]);
        }
        self.intervals[slot] = interval;
        self.sum += interval;
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_meter_reports_the_last_window() {
        let t0 = Instant::now();
        let mut meter = RateMeter::default();
        for i in 0..10 {
            meter.add(1000, t0 + Duration::from_millis(100 * i));
        }
        assert_eq!(meter.bps(), 0, "window not over yet");
        meter.roll(t0 + Duration::from_secs(1));
        assert_eq!(meter.bps(), 80_000);
        assert!((meter.per_second() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn freezes_and_pauses_follow_the_specification() {
        let t0 = Instant::now();
        let mut tracker = FreezeTracker::default();
        let mut t = t0;
        for _ in 0..10 {
            t += Duration::from_millis(33);
            tracker.rendered(t);
        }
        // 33 ms average: threshold 183 ms.
        t += Duration::from_millis(180);
        tracker.rendered(t);
        assert_eq!(tracker.freeze_count, 0);
        for _ in 0..30 {
            t += Duration::from_millis(33);
            tracker.rendered(t);
        }
        t += Duration::from_millis(400);
        tracker.rendered(t);
        assert_eq!(tracker.freeze_count, 1);
        assert_eq!(tracker.total_freezes_duration, Duration::from_millis(400));
        t += Duration::from_secs(6);
        tracker.rendered(t);
        assert_eq!((tracker.freeze_count, tracker.pause_count), (1, 1));
        assert_eq!(tracker.total_pauses_duration, Duration::from_secs(6));
        // A known stop: a shorter gap is a pause too, once.
        tracker.pause();
        t += Duration::from_secs(2);
        tracker.rendered(t);
        assert_eq!((tracker.freeze_count, tracker.pause_count), (1, 2));
        for _ in 0..30 {
            t += Duration::from_millis(33);
            tracker.rendered(t);
        }
        t += Duration::from_secs(2);
        tracker.rendered(t);
        assert_eq!((tracker.freeze_count, tracker.pause_count), (2, 2));
    }
}
