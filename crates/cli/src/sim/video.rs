//! Video in the simulator: the participants' cameras, their video SSRCs, the pictures each
//! participant took from its session (`Session::poll_video_frame`) per remote, optionally
//! written as Y4M, and the per-direction video figures of the report.
//!
//! A camera is the media crate's moving [`TestPattern`] (the default) or a Y4M file played
//! in a loop; it is pushed into the participant's session at the camera's frame rate. What
//! a participant is shown of a remote is streamed to `seen-<viewer>-from-<remote>.y4m` when
//! asked, at the remote camera's size (pictures of a lower rung are scaled up by nearest
//! neighbour so the file keeps one size), so memory stays bounded on any call length.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tincan_media::source::TestPattern;
use tincan_media::y4m::{Y4mReader, Y4mWriter};
use tincan_media::{Resolution, VideoFrame};
use tincan_pipeline::video::VideoSessionConfig;
use tincan_pipeline::{RemoteParticipant, RemoteStats, Session, SessionConfig};

use super::SimError;
use super::call::audio_ssrc;

/// A participant's video SSRCs (media, RTX, FlexFEC), next to its audio SSRC
/// ([`audio_ssrc`] ends in `A0`; these in `B1`, `B2`, `B3`).
pub fn video_ssrcs(index: usize) -> [u32; 3] {
    let base = 0x7C00_0000 | ((index as u32 + 1) << 8);
    [base | 0xB1, base | 0xB2, base | 0xB3]
}

/// The lowest rung of the session's video ladder (width, height, fps): the least a send
/// path may be capped at.
const MIN_CAP: (u32, u32, u32) = (320, 180, 15);

/// The session configuration of participant `index`: audio only, or with its camera's
/// video send path capped at the camera's size and rate; its congestion controllers start
/// at `start_bps`.
pub fn session_config(
    index: usize,
    camera: Option<(Resolution, u32)>,
    start_bps: u64,
) -> SessionConfig {
    let mut config = SessionConfig::new(audio_ssrc(index));
    config.controller.start_bps = start_bps;
    match camera {
        None => config,
        Some((resolution, fps)) => {
            let [media, rtx, fec] = video_ssrcs(index);
            // The cap is never below the ladder's lowest rung (320×180 at 15 fps): a
            // smaller camera is sent at its own size (pictures are only scaled down).
            let cap = Resolution::new(
                resolution.width().max(MIN_CAP.0),
                resolution.height().max(MIN_CAP.1),
            )
            .unwrap_or(resolution);
            config.with_video(
                VideoSessionConfig::new(media, rtx, fec)
                    .with_max_resolution(cap)
                    .with_max_fps(fps.max(MIN_CAP.2)),
            )
        }
    }
}

/// How participant `index` is declared to the others (its video SSRCs when the call has
/// video).
pub fn remote_participant(index: usize, video: bool) -> RemoteParticipant {
    let remote = RemoteParticipant::new(audio_ssrc(index));
    if video {
        let [media, rtx, fec] = video_ssrcs(index);
        remote.with_video_ssrcs(media, rtx, fec)
    } else {
        remote
    }
}

/// The participant whose audio SSRC is `ssrc` (sessions name remotes by it).
fn participant_of(ssrc: u32) -> Option<usize> {
    let index = ((ssrc >> 8) & 0xFF) as usize;
    (index >= 1 && audio_ssrc(index - 1) == ssrc).then(|| index - 1)
}

/// Where a camera's pictures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSource {
    /// The moving test pattern at the call's `--resolution`.
    Synthetic,
    /// A Y4M file, played in a loop.
    Y4m(PathBuf),
}

enum Pictures {
    Synthetic(TestPattern),
    Y4m {
        path: PathBuf,
        reader: Box<Y4mReader<File>>,
    },
}

/// A participant's camera.
pub struct Camera {
    pictures: Pictures,
    picture: VideoFrame,
    /// Pictures a camera pushes per second.
    pub fps: u32,
    /// What it shows, for the report.
    pub name: String,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("name", &self.name)
            .field("resolution", &self.resolution())
            .field("fps", &self.fps)
            .finish()
    }
}

fn open_y4m(path: &Path) -> Result<Y4mReader<File>, SimError> {
    let input = |reason: String| SimError::Input {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|e| input(e.to_string()))?;
    Y4mReader::new(file).map_err(|e| input(e.to_string()))
}

