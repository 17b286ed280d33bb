//! Minimum statistics: the noise floor under speech, from the lowest recent levels.
//!
//! The power of each 10 ms frame is averaged over 30 ms (a moving average, so a 200 ms
//! pause reaches the floor, where a one-pole smoother's tail would not; and the minimum of a
//! fluctuating noise is not far below its mean), and the floor is the lowest averaged level
//! of the last 3.2 s, kept as eight sub-window minima of 400 ms: gaps between words reach
//! it, a rising floor is followed within 3.2-3.6 s and a falling one at once.

/// Levels are floored here (digital silence), dB.
pub(crate) const FLOOR_DB: f32 = -100.0;
/// Frames the power is averaged over before the minimum is taken (30 ms).
const POWER_FRAMES: usize = 3;
/// Sub-windows of the minimum.
const WINDOWS: usize = 8;
/// Frames per sub-window (400 ms).
const WINDOW_FRAMES: u32 = 40;

/// A power (mean square, full scale 1) in dB, floored at [`FLOOR_DB`].
pub(crate) fn power_db(power: f64) -> f32 {
    // `dbov` is -inf for 0 and NaN below it; `max` takes the floor over either.
    (crate::level::dbov(power) as f32).max(FLOOR_DB)
}

/// One power sequence's floor tracker; a few floats, no allocation.
#[derive(Debug, Clone)]
pub(crate) struct MinimumStatistics {
    recent_power: [f64; POWER_FRAMES],
    /// Minimum of each completed sub-window.
    window_minima: [f32; WINDOWS],
    current_minimum: f32,
    window_frames: u32,
    floor_db: f32,
    started: bool,
}

impl MinimumStatistics {
    pub(crate) fn new() -> Self {
        Self {
            recent_power: [0.0; POWER_FRAMES],
            window_minima: [f32::INFINITY; WINDOWS],
            current_minimum: f32::INFINITY,
            window_frames: 0,
            floor_db: FLOOR_DB,
            started: false,
        }
    }

    /// The floor, dB.
    pub(crate) fn floor_db(&self) -> f32 {
        self.floor_db
    }

    /// Takes one frame's power (finite, not negative); returns the 30 ms average level, dB.
    /// The first frame fills the average, so a stream does not start from silence.
    pub(crate) fn update(&mut self, power: f64) -> f32 {
        if !self.started {
            self.recent_power = [power; POWER_FRAMES];
            self.started = true;
        }
        self.recent_power.rotate_left(1);
        self.recent_power[POWER_FRAMES - 1] = power;
        let smoothed_db = power_db(self.recent_power.iter().sum::<f64>() / POWER_FRAMES as f64);
        self.current_minimum = self.current_minimum.min(smoothed_db);
        self.window_frames += 1;
        self.floor_db = self
            .window_minima
            .iter()
            .fold(self.current_minimum, |a, &b| a.min(b));
        if self.window_frames == WINDOW_FRAMES {
            self.window_minima.rotate_left(1);
            self.window_minima[WINDOWS - 1] = self.current_minimum;
            self.current_minimum = f32::INFINITY;
            self.window_frames = 0;
        }
        smoothed_db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_reaches_the_floor_and_a_falling_floor_is_followed_at_once() {
        let mut tracker = MinimumStatistics::new();
        // Speech at -20 dB with a 200 ms gap at -60 dB every second.
        for k in 0..400 {
            let db = if k % 100 < 20 { -60.0 } else { -20.0 };
            tracker.update(10f64.powf(db / 10.0));
        }
        assert!(
            (tracker.floor_db() + 60.0).abs() < 0.5,
            "{}",
            tracker.floor_db()
        );
        for _ in 0..3 {
            tracker.update(1e-8);
        }
        assert!(
            (tracker.floor_db() + 80.0).abs() < 0.5,
            "{}",
            tracker.floor_db()
        );
        // A rising floor is followed once the sub-window that saw the old one has left the
        // 3.2 s: within 3.6 s.
        for _ in 0..360 {
            tracker.update(1e-4);
        }
        assert!(
            (tracker.floor_db() + 40.0).abs() < 0.5,
            "{}",
            tracker.floor_db()
        );
    }
}
