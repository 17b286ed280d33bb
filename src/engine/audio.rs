//! Where a call's audio comes from and goes to: WAV files, generators, or application
//! callbacks. The engine works in 10 ms frames of 48 kHz mono ([`FRAME_SAMPLES`]
//! samples), the format of the media session.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tincan_codec::resample::resample_all;
use tincan_media::audio::{AudioFormat, AudioFrame, Channels};
use tincan_media::source::ToneSource;
use tincan_media::wav::{WavWriter, read_wav};
use tincan_pipeline::{FRAME_SAMPLES, SAMPLE_RATE};

use super::EngineError;

/// An application callback that fills each 10 ms microphone frame (48 kHz mono,
/// [`FRAME_SAMPLES`] samples). It runs on the call's media thread: keep it short.
pub type MicCallback = dyn FnMut(&mut [i16]) + Send;

/// An application callback that receives each 10 ms frame of what the call plays
/// (48 kHz mono, [`FRAME_SAMPLES`] samples, the remotes mixed). It runs on the call's
/// media thread: keep it short.
pub type SpeakerCallback = dyn FnMut(&[i16]) + Send;

/// Where the microphone's audio comes from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AudioInput {
    /// Digital silence (the default).
    #[default]
    Silence,
    /// A sine tone.
    Tone {
        /// Frequency in Hz.
        frequency_hz: f32,
        /// Amplitude, 0.0 to 1.0 of full scale.
        amplitude: f32,
    },
    /// A WAV file (any rate the resampler supports, mono or stereo: it is mixed to mono
    /// and resampled to 48 kHz), played from the start when the call begins; silence
    /// after its end unless `repeat`.
    Wav {
        /// The file.
        path: PathBuf,
        /// Play it again from the start when it ends.
        repeat: bool,
    },
    /// An application callback.
    Callback(Arc<Mutex<MicCallback>>),
}

impl AudioInput {
    /// A WAV file played once.
    pub fn wav(path: impl Into<PathBuf>) -> Self {
        Self::Wav {
            path: path.into(),
            repeat: false,
        }
    }

    /// An application callback filling each 10 ms frame.
    pub fn callback(fill: impl FnMut(&mut [i16]) + Send + 'static) -> Self {
        Self::Callback(Arc::new(Mutex::new(fill)))
    }
}

impl fmt::Debug for AudioInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silence => f.write_str("Silence"),
            Self::Tone {
                frequency_hz,
                amplitude,
            } => write!(f, "Tone({frequency_hz} Hz, {amplitude})"),
            Self::Wav { path, repeat } => write!(f, "Wav({}, repeat: {repeat})", path.display()),
            Self::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// Where what the call plays goes.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AudioOutput {
    /// Nowhere (the default).
    #[default]
    Discard,
    /// A 48 kHz mono 16-bit WAV file, written from the call's start to its end (each call
    /// rewrites it).
    Wav(PathBuf),
    /// An application callback.
    Callback(Arc<Mutex<SpeakerCallback>>),
}

impl AudioOutput {
    /// A WAV file.
    pub fn wav(path: impl Into<PathBuf>) -> Self {
        Self::Wav(path.into())
    }

    /// An application callback receiving each 10 ms frame.
    pub fn callback(take: impl FnMut(&[i16]) + Send + 'static) -> Self {
        Self::Callback(Arc::new(Mutex::new(take)))
    }
}

impl fmt::Debug for AudioOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discard => f.write_str("Discard"),
            Self::Wav(path) => write!(f, "Wav({})", path.display()),
            Self::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// Reads a WAV file as 48 kHz mono samples.
pub fn load_wav_48k_mono(path: &Path) -> Result<Vec<i16>, EngineError> {
    let failed = |reason: String| EngineError::Audio {
        path: path.to_path_buf(),
        reason,
    };
    let clip = read_wav(path).map_err(|e| failed(e.to_string()))?;
    let rate = clip.format().sample_rate();
    let mono = match clip.format().channels() {
        Channels::Mono => clip,
        Channels::Stereo => {
            let samples: Vec<i16> = clip
                .samples()
                .chunks_exact(2)
                .map(|pair| ((i32::from(pair[0]) + i32::from(pair[1])) / 2) as i16)
                .collect();
            let format =
                AudioFormat::new(rate, Channels::Mono).map_err(|e| failed(e.to_string()))?;
            AudioFrame::from_samples(format, samples).map_err(|e| failed(e.to_string()))?
        }
    };
    if rate == SAMPLE_RATE {
        return Ok(mono.into_samples());
    }
    let resampled = resample_all(&mono, SAMPLE_RATE).map_err(|e| failed(e.to_string()))?;
    Ok(resampled.into_samples())
}

/// The microphone of a running call.
pub(crate) enum Microphone {
    Silence,
    Tone(ToneSource),
    Clip {
        samples: Vec<i16>,
        at: usize,
        repeat: bool,
    },
    Callback(Arc<Mutex<MicCallback>>),
}