impl Camera {
    /// Opens a camera: the test pattern at `resolution`, or a Y4M file (its own size).
    ///
    /// # Errors
    ///
    /// A Y4M file that cannot be opened or read, or that holds no picture.
    pub fn open(source: &CameraSource, resolution: Resolution, fps: u32) -> Result<Self, SimError> {
        let fps = fps.max(1);
        match source {
            CameraSource::Synthetic => Ok(Self {
                pictures: Pictures::Synthetic(TestPattern::new(resolution, fps)),
                picture: VideoFrame::black(resolution),
                fps,
                name: format!(
                    "synthetic {}x{}@{fps}",
                    resolution.width(),
                    resolution.height()
                ),
            }),
            CameraSource::Y4m(path) => {
                let mut reader = open_y4m(path)?;
                let mut picture = VideoFrame::black(reader.resolution());
                let read = reader
                    .read_frame_into(&mut picture)
                    .map_err(|e| SimError::Input {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if !read {
                    return Err(SimError::Input {
                        path: path.clone(),
                        reason: "no picture in the file".into(),
                    });
                }
                // Start again from the first picture.
                let reader = Box::new(open_y4m(path)?);
                Ok(Self {
                    name: format!("{}@{fps}", path.display()),
                    pictures: Pictures::Y4m {
                        path: path.clone(),
                        reader,
                    },
                    picture,
                    fps,
                })
            }
        }
    }

    /// The size of its pictures.
    pub fn resolution(&self) -> Resolution {
        self.picture.resolution()
    }

    /// The next picture (a file starts again at its end).
    fn next_picture(&mut self) -> Result<&VideoFrame, SimError> {
        match &mut self.pictures {
            Pictures::Synthetic(pattern) => pattern.render_into(&mut self.picture),
            Pictures::Y4m { path, reader } => {
                let input = |e: tincan_media::MediaError| SimError::Input {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                if !reader.read_frame_into(&mut self.picture).map_err(input)? {
                    **reader = open_y4m(path)?;
                    reader.read_frame_into(&mut self.picture).map_err(input)?;
                }
            }
        }
        Ok(&self.picture)
    }
}

/// The video of a call: every participant's camera, and whether to save what each saw.
#[derive(Debug)]
pub struct VideoSetup {
    /// `cameras[participant]`.
    pub cameras: Vec<Camera>,
    /// Write `seen-<viewer>-from-<remote>.y4m` per direction.
    pub save: bool,
}

impl VideoSetup {
    /// Each camera's size and rate, by participant.
    pub fn formats(&self) -> Vec<(Resolution, u32)> {
        self.cameras
            .iter()
            .map(|c| (c.resolution(), c.fps))
            .collect()
    }

    /// The rate of the call's video clock: the fastest camera's.
    pub fn clock_fps(&self) -> u32 {
        self.cameras
            .iter()
            .map(|c| c.fps)
            .max()
            .unwrap_or(30)
            .max(1)
    }
}

/// What a viewer was shown of one remote.
#[derive(Debug, Default)]
struct Seen {
    frames: u64,
    keyframes: u64,
    first: Option<Duration>,
    last: Option<Duration>,
    resolution: Option<Resolution>,
    /// The Y4M file, its size and its name, when asked.
    writer: Option<(Y4mWriter<BufWriter<File>>, Resolution, String)>,
    /// A picture scaled to the file's size (reused).
    scaled: Option<VideoFrame>,
}

/// A participant's video: its camera and what it was shown of each remote.
#[derive(Debug)]
pub struct ParticipantVideo {
    camera: Camera,
    /// `seen[remote]` (its own entry unused).
    seen: Vec<Seen>,
    origin: Instant,
    /// Pictures pushed into the session.
    pushed: u64,
    /// Errors the session gave when pushing (counted; the call goes on).
    push_errors: u64,
    /// The first error reading the camera or writing a Y4M file (the camera or the
    /// writing stops there; reported at the end).
    error: Option<SimError>,
}

/// Nearest-neighbour scaling of `from` into `into` (any sizes; I420).
fn scale_nearest(from: &VideoFrame, into: &mut VideoFrame) {
    for plane in 0..3 {
        let (fw, fh, tw, th) = if plane == 0 {
            (from.width(), from.height(), into.width(), into.height())
        } else {
            (
                from.width().div_ceil(2),
                from.height().div_ceil(2),
                into.width().div_ceil(2),
                into.height().div_ceil(2),
            )
        };
        let (fw, fh, tw, th) = (fw as usize, fh as usize, tw as usize, th as usize);
        let from_stride = from.stride(plane);
        let to_stride = into.stride(plane);
        let source = from.plane(plane);
        let target = into.plane_mut(plane);
        for y in 0..th {
            let sy = (y * fh / th.max(1)).min(fh.saturating_sub(1));
            let Some(row) = target.get_mut(y * to_stride..y * to_stride + tw) else {
                continue;
            };
            for (x, pixel) in row.iter_mut().enumerate() {
                let sx = (x * fw / tw.max(1)).min(fw.saturating_sub(1));
                *pixel = source.get(sy * from_stride + sx).copied().unwrap_or(0);
            }
        }
    }
}

impl ParticipantVideo {
    /// Participant `index`'s video in a call of `participants`; with `save`, a Y4M file per
    /// remote in `out_dir` at that remote's camera size (`remote_cameras[remote]`).
    ///
    /// # Errors
    ///
    /// A Y4M file that cannot be created.
    pub fn new(
        index: usize,
        camera: Camera,
        remote_cameras: &[(Resolution, u32)],
        save: Option<&Path>,
        origin: Instant,
    ) -> Result<Self, SimError> {
        let mut seen = Vec::with_capacity(remote_cameras.len());
        for (remote, &(resolution, fps)) in remote_cameras.iter().enumerate() {
            let mut entry = Seen::default();
            if let Some(dir) = save.filter(|_| remote != index) {
                let name = format!("seen-{}-from-{}.y4m", index + 1, remote + 1);
                let path = dir.join(&name);
                let output = |reason: String| SimError::Output {
                    path: path.clone(),
                    reason,
                };
                let file = File::create(&path).map_err(|e| output(e.to_string()))?;
                let writer = Y4mWriter::new(BufWriter::new(file), resolution, fps, 1)
                    .map_err(|e| output(e.to_string()))?;
                entry.writer = Some((writer, resolution, name));
            }
            seen.push(entry);
        }
        Ok(Self {
            camera,
            seen,
            origin,
            pushed: 0,
            push_errors: 0,
            error: None,
        })
    }

    /// Pushes the camera's next picture into `session` at `now`. A camera file that
    /// cannot be read any more stops the camera; the error is given by [`Self::finish`].
    pub fn push(&mut self, session: &mut Session, now: Instant) {
        if self.error.is_some() {
            return;
        }
        match self.camera.next_picture() {
            Ok(picture) => {
                if session.push_video(picture, now).is_err() {
                    self.push_errors += 1;
                }
                self.pushed += 1;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Takes every decoded picture `session` holds (a session keeps only a few), counts
    /// them per remote and writes them to the remotes' Y4M files.
    pub fn drain(&mut self, session: &mut Session, now: Instant) {
        let at = now.saturating_duration_since(self.origin);
        while let Some(picture) = session.poll_video_frame() {
            let Some(seen) = participant_of(picture.remote).and_then(|r| self.seen.get_mut(r))
            else {
                continue;
            };
            seen.frames += 1;
            seen.keyframes += u64::from(picture.keyframe);
            seen.first.get_or_insert(at);
            seen.last = Some(at);
            seen.resolution = Some(picture.frame.resolution());
            if self.error.is_some() {
                continue;
            }
            if let Some((writer, size, name)) = &mut seen.writer {
                let size = *size;
                let frame = if picture.frame.resolution() == size {
                    picture.frame
                } else {
                    let scaled = seen.scaled.get_or_insert_with(|| VideoFrame::black(size));
                    scale_nearest(picture.frame, scaled);
                    &*scaled
                };
                if let Err(e) = writer.write_frame(frame) {
                    self.error = Some(SimError::Output {
                        path: PathBuf::from(name.as_str()),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// Flushes the Y4M files; returns the per-remote figures (`[remote]`, its own `None`)
    /// with the final statistics of the session's remotes, and the pushes.
    ///
    /// # Errors
    ///
    /// The first error reading the camera or writing a Y4M file.
    pub fn finish(
        self,
        index: usize,
        finals: impl Fn(u32) -> Option<RemoteStats>,
    ) -> Result<(VideoSent, Vec<Option<VideoDirection>>), SimError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut out = Vec::with_capacity(self.seen.len());
        for (remote, seen) in self.seen.into_iter().enumerate() {
            if remote == index {
                out.push(None);
                continue;
            }
            let y4m = match seen.writer {
                Some((writer, _, name)) => {
                    writer.finish().map_err(|e| SimError::Output {
                        path: PathBuf::from(&name),
                        reason: e.to_string(),
                    })?;
                    Some(name)
                }
                None => None,
            };
            let stats = finals(audio_ssrc(remote));
            let span = seen
                .first
                .zip(seen.last)
                .map(|(a, b)| (b - a).as_secs_f64());
            out.push(Some(VideoDirection {
                frames_shown: seen.frames,
                keyframes_shown: seen.keyframes,
                first_frame_s: seen.first.map(|d| d.as_secs_f64()),
                fps: span
                    .filter(|&s| s > 0.0)
                    .map(|s| (seen.frames.saturating_sub(1)) as f64 / s),
                resolution: seen
                    .resolution
                    .map(|r| format!("{}x{}", r.width(), r.height())),
                frames_decoded: stats.as_ref().map_or(0, |s| s.video_frames_decoded),
                freeze_count: stats.as_ref().map_or(0, |s| s.video_freeze_count),
                freeze_s: stats
                    .as_ref()
                    .map_or(0.0, |s| s.video_freeze_duration.as_secs_f64()),
                packets_lost_before_recovery: stats
                    .as_ref()
                    .map_or(0, |s| s.video_packets_lost_before_recovery),
                packets_lost_after_recovery: stats
                    .as_ref()
                    .map_or(0, |s| s.video_packets_lost_after_recovery),
                y4m,
            }));
        }
        Ok((
            VideoSent {
                camera: self.camera.name,
                pictures_pushed: self.pushed,
                push_errors: self.push_errors,
            },
            out,
        ))
    }
}

/// What a participant's camera sent.
#[derive(Debug, Clone, Serialize)]
pub struct VideoSent {
    /// What the camera showed.
    pub camera: String,
    /// Pictures pushed into the session.
    pub pictures_pushed: u64,
    /// Pushes the session refused (counted; the call went on).
    pub push_errors: u64,
}

/// What a viewer saw of one remote's video.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VideoDirection {
    /// Pictures the viewer took from its session (`poll_video_frame`).
    pub frames_shown: u64,
    /// Of those, keyframes.
    pub keyframes_shown: u64,
    /// When the first was shown, seconds.
    pub first_frame_s: Option<f64>,
    /// Mean frame rate from the first picture shown to the last.
    pub fps: Option<f64>,
    /// Size of the last picture, `WxH`.
    pub resolution: Option<String>,
    /// The session's count of pictures decoded (of its current state of the remote).
    pub frames_decoded: u64,
    /// Freezes (WebRTC's `freezeCount`).
    pub freeze_count: u64,
    /// Their total length (`totalFreezesDuration`), seconds.
    pub freeze_s: f64,
    /// Video packets lost on the network (before RTX and FlexFEC).
    pub packets_lost_before_recovery: u64,
    /// Video packets neither received nor recovered.
    pub packets_lost_after_recovery: u64,
    /// The Y4M file of what was shown, in the output folder, when asked.
    pub y4m: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrcs_are_distinct_and_name_their_participant() {
        let mut all = std::collections::HashSet::new();
        for k in 0..16 {
            assert!(all.insert(audio_ssrc(k)));
            for ssrc in video_ssrcs(k) {
                assert!(all.insert(ssrc));
                assert_eq!(participant_of(ssrc), None);
            }
            assert_eq!(participant_of(audio_ssrc(k)), Some(k));
        }
    }

    #[test]
    fn nearest_scaling_keeps_flat_colours_and_any_size() {
        let small = Resolution::new(160, 90).unwrap();
        let big = Resolution::new(322, 182).unwrap();
        let mut from = VideoFrame::black(small);
        from.plane_mut(0).fill(200);
        let mut into = VideoFrame::black(big);
        scale_nearest(&from, &mut into);
        for row in into.rows(0) {
            assert!(row.iter().all(|&p| p == 200));
        }
        let mut back = VideoFrame::black(small);
        scale_nearest(&into, &mut back);
        assert!(back.rows(0).all(|row| row.iter().all(|&p| p == 200)));
    }

    #[test]
    fn a_y4m_camera_loops_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("tincan-sim-cam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cam.y4m");
        let size = Resolution::new(64, 36).unwrap();
        let mut writer = Y4mWriter::new(File::create(&path).unwrap(), size, 30, 1).unwrap();
        let mut pattern = TestPattern::new(size, 30);
        for _ in 0..2 {
            writer.write_frame(&pattern.next_frame()).unwrap();
        }
        writer.finish().unwrap();
        let source = CameraSource::Y4m(path.clone());
        let mut camera = Camera::open(&source, Resolution::P360, 15).unwrap();
        assert_eq!(camera.resolution(), size);
        let first = camera.next_picture().unwrap().clone();
        camera.next_picture().unwrap();
        let third = camera.next_picture().unwrap();
        assert_eq!(third.plane(0), first.plane(0));
        let missing = CameraSource::Y4m(dir.join("none.y4m"));
        assert!(matches!(
            Camera::open(&missing, size, 30),
            Err(SimError::Input { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
