//! Sample-rate conversion frame by frame, over `rubato`.
//!
//! A [`Resampler`] converts a stream of fixed-size interleaved frames (typically 10 ms)
//! between any two of [`SUPPORTED_RATES`], mono or stereo, without allocating after
//! construction.
//!
//! # Which resampler
//!
//! Every supported rate is a multiple of 100 Hz, so 10 ms (or any whole number of
//! milliseconds times ten) holds an exact number of samples at both rates and the ratio
//! is exact per frame (441 in → 480 out for 44.1 → 48 kHz). When the input frame is a
//! whole number of the pair's smallest exact block (`from / gcd(from, to)` samples), the
//! synchronous FFT resampler ([`rubato::Fft`], [`rubato::FixedSync::Input`], one FFT per
//! frame) is used: every frame gives exactly `frame * to / from` samples, the quality is
//! rubato's best, and the delay is half an output frame. Other frame sizes (e.g. 256
//! samples at 44.1 kHz) fall back to the asynchronous sinc resampler ([`rubato::Async`],
//! 256-tap Blackman–Harris² sinc, cubic interpolation, fixed input), whose output count
//! varies by a sample or so from frame to frame. Equal rates pass samples through.
//! [`Resampler::kind`] tells which was picked.

use crate::error::{CodecError, Result};
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};
use tincan_media::{AudioFormat, AudioFrame, Channels, Sample};

/// Sample rates a [`Resampler`] converts between, in Hz.
pub const SUPPORTED_RATES: [u32; 7] = [8_000, 12_000, 16_000, 24_000, 32_000, 44_100, 48_000];

/// Which conversion a [`Resampler`] runs; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResamplerKind {
    /// Equal rates: samples are copied unchanged, no delay.
    Passthrough,
    /// Synchronous FFT resampler, exact output count per frame.
    Fft,
    /// Asynchronous sinc resampler, for frame sizes that do not fit an exact block.
    Sinc,
}

/// Converts fixed-size frames of interleaved `f32` (or `i16`) samples from one rate to
/// another. Allocation-free after construction (given an output `Vec` with capacity for
/// [`Resampler::output_frame_samples_max`] frames).
pub struct Resampler {
    from_rate: u32,
    to_rate: u32,
    channels: Channels,
    input_frame_samples: usize,
    output_frame_samples_max: usize,
    kind: ResamplerKind,
    /// `None` for passthrough.
    engine: Option<Box<dyn rubato::Resampler<f32>>>,
    /// Scratch for the `i16` path, interleaved.
    input_scratch: Vec<f32>,
    output_scratch: Vec<f32>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from_rate", &self.from_rate)
            .field("to_rate", &self.to_rate)
            .field("channels", &self.channels)
            .field("input_frame_samples", &self.input_frame_samples)
            .field("kind", &self.kind)
            .finish()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn engine_error(error: impl std::fmt::Display) -> CodecError {
    CodecError::Library {
        codec: "resampler",
        reason: error.to_string(),
    }
}

impl Resampler {
    /// A resampler from `from_rate` to `to_rate` Hz for frames of `input_frame_samples`
    /// samples per channel (e.g. 480 for 10 ms at 48 kHz).
    ///
    /// Rates outside [`SUPPORTED_RATES`], and frame sizes of 0 or above one second, are
    /// [`CodecError::Unsupported`].
    pub fn new(
        from_rate: u32,
        to_rate: u32,
        channels: Channels,
        input_frame_samples: usize,
    ) -> Result<Self> {
        for rate in [from_rate, to_rate] {
            if !SUPPORTED_RATES.contains(&rate) {
                return Err(CodecError::Unsupported {
                    parameter: "sample rate",
                    value: format!("{rate} Hz"),
                });
            }
        }
        if input_frame_samples == 0 || input_frame_samples > from_rate as usize {
            return Err(CodecError::Unsupported {
                parameter: "resampler frame size",
                value: format!("{input_frame_samples} samples at {from_rate} Hz"),
            });
        }
        let count = channels.count();
        let exact_block = (from_rate / gcd(from_rate, to_rate)) as usize;
        let (kind, engine): (ResamplerKind, Option<Box<dyn rubato::Resampler<f32>>>) = if from_rate
            == to_rate
        {
            (ResamplerKind::Passthrough, None)
        } else if input_frame_samples % exact_block == 0 {
            // One sub-chunk: the FFT block is the whole frame, so each frame maps to
            // exactly one output block and nothing is carried over between calls.
            let fft = Fft::<f32>::new_custom(
                from_rate as usize,
                to_rate as usize,
                input_frame_samples,
                1,
                count,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(engine_error)?;
            (ResamplerKind::Fft, Some(Box::new(fft)))
        } else {
            let parameters = SincInterpolationParameters::new(256, WindowFunction::BlackmanHarris2)
                .oversampling_factor(128)
                .interpolation(SincInterpolationType::Cubic);
            let sinc = Async::<f32>::new_sinc(
                f64::from(to_rate) / f64::from(from_rate),
                1.0,
                &parameters,
                input_frame_samples,
                count,
                FixedAsync::Input,
            )
            .map_err(engine_error)?;
            (ResamplerKind::Sinc, Some(Box::new(sinc)))
        };
        let output_frame_samples_max = engine
            .as_ref()
            .map_or(input_frame_samples, |e| e.output_frames_max());
        Ok(Self {
            from_rate,
            to_rate,
            channels,
            input_frame_samples,
            output_frame_samples_max,
            kind,
            engine,
            input_scratch: vec![0.0; input_frame_samples * count],
            output_scratch: vec![0.0; output_frame_samples_max * count],
        })
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from_rate
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to_rate
    }

    /// Channel layout of input and output.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Samples per channel every input frame must have.
    pub fn input_frame_samples(&self) -> usize {
        self.input_frame_samples
    }

    /// Most samples per channel one call can produce; size output buffers for this.
    pub fn output_frame_samples_max(&self) -> usize {
        self.output_frame_samples_max
    }

    /// Samples per channel the next call will produce.
    pub fn output_frame_samples_next(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(self.input_frame_samples, |e| e.output_frames_next())
    }

    /// Which conversion runs.
    pub fn kind(&self) -> ResamplerKind {
        self.kind
    }

    /// Delay the conversion adds, in whole output samples per channel (as rubato reports
    /// it): output sample `n + output_delay()` corresponds to input time `n / to_rate`,
    /// to within one sample. See [`output_delay_precise`](Self::output_delay_precise).
    pub fn output_delay(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| e.output_delay())
    }

