//! Audio formats and frames.
//!
//! A frame owns interleaved samples of one sample type, `i16` (what codecs and the
//! wire use) or `f32` (what DSP uses, in the range -1.0..=1.0). Both are
//! [`bytemuck::Pod`], so a frame can be seen as bytes, and bytes as samples, without
//! copying. Frames are meant to be reused: [`AudioFrame::resize`] keeps the
//! allocation, so a real-time path allocates only while it warms up.

use crate::error::{MediaError, Result};
use std::time::Duration;

/// Highest sample rate any tincan component accepts.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// A sample type an [`AudioFrame`] can hold.
pub trait Sample:
    bytemuck::Pod + Default + PartialEq + Send + Sync + std::fmt::Debug + 'static
{
    /// The silent value.
    const SILENCE: Self;
    /// Converts to `f32` full scale -1.0..=1.0.
    fn to_f32(self) -> f32;
    /// Converts from `f32` full scale, clamping out-of-range values and mapping NaN to silence.
    fn from_f32(value: f32) -> Self;
}

impl Sample for i16 {
    const SILENCE: Self = 0;
    #[inline]
    fn to_f32(self) -> f32 {
        f32::from(self) / 32768.0
    }
    #[inline]
    fn from_f32(value: f32) -> Self {
        if value.is_nan() {
            return 0;
        }
        // `as` saturates on overflow, which is the clamping we want.
        (value * 32768.0).round().clamp(-32768.0, 32767.0) as i16
    }
}

impl Sample for f32 {
    const SILENCE: Self = 0.0;
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(value: f32) -> Self {
        if value.is_nan() {
            0.0
        } else {
            value.clamp(-1.0, 1.0)
        }
    }
}

/// Mono or stereo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channels {
    /// One channel.
    Mono = 1,
    /// Two channels, interleaved left then right.
    Stereo = 2,
}

impl Channels {
    /// Number of channels.
    pub const fn count(self) -> usize {
        self as usize
    }

    /// From a channel count; only 1 and 2 are supported.
    pub fn from_count(channels: u16) -> Result<Self> {
        match channels {
            1 => Ok(Self::Mono),
            2 => Ok(Self::Stereo),
            _ => Err(MediaError::UnsupportedChannels { channels }),
        }
    }
}

/// Sample rate and channel layout of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    sample_rate: u32,
    channels: Channels,
}

impl AudioFormat {
    /// A format; the rate must be 1..=[`MAX_SAMPLE_RATE`].
    pub fn new(sample_rate: u32, channels: Channels) -> Result<Self> {
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
            return Err(MediaError::UnsupportedSampleRate { rate: sample_rate });
        }
        Ok(Self {
            sample_rate,
            channels,
        })
    }

    /// 48 kHz mono, the format of the call path.
    pub const MONO_48K: Self = Self {
        sample_rate: 48_000,
        channels: Channels::Mono,
    };

    /// Samples per second per channel.
    pub const fn sample_rate(self) -> u32 {
        self.sample_rate
    }

    /// Channel layout.
    pub const fn channels(self) -> Channels {
        self.channels
    }

    /// Samples per channel in `duration`, rounded down.
    pub fn samples_per_channel(self, duration: Duration) -> usize {
        (duration.as_nanos() * u128::from(self.sample_rate) / 1_000_000_000) as usize
    }

    /// Duration of `samples_per_channel` samples.
    pub fn duration_of(self, samples_per_channel: usize) -> Duration {
        Duration::from_nanos(
            (samples_per_channel as u128 * 1_000_000_000 / u128::from(self.sample_rate)) as u64,
        )
    }
}

/// A block of interleaved audio samples in one format.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame<S: Sample = i16> {
    format: AudioFormat,
    samples: Vec<S>,
}

impl<S: Sample> AudioFrame<S> {
    /// A frame of `samples_per_channel` silent samples.
    pub fn silence(format: AudioFormat, samples_per_channel: usize) -> Self {
        Self {
            format,
            samples: vec![S::SILENCE; samples_per_channel * format.channels.count()],
        }
    }

    /// A frame over interleaved `samples`; their count must be a multiple of the channel count.
    pub fn from_samples(format: AudioFormat, samples: Vec<S>) -> Result<Self> {
        let channels = format.channels.count();
        if samples.len() % channels != 0 {
            return Err(MediaError::RaggedSamples {
                len: samples.len(),
                channels: channels as u16,
            });
        }
        Ok(Self { format, samples })
    }

    /// A frame copied from native-endian bytes of `S` (e.g. a packet
    /// or file payload). Fails when the byte count is not a whole number of frames.
    pub fn from_bytes(format: AudioFormat, bytes: &[u8]) -> Result<Self> {
        let size = std::mem::size_of::<S>();
        let channels = format.channels.count();
        if bytes.len() % (size * channels) != 0 {
            return Err(MediaError::RaggedSamples {
                len: bytes.len() / size,
                channels: channels as u16,
            });
        }
        // The bytes may not be aligned for S, so copy into a fresh Vec<S> rather than cast.
        let mut samples = vec![S::SILENCE; bytes.len() / size];
        bytemuck::cast_slice_mut::<S, u8>(&mut samples).copy_from_slice(bytes);
        Ok(Self { format, samples })
    }

