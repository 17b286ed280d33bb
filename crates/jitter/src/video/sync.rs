//! Lip sync between an audio and a video stream from RTCP sender reports (the idea of
//! libwebrtc's `StreamSynchronization`, written anew).
//!
//! A sender report ties a stream's RTP clock to the sender's wallclock (NTP), so the
//! capture time of any packet is known on one clock for both streams. With the latest
//! packet of each stream (its RTP timestamp and local arrival time), the *relative
//! delay* is how much later video arrives than audio captured at the same moment:
//! `(video arrival - audio arrival) - (video capture - audio capture)`. Adding each
//! stream's own playout delay gives the render skew: positive means video renders late,
//! so audio must wait that much longer; negative means video must wait.
//!
//! The skew is smoothed (exponential filter) and the extra delays move toward it by
//! bounded steps per update, so neither stream jumps. The stream that is already later
//! gets no extra delay: sync only ever delays the earlier one.
//!
//! The playout delays passed in must be each stream's own delay *without* the extra
//! delay this struct asked for (the video buffer's
//! [`own_delay`](super::VideoJitterBuffer::own_delay), the audio buffer's target), so the
//! correction does not feed back into its own input.

use super::error::VideoError;
use std::time::{Duration, Instant};
use tincan_rtp::rtcp::Ntp64;

/// How a [`LipSync`] behaves. [`Default`] suits Opus at 48 kHz with video at 90 kHz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LipSyncConfig {
    /// RTP clock rate of the audio stream. Default 48000.
    pub audio_clock_rate: u32,
    /// RTP clock rate of the video stream. Default 90000.
    pub video_clock_rate: u32,
    /// Largest extra delay either stream is given. Default 1 s.
    pub max_extra_delay: Duration,
    /// Largest change of an extra delay per update. Default 40 ms.
    pub max_step: Duration,
    /// Updates the skew filter averages over (its time constant). Default 8.
    pub filter_length: u32,
}

impl Default for LipSyncConfig {
    fn default() -> Self {
        Self {
            audio_clock_rate: 48_000,
            video_clock_rate: 90_000,
            max_extra_delay: Duration::from_secs(1),
            max_step: Duration::from_millis(40),
            filter_length: 8,
        }
    }
}

/// The latest packet of one stream and that stream's own playout delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamObservation {
    /// RTP timestamp of the latest packet received.
    pub rtp_timestamp: u32,
    /// When it arrived.
    pub arrival: Instant,
    /// The stream's playout delay without the extra delay lip sync asked for.
    pub playout_delay: Duration,
}

/// Extra delay for each stream; at most one of them is non-zero once settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncDelays {
    /// Extra delay for the audio stream.
    pub audio: Duration,
    /// Extra delay for the video stream.
    pub video: Duration,
}

/// Computes the extra delays that align an audio and a video stream. Sans-IO: it only
/// takes reports and observations and answers with delays.
#[derive(Debug, Clone)]
pub struct LipSync {
    config: LipSyncConfig,
    audio_report: Option<(Ntp64, u32)>,
    video_report: Option<(Ntp64, u32)>,
    /// Smoothed skew (video render time minus audio render time, same capture), ms.
    skew_ms: Option<f64>,
    /// Extra delays given out, ms.
    audio_extra_ms: f64,
    video_extra_ms: f64,
}

impl LipSync {
    /// A synchroniser; fails on a zero clock rate or filter length.
    pub fn new(config: LipSyncConfig) -> Result<Self, VideoError> {
        for (field, rate) in [
            ("audio_clock_rate", config.audio_clock_rate),
            ("video_clock_rate", config.video_clock_rate),
        ] {
            if rate == 0 {
                return Err(VideoError::InvalidConfig {
                    field,
                    value: rate.to_string(),
                    reason: "must be positive",
                });
            }
        }
        if config.filter_length == 0 {
            return Err(VideoError::InvalidConfig {
                field: "filter_length",
                value: "0".into(),
                reason: "must be positive",
            });
        }
        Ok(Self {
            config,
            audio_report: None,
            video_report: None,
            skew_ms: None,
            audio_extra_ms: 0.0,
            video_extra_ms: 0.0,
        })
    }

