//! Where a call's video comes from and goes to: a synthetic moving pattern, Y4M files, or
//! application callbacks. Pictures are I420 [`VideoFrame`]s; the session scales and
//! decimates the camera to what the network allows.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan_media::source::TestPattern;
use tincan_media::y4m::{Y4mReader, Y4mWriter};
use tincan_media::{Resolution, VideoFrame};
use tincan_signal::protocol::UserId;

use super::EngineError;

/// The synthetic camera's default picture size (small, to keep the encoder cheap).
pub const DEFAULT_CAMERA_WIDTH: u32 = 320;
/// The synthetic camera's default picture height.
pub const DEFAULT_CAMERA_HEIGHT: u32 = 180;
/// The synthetic camera's default frame rate.
pub const DEFAULT_CAMERA_FPS: u32 = 15;
/// Highest camera frame rate taken (faster sources are paced to it).
pub const MAX_CAMERA_FPS: u32 = 60;

/// An application callback that fills each camera picture. The frame it gets is reused
/// from picture to picture (its size: the input's `width`×`height`); return `false` when
/// there is no picture this time. It runs on the call's media thread: keep it short.
pub type CameraCallback = dyn FnMut(&mut VideoFrame) -> bool + Send;

/// An application callback that receives each decoded remote picture: the participant
/// (when known), its audio SSRC and the picture. It runs on the call's media thread:
/// keep it short (copy the picture out if it is shown later).
pub type ScreenCallback = dyn FnMut(Option<&UserId>, u32, &VideoFrame) + Send;

/// Where the camera's pictures come from (used while the call has video and the camera
/// is on).
#[derive(Clone)]
#[non_exhaustive]
pub enum VideoInput {
    /// The media crate's moving test pattern (the default: 320×180 at 15 fps).
    Synthetic {
        /// Picture width (even).
        width: u32,
        /// Picture height (even).
        height: u32,
        /// Pictures per second (1 to [`MAX_CAMERA_FPS`]).
        fps: u32,
    },
    /// A Y4M file (8-bit 4:2:0), sent at its own frame rate from the call's start;
    /// nothing after its end unless `repeat`.
    Y4m {
        /// The file.
        path: PathBuf,
        /// Start again from the beginning at its end.
        repeat: bool,
    },
    /// An application callback.
    Callback {
        /// Picture width (even).
        width: u32,
        /// Picture height (even).
        height: u32,
        /// Pictures per second (1 to [`MAX_CAMERA_FPS`]).
        fps: u32,
        /// Fills each picture.
        fill: Arc<Mutex<CameraCallback>>,
    },
}

impl Default for VideoInput {
    fn default() -> Self {
        Self::Synthetic {
            width: DEFAULT_CAMERA_WIDTH,
            height: DEFAULT_CAMERA_HEIGHT,
            fps: DEFAULT_CAMERA_FPS,
        }
    }
}

impl VideoInput {
    /// A Y4M file played once.
    pub fn y4m(path: impl Into<PathBuf>) -> Self {
        Self::Y4m {
            path: path.into(),
            repeat: false,
        }
    }

    /// An application callback filling `width`×`height` pictures `fps` times a second.
    pub fn callback(
        width: u32,
        height: u32,
        fps: u32,
        fill: impl FnMut(&mut VideoFrame) -> bool + Send + 'static,
    ) -> Self {
        Self::Callback {
            width,
            height,
            fps,
            fill: Arc::new(Mutex::new(fill)),
        }
    }
}

impl fmt::Debug for VideoInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Synthetic { width, height, fps } => {
                write!(f, "Synthetic({width}x{height}@{fps})")
            }
            Self::Y4m { path, repeat } => write!(f, "Y4m({}, repeat: {repeat})", path.display()),
            Self::Callback {
                width, height, fps, ..
            } => write!(f, "Callback({width}x{height}@{fps})"),
        }
    }
}

