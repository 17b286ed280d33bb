//! WAV files, through `hound`.
//!
//! Reading accepts the PCM layouts tools commonly write (8, 16, 24 or 32-bit integer
//! and 32-bit float, mono or stereo) and converts them to `i16`, the sample type of
//! the call path. Writing always produces 16-bit integer PCM.

use crate::audio::{AudioFormat, AudioFrame, Channels, Sample};
use crate::error::{MediaError, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

/// Samples reserved up front at most; a header can claim far more data than the file
/// holds, so larger files grow the buffer as samples actually arrive.
const MAX_PREALLOCATED_SAMPLES: usize = 1 << 20;

/// Reads a whole WAV file as 16-bit samples.
pub fn read_wav(path: impl AsRef<Path>) -> Result<AudioFrame<i16>> {
    read_wav_from(BufReader::new(File::open(path)?))
}

/// Reads a whole WAV stream as 16-bit samples.
///
/// Integer samples wider than 16 bits keep their top 16 bits and narrower ones are
/// scaled up; float samples are clamped to full scale. More than two channels, a sample
/// rate outside 1 Hz..=384 kHz, or another sample layout is an error.
pub fn read_wav_from(reader: impl Read) -> Result<AudioFrame<i16>> {
    let mut wav = hound::WavReader::new(reader)?;
    let spec = wav.spec();
    let format = AudioFormat::new(spec.sample_rate, Channels::from_count(spec.channels)?)?;
    let capacity = (wav.len() as usize).min(MAX_PREALLOCATED_SAMPLES);
    let mut samples = Vec::with_capacity(capacity);

    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            for sample in wav.samples::<i32>() {
                let sample = sample?;
                // Keep the most significant 16 bits, whatever the source width.
                let value = if bits >= 16 {
                    sample >> (bits - 16)
                } else {
                    sample << (16 - bits)
                };
                samples.push(value as i16);
            }
        }
        (hound::SampleFormat::Float, 32) => {
            for sample in wav.samples::<f32>() {
                samples.push(i16::from_f32(sample?));
            }
        }
        (sample_format, bits) => {
            let kind = match sample_format {
                hound::SampleFormat::Int => "integer",
                hound::SampleFormat::Float => "float",
            };
            return Err(MediaError::Unsupported {
                format: "WAV",
                feature: format!("{bits}-bit {kind} samples"),
            });
        }
    }
    AudioFrame::from_samples(format, samples)
}

/// Writes `frame` to a new file at `path` as 16-bit PCM, replacing any file there.
pub fn write_wav(path: impl AsRef<Path>, frame: &AudioFrame<i16>) -> Result<()> {
    let mut writer = WavWriter::create(path, frame.format())?;
    writer.write(frame.samples())?;
    writer.finalize()
}

/// Writes `frame` to `writer` as 16-bit PCM. The writer must be seekable because
/// the header's lengths are filled in at the end.
pub fn write_wav_to(writer: impl Write + Seek, frame: &AudioFrame<i16>) -> Result<()> {
    let mut writer = WavWriter::new(writer, frame.format())?;
    writer.write(frame.samples())?;
    writer.finalize()
}

/// A WAV file written a block at a time, for outputs too long to hold in memory.
///
/// Call [`finalize`](Self::finalize) at the end: it writes the header's lengths and
/// reports errors. Dropping the writer instead also tries to finish the file but
/// swallows any error.
pub struct WavWriter<W: Write + Seek = BufWriter<File>> {
    inner: hound::WavWriter<W>,
    format: AudioFormat,
}

impl WavWriter {
    /// Creates (or truncates) the file at `path` and writes a 16-bit PCM header.
    pub fn create(path: impl AsRef<Path>, format: AudioFormat) -> Result<Self> {
        Self::new(BufWriter::new(File::create(path)?), format)
    }
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes a 16-bit PCM header to `writer` and returns a writer for the samples.
    pub fn new(writer: W, format: AudioFormat) -> Result<Self> {
        let spec = hound::WavSpec {
            channels: format.channels().count() as u16,
            sample_rate: format.sample_rate(),
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Self {
            inner: hound::WavWriter::new(writer, spec)?,
            format,
        })
    }

    /// The format being written.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Appends interleaved samples; their count must be a whole number of frames, so
    /// the file never ends inside one.
    pub fn write(&mut self, samples: &[i16]) -> Result<()> {
        let channels = self.format.channels().count();
        if samples.len() % channels != 0 {
            return Err(MediaError::RaggedSamples {
                len: samples.len(),
                channels: channels as u16,
            });
        }
        for &sample in samples {
            self.inner.write_sample(sample)?;
        }
        Ok(())
    }

    /// Appends a frame, which must be in the writer's format.
    pub fn write_frame(&mut self, frame: &AudioFrame<i16>) -> Result<()> {
        if frame.format() != self.format {
            return Err(MediaError::FormatMismatch {
                expected: self.format,
                actual: frame.format(),
            });
        }
        self.write(frame.samples())
    }

    /// Samples written so far, per channel.
    pub fn samples_per_channel(&self) -> u32 {
        self.inner.duration()
    }

    /// Fills in the header's lengths and flushes.
    pub fn finalize(self) -> Result<()> {
        Ok(self.inner.finalize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn wav_bytes(frame: &AudioFrame<i16>) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        write_wav_to(&mut cursor, frame).unwrap();
        cursor.into_inner()
    }

    fn ramp(format: AudioFormat, samples_per_channel: usize) -> AudioFrame<i16> {
        let len = samples_per_channel * format.channels().count();
        let samples = (0..len)
            .map(|i| (i as i32 * 997 % 65_536 - 32_768) as i16)
            .collect();
        AudioFrame::from_samples(format, samples).unwrap()
    }

    /// A small deterministic generator, so failures reproduce.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn round_trips_mono_and_stereo() {
        for format in [
            AudioFormat::MONO_48K,
            AudioFormat::new(44_100, Channels::Stereo).unwrap(),
        ] {
            let frame = ramp(format, 1_000);
            let back = read_wav_from(Cursor::new(wav_bytes(&frame))).unwrap();
            assert_eq!(back, frame);
        }
        let empty = AudioFrame::<i16>::silence(AudioFormat::MONO_48K, 0);
        assert_eq!(
            read_wav_from(Cursor::new(wav_bytes(&empty))).unwrap(),
            empty
        );
    }

