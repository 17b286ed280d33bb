//! Allocation of the controller's target rate: audio first, then video, with the video
//! rung (resolution and frame rate) chosen from the remaining rate with hysteresis.
//!
//! - **Audio** gets its base rate plus the redundancy budget the loss-recovery policy asks
//!   for (`tincan-fec`'s `AudioRedundancy::bitrate()` minus its primary, given here as a
//!   plain number), as long as the target covers it; below that, audio gets the whole
//!   target, so audio is never starved while the target is at least its minimum.
//! - **Video** gets the rest, capped at [`AllocationConfig::max_video_bps`]. The rung is
//!   the highest of the ladder whose `min_bps` the video rate reaches, with hysteresis:
//!   a step *up* needs the rate at or above the next rung's `min_bps × (1 + up_margin)`
//!   for `up_hold` without a break; a step *down* happens at once when the rate falls below
//!   the current rung's `min_bps`. Below the lowest rung video pauses (rung `None`, video
//!   rate 0); it resumes like any step up.
//!
//! The default ladder ([`default_ladder`]) follows the call kits' tiers (640×360 at
//! 500 kbit/s, 960×540 at 850, 1280×720 at 1200, 1920×1080 at 2000) and adds three low
//! rungs: 640×360 at 15 fps from 350 kbit/s, 320×180 at 30 fps from 250, 320×180 at 15 fps
//! from 150 — the floor: below 150 kbit/s of video rate, video pauses (a 320×180 picture at
//! fewer bits is more artefact than picture, and audio is what keeps a call going).

use std::time::{Duration, Instant};

use crate::error::{AbrError, invalid};

/// Default margin above the next rung's minimum a step up needs: 15%, so a rate hovering
/// just above a rung boundary does not climb to a rung it cannot hold.
pub const DEFAULT_UP_MARGIN: f64 = 0.15;
/// Default time the rate must stay above the step-up threshold: 3 s, longer than the
/// controller's multiplicative-increase overshoot after a probe.
pub const DEFAULT_UP_HOLD: Duration = Duration::from_secs(3);
/// Default cap on the video rate: 2.5 Mbit/s, 25% above the top rung's minimum.
pub const DEFAULT_MAX_VIDEO_BPS: u64 = 2_500_000;
/// Most rungs a ladder may have.
pub const MAX_RUNGS: usize = 32;

/// One rung of the video ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoRung {
    /// Picture width, pixels.
    pub width: u32,
    /// Picture height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video rate from which the rung is used (and below which it is left at once).
    pub min_bps: u64,
}

const fn rung(width: u32, height: u32, fps: u32, min_kbps: u64) -> VideoRung {
    VideoRung {
        width,
        height,
        fps,
        min_bps: min_kbps * 1000,
    }
}

/// The default ladder, lowest first (see the module documentation).
pub const DEFAULT_LADDER: [VideoRung; 7] = [
    rung(320, 180, 15, 150),
    rung(320, 180, 30, 250),
    rung(640, 360, 15, 350),
    rung(640, 360, 30, 500),
    rung(960, 540, 30, 850),
    rung(1280, 720, 30, 1200),
    rung(1920, 1080, 30, 2000),
];

/// The default ladder as a vector, for [`AllocationConfig::ladder`].
pub fn default_ladder() -> Vec<VideoRung> {
    DEFAULT_LADDER.to_vec()
}

/// Settings of an [`Allocator`].
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationConfig {
    /// Rungs, lowest first: `min_bps` strictly increasing, every field above zero, at most
    /// [`MAX_RUNGS`]. Default [`DEFAULT_LADDER`].
    pub ladder: Vec<VideoRung>,
    /// Margin above the next rung's minimum for a step up, 0 to 1. Default
    /// [`DEFAULT_UP_MARGIN`].
    pub up_margin: f64,
    /// Time above that threshold before stepping up. Default [`DEFAULT_UP_HOLD`].
    pub up_hold: Duration,
    /// Cap on the video rate, at least the top rung's minimum. Default
    /// [`DEFAULT_MAX_VIDEO_BPS`].
    pub max_video_bps: u64,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        Self {
            ladder: default_ladder(),
            up_margin: DEFAULT_UP_MARGIN,
            up_hold: DEFAULT_UP_HOLD,
            max_video_bps: DEFAULT_MAX_VIDEO_BPS,
        }
    }
}