/// Where the remotes' decoded pictures go.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum VideoOutput {
    /// Nowhere (the default; the session still decodes, for the statistics).
    #[default]
    Discard,
    /// A Y4M file per remote in this directory, `USER.y4m` (the remote's audio SSRC in hex
    /// when the user is not known yet), written as pictures are decoded; a remote whose
    /// pictures change size continues in `USER-2.y4m`, `USER-3.y4m`… Each call rewrites
    /// them. The header's frame rate is the local camera's (the remote's is not
    /// signalled).
    Y4mDir(PathBuf),
    /// An application callback.
    Callback(Arc<Mutex<ScreenCallback>>),
}

impl VideoOutput {
    /// Y4M files in `dir`.
    pub fn y4m_dir(dir: impl Into<PathBuf>) -> Self {
        Self::Y4mDir(dir.into())
    }

    /// An application callback receiving each decoded picture.
    pub fn callback(show: impl FnMut(Option<&UserId>, u32, &VideoFrame) + Send + 'static) -> Self {
        Self::Callback(Arc::new(Mutex::new(show)))
    }
}

impl fmt::Debug for VideoOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discard => f.write_str("Discard"),
            Self::Y4mDir(dir) => write!(f, "Y4mDir({})", dir.display()),
            Self::Callback(_) => f.write_str("Callback"),
        }
    }
}

