//! Video in the media [`Session`](crate::Session): its configuration
//! ([`VideoSessionConfig`]), the decoded pictures it lends out ([`RemoteVideoFrame`]) and
//! the state it keeps per remote's video.

use std::time::{Duration, Instant};

use tincan_abr::allocation::{AllocationConfig, DEFAULT_LADDER, DEFAULT_MAX_VIDEO_BPS};
use tincan_media::{Resolution, VideoFrame};

use super::error::{VideoPathError, VideoResult};
use super::{VideoReceiveConfig, VideoReceivePath, VideoReceiveStats, VideoSendConfig};

/// Silence on a remote's video (no media or RTX packet) after which its video counts as
/// unavailable: the camera was switched off, the call went to audio, or the path is down.
/// A second: eight frame intervals at the ladder's lowest 15 fps, so that a keyframe's
/// burst or a few lost frames never trigger it, while a camera switched off shows within
/// about a second.
pub const REMOTE_VIDEO_TIMEOUT: Duration = Duration::from_secs(1);

/// Video settings of a [`Session`](crate::Session)
/// ([`SessionConfig::with_video`](crate::SessionConfig::with_video)); without them a
/// session is audio only.
///
/// The send ladder is the default one (`tincan_abr::allocation::DEFAULT_LADDER`) cut to
/// the rungs within [`max_resolution`](Self::max_resolution) and
/// [`max_fps`](Self::max_fps); the video rate is capped at the first rung left out (so a
/// 320×180 cap does not spend 2.5 Mbit/s on 320×180).
///
/// ```
/// use tincan_media::Resolution;
/// use tincan_pipeline::video::VideoSessionConfig;
/// let config = VideoSessionConfig::new(0x10, 0x11, 0x12)
///     .with_max_resolution(Resolution::new(320, 180)?)
///     .with_max_fps(30);
/// assert!(config.camera);
/// assert_eq!(config.allocation()?.ladder.len(), 2); // 320×180 at 15 and 30 fps
/// assert_eq!(config.allocation()?.max_video_bps, 350_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VideoSessionConfig {
    /// SSRC of the local video stream.
    pub media_ssrc: u32,
    /// SSRC of its retransmissions (RFC 4588).
    pub rtx_ssrc: u32,
    /// SSRC of its FlexFEC packets.
    pub fec_ssrc: u32,
    /// Largest picture sent (default 1280×720): camera pictures are scaled down to the
    /// rung's resolution, never up.
    pub max_resolution: Resolution,
    /// Highest frame rate sent (default 30).
    pub max_fps: u32,
    /// The camera is on from the start (default on; [`Session::set_camera`](crate::Session::set_camera)).
    pub camera: bool,
    /// NACK and RTX, both directions (default on).
    pub nack: bool,
    /// FlexFEC, both directions (default on).
    pub fec: bool,
    /// The downlink rate this participant's video may take, all remotes together, bits
    /// per second (default [`DEFAULT_RECEIVE_BUDGET_BPS`]; 0: no limit is asked). It is
    /// split between the remotes whose video is watched, the main view weighing more
    /// ([`crate::split`]), and each remote is told its share by REMB each second.
    pub receive_budget_bps: u64,
}

/// The default [`VideoSessionConfig::receive_budget_bps`]: 720p30 of the main view and
/// thumbnails beside it.
pub const DEFAULT_RECEIVE_BUDGET_BPS: u64 = 4_000_000;

impl VideoSessionConfig {
    /// Defaults for the local video SSRCs (media, RTX, FlexFEC).
    pub fn new(media_ssrc: u32, rtx_ssrc: u32, fec_ssrc: u32) -> Self {
        Self {
            media_ssrc,
            rtx_ssrc,
            fec_ssrc,
            max_resolution: Resolution::P720,
            max_fps: 30,
            camera: true,
            nack: true,
            fec: true,
            receive_budget_bps: DEFAULT_RECEIVE_BUDGET_BPS,
        }
    }