impl AllocationConfig {
    fn validate(&self) -> Result<(), AbrError> {
        if self.ladder.is_empty() || self.ladder.len() > MAX_RUNGS {
            return invalid(
                "ladder",
                format!("{} rungs", self.ladder.len()),
                "1 to 32 rungs",
            );
        }
        if self
            .ladder
            .iter()
            .any(|r| r.width == 0 || r.height == 0 || r.fps == 0 || r.min_bps == 0)
            || self.ladder.windows(2).any(|w| w[0].min_bps >= w[1].min_bps)
        {
            return invalid(
                "ladder",
                format!("{:?}", self.ladder),
                "non-zero fields, min_bps strictly increasing",
            );
        }
        if !(0.0..=1.0).contains(&self.up_margin) {
            return invalid("up_margin", self.up_margin, "0 to 1");
        }
        let top = self.ladder[self.ladder.len() - 1].min_bps;
        if self.max_video_bps < top {
            return invalid(
                "max_video_bps",
                self.max_video_bps,
                "at least the top rung's min_bps",
            );
        }
        Ok(())
    }
}

/// What audio asks for, from the audio encoder and the loss-recovery policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioDemand {
    /// The primary encoding with its packet overhead, bit/s.
    pub base_bps: u64,
    /// Redundancy on top (RED copies, packet copies: `AudioRedundancy::bitrate()` minus its
    /// primary), bit/s.
    pub redundancy_bps: u64,
}

impl AudioDemand {
    /// Base plus redundancy.
    pub fn total_bps(&self) -> u64 {
        self.base_bps.saturating_add(self.redundancy_bps)
    }
}

/// The split of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Audio rate (base first, then redundancy), bit/s.
    pub audio_bps: u64,
    /// Of that, redundancy, bit/s.
    pub audio_redundancy_bps: u64,
    /// Video rate for the encoder, bit/s (0 when paused).
    pub video_bps: u64,
    /// The video rung, or `None` when video is paused.
    pub rung: Option<VideoRung>,
    /// The rung changed with this allocation (the encoder reconfigures; a resolution
    /// change usually costs a keyframe).
    pub rung_changed: bool,
}

/// Allocates targets between audio and video, keeping the video rung with hysteresis.
#[derive(Debug, Clone)]
pub struct Allocator {
    config: AllocationConfig,
    /// Index of the current rung; `None` = paused, or before the first allocation.
    rung: Option<usize>,
    started: bool,
    /// Since when the rate has been at or above the next rung's step-up threshold.
    up_since: Option<Instant>,
    changes: u64,
}

impl Allocator {
    /// An allocator with `config`.
    ///
    /// # Errors
    ///
    /// [`AbrError::InvalidConfig`] naming the first bad field.
    pub fn new(config: AllocationConfig) -> Result<Self, AbrError> {
        config.validate()?;
        Ok(Self {
            config,
            rung: None,
            started: false,
            up_since: None,
            changes: 0,
        })
    }

    /// The current rung (`None` when paused).
    pub fn rung(&self) -> Option<VideoRung> {
        self.rung.map(|i| self.config.ladder[i])
    }

    /// Rung changes so far (the first choice not counted).
    pub fn rung_changes(&self) -> u64 {
        self.changes
    }

    /// The highest rung whose minimum times `factor` is at most `bps`.
    fn highest_at(&self, bps: u64, factor: f64) -> Option<usize> {
        self.config
            .ladder
            .iter()
            .rposition(|r| r.min_bps as f64 * factor <= bps as f64)
    }