    /// The format.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Samples per channel.
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / self.format.channels.count()
    }

    /// Duration of the frame.
    pub fn duration(&self) -> Duration {
        self.format.duration_of(self.samples_per_channel())
    }

    /// Interleaved samples.
    pub fn samples(&self) -> &[S] {
        &self.samples
    }

    /// Interleaved samples, writable.
    pub fn samples_mut(&mut self) -> &mut [S] {
        &mut self.samples
    }

    /// The samples seen as native-endian bytes, without copying.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.samples)
    }

    /// The samples seen as writable native-endian bytes, without copying.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.samples)
    }

    /// Changes format and length, keeping the allocation when it is large enough.
    /// New samples are silent.
    pub fn resize(&mut self, format: AudioFormat, samples_per_channel: usize) {
        self.format = format;
        self.samples
            .resize(samples_per_channel * format.channels.count(), S::SILENCE);
    }

    /// Gives the sample buffer back, for reuse.
    pub fn into_samples(self) -> Vec<S> {
        self.samples
    }

    /// Writes this frame converted to another sample type into `out`, reusing its allocation.
    pub fn convert_into<T: Sample>(&self, out: &mut AudioFrame<T>) {
        out.format = self.format;
        out.samples.clear();
        out.samples
            .extend(self.samples.iter().map(|s| T::from_f32(s.to_f32())));
    }

    /// This frame converted to another sample type.
    pub fn to_format<T: Sample>(&self) -> AudioFrame<T> {
        let mut out = AudioFrame {
            format: self.format,
            samples: Vec::with_capacity(self.samples.len()),
        };
        self.convert_into(&mut out);
        out
    }
}

/// Views a slice of samples as bytes without copying.
pub fn samples_as_bytes<S: Sample>(samples: &[S]) -> &[u8] {
    bytemuck::cast_slice(samples)
}

/// Views aligned bytes as samples without copying; `None` when the bytes are misaligned
/// for `S` or not a whole number of samples.
pub fn bytes_as_samples<S: Sample>(bytes: &[u8]) -> Option<&[S]> {
    bytemuck::try_cast_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_f32_conversion_clamps_and_round_trips() {
        for v in [i16::MIN, -1, 0, 1, 12345, i16::MAX] {
            assert_eq!(i16::from_f32(v.to_f32()), v);
        }
        assert_eq!(i16::from_f32(2.0), i16::MAX);
        assert_eq!(i16::from_f32(-2.0), i16::MIN);
        assert_eq!(i16::from_f32(f32::NAN), 0);
        assert_eq!(f32::from_f32(f32::INFINITY), 1.0);
        assert_eq!(f32::from_f32(f32::NAN), 0.0);
    }

    #[test]
    fn frames_reject_ragged_sample_counts() {
        let stereo = AudioFormat::new(48_000, Channels::Stereo).unwrap();
        assert!(matches!(
            AudioFrame::from_samples(stereo, vec![0i16; 3]),
            Err(MediaError::RaggedSamples {
                len: 3,
                channels: 2
            })
        ));
        let frame = AudioFrame::from_samples(stereo, vec![0i16; 960]).unwrap();
        assert_eq!(frame.samples_per_channel(), 480);
        assert_eq!(frame.duration(), Duration::from_millis(10));
    }

    #[test]
    fn byte_views_are_zero_copy() {
        let frame = AudioFrame::from_samples(AudioFormat::MONO_48K, vec![1i16, -2, 3]).unwrap();
        let bytes = frame.as_bytes();
        assert_eq!(bytes.len(), 6);
        assert_eq!(bytes.as_ptr(), frame.samples().as_ptr().cast());
        let back = AudioFrame::<i16>::from_bytes(AudioFormat::MONO_48K, bytes).unwrap();
        assert_eq!(back, frame);
        assert!(AudioFrame::<i16>::from_bytes(AudioFormat::MONO_48K, &bytes[..5]).is_err());
    }

    #[test]
    fn resize_keeps_the_allocation() {
        let mut frame = AudioFrame::<f32>::silence(AudioFormat::MONO_48K, 960);
        let ptr = frame.samples().as_ptr();
        frame.resize(AudioFormat::new(16_000, Channels::Mono).unwrap(), 320);
        assert_eq!(frame.samples().as_ptr(), ptr);
        assert_eq!(frame.samples_per_channel(), 320);
    }

    #[test]
    fn formats_reject_bad_rates() {
        assert!(AudioFormat::new(0, Channels::Mono).is_err());
        assert!(AudioFormat::new(MAX_SAMPLE_RATE + 1, Channels::Mono).is_err());
        assert!(Channels::from_count(3).is_err());
    }
}