    /// Sets [`max_resolution`](Self::max_resolution) (default 1280×720).
    pub fn with_max_resolution(mut self, resolution: Resolution) -> Self {
        self.max_resolution = resolution;
        self
    }

    /// Sets [`max_fps`](Self::max_fps) (default 30).
    pub fn with_max_fps(mut self, fps: u32) -> Self {
        self.max_fps = fps;
        self
    }

    /// Sets whether the camera is on from the start (default on).
    pub fn with_camera(mut self, on: bool) -> Self {
        self.camera = on;
        self
    }

    /// Turns NACK/RTX on or off (default on).
    pub fn with_nack(mut self, nack: bool) -> Self {
        self.nack = nack;
        self
    }

    /// Turns FlexFEC on or off (default on).
    pub fn with_fec(mut self, fec: bool) -> Self {
        self.fec = fec;
        self
    }

    /// Sets [`receive_budget_bps`](Self::receive_budget_bps) (default
    /// [`DEFAULT_RECEIVE_BUDGET_BPS`]; 0 asks no limit of anyone).
    pub fn with_receive_budget_bps(mut self, bps: u64) -> Self {
        self.receive_budget_bps = bps;
        self
    }

    /// The allocation ladder these limits give.
    ///
    /// # Errors
    ///
    /// [`VideoPathError::InvalidConfig`] when no rung of the default ladder fits the
    /// limits (below 320×180 or 15 fps).
    pub fn allocation(&self) -> VideoResult<AllocationConfig> {
        let (width, height) = (self.max_resolution.width(), self.max_resolution.height());
        let fits = |r: &tincan_abr::allocation::VideoRung| {
            r.width <= width && r.height <= height && r.fps <= self.max_fps
        };
        let ladder: Vec<_> = DEFAULT_LADDER.iter().copied().filter(fits).collect();
        let Some(top) = ladder.last() else {
            return Err(VideoPathError::InvalidConfig {
                field: "max_resolution, max_fps",
                value: format!("{width}x{height} at {} fps", self.max_fps),
                expected: "at least 320x180 at 15 fps",
            });
        };
        let max_video_bps = DEFAULT_LADDER
            .iter()
            .filter(|r| r.min_bps > top.min_bps && !fits(r))
            .map(|r| r.min_bps)
            .min()
            .unwrap_or(DEFAULT_MAX_VIDEO_BPS)
            .max(top.min_bps);
        Ok(AllocationConfig {
            ladder,
            max_video_bps,
            ..AllocationConfig::default()
        })
    }

    /// The send path's configuration: these SSRCs and limits, the session's transport-cc
    /// extension id, and `start_bps` as the first target.
    pub(crate) fn send_config(
        &self,
        transport_cc_id: u8,
        start_bps: u64,
    ) -> VideoResult<VideoSendConfig> {
        let mut config = VideoSendConfig::new(self.media_ssrc, self.rtx_ssrc, self.fec_ssrc);
        config.transport_cc_id = transport_cc_id;
        config.start_bps = start_bps;
        config.allocation = self.allocation()?;
        config.nack = self.nack;
        config.fec = self.fec;
        Ok(config)
    }

    pub(crate) fn validate(&self, local_ssrc: u32) -> VideoResult<()> {
        let ssrcs = [local_ssrc, self.media_ssrc, self.rtx_ssrc, self.fec_ssrc];
        let distinct = ssrcs
            .iter()
            .enumerate()
            .all(|(i, a)| ssrcs[i + 1..].iter().all(|b| a != b));
        if !distinct {
            return Err(VideoPathError::InvalidConfig {
                field: "video ssrcs",
                value: format!("{ssrcs:x?}"),
                expected: "distinct from each other and from the audio SSRC",
            });
        }
        self.allocation().map(|_| ())
    }
}