    /// The delay in output samples with its fraction, for sub-sample alignment.
    ///
    /// Exact for [`ResamplerKind::Fft`]: the anti-aliasing filter is centred on input
    /// sample `frame / 2` (rounded down), i.e. `(frame / 2) * to / from` output samples —
    /// 239.46 rather than 240 for 441-sample frames from 44.1 to 48 kHz. For
    /// [`ResamplerKind::Sinc`] it is rubato's estimate, within about one sample.
    pub fn output_delay_precise(&self) -> f64 {
        match self.kind {
            ResamplerKind::Passthrough => 0.0,
            ResamplerKind::Fft => {
                (self.input_frame_samples / 2) as f64 * f64::from(self.to_rate)
                    / f64::from(self.from_rate)
            }
            ResamplerKind::Sinc => self.output_delay() as f64,
        }
    }

    /// Forgets all history, as after a stream change.
    pub fn reset(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.reset();
        }
    }

    fn check_input(&self, len: usize) -> Result<()> {
        let expected = self.input_frame_samples * self.channels.count();
        if len != expected {
            return Err(CodecError::WrongFrameSize { got: len, expected });
        }
        Ok(())
    }

    /// Converts one frame of interleaved samples into `output`, returning the samples per
    /// channel written (at the start of `output`).
    ///
    /// `input` must hold exactly [`input_frame_samples`](Self::input_frame_samples) per
    /// channel; `output` at least [`output_frame_samples_next`](Self::output_frame_samples_next)
    /// per channel ([`CodecError::OutputTooSmall`] otherwise).
    pub fn process_into(&mut self, input: &[f32], output: &mut [f32]) -> Result<usize> {
        self.check_input(input.len())?;
        let count = self.channels.count();
        let needed = self.output_frame_samples_next() * count;
        if output.len() < needed {
            return Err(CodecError::OutputTooSmall {
                got: output.len(),
                needed,
            });
        }
        run(self.engine.as_deref_mut(), count, input, output)
    }