impl Microphone {
    pub(crate) fn open(input: &AudioInput) -> Result<Self, EngineError> {
        Ok(match input {
            AudioInput::Silence => Self::Silence,
            AudioInput::Tone {
                frequency_hz,
                amplitude,
            } => Self::Tone(ToneSource::new(
                AudioFormat::MONO_48K,
                *frequency_hz,
                *amplitude,
            )),
            AudioInput::Wav { path, repeat } => Self::Clip {
                samples: load_wav_48k_mono(path)?,
                at: 0,
                repeat: *repeat,
            },
            AudioInput::Callback(callback) => Self::Callback(Arc::clone(callback)),
        })
    }

    /// Fills the next 10 ms frame.
    pub(crate) fn fill(&mut self, frame: &mut [i16; FRAME_SAMPLES]) {
        match self {
            Self::Silence => frame.fill(0),
            Self::Tone(tone) => tone.fill(frame),
            Self::Clip {
                samples,
                at,
                repeat,
            } => {
                let mut filled = 0;
                while filled < FRAME_SAMPLES {
                    if *at >= samples.len() {
                        if *repeat && !samples.is_empty() {
                            *at = 0;
                        } else {
                            break;
                        }
                    }
                    let take = (FRAME_SAMPLES - filled).min(samples.len() - *at);
                    frame[filled..filled + take].copy_from_slice(&samples[*at..*at + take]);
                    filled += take;
                    *at += take;
                }
                frame[filled..].fill(0);
            }
            Self::Callback(callback) => match callback.lock() {
                Ok(mut fill) => fill(frame),
                Err(_) => frame.fill(0),
            },
        }
    }
}

/// The speaker of a running call.
pub(crate) enum Speaker {
    Discard,
    Wav {
        writer: Option<WavWriter>,
        path: PathBuf,
    },
    Callback(Arc<Mutex<SpeakerCallback>>),
}

impl Speaker {
    pub(crate) fn open(output: &AudioOutput) -> Result<Self, EngineError> {
        Ok(match output {
            AudioOutput::Discard => Self::Discard,
            AudioOutput::Wav(path) => Self::Wav {
                writer: Some(WavWriter::create(path, AudioFormat::MONO_48K).map_err(|e| {
                    EngineError::Audio {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?),
                path: path.clone(),
            },
            AudioOutput::Callback(callback) => Self::Callback(Arc::clone(callback)),
        })
    }

    /// Takes the next 10 ms frame.
    pub(crate) fn play(&mut self, frame: &[i16]) -> Result<(), EngineError> {
        match self {
            Self::Discard => Ok(()),
            Self::Wav { writer, path } => match writer {
                Some(w) => w.write(frame).map_err(|e| EngineError::Audio {
                    path: path.clone(),
                    reason: e.to_string(),
                }),
                None => Ok(()),
            },
            Self::Callback(callback) => {
                if let Ok(mut take) = callback.lock() {
                    take(frame);
                }
                Ok(())
            }
        }
    }

    /// Finishes a WAV file (writes its header's lengths).
    pub(crate) fn close(&mut self) -> Result<(), EngineError> {
        if let Self::Wav { writer, path } = self
            && let Some(w) = writer.take()
        {
            w.finalize().map_err(|e| EngineError::Audio {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_plays_once_then_silence_and_repeats_when_asked() {
        let samples: Vec<i16> = (1..=700).map(|i| i as i16).collect();
        let mut once = Microphone::Clip {
            samples: samples.clone(),
            at: 0,
            repeat: false,
        };
        let mut frame = [0i16; FRAME_SAMPLES];
        once.fill(&mut frame);
        assert_eq!(frame[0], 1);
        assert_eq!(frame[FRAME_SAMPLES - 1], FRAME_SAMPLES as i16);
        once.fill(&mut frame);
        assert_eq!(frame[0], FRAME_SAMPLES as i16 + 1);
        assert_eq!(frame[700 - FRAME_SAMPLES - 1], 700);
        assert_eq!(frame[700 - FRAME_SAMPLES], 0);
        let mut looped = Microphone::Clip {
            samples,
            at: 0,
            repeat: true,
        };
        looped.fill(&mut frame);
        looped.fill(&mut frame);
        assert_eq!(frame[700 - FRAME_SAMPLES], 1);
    }

    #[test]
    fn callbacks_see_every_frame() {
        let count = Arc::new(Mutex::new(0usize));
        let seen = Arc::clone(&count);
        let output = AudioOutput::callback(move |frame| {
            assert_eq!(frame.len(), FRAME_SAMPLES);
            *seen.lock().unwrap() += 1;
        });
        let mut speaker = Speaker::open(&output).unwrap();
        for _ in 0..3 {
            speaker.play(&[0; FRAME_SAMPLES]).unwrap();
        }
        assert_eq!(*count.lock().unwrap(), 3);
        let mut mic = Microphone::open(&AudioInput::callback(|f| f.fill(7))).unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        mic.fill(&mut frame);
        assert!(frame.iter().all(|&s| s == 7));
    }

    #[test]
    fn missing_wav_is_a_typed_error() {
        let error = Microphone::open(&AudioInput::wav("/nonexistent/x.wav")).err();
        assert!(matches!(error, Some(EngineError::Audio { .. })));
    }
}