    /// An RTCP sender report of the audio stream: its NTP time and RTP timestamp.
    pub fn audio_sender_report(&mut self, ntp: Ntp64, rtp_timestamp: u32) {
        self.audio_report = Some((ntp, rtp_timestamp));
    }

    /// An RTCP sender report of the video stream: its NTP time and RTP timestamp.
    pub fn video_sender_report(&mut self, ntp: Ntp64, rtp_timestamp: u32) {
        self.video_report = Some((ntp, rtp_timestamp));
    }

    /// The extra delays currently asked for.
    pub fn delays(&self) -> SyncDelays {
        SyncDelays {
            audio: millis(self.audio_extra_ms),
            video: millis(self.video_extra_ms),
        }
    }

    /// The smoothed render skew without correction (video minus audio, ms), once known.
    pub fn skew_ms(&self) -> Option<f64> {
        self.skew_ms
    }

    /// Takes the latest observation of both streams and returns the updated extra
    /// delays; `None` (and no change) until both streams have had a sender report.
    pub fn update(
        &mut self,
        audio: StreamObservation,
        video: StreamObservation,
    ) -> Option<SyncDelays> {
        let audio_capture = capture_ms(
            self.audio_report?,
            audio.rtp_timestamp,
            self.config.audio_clock_rate,
        );
        let video_capture = capture_ms(
            self.video_report?,
            video.rtp_timestamp,
            self.config.video_clock_rate,
        );
        let arrival_diff = signed_ms(video.arrival, audio.arrival);
        let relative = arrival_diff - (video_capture - audio_capture);
        let skew = relative + video.playout_delay.as_secs_f64() * 1000.0
            - audio.playout_delay.as_secs_f64() * 1000.0;
        if !skew.is_finite() {
            return Some(self.delays());
        }
        let smoothed = match self.skew_ms {
            None => skew,
            Some(previous) => previous + (skew - previous) / f64::from(self.config.filter_length),
        };
        self.skew_ms = Some(smoothed);
        let max_extra = self.config.max_extra_delay.as_secs_f64() * 1000.0;
        let (audio_target, video_target) = if smoothed >= 0.0 {
            (smoothed.min(max_extra), 0.0)
        } else {
            (0.0, (-smoothed).min(max_extra))
        };
        let step = self.config.max_step.as_secs_f64() * 1000.0;
        self.audio_extra_ms += (audio_target - self.audio_extra_ms).clamp(-step, step);
        self.video_extra_ms += (video_target - self.video_extra_ms).clamp(-step, step);
        Some(self.delays())
    }
}

/// Capture time of `rtp_timestamp` on the sender's NTP clock, in ms.
fn capture_ms((ntp, report_rtp): (Ntp64, u32), rtp_timestamp: u32, clock_rate: u32) -> f64 {
    // Signed distance the short way round: packets within half the RTP range of the report.
    let ticks = rtp_timestamp.wrapping_sub(report_rtp) as i32;
    ntp.to_duration().as_secs_f64() * 1000.0 + f64::from(ticks) * 1000.0 / f64::from(clock_rate)
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -((b - a).as_secs_f64() * 1000.0)
    }
}

fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_before_both_sender_reports() {
        let now = Instant::now();
        let mut sync = LipSync::new(LipSyncConfig::default()).unwrap();
        let observation = StreamObservation {
            rtp_timestamp: 0,
            arrival: now,
            playout_delay: Duration::ZERO,
        };
        assert_eq!(sync.update(observation, observation), None);
        sync.audio_sender_report(Ntp64::new(1, 0), 0);
        assert_eq!(sync.update(observation, observation), None);
        sync.video_sender_report(Ntp64::new(1, 0), 0);
        assert_eq!(
            sync.update(observation, observation),
            Some(SyncDelays::default())
        );
        assert!(
            LipSync::new(LipSyncConfig {
                filter_length: 0,
                ..LipSyncConfig::default()
            })
            .is_err()
        );
    }
}