/// A remote's decoded picture, lent by [`Session::poll_video_frame`](crate::Session::poll_video_frame)
/// until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RemoteVideoFrame<'a> {
    /// The remote (its audio SSRC, as everywhere in the session).
    pub remote: u32,
    /// The picture (I420).
    pub frame: &'a VideoFrame,
    /// Its RTP timestamp (the remote's 90 kHz capture clock).
    pub rtp_timestamp: u32,
    /// When it should be on screen.
    pub render_at: Instant,
    /// It was a keyframe.
    pub keyframe: bool,
}

/// Counters of receive paths that were dropped (video switched to audio, unsubscribed),
/// so that a remote's totals survive them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RetiredTotals {
    pub(crate) frames_decoded: u64,
    pub(crate) keyframes_decoded: u64,
    pub(crate) freeze_count: u64,
    pub(crate) freezes_duration: Duration,
    pub(crate) packets_lost_before_recovery: u64,
    pub(crate) packets_lost_after_recovery: u64,
}

/// What the session keeps for one remote's video.
#[derive(Debug)]
pub(crate) struct RemoteVideo {
    /// The remote's audio SSRC (its name).
    pub(crate) audio_ssrc: u32,
    pub(crate) media_ssrc: u32,
    pub(crate) rtx_ssrc: Option<u32>,
    pub(crate) fec_ssrc: Option<u32>,
    /// The application wants its video (default on).
    pub(crate) subscribed: bool,
    /// Receive path: created on the first packet while the call has video and the remote
    /// is subscribed, dropped when either stops.
    pub(crate) path: Option<VideoReceivePath>,
    /// A keyframe is asked for (PLI) as soon as the path exists: a path starts on
    /// whatever packet comes first, mid-stream after a join, a subscription or the call
    /// coming back to video (as an SFU asks for one for a new subscriber). At a call's
    /// start the request reaches the sender within an RTT of its first keyframe, and its
    /// keyframe gate drops it as stale.
    pub(crate) needs_keyframe: bool,
    pub(crate) available: bool,
    pub(crate) resolution: Option<Resolution>,
    /// Last media or RTX packet.
    pub(crate) last_packet: Option<Instant>,
    /// The path's decoded-frame count at the last look.
    pub(crate) frames_seen: u64,
    /// Packets dropped because the call is audio only or the remote is unsubscribed.
    pub(crate) packets_ignored: u64,
    pub(crate) retired: RetiredTotals,
    /// The rate last asked of it by REMB (its share of the receive budget).
    pub(crate) share_bps: Option<u64>,
}

impl RemoteVideo {
    pub(crate) fn new(
        audio_ssrc: u32,
        media_ssrc: u32,
        rtx_ssrc: Option<u32>,
        fec_ssrc: Option<u32>,
    ) -> Self {
        Self {
            audio_ssrc,
            media_ssrc,
            rtx_ssrc,
            fec_ssrc,
            subscribed: true,
            path: None,
            needs_keyframe: true,
            available: false,
            resolution: None,
            last_packet: None,
            frames_seen: 0,
            packets_ignored: 0,
            retired: RetiredTotals::default(),
            share_bps: None,
        }
    }

    /// Whether `ssrc` is one of its video streams.
    pub(crate) fn owns(&self, ssrc: u32) -> bool {
        self.media_ssrc == ssrc || self.rtx_ssrc == Some(ssrc) || self.fec_ssrc == Some(ssrc)
    }

    /// The receive path's configuration. Streams not declared get SSRCs next to the media
    /// SSRC that the session never routes to the path (it routes by declared SSRC).
    pub(crate) fn receive_config(
        &self,
        local_ssrc: u32,
        nack: bool,
        fec: bool,
    ) -> VideoReceiveConfig {
        let media = self.media_ssrc;
        let rtx = self.rtx_ssrc.unwrap_or(media.wrapping_add(1));
        let mut fec_ssrc = self.fec_ssrc.unwrap_or(media.wrapping_add(2));
        if fec_ssrc == rtx {
            fec_ssrc = rtx.wrapping_add(1);
        }
        let mut config = VideoReceiveConfig::new(local_ssrc, media, rtx, fec_ssrc);
        config.nack = nack;
        config.fec = fec;
        config
    }