    /// Converts one frame of interleaved samples, replacing the contents of `output`;
    /// returns the samples per channel written.
    ///
    /// `output` keeps its allocation: one with capacity for
    /// [`output_frame_samples_max`](Self::output_frame_samples_max) frames never grows.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<usize> {
        self.check_input(input.len())?;
        let count = self.channels.count();
        output.clear();
        output.resize(self.output_frame_samples_next() * count, 0.0);
        let written = run(self.engine.as_deref_mut(), count, input, output)?;
        output.truncate(written * count);
        Ok(written)
    }

    /// [`process`](Self::process) for `i16` samples (full scale ±32768), through
    /// preallocated `f32` scratch buffers.
    pub fn process_i16(&mut self, input: &[i16], output: &mut Vec<i16>) -> Result<usize> {
        self.check_input(input.len())?;
        let count = self.channels.count();
        for (dst, &src) in self.input_scratch.iter_mut().zip(input) {
            *dst = src.to_f32();
        }
        let written = run(
            self.engine.as_deref_mut(),
            count,
            &self.input_scratch,
            &mut self.output_scratch,
        )?;
        output.clear();
        output.extend(
            self.output_scratch[..written * count]
                .iter()
                .map(|&s| i16::from_f32(s)),
        );
        Ok(written)
    }
}

/// Resamples a whole clip to `to_rate`, for files, tests and demos (it allocates).
///
/// The output lines up with the input (the resampler delay is trimmed) and holds
/// `len * to_rate / from_rate` samples per channel, rounded to nearest. Internally the
/// frame is chosen so that the FFT resampler's delay is a whole number of output samples
/// (a multiple of twice the pair's exact block, at least 10 ms), so no half-sample shift
/// remains. Unsupported rates are [`CodecError::Unsupported`].
pub fn resample_all<S: Sample>(clip: &AudioFrame<S>, to_rate: u32) -> Result<AudioFrame<S>> {
    let from_rate = clip.format().sample_rate();
    let channels = clip.format().channels();
    let format = AudioFormat::new(to_rate, channels)?;
    for rate in [from_rate, to_rate] {
        if !SUPPORTED_RATES.contains(&rate) {
            return Err(CodecError::Unsupported {
                parameter: "sample rate",
                value: format!("{rate} Hz"),
            });
        }
    }
    if from_rate == to_rate {
        return Ok(AudioFrame::from_samples(format, clip.samples().to_vec())?);
    }
    let count = channels.count();
    let block = 2 * (from_rate / gcd(from_rate, to_rate)) as usize;
    let frame = block * (from_rate as usize / 100).div_ceil(block);
    let mut resampler = Resampler::new(from_rate, to_rate, channels, frame)?;
    debug_assert_eq!(resampler.kind(), ResamplerKind::Fft);
    let delay = resampler.output_delay_precise().round() as usize;
    let input_len = clip.samples_per_channel() as u64;
    let wanted = ((input_len * u64::from(to_rate) + u64::from(from_rate) / 2)
        / u64::from(from_rate)) as usize;

    let input: Vec<f32> = clip.samples().iter().map(|s| s.to_f32()).collect();
    let mut output =
        Vec::with_capacity((delay + wanted + resampler.output_frame_samples_max()) * count);
    let mut chunk = vec![0.0f32; frame * count];
    let mut piece = Vec::with_capacity(resampler.output_frame_samples_max() * count);
    let mut offset = 0;
    while output.len() < (delay + wanted) * count {
        // Input, then silence to push the tail out through the delay.
        let available = input.len().saturating_sub(offset).min(chunk.len());
        chunk[..available].copy_from_slice(&input[offset..offset + available]);
        chunk[available..].fill(0.0);
        offset += available;
        resampler.process(&chunk, &mut piece)?;
        output.extend_from_slice(&piece);
    }
    let samples = output[delay * count..(delay + wanted) * count]
        .iter()
        .map(|&s| S::from_f32(s))
        .collect();
    Ok(AudioFrame::from_samples(format, samples)?)
}