    #[test]
    fn reads_a_real_recording() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/speech/hts1a.wav"
        );
        let frame = read_wav(path).unwrap();
        assert_eq!(
            frame.format(),
            AudioFormat::new(8_000, Channels::Mono).unwrap()
        );
        assert_eq!(frame.samples_per_channel(), 24_000);
        assert!(frame.samples().iter().any(|&s| s.unsigned_abs() > 1_000));
    }

    #[test]
    fn round_trips_through_a_file_and_the_streaming_writer() {
        let dir = std::env::temp_dir().join(format!("tincan-media-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stream.wav");
        let format = AudioFormat::new(16_000, Channels::Stereo).unwrap();
        let frame = ramp(format, 800);

        let mut writer = WavWriter::create(&path, format).unwrap();
        for block in frame.samples().chunks(320) {
            writer.write(block).unwrap();
        }
        assert_eq!(writer.samples_per_channel(), 800);
        assert!(matches!(
            writer.write(&[1, 2, 3]),
            Err(MediaError::RaggedSamples {
                len: 3,
                channels: 2
            })
        ));
        assert!(
            writer
                .write_frame(&AudioFrame::silence(AudioFormat::MONO_48K, 10))
                .is_err()
        );
        writer.finalize().unwrap();
        assert_eq!(read_wav(&path).unwrap(), frame);

        write_wav(&path, &frame).unwrap();
        assert_eq!(read_wav(&path).unwrap(), frame);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn encode_with(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        write(&mut writer);
        writer.finalize().unwrap();
        cursor.into_inner()
    }

    fn spec(channels: u16, bits: u16, sample_format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 8_000,
            bits_per_sample: bits,
            sample_format,
        }
    }

    #[test]
    fn converts_other_sample_widths_to_i16() {
        use hound::SampleFormat::{Float, Int};
        let bytes = encode_with(spec(1, 8, Int), |w| {
            [-128i8, 0, 127]
                .iter()
                .for_each(|&s| w.write_sample(s).unwrap())
        });
        assert_eq!(
            read_wav_from(Cursor::new(bytes)).unwrap().samples(),
            &[-32_768, 0, 32_512]
        );

        let bytes = encode_with(spec(2, 24, Int), |w| {
            [-8_388_608i32, 8_388_607, 256, -1]
                .iter()
                .for_each(|&s| w.write_sample(s).unwrap())
        });
        let frame = read_wav_from(Cursor::new(bytes)).unwrap();
        assert_eq!(frame.format().channels(), Channels::Stereo);
        assert_eq!(frame.samples(), &[-32_768, 32_767, 1, -1]);

        let bytes = encode_with(spec(1, 32, Int), |w| {
            [i32::MIN, i32::MAX, 1 << 16]
                .iter()
                .for_each(|&s| w.write_sample(s).unwrap())
        });
        assert_eq!(
            read_wav_from(Cursor::new(bytes)).unwrap().samples(),
            &[-32_768, 32_767, 1]
        );

        let bytes = encode_with(spec(1, 32, Float), |w| {
            [-1.0f32, 0.5, 2.0, f32::NAN]
                .iter()
                .for_each(|&s| w.write_sample(s).unwrap())
        });
        assert_eq!(
            read_wav_from(Cursor::new(bytes)).unwrap().samples(),
            &[-32_768, 16_384, 32_767, 0]
        );
    }

    #[test]
    fn rejects_unsupported_layouts() {
        let bytes = encode_with(spec(3, 16, hound::SampleFormat::Int), |w| {
            (0..3).for_each(|_| w.write_sample(0i16).unwrap())
        });
        assert!(matches!(
            read_wav_from(Cursor::new(bytes)),
            Err(MediaError::UnsupportedChannels { channels: 3 })
        ));

        let mut rate_too_high = spec(1, 16, hound::SampleFormat::Int);
        rate_too_high.sample_rate = 1_000_000;
        let bytes = encode_with(rate_too_high, |w| w.write_sample(0i16).unwrap());
        assert!(matches!(
            read_wav_from(Cursor::new(bytes)),
            Err(MediaError::UnsupportedSampleRate { rate: 1_000_000 })
        ));
    }

    #[test]
    fn truncated_files_are_errors() {
        let bytes = wav_bytes(&ramp(
            AudioFormat::new(8_000, Channels::Stereo).unwrap(),
            25,
        ));
        for len in 0..bytes.len() {
            assert!(
                read_wav_from(&bytes[..len]).is_err(),
                "prefix of {len} bytes was accepted"
            );
        }
        assert!(read_wav_from(&bytes[..]).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let valid = wav_bytes(&ramp(AudioFormat::MONO_48K, 40));
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..3_000 {
            let len = (xorshift(&mut state) % 200) as usize;
            let random: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            let _ = read_wav_from(&random[..]);

            // Corrupt a few header or data bytes of a valid file: gets past the magic.
            let mut mutated = valid.clone();
            for _ in 0..1 + xorshift(&mut state) % 4 {
                let at = (xorshift(&mut state) % 60) as usize;
                mutated[at] = xorshift(&mut state) as u8;
            }
            let _ = read_wav_from(&mutated[..]);
        }
    }
}