    /// Drops the receive path, keeping its totals; true when the video was available (an
    /// unavailable event is due).
    pub(crate) fn drop_path(&mut self, now: Instant) -> bool {
        if let Some(path) = self.path.take() {
            let stats = path.stats_at(now);
            let retired = &mut self.retired;
            retired.frames_decoded += stats.frames_decoded;
            retired.keyframes_decoded += stats.keyframes_decoded;
            retired.freeze_count += stats.freeze_count;
            retired.freezes_duration += stats.total_freezes_duration;
            retired.packets_lost_before_recovery += stats.packets_lost_before_recovery;
            retired.packets_lost_after_recovery += stats.packets_lost_after_recovery;
            self.needs_keyframe = true;
        }
        self.frames_seen = 0;
        self.last_packet = None;
        std::mem::replace(&mut self.available, false)
    }

    /// The receive statistics at `now`, totals including dropped paths.
    pub(crate) fn stats(&self, now: Instant) -> Option<VideoReceiveStats> {
        let mut stats = self.path.as_ref()?.stats_at(now);
        let retired = self.retired;
        stats.frames_decoded += retired.frames_decoded;
        stats.keyframes_decoded += retired.keyframes_decoded;
        stats.freeze_count += retired.freeze_count;
        stats.total_freezes_duration += retired.freezes_duration;
        stats.packets_lost_before_recovery += retired.packets_lost_before_recovery;
        stats.packets_lost_after_recovery += retired.packets_lost_after_recovery;
        Some(stats)
    }

    /// When its video becomes unavailable without further packets.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.last_packet
            .filter(|_| self.available)
            .map(|t| t + REMOTE_VIDEO_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_is_cut_to_the_limits() {
        let full = VideoSessionConfig::new(1, 2, 3).allocation().unwrap();
        // 720p: everything up to 1280×720 at 30, capped at the 1080p rung's minimum.
        assert_eq!(full.ladder.len(), 6);
        assert_eq!(full.max_video_bps, 2_000_000);
        let low = VideoSessionConfig::new(1, 2, 3)
            .with_max_resolution(Resolution::P360)
            .with_max_fps(15);
        let ladder = low.allocation().unwrap();
        assert!(ladder.ladder.iter().all(|r| r.fps == 15 && r.height <= 360));
        assert_eq!(ladder.ladder.len(), 2);
        // The 640×360 at 30 rung (500 kbit/s) is the first left out.
        assert_eq!(ladder.max_video_bps, 500_000);
        let tiny =
            VideoSessionConfig::new(1, 2, 3).with_max_resolution(Resolution::new(160, 90).unwrap());
        assert!(matches!(
            tiny.allocation(),
            Err(VideoPathError::InvalidConfig { .. })
        ));
        assert!(VideoSessionConfig::new(1, 2, 3).validate(1).is_err());
        assert!(VideoSessionConfig::new(1, 2, 2).validate(9).is_err());
        assert!(VideoSessionConfig::new(1, 2, 3).validate(9).is_ok());
    }

    #[test]
    fn undeclared_streams_get_ssrcs_that_are_never_routed() {
        let video = RemoteVideo::new(7, 100, None, None);
        let config = video.receive_config(1, true, true);
        assert_eq!(config.media_ssrc, 100);
        assert_ne!(config.rtx_ssrc, config.fec_ssrc);
        assert!(!video.owns(config.rtx_ssrc) && !video.owns(config.fec_ssrc));
        assert!(VideoReceivePath::new(config).is_ok());
    }
}
