//! Render-side statistics: freezes as the WebRTC statistics specification defines them
//! (`RTCInboundRtpStreamStats.freezeCount` and `totalFreezesDuration`).
//!
//! A freeze is an interval between two rendered frames longer than
//! `max(3 × average, average + 150 ms)`, where the average is over the intervals of the
//! last 30 rendered frames before it (the specification's wording; libwebrtc does the
//! same). The first intervals of a stream have no meaningful average, so detection
//! starts once 5 intervals are known.

use std::time::{Duration, Instant};

/// Intervals in the average.
const WINDOW: usize = 30;
/// Intervals needed before freezes are detected.
const MIN_INTERVALS: usize = 5;

/// Inter-frame intervals of rendered frames and the freezes among them.
#[derive(Debug, Clone)]
pub(crate) struct FreezeDetector {
    last_render: Option<Instant>,
    intervals: [Duration; WINDOW],
    count: usize,
    sum: Duration,
    pub(crate) freeze_count: u64,
    pub(crate) total_freezes_duration: Duration,
    pub(crate) total_inter_frame_delay: Duration,
    pub(crate) total_squared_inter_frame_delay: f64,
}

impl Default for FreezeDetector {
    fn default() -> Self {
        Self {
            last_render: None,
            intervals: [Duration::ZERO; WINDOW],
            count: 0,
            sum: Duration::ZERO,
            freeze_count: 0,
            total_freezes_duration: Duration::ZERO,
            total_inter_frame_delay: Duration::ZERO,
            total_squared_inter_frame_delay: 0.0,
        }
    }
}

impl FreezeDetector {
    /// A frame was rendered at `at`; returns the interval if it was a freeze.
    pub(crate) fn frame_rendered(&mut self, at: Instant) -> Option<Duration> {
        let previous = self.last_render.replace(at);
        let interval = at.saturating_duration_since(previous?);
        self.total_inter_frame_delay = self.total_inter_frame_delay.saturating_add(interval);
        self.total_squared_inter_frame_delay += interval.as_secs_f64().powi(2);
        let known = self.count.min(WINDOW);
        let mut freeze = None;
        if known >= MIN_INTERVALS {
            let average = self.sum / known as u32;
            let threshold = average
                .saturating_mul(3)
                .max(average.saturating_add(Duration::from_millis(150)));
            if interval > threshold {
                self.freeze_count += 1;
                self.total_freezes_duration = self.total_freezes_duration.saturating_add(interval);
                freeze = Some(interval);
            }
        }
        let slot = self.count % WINDOW;
        if self.count >= WINDOW {
            self.sum = self.sum.saturating_sub(self.intervals[slot]);
        }
        self.intervals[slot] = interval;
        self.sum = self.sum.saturating_add(interval);
        self.count += 1;
        freeze
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_the_larger_of_three_times_and_plus_150_ms() {
        let start = Instant::now();
        let mut detector = FreezeDetector::default();
        let mut at = start;
        for _ in 0..=10 {
            detector.frame_rendered(at);
            at += Duration::from_millis(33);
        }
        // Average 33 ms: threshold max(99, 183) = 183 ms.
        at += Duration::from_millis(150 - 33); // interval 150 ms: no freeze.
        assert_eq!(detector.frame_rendered(at), None);
        let mut detector = FreezeDetector::default();
        let mut at = start;
        for _ in 0..=10 {
            detector.frame_rendered(at);
            at += Duration::from_millis(100);
        }
        // Average 100 ms: threshold max(300, 250) = 300 ms.
        at += Duration::from_millis(200); // interval 300 ms: not above.
        assert_eq!(detector.frame_rendered(at), None);
        // The 300 ms interval now counts: average 1300 / 11 = 118 ms, threshold 355 ms.
        at += Duration::from_millis(354);
        assert_eq!(detector.frame_rendered(at), None);
        // Average (1300 + 354) / 12 = 138 ms, threshold 414 ms.
        at += Duration::from_millis(500);
        assert_eq!(
            detector.frame_rendered(at),
            Some(Duration::from_millis(500))
        );
        assert_eq!(detector.freeze_count, 1);
    }
}