/// One frame through `engine` (or a copy when there is none); `input` is exactly one
/// frame and `output` large enough, both checked by the callers.
fn run(
    engine: Option<&mut (dyn rubato::Resampler<f32> + 'static)>,
    channels: usize,
    input: &[f32],
    output: &mut [f32],
) -> Result<usize> {
    let Some(engine) = engine else {
        output[..input.len()].copy_from_slice(input);
        return Ok(input.len() / channels);
    };
    let input =
        InterleavedSlice::new(input, channels, input.len() / channels).map_err(engine_error)?;
    let frames_out = output.len() / channels;
    let mut output =
        InterleavedSlice::new_mut(output, channels, frames_out).map_err(engine_error)?;
    let (_, written) = engine
        .process_into_buffer(&input, &mut output, None)
        .map_err(engine_error)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_parameters_are_typed_errors() {
        assert!(matches!(
            Resampler::new(11_025, 48_000, Channels::Mono, 110),
            Err(CodecError::Unsupported {
                parameter: "sample rate",
                ..
            })
        ));
        assert!(matches!(
            Resampler::new(48_000, 96_000, Channels::Mono, 480),
            Err(CodecError::Unsupported { .. })
        ));
        assert!(matches!(
            Resampler::new(48_000, 11_025, Channels::Mono, 480),
            Err(CodecError::Unsupported { .. })
        ));
        assert!(matches!(
            Resampler::new(48_000, 16_000, Channels::Mono, 0),
            Err(CodecError::Unsupported { .. })
        ));
        let mut r = Resampler::new(48_000, 16_000, Channels::Stereo, 480).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            r.process(&[0.0; 480], &mut out),
            Err(CodecError::WrongFrameSize {
                got: 480,
                expected: 960
            })
        ));
        assert!(matches!(
            r.process_into(&[0.0; 960], &mut [0.0; 10]),
            Err(CodecError::OutputTooSmall { .. })
        ));
        assert!(matches!(
            r.process_i16(&[0; 959], &mut Vec::new()),
            Err(CodecError::WrongFrameSize {
                got: 959,
                expected: 960
            })
        ));
    }

    #[test]
    fn picks_fft_for_exact_frames_and_sinc_otherwise() {
        let r = Resampler::new(44_100, 48_000, Channels::Mono, 441).unwrap();
        assert_eq!(
            (
                r.kind(),
                r.output_frame_samples_next(),
                r.output_frame_samples_max()
            ),
            (ResamplerKind::Fft, 480, 480)
        );
        assert_eq!(r.output_delay(), 240);
        assert!((r.output_delay_precise() - 239.456).abs() < 0.001);
        let r = Resampler::new(44_100, 48_000, Channels::Mono, 256).unwrap();
        assert_eq!(r.kind(), ResamplerKind::Sinc);
        let r = Resampler::new(48_000, 48_000, Channels::Stereo, 480).unwrap();
        assert_eq!(
            (r.kind(), r.output_delay()),
            (ResamplerKind::Passthrough, 0)
        );
    }

    #[test]
    fn resample_all_trims_the_delay_and_keeps_the_length() {
        let format = AudioFormat::new(44_100, Channels::Stereo).unwrap();
        let samples: Vec<f32> = (0..4410)
            .flat_map(|n| [(n as f32 * 0.1).sin() * 0.5, 0.0])
            .collect();
        let clip = AudioFrame::from_samples(format, samples).unwrap();
        let out = resample_all(&clip, 48_000).unwrap();
        assert_eq!(out.samples_per_channel(), 4800);
        assert_eq!(out.format().sample_rate(), 48_000);
        let back = resample_all(&out, 44_100).unwrap();
        assert_eq!(back.samples_per_channel(), 4410);
        // Away from the edges the round trip returns the input.
        for n in 500..3900 {
            assert!(
                (back.samples()[2 * n] - clip.samples()[2 * n]).abs() < 1e-3,
                "sample {n}"
            );
        }
        let odd = AudioFrame::<i16>::silence(AudioFormat::new(11_025, Channels::Mono).unwrap(), 10);
        assert!(matches!(
            resample_all(&odd, 48_000),
            Err(CodecError::Unsupported { .. })
        ));
    }

    #[test]
    fn passthrough_copies_and_i16_converts() {
        let mut r = Resampler::new(16_000, 16_000, Channels::Mono, 4).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.process_i16(&[1, -2, 32767, -32768], &mut out).unwrap(), 4);
        assert_eq!(out, vec![1, -2, 32767, -32768]);
    }
}