    /// Splits `target_bps` at `now` between `audio` and video.
    pub fn allocate(&mut self, target_bps: u64, audio: AudioDemand, now: Instant) -> Allocation {
        let audio_bps = target_bps.min(audio.total_bps());
        let audio_redundancy_bps = audio_bps.saturating_sub(audio.base_bps);
        let available = (target_bps - audio_bps).min(self.config.max_video_bps);
        let before = self.rung;
        let first = !self.started;
        if first {
            // The first choice: straight to what the rate allows, no hold.
            self.started = true;
            self.rung = self.highest_at(available, 1.0);
            self.up_since = None;
        } else if self
            .rung
            .is_some_and(|i| available < self.config.ladder[i].min_bps)
        {
            // Down at once, to the highest rung the rate still reaches (or pause).
            self.rung = self.highest_at(available, 1.0);
            self.up_since = None;
        } else {
            let next = self.rung.map_or(0, |i| i + 1);
            let up_factor = 1.0 + self.config.up_margin;
            match self.config.ladder.get(next) {
                Some(r) if available as f64 >= r.min_bps as f64 * up_factor => {
                    let since = *self.up_since.get_or_insert(now);
                    if now.saturating_duration_since(since) >= self.config.up_hold {
                        self.rung = self.highest_at(available, up_factor).max(Some(next));
                        self.up_since = None;
                    }
                }
                _ => self.up_since = None,
            }
        }
        let rung_changed = !first && before != self.rung;
        self.changes += u64::from(rung_changed);
        Allocation {
            audio_bps,
            audio_redundancy_bps,
            video_bps: if self.rung.is_some() { available } else { 0 },
            rung: self.rung(),
            rung_changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AUDIO: AudioDemand = AudioDemand {
        base_bps: 50_000,
        redundancy_bps: 20_000,
    };

    fn allocator() -> Allocator {
        Allocator::new(AllocationConfig::default()).expect("valid")
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn bad_configuration_is_refused() {
        let mut unsorted = default_ladder();
        unsorted.swap(0, 1);
        for config in [
            AllocationConfig {
                ladder: Vec::new(),
                ..AllocationConfig::default()
            },
            AllocationConfig {
                ladder: unsorted,
                ..AllocationConfig::default()
            },
            AllocationConfig {
                up_margin: 2.0,
                ..AllocationConfig::default()
            },
            AllocationConfig {
                max_video_bps: 1_000_000,
                ..AllocationConfig::default()
            },
        ] {
            assert!(matches!(
                Allocator::new(config),
                Err(AbrError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn audio_first_then_video_on_the_rung_the_rest_reaches() {
        let t0 = Instant::now();
        let mut a = allocator();
        let first = a.allocate(1_000_000 + AUDIO.total_bps(), AUDIO, t0);
        assert_eq!(first.audio_bps, 70_000);
        assert_eq!(first.audio_redundancy_bps, 20_000);
        assert_eq!(first.video_bps, 1_000_000);
        assert_eq!(first.rung, Some(rung(960, 540, 30, 850)));
        // Target below audio's total: audio takes it all, redundancy first to go.
        let mut a = allocator();
        let low = a.allocate(60_000, AUDIO, t0);
        assert_eq!(
            (low.audio_bps, low.audio_redundancy_bps, low.video_bps),
            (60_000, 10_000, 0)
        );
        assert_eq!(low.rung, None);
    }

    #[test]
    fn steps_down_at_once_and_up_only_after_the_hold_with_margin() {
        let t0 = Instant::now();
        let mut a = allocator();
        let at = |kbps: u64| kbps * 1000 + AUDIO.total_bps();
        assert_eq!(
            a.allocate(at(900), AUDIO, t0).rung.map(|r| r.height),
            Some(540)
        );
        // Below 850: down at once, to 640×360@30.
        let down = a.allocate(at(800), AUDIO, t0 + secs(0.1));
        assert!(down.rung_changed);
        assert_eq!(down.rung, Some(rung(640, 360, 30, 500)));
        // 900 is above 850 but not 850 × 1.15: no step up however long.
        for k in 0..100 {
            let same = a.allocate(at(900), AUDIO, t0 + secs(0.2 + f64::from(k)));
            assert_eq!(same.rung.map(|r| r.height), Some(360));
        }
        // 1000 is: up after 3 s, not before.
        let t1 = t0 + secs(200.0);
        assert_eq!(
            a.allocate(at(1000), AUDIO, t1).rung.map(|r| r.height),
            Some(360)
        );
        assert_eq!(
            a.allocate(at(1000), AUDIO, t1 + secs(2.9))
                .rung
                .map(|r| r.height),
            Some(360)
        );
        let up = a.allocate(at(1000), AUDIO, t1 + secs(3.0));
        assert!(up.rung_changed);
        assert_eq!(up.rung.map(|r| r.height), Some(540));
        // A dip resets the hold.
        let t2 = t1 + secs(10.0);
        a.allocate(at(1500), AUDIO, t2);
        a.allocate(at(1300), AUDIO, t2 + secs(2.0));
        assert_eq!(
            a.allocate(at(1500), AUDIO, t2 + secs(4.0))
                .rung
                .map(|r| r.height),
            Some(540)
        );
        assert_eq!(
            a.allocate(at(1500), AUDIO, t2 + secs(7.0))
                .rung
                .map(|r| r.height),
            Some(720)
        );
    }

    #[test]
    fn video_pauses_below_the_floor_and_resumes_with_the_margin() {
        let t0 = Instant::now();
        let mut a = allocator();
        let at = |kbps: u64| kbps * 1000 + AUDIO.total_bps();
        assert_eq!(a.allocate(at(160), AUDIO, t0).rung.map(|r| r.fps), Some(15));
        let paused = a.allocate(at(140), AUDIO, t0 + secs(1.0));
        assert_eq!((paused.rung, paused.video_bps), (None, 0));
        assert_eq!(a.allocate(at(160), AUDIO, t0 + secs(10.0)).rung, None);
        a.allocate(at(180), AUDIO, t0 + secs(20.0));
        assert_eq!(
            a.allocate(at(180), AUDIO, t0 + secs(23.0))
                .rung
                .map(|r| r.width),
            Some(320)
        );
    }

    #[test]
    fn the_video_rate_is_capped() {
        let mut a = allocator();
        let big = a.allocate(10_000_000, AUDIO, Instant::now());
        assert_eq!(big.video_bps, DEFAULT_MAX_VIDEO_BPS);
        assert_eq!(big.rung.map(|r| r.height), Some(1080));
    }

    proptest! {
        /// A rate that wobbles anywhere inside one rung's hysteresis band (from its minimum
        /// up to just under the next rung's step-up threshold) never changes the rung.
        #[test]
        fn no_oscillation_inside_the_band(
            index in 0usize..DEFAULT_LADDER.len() - 1,
            wobble in proptest::collection::vec((0.0f64..1.0, 1u64..5000), 1..400),
        ) {
            let t0 = Instant::now();
            let mut a = allocator();
            let low = DEFAULT_LADDER[index].min_bps as f64;
            let high = DEFAULT_LADDER[index + 1].min_bps as f64 * (1.0 + DEFAULT_UP_MARGIN);
            let mut now = t0;
            let first = a.allocate(low as u64 + AUDIO.total_bps(), AUDIO, now);
            prop_assert_eq!(first.rung, Some(DEFAULT_LADDER[index]));
            for (x, ms) in wobble {
                now += Duration::from_millis(ms);
                let video = (low + x * (high - low - 1.0)) as u64;
                let out = a.allocate(video + AUDIO.total_bps(), AUDIO, now);
                prop_assert_eq!(out.rung, Some(DEFAULT_LADDER[index]));
                prop_assert!(!out.rung_changed);
            }
            prop_assert_eq!(a.rung_changes(), 0);
        }

        /// Any sequence of targets: audio gets min(target, its demand), so never less than
        /// its base while the target covers the base; the parts add up to at most the target.
        #[test]
        fn audio_is_never_starved(
            steps in proptest::collection::vec((0u64..5_000_000, 0u64..3000, 0u64..200_000, 0u64..100_000), 1..200),
        ) {
            let mut now = Instant::now();
            let mut a = allocator();
            for (target, ms, base, redundancy) in steps {
                now += Duration::from_millis(ms);
                let audio = AudioDemand { base_bps: base, redundancy_bps: redundancy };
                let out = a.allocate(target, audio, now);
                prop_assert_eq!(out.audio_bps, target.min(audio.total_bps()));
                if target >= base {
                    prop_assert!(out.audio_bps >= base);
                }
                prop_assert!(out.audio_bps + out.video_bps <= target);
                prop_assert_eq!(out.rung.is_none(), out.video_bps == 0);
                if let Some(r) = out.rung {
                    prop_assert!(out.video_bps >= r.min_bps);
                }
            }
        }
    }
}