fn video_error(path: &Path, reason: impl fmt::Display) -> EngineError {
    EngineError::Video {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn resolution(width: u32, height: u32) -> Result<Resolution, EngineError> {
    Resolution::new(width, height).map_err(|e| EngineError::Video {
        path: PathBuf::new(),
        reason: e.to_string(),
    })
}

fn checked_fps(fps: u32) -> Result<u32, EngineError> {
    if (1..=MAX_CAMERA_FPS).contains(&fps) {
        Ok(fps)
    } else {
        Err(EngineError::Video {
            path: PathBuf::new(),
            reason: format!("camera frame rate {fps} outside 1 to {MAX_CAMERA_FPS}"),
        })
    }
}

enum Source {
    Pattern(TestPattern),
    Y4m {
        reader: Box<Y4mReader<File>>,
        path: PathBuf,
        repeat: bool,
        ended: bool,
    },
    Callback(Arc<Mutex<CameraCallback>>),
}

/// An open camera: its source and the one picture it fills again and again.
pub(crate) struct Camera {
    source: Source,
    picture: VideoFrame,
    interval: Duration,
    fps: u32,
}

impl Camera {
    /// Opens `input` (reads a Y4M file's header).
    pub(crate) fn open(input: &VideoInput) -> Result<Self, EngineError> {
        let (source, size, fps) = match input {
            VideoInput::Synthetic { width, height, fps } => {
                let size = resolution(*width, *height)?;
                let fps = checked_fps(*fps)?;
                (Source::Pattern(TestPattern::new(size, fps)), size, fps)
            }
            VideoInput::Y4m { path, repeat } => {
                let reader = open_y4m(path)?;
                let size = reader.resolution();
                let (num, den) = reader.frame_rate();
                // Rounded to whole pictures per second, within the camera's range.
                let fps = ((num + den / 2) / den.max(1)).clamp(1, MAX_CAMERA_FPS);
                let source = Source::Y4m {
                    reader: Box::new(reader),
                    path: path.clone(),
                    repeat: *repeat,
                    ended: false,
                };
                (source, size, fps)
            }
            VideoInput::Callback {
                width,
                height,
                fps,
                fill,
            } => (
                Source::Callback(Arc::clone(fill)),
                resolution(*width, *height)?,
                checked_fps(*fps)?,
            ),
        };
        Ok(Self {
            source,
            picture: VideoFrame::black(size),
            interval: Duration::from_secs(1) / fps,
            fps,
        })
    }

    /// The picture size.
    pub(crate) fn resolution(&self) -> Resolution {
        self.picture.resolution()
    }

    /// Pictures per second.
    pub(crate) fn fps(&self) -> u32 {
        self.fps
    }

    /// Time between pictures.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// The next picture (into the reused frame), `None` when the source has none now.
    pub(crate) fn capture(&mut self) -> Result<Option<&VideoFrame>, EngineError> {
        let fresh = match &mut self.source {
            Source::Pattern(pattern) => {
                pattern.render_into(&mut self.picture);
                true
            }
            Source::Callback(fill) => match fill.lock() {
                Ok(mut fill) => fill(&mut self.picture),
                // A callback that panicked once gives no more pictures.
                Err(_) => false,
            },
            Source::Y4m {
                reader,
                path,
                repeat,
                ended,
            } => {
                if *ended {
                    false
                } else {
                    let mut got = reader
                        .read_frame_into(&mut self.picture)
                        .map_err(|e| video_error(path, e))?;
                    if !got && *repeat {
                        **reader = open_y4m(path)?;
                        got = reader
                            .read_frame_into(&mut self.picture)
                            .map_err(|e| video_error(path, e))?;
                    }
                    *ended = !got;
                    got
                }
            }
        };
        Ok(fresh.then_some(&self.picture))
    }
}

fn open_y4m(path: &Path) -> Result<Y4mReader<File>, EngineError> {
    let file = File::open(path).map_err(|e| video_error(path, e))?;
    Y4mReader::new(file).map_err(|e| video_error(path, e))
}

/// One remote's Y4M file (the current segment).
pub(crate) struct Recording {
    writer: Y4mWriter<BufWriter<File>>,
    resolution: Resolution,
    segment: u32,
}

/// Where decoded pictures go.
pub(crate) enum Screen {
    Discard,
    Y4m {
        dir: PathBuf,
        fps: u32,
        /// By the remote's audio SSRC.
        files: BTreeMap<u32, Recording>,
    },
    Callback(Arc<Mutex<ScreenCallback>>),
}

impl Screen {
    /// Opens `output` (creates the directory); `fps` goes in Y4M headers.
    pub(crate) fn open(output: &VideoOutput, fps: u32) -> Result<Self, EngineError> {
        Ok(match output {
            VideoOutput::Discard => Self::Discard,
            VideoOutput::Y4mDir(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| video_error(dir, e))?;
                Self::Y4m {
                    dir: dir.clone(),
                    fps,
                    files: BTreeMap::new(),
                }
            }
            VideoOutput::Callback(show) => Self::Callback(Arc::clone(show)),
        })
    }

    /// Shows one picture of the remote with audio SSRC `ssrc`.
    pub(crate) fn show(
        &mut self,
        user: Option<&UserId>,
        ssrc: u32,
        picture: &VideoFrame,
    ) -> Result<(), EngineError> {
        match self {
            Self::Discard => Ok(()),
            Self::Callback(show) => {
                if let Ok(mut show) = show.lock() {
                    show(user, ssrc, picture);
                }
                Ok(())
            }
            Self::Y4m { dir, fps, files } => {
                let size = picture.resolution();
                let segment = match files.get(&ssrc) {
                    Some(recording) if recording.resolution == size => None,
                    Some(recording) => Some(recording.segment + 1),
                    None => Some(1),
                };
                if let Some(segment) = segment {
                    let name = file_name(user, ssrc, segment);
                    let path = dir.join(name);
                    let file = File::create(&path).map_err(|e| video_error(&path, e))?;
                    let writer = Y4mWriter::new(BufWriter::new(file), size, *fps, 1)
                        .map_err(|e| video_error(&path, e))?;
                    if let Some(old) = files.insert(
                        ssrc,
                        Recording {
                            writer,
                            resolution: size,
                            segment,
                        },
                    ) {
                        finish(old, dir)?;
                    }
                }
                match files.get_mut(&ssrc) {
                    Some(recording) => recording
                        .writer
                        .write_frame(picture)
                        .map_err(|e| video_error(dir, e)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Flushes and closes the files.
    pub(crate) fn close(&mut self) -> Result<(), EngineError> {
        if let Self::Y4m { dir, files, .. } = self {
            let mut result = Ok(());
            for (_, recording) in std::mem::take(files) {
                result = result.and(finish(recording, dir));
            }
            return result;
        }
        Ok(())
    }
}

fn finish(recording: Recording, dir: &Path) -> Result<(), EngineError> {
    use std::io::Write;
    let mut writer = recording.writer.finish().map_err(|e| video_error(dir, e))?;
    writer.flush().map_err(|e| video_error(dir, e))
}

/// `USER.y4m` (`USER-N.y4m` for later segments), with anything but letters, digits, `.`,
/// `_` and `-` replaced so that a user id cannot leave the directory.
fn file_name(user: Option<&UserId>, ssrc: u32, segment: u32) -> String {
    let mut name: String = match user {
        Some(user) => user
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        None => format!("{ssrc:08x}"),
    };
    if segment > 1 {
        name.push_str(&format!("-{segment}"));
    }
    name.push_str(".y4m");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_directory() {
        let user = UserId::new("a.b").unwrap();
        assert_eq!(file_name(Some(&user), 1, 1), "a_b.y4m");
        assert_eq!(file_name(Some(&user), 1, 3), "a_b-3.y4m");
        assert_eq!(file_name(None, 0xAB, 1), "000000ab.y4m");
    }

    #[test]
    fn the_synthetic_camera_reuses_its_picture_and_moves() {
        let mut camera = Camera::open(&VideoInput::default()).unwrap();
        assert_eq!(camera.resolution(), Resolution::new(320, 180).unwrap());
        assert_eq!(camera.interval(), Duration::from_secs(1) / 15);
        let first = camera.capture().unwrap().unwrap().plane(0).to_vec();
        let address = camera.picture.plane(0).as_ptr();
        let second = camera.capture().unwrap().unwrap().plane(0).to_vec();
        assert_eq!(address, camera.picture.plane(0).as_ptr());
        assert_ne!(first, second);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let odd = VideoInput::Synthetic {
            width: 0,
            height: 180,
            fps: 15,
        };
        assert!(Camera::open(&odd).is_err());
        let fast = VideoInput::Synthetic {
            width: 320,
            height: 180,
            fps: 1000,
        };
        assert!(Camera::open(&fast).is_err());
        assert!(Camera::open(&VideoInput::y4m("/nonexistent/x.y4m")).is_err());
    }

    #[test]
    fn y4m_files_round_trip_with_segments_on_size_changes() {
        let dir = std::env::temp_dir().join(format!("tincan-engine-video-{}", std::process::id()));
        let mut camera = Camera::open(&VideoInput::default()).unwrap();
        let mut screen = Screen::open(&VideoOutput::y4m_dir(&dir), 15).unwrap();
        let bob = UserId::new("bob").unwrap();
        for _ in 0..3 {
            let picture = camera.capture().unwrap().unwrap().clone();
            screen.show(Some(&bob), 7, &picture).unwrap();
        }
        let small = VideoFrame::black(Resolution::new(160, 90).unwrap());
        screen.show(Some(&bob), 7, &small).unwrap();
        screen.close().unwrap();
        let mut replay = Camera::open(&VideoInput::y4m(dir.join("bob.y4m"))).unwrap();
        assert_eq!(replay.resolution(), Resolution::new(320, 180).unwrap());
        assert_eq!(replay.fps(), 15);
        let mut frames = 0;
        while replay.capture().unwrap().is_some() {
            frames += 1;
        }
        assert_eq!(frames, 3);
        let second = Camera::open(&VideoInput::y4m(dir.join("bob-2.y4m"))).unwrap();
        assert_eq!(second.resolution(), Resolution::new(160, 90).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
