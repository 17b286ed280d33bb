//! [`VoiceProcessor`]: noise suppression, voice activity, levels and gain control composed
//! over 10 ms frames.

use audioadapter_buffers::direct::InterleavedSlice;
use nnnoiseless::DenoiseState;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};
use tincan_media::Channels;

use crate::adaptive::{AdaptiveConfig, SuppressionControl};
use crate::agc::{AutomaticGainControl, DEFAULT_MIN_GAIN_DB};
use crate::bandwidth::{BAND_EDGES_HZ, BandLimiter, BandwidthDetector};
use crate::error::{DenoiseError, Result};
use crate::level::LevelMeter;
use crate::vad::{DEFAULT_HANGOVER_FRAMES, VoiceActivityDetector};

/// Input rates the processor accepts, in Hz; RNNoise itself runs at 48 kHz and the others
/// are converted there and back.
pub const SUPPORTED_RATES: [u32; 7] = [8_000, 12_000, 16_000, 24_000, 32_000, 44_100, 48_000];
/// RNNoise's rate.
const MODEL_RATE: u32 = 48_000;
/// RNNoise's frame: 10 ms at 48 kHz.
const MODEL_FRAME: usize = DenoiseState::FRAME_SIZE;
/// RNNoise works on samples in i16 range; the processor's are ±1.
const I16_SCALE: f32 = 32_768.0;

/// Model frames (10 ms) of exact digital silence after which a channel's RNNoise is no
/// longer run. RNNoise's high-pass input filter has a pole at 0.998 (a 10 ms time constant
/// at 48 kHz), so after the last sound its memory rings on; 300 ms later it is below
/// 1e-13 of it, every one of RNNoise's buffers (960-sample window, 1728-sample pitch
/// history) holds nothing audible, its frame energy is under the threshold at which it
/// skips its network (so the network's state does not change), and its output is zero to
/// within float rounding. Running it on more silence only shifts zeros: a muted or silent
/// microphone costs nothing (most of a group call's microphones, most of the time).
const SILENT_FRAMES_BEFORE_SKIP: u32 = 30;

/// Settings of a [`VoiceProcessor`]; builder-style, checked by [`VoiceProcessor::new`].
///
/// ```
/// use tincan_denoise::VoiceConfig;
/// use tincan_media::Channels;
///
/// // Defaults: full suppression, AGC off, 200 ms of VAD hangover.
/// let config = VoiceConfig::new(16_000, Channels::Mono)
///     .with_strength(0.8)
///     .with_agc(-20.0, 24.0);
/// assert_eq!(config.sample_rate(), 16_000);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    sample_rate: u32,
    channels: Channels,
    strength: f32,
    adaptive: Option<AdaptiveConfig>,
    agc: Option<(f32, f32)>,
    vad_hangover_frames: u32,
    bypass: bool,
    band_limit: bool,
}

impl VoiceConfig {
    /// Frames of 10 ms at `sample_rate` (one of [`SUPPORTED_RATES`]), mono or stereo
    /// interleaved; strength 1 with the noise-adaptive control on (full suppression in
    /// noise, little on clean input), AGC off, 200 ms VAD hangover.
    pub fn new(sample_rate: u32, channels: Channels) -> Self {
        Self {
            sample_rate,
            channels,
            strength: 1.0,
            adaptive: Some(AdaptiveConfig::default()),
            agc: None,
            vad_hangover_frames: DEFAULT_HANGOVER_FRAMES,
            bypass: false,
            band_limit: true,
        }
    }

    /// Suppression strength from 0 (the original, delayed) to 1 (RNNoise's output): the
    /// output is `s * suppressed + (1 - s) * original`, so 0.5 keeps noise about 6 dB above
    /// what full suppression leaves. With the noise-adaptive control on (the default), `s`
    /// is this strength times the adaptive one, so this is the most suppression allowed.
    pub fn with_strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// The noise-adaptive suppression ([`crate::adaptive`]): `Some` settings (the default
    /// is `Some(AdaptiveConfig::default())`) or `None` for a fixed strength.
    pub fn with_adaptive(mut self, adaptive: Option<AdaptiveConfig>) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// Turns the AGC on, aiming speech at `target_dbov` (-60..=0) with at most
    /// `max_gain_db` (0..=60) of gain.
    pub fn with_agc(mut self, target_dbov: f32, max_gain_db: f32) -> Self {
        self.agc = Some((target_dbov, max_gain_db));
        self
    }

    /// 10 ms frames that "speaking" lasts after the speech probability drops.
    pub fn with_vad_hangover_frames(mut self, frames: u32) -> Self {
        self.vad_hangover_frames = frames;
        self
    }

    /// The band limit ([`crate::bandwidth`], on by default): a low-pass above the talker's
    /// speech where the input holds only noise. At 8 kHz, where nothing lies above its
    /// lowest limit of 4 kHz, it does not run.
    pub fn with_band_limit(mut self, band_limit: bool) -> Self {
        self.band_limit = band_limit;
        self
    }

    /// Starts bypassed: see [`VoiceProcessor::set_bypass`].
    pub fn with_bypass(mut self, bypass: bool) -> Self {
        self.bypass = bypass;
        self
    }

    /// Input and output rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channel layout.
    pub fn channels(&self) -> Channels {
        self.channels
    }
}

fn check_strength(strength: f32) -> Result<()> {
    if (0.0..=1.0).contains(&strength) {
        Ok(())
    } else {
        Err(DenoiseError::OutOfRange {
            parameter: "strength",
            value: strength,
            range: "0..=1",
        })
    }
}

/// What one frame gave, besides the processed samples.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct FrameReport {
    /// RNNoise's speech probability for this input frame (0..=1; the highest channel's).
    pub voice_probability: f32,
    /// Voice activity after smoothing and hangover: for DTX hints, active speaker and the
    /// "is speaking" event.
    pub speaking: bool,
    /// RFC 6464 level of the output frame: `-dBov`, 0..=127.
    pub audio_level: u8,
    /// The 0-100 volume of the last 500 ms, on every 50th frame.
    pub volume: Option<u8>,
    /// Share of RNNoise's output in this frame's mix (0..=1): the strength, times the
    /// adaptive one when that is on; 0 in bypass.
    pub suppression: f32,
    /// The adaptive control's estimated SNR of the input, dB (`NaN`-free; 0 when off).
    pub estimated_snr_db: f32,
    /// The low-pass applied to this frame's output, Hz ([`crate::bandwidth`]): `None` when
    /// no band above the talker's speech holds noise, in bypass, at strength 0, and with the
    /// band limit off.
    pub band_limit_hz: Option<u32>,
    /// AGC gain applied, dB (0 with the AGC off).
    pub gain_db: f32,
    /// Input samples that were NaN, infinite or beyond full scale and were replaced (by 0)
    /// or clamped (to ±1).
    pub sanitised_samples: usize,
}

/// A fixed-ratio resampler for one 10 ms frame per call (rubato's synchronous FFT one: every
/// supported rate is a multiple of 100 Hz, so 10 ms is a whole block at both rates).
struct FrameResampler {
    engine: Fft<f32>,
    channels: usize,
}

impl FrameResampler {
    fn new(from: u32, to: u32, channels: usize) -> Result<Self> {
        let engine = Fft::<f32>::new_custom(
            from as usize,
            to as usize,
            from as usize / 100,
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(|e| DenoiseError::Resampler {
            reason: e.to_string(),
        })?;
        Ok(Self { engine, channels })
    }

    /// One frame of interleaved `input` into `output` (both exactly sized by the caller).
    fn process(&mut self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let to_error = |e: &dyn std::fmt::Display| DenoiseError::Resampler {
            reason: e.to_string(),
        };
        let frames_in = input.len() / self.channels;
        let frames_out = output.len() / self.channels;
        let input =
            InterleavedSlice::new(input, self.channels, frames_in).map_err(|e| to_error(&e))?;
        let mut output = InterleavedSlice::new_mut(output, self.channels, frames_out)
            .map_err(|e| to_error(&e))?;
        self.engine
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| to_error(&e))?;
        Ok(())
    }
}

/// Voice processing for one sending stream: RNNoise noise suppression at any supported rate,
/// voice activity with hangover, RFC 6464 level and 0-100 volume, and an optional AGC with a
/// limiter. Sans-IO: frame in, frame out, nothing else; after the first frames on a thread
/// (RNNoise's FFT plans are per thread) it does not allocate.
///
/// The output is delayed by [`latency_samples`](Self::latency_samples) against the input,
/// whatever the strength and in bypass, so that switching them never shifts the stream.
///
/// ```
/// use tincan_denoise::{VoiceConfig, VoiceProcessor};
/// use tincan_media::Channels;
///
/// let mut processor = VoiceProcessor::new(&VoiceConfig::new(16_000, Channels::Mono))?;
/// assert_eq!(processor.frame_samples(), 160);
/// assert_eq!(processor.latency_samples(), 320); // 20 ms: 10 ms RNNoise, 10 ms resampling
/// let mut frame = vec![0.0f32; 160];
/// frame[3] = f32::NAN; // replaced by 0, counted
/// let report = processor.process(&mut frame)?;
/// assert_eq!(report.sanitised_samples, 1);
/// assert!(!report.speaking);
/// assert!(frame.iter().all(|s| s.is_finite()));
/// # Ok::<(), tincan_denoise::DenoiseError>(())
/// ```
pub struct VoiceProcessor {
    channels: usize,
    /// Interleaved samples per 10 ms frame at the input rate.
    frame_samples: usize,
    latency: usize,
    strength: f32,
    bypass: bool,
    adaptive: Option<SuppressionControl>,
    /// The talker's speech bandwidth and the low-pass above it; `None` with the band limit
    /// off.
    band_limit: Option<(BandwidthDetector, BandLimiter)>,
    /// One RNNoise per channel.
    denoisers: Vec<Box<DenoiseState<'static>>>,
    /// To 48 kHz and back; `None` at 48 kHz.
    resamplers: Option<(FrameResampler, FrameResampler)>,
    /// Interleaved 48 kHz frame, before and after RNNoise.
    model_in: Vec<f32>,
    model_out: Vec<f32>,
    /// One channel of a 48 kHz frame in i16 scale, in and out of RNNoise.
    channel_in: Vec<f32>,
    channel_out: Vec<f32>,
    /// The suppressed frame back at the input rate.
    wet: Vec<f32>,
    /// The original, delayed by the latency to line up with `wet`: a ring of `latency`
    /// interleaved samples.
    dry: Vec<f32>,
    dry_position: usize,
    /// Output samples (interleaved) still to be muted because they come from before the
    /// first input sample: RNNoise's first frame spreads the start into that pre-roll.
    preroll_left: usize,
    vad: VoiceActivityDetector,
    agc: Option<AutomaticGainControl>,
    levels: LevelMeter,
    /// Scratch for the i16 path.
    scratch: Vec<f32>,
    /// Per channel: consecutive model frames of exact zeros fed to RNNoise.
    silent_frames: Vec<u32>,
    /// Model frames from this many consecutive silent ones on are not run through RNNoise.
    skip_after: u32,
    /// Channel frames not run through RNNoise (digital silence), for tests and statistics.
    skipped_frames: u64,
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor")
            .field("channels", &self.channels)
            .field("frame_samples", &self.frame_samples)
            .field("latency", &self.latency)
            .field("strength", &self.strength)
            .field("bypass", &self.bypass)
            .field("agc", &self.agc)
            .finish_non_exhaustive()
    }
}

impl VoiceProcessor {
    /// A processor for `config`; every setting is checked here.
    ///
    /// # Errors
    ///
    /// [`DenoiseError::UnsupportedRate`], [`DenoiseError::OutOfRange`] for the strength or
    /// AGC settings, [`DenoiseError::Resampler`] if rubato refuses the conversion.
    pub fn new(config: &VoiceConfig) -> Result<Self> {
        let rate = config.sample_rate;
        if !SUPPORTED_RATES.contains(&rate) {
            return Err(DenoiseError::UnsupportedRate { rate });
        }
        check_strength(config.strength)?;
        if let Some(adaptive) = &config.adaptive {
            adaptive
                .check()
                .map_err(|(parameter, value, range)| DenoiseError::OutOfRange {
                    parameter,
                    value,
                    range,
                })?;
        }
        let agc = match config.agc {
            None => None,
            Some((target, max_gain)) => {
                if !(-60.0..=0.0).contains(&target) {
                    return Err(DenoiseError::OutOfRange {
                        parameter: "AGC target dBov",
                        value: target,
                        range: "-60..=0",
                    });
                }
                if !(0.0..=60.0).contains(&max_gain) {
                    return Err(DenoiseError::OutOfRange {
                        parameter: "AGC max gain dB",
                        value: max_gain,
                        range: "0..=60",
                    });
                }
                Some(AutomaticGainControl::new(
                    target,
                    DEFAULT_MIN_GAIN_DB,
                    max_gain,
                ))
            }
        };
        let channels = config.channels.count();
        let per_channel = rate as usize / 100;
        let resamplers = if rate == MODEL_RATE {
            None
        } else {
            Some((
                FrameResampler::new(rate, MODEL_RATE, channels)?,
                FrameResampler::new(MODEL_RATE, rate, channels)?,
            ))
        };
        // RNNoise's overlap-add puts out each 480-sample frame one frame late; the FFT
        // resamplers each delay by half a frame (their filter is centred on the middle of
        // the block). At 44.1 kHz the total has half a sample, rounded down (where the
        // correlation peaks).
        let latency = if rate == MODEL_RATE {
            MODEL_FRAME
        } else {
            let up = (per_channel / 2) as f64;
            let down = (MODEL_FRAME / 2) as f64 * f64::from(rate) / f64::from(MODEL_RATE);
            (up + per_channel as f64 + down).floor() as usize
        };
        let frame_samples = per_channel * channels;
        Ok(Self {
            channels,
            frame_samples,
            latency,
            strength: config.strength,
            bypass: config.bypass,
            adaptive: config.adaptive.map(SuppressionControl::new),
            // At 8 kHz nothing lies above the lowest limit (4 kHz): no detector to run.
            band_limit: (config.band_limit && rate / 2 > BAND_EDGES_HZ[0]).then(|| {
                (
                    BandwidthDetector::new(rate / 2),
                    BandLimiter::new(rate, channels, frame_samples),
                )
            }),
            denoisers: (0..channels).map(|_| DenoiseState::new()).collect(),
            resamplers,
            model_in: vec![0.0; MODEL_FRAME * channels],
            model_out: vec![0.0; MODEL_FRAME * channels],
            channel_in: vec![0.0; MODEL_FRAME],
            channel_out: vec![0.0; MODEL_FRAME],
            wet: vec![0.0; frame_samples],
            dry: vec![0.0; latency * channels],
            dry_position: 0,
            preroll_left: latency * channels,
            vad: VoiceActivityDetector::new(config.vad_hangover_frames),
            agc,
            levels: LevelMeter::default(),
            scratch: vec![0.0; frame_samples],
            silent_frames: vec![0; channels],
            skip_after: SILENT_FRAMES_BEFORE_SKIP,
            skipped_frames: 0,
        })
    }

    /// Interleaved samples every frame must hold: 10 ms at the configured rate.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Delay from input to output in samples per channel at the configured rate: 480 at
    /// 48 kHz (10 ms), 20 ms at other rates (resampling adds 5 ms each way).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// Changes the suppression strength (0..=1, see [`VoiceConfig::with_strength`]).
    ///
    /// # Errors
    ///
    /// [`DenoiseError::OutOfRange`] for a value outside 0..=1 (or NaN); nothing changes.
    pub fn set_strength(&mut self, strength: f32) -> Result<()> {
        check_strength(strength)?;
        self.strength = strength;
        Ok(())
    }

    /// Bypass: the output is the input, delayed by the same latency, with neither
    /// suppression nor gain; voice activity and levels are still measured. The delay stays,
    /// so turning bypass on or off does not move the stream in time.
    pub fn set_bypass(&mut self, bypass: bool) {
        self.bypass = bypass;
    }

    /// Whether the processor is bypassed.
    pub fn is_bypassed(&self) -> bool {
        self.bypass
    }

    /// Whether the last frame was speech (see [`FrameReport::speaking`]).
    pub fn is_speaking(&self) -> bool {
        self.vad.is_speaking()
    }

    /// RFC 6464 level (`-dBov`, 0..=127) of the output since the last call: call once per
    /// RTP packet, whatever the packet's duration.
    pub fn take_packet_audio_level(&mut self) -> u8 {
        self.levels.take_packet_level()
    }

    /// Processes one 10 ms frame of interleaved `i16` samples in place.
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process).
    pub fn process_i16(&mut self, frame: &mut [i16]) -> Result<FrameReport> {
        self.check_frame(frame.len())?;
        let mut scratch = std::mem::take(&mut self.scratch);
        for (dst, &src) in scratch.iter_mut().zip(frame.iter()) {
            *dst = f32::from(src) / I16_SCALE;
        }
        let report = self.process(&mut scratch);
        for (dst, &src) in frame.iter_mut().zip(scratch.iter()) {
            *dst = (src * I16_SCALE).round().clamp(-32_768.0, 32_767.0) as i16;
        }
        self.scratch = scratch;
        report
    }

    fn check_frame(&self, len: usize) -> Result<()> {
        if len == self.frame_samples {
            Ok(())
        } else {
            Err(DenoiseError::WrongFrameSize {
                got: len,
                expected: self.frame_samples,
            })
        }
    }

    /// Processes one 10 ms frame of interleaved samples (full scale ±1) in place: the frame
    /// is replaced by the output [`latency_samples`](Self::latency_samples) earlier.
    ///
    /// NaN and infinite samples are replaced by 0 and samples beyond ±1 clamped before
    /// anything else sees them, and counted in [`FrameReport::sanitised_samples`]; the
    /// output is always finite and within ±1.
    ///
    /// # Errors
    ///
    /// [`DenoiseError::WrongFrameSize`] unless the frame holds exactly
    /// [`frame_samples`](Self::frame_samples); the processor's state is unchanged then.
    /// [`DenoiseError::Resampler`] if rubato fails on a frame (not expected: sizes are
    /// fixed at construction).
    pub fn process(&mut self, frame: &mut [f32]) -> Result<FrameReport> {
        self.check_frame(frame.len())?;
        let mut sanitised_samples = 0;
        for sample in frame.iter_mut() {
            let clean = if sample.is_finite() {
                sample.clamp(-1.0, 1.0)
            } else {
                0.0
            };
            if clean != *sample {
                sanitised_samples += 1;
                *sample = clean;
            }
        }

        let voice_probability = self.suppress(frame)?;
        let speaking = self.vad.update(voice_probability);
        let (adaptive_strength, estimated_snr_db) = match self.adaptive.as_mut() {
            Some(control) => {
                let mean_square = crate::level::energy(frame) / frame.len() as f64;
                let decision = control.update(mean_square, voice_probability);
                (decision.strength, decision.snr_db)
            }
            None => (1.0, 0.0),
        };

        // Mix the suppressed frame with the delayed original in place, through the ring.
        let wet_weight = if self.bypass {
            0.0
        } else {
            self.strength * adaptive_strength
        };
        for (sample, &wet) in frame.iter_mut().zip(&self.wet) {
            let dry = std::mem::replace(&mut self.dry[self.dry_position], *sample);
            self.dry_position += 1;
            if self.dry_position == self.dry.len() {
                self.dry_position = 0;
            }
            let mixed = wet_weight * wet + (1.0 - wet_weight) * dry;
            *sample = if self.preroll_left > 0 {
                self.preroll_left -= 1;
                0.0
            } else {
                mixed.clamp(-1.0, 1.0)
            };
        }

        let mut band_limit_hz = None;
        if let Some((detector, limiter)) = self.band_limit.as_mut() {
            // `model_in` still holds this frame at 48 kHz.
            let wanted = detector
                .update(&self.model_in, self.channels, speaking)
                .filter(|_| wet_weight > 0.0);
            limiter.process(frame, wanted);
            band_limit_hz = limiter.cutoff_hz();
        }

        let mut gain_db = 0.0;
        if let Some(agc) = self.agc.as_mut().filter(|_| !self.bypass) {
            agc.process(frame, speaking);
            gain_db = agc.gain_db();
        }
        let (audio_level, volume) = self.levels.add_frame(frame);
        Ok(FrameReport {
            voice_probability,
            speaking,
            audio_level,
            volume,
            suppression: wet_weight,
            estimated_snr_db,
            band_limit_hz,
            gain_db,
            sanitised_samples,
        })
    }

    /// Runs RNNoise on the (sanitised) input frame, leaving the suppressed frame at the
    /// input rate in `self.wet`; returns the highest channel speech probability.
    fn suppress(&mut self, frame: &[f32]) -> Result<f32> {
        match self.resamplers.as_mut() {
            Some((up, _)) => up.process(frame, &mut self.model_in)?,
            None => self.model_in.copy_from_slice(frame),
        }
        let mut probability = 0.0f32;
        let channels = self.denoisers.iter_mut().zip(self.silent_frames.iter_mut());
        for (channel, (denoiser, silent_frames)) in channels.enumerate() {
            let input = self.model_in.iter().skip(channel).step_by(self.channels);
            for (dst, &src) in self.channel_in.iter_mut().zip(input) {
                // The FFT resampler can ring slightly past full scale; RNNoise expects i16.
                *dst = (src * I16_SCALE).clamp(-I16_SCALE, I16_SCALE);
            }
            *silent_frames = if self.channel_in.iter().all(|&s| s == 0.0) {
                silent_frames.saturating_add(1)
            } else {
                0
            };
            if *silent_frames > self.skip_after {
                // Settled digital silence: RNNoise would output zeros and learn nothing.
                self.channel_out.fill(0.0);
                self.skipped_frames += 1;
            } else {
                let p = denoiser.process_frame(&mut self.channel_out, &self.channel_in);
                probability = probability.max(if p.is_finite() { p } else { 0.0 });
            }
            let output = self
                .model_out
                .iter_mut()
                .skip(channel)
                .step_by(self.channels);
            for (dst, &src) in output.zip(&self.channel_out) {
                *dst = if src.is_finite() {
                    src / I16_SCALE
                } else {
                    0.0
                };
            }
        }
        match self.resamplers.as_mut() {
            Some((_, down)) => down.process(&self.model_out, &mut self.wet)?,
            None => self.wet.copy_from_slice(&self.model_out),
        }
        Ok(probability.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like sound, a second of digital silence, sound again, through `processor`;
    /// returns the output.
    fn sound_silence_sound(processor: &mut VoiceProcessor, rate: u32, channels: usize) -> Vec<f32> {
        let second = rate as usize * channels;
        let mut input = tones(second / 2, rate, 0.3);
        for (sample, n) in input.iter_mut().zip(noise(second / 2, 0.05, 7)) {
            *sample += n;
        }
        input.extend(std::iter::repeat_n(0.0, second));
        input.extend(tones(second / 2, rate, 0.3));
        let frame = processor.frame_samples();
        let mut output = Vec::with_capacity(input.len());
        for chunk in input.chunks_exact(frame) {
            let mut chunk = chunk.to_vec();
            processor.process(&mut chunk).unwrap();
            output.extend(chunk);
        }
        output
    }

    #[test]
    fn settled_digital_silence_skips_rnnoise_without_changing_the_output() {
        for (rate, channels) in [
            (48_000, Channels::Mono),
            (16_000, Channels::Mono),
            (48_000, Channels::Stereo),
        ] {
            let config = VoiceConfig::new(rate, channels).with_adaptive(None);
            let count = channels.count();
            let mut skipping = VoiceProcessor::new(&config).unwrap();
            let mut running = VoiceProcessor::new(&config).unwrap();
            running.skip_after = u32::MAX;
            let a = sound_silence_sound(&mut skipping, rate, count);
            let b = sound_silence_sound(&mut running, rate, count);
            assert_eq!(running.skipped_frames, 0);
            // A second of silence is 100 model frames per channel; the first 30 (and the
            // frames the resampler or RNNoise still ring through) run.
            assert!(
                skipping.skipped_frames >= 60 * count as u64,
                "{rate} Hz ×{count}: skipped {}",
                skipping.skipped_frames
            );
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-6,
                "{rate} Hz ×{count}: outputs differ by {worst}"
            );
            assert!(
                a.iter().map(|s| s.abs()).fold(0.0f32, f32::max) > 0.1,
                "no sound came out"
            );
        }
    }

    /// Deterministic white noise in ±`amplitude` (a 32-bit LCG: tests need no RNG crate).
    fn noise(len: usize, amplitude: f32, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                amplitude * ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
            })
            .collect()
    }

    /// Tones well inside every rate's band.
    fn tones(len: usize, rate: u32, amplitude: f32) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let t = n as f32 / rate as f32;
                amplitude
                    * [220.0f32, 530.0, 1130.0, 2370.0]
                        .iter()
                        .map(|f| (std::f32::consts::TAU * f * t).sin())
                        .sum::<f32>()
                    / 4.0
            })
            .collect()
    }

    fn run(processor: &mut VoiceProcessor, input: &[f32]) -> Vec<f32> {
        let mut output = Vec::with_capacity(input.len());
        for chunk in input.chunks_exact(processor.frame_samples()) {
            let mut frame = chunk.to_vec();
            processor.process(&mut frame).unwrap();
            output.extend_from_slice(&frame);
        }
        output
    }

    fn correlation_at(input: &[f32], output: &[f32], lag: usize) -> f64 {
        let n = input.len() - lag;
        let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
        for k in 0..n {
            let (x, y) = (f64::from(input[k]), f64::from(output[k + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        xy / (xx * yy).sqrt().max(1e-300)
    }

    /// Very quiet input passes RNNoise unchanged (it skips frames without energy), so the
    /// suppressed path must equal the input delayed by the reported latency.
    #[test]
    fn reported_latency_is_the_signal_path_delay() {
        for rate in [48_000, 16_000, 8_000, 44_100, 32_000] {
            let mut processor =
                VoiceProcessor::new(&VoiceConfig::new(rate, Channels::Mono)).unwrap();
            let input = tones(rate as usize / 2, rate, 3e-9);
            let output = run(&mut processor, &input);
            let latency = processor.latency_samples();
            let best = (latency - 5..=latency + 5)
                .max_by(|&a, &b| {
                    correlation_at(&input, &output, a)
                        .total_cmp(&correlation_at(&input, &output, b))
                })
                .unwrap();
            assert_eq!(best, latency, "{rate} Hz");
            assert!(correlation_at(&input, &output, latency) > 0.99, "{rate} Hz");
        }
    }

    #[test]
    fn bypass_and_zero_strength_give_the_delayed_input() {
        for config in [
            VoiceConfig::new(16_000, Channels::Mono).with_bypass(true),
            VoiceConfig::new(48_000, Channels::Stereo).with_strength(0.0),
        ] {
            let mut processor = VoiceProcessor::new(&config).unwrap();
            let input = noise(
                config.sample_rate() as usize / 5 * config.channels().count(),
                0.3,
                7,
            );
            let output = run(&mut processor, &input);
            let delay = processor.latency_samples() * config.channels().count();
            assert!(output[..delay].iter().all(|&s| s == 0.0));
            assert_eq!(&output[delay..], &input[..input.len() - delay]);
        }
    }

    #[test]
    fn stationary_noise_is_suppressed_and_not_speech() {
        let mut processor = VoiceProcessor::new(&VoiceConfig::new(48_000, Channels::Mono)).unwrap();
        let input = noise(48_000 * 2, 0.05, 3);
        let mut output = Vec::new();
        let mut speaking = 0;
        for chunk in input.chunks_exact(480) {
            let mut frame = chunk.to_vec();
            let report = processor.process(&mut frame).unwrap();
            speaking += usize::from(report.speaking);
            // Noise about 5 dB under the nominal speech level: the adaptive strength is full.
            assert!(report.suppression > 0.99, "{report:?}");
            assert!(report.estimated_snr_db < 10.0, "{report:?}");
            output.extend_from_slice(&frame);
        }
        let tail = 48_000..96_000;
        let before = crate::level::energy(&input[tail.clone()]);
        let after = crate::level::energy(&output[tail]);
        let reduction_db = 10.0 * (before / after).log10();
        assert!(reduction_db > 15.0, "{reduction_db:.1} dB");
        assert!(speaking < 10, "{speaking} frames of noise marked as speech");
    }

    #[test]
    fn fixed_strength_without_the_adaptive_control() {
        let config = VoiceConfig::new(16_000, Channels::Mono)
            .with_strength(0.6)
            .with_adaptive(None);
        let mut processor = VoiceProcessor::new(&config).unwrap();
        for k in 0..50 {
            let mut frame = tones(160, 16_000, 0.01 * k as f32);
            let report = processor.process(&mut frame).unwrap();
            assert_eq!(report.suppression, 0.6);
        }
        let bad = VoiceConfig::new(16_000, Channels::Mono).with_adaptive(Some(AdaptiveConfig {
            full_snr_db: 30.0,
            clean_snr_db: 20.0,
            ..AdaptiveConfig::default()
        }));
        assert!(matches!(
            VoiceProcessor::new(&bad),
            Err(DenoiseError::OutOfRange { .. })
        ));
    }

    #[test]
    fn stereo_channels_are_independent() {
        let mut processor =
            VoiceProcessor::new(&VoiceConfig::new(16_000, Channels::Stereo)).unwrap();
        let left = tones(16_000, 16_000, 0.3);
        let input: Vec<f32> = left.iter().flat_map(|&l| [l, 0.0]).collect();
        let output = run(&mut processor, &input);
        assert!(output.iter().skip(1).step_by(2).all(|&r| r.abs() < 1e-6));
        assert!(output.iter().step_by(2).any(|&l| l.abs() > 0.01));
    }

    #[test]
    fn wrong_sizes_and_settings_are_typed_errors() {
        assert_eq!(
            VoiceProcessor::new(&VoiceConfig::new(22_050, Channels::Mono)).unwrap_err(),
            DenoiseError::UnsupportedRate { rate: 22_050 }
        );
        for config in [
            VoiceConfig::new(16_000, Channels::Mono).with_strength(1.5),
            VoiceConfig::new(16_000, Channels::Mono).with_strength(f32::NAN),
            VoiceConfig::new(16_000, Channels::Mono).with_agc(3.0, 20.0),
            VoiceConfig::new(16_000, Channels::Mono).with_agc(-20.0, f32::INFINITY),
        ] {
            assert!(matches!(
                VoiceProcessor::new(&config),
                Err(DenoiseError::OutOfRange { .. })
            ));
        }
        let mut processor =
            VoiceProcessor::new(&VoiceConfig::new(8_000, Channels::Stereo)).unwrap();
        assert_eq!(
            processor.process(&mut [0.0; 80]).unwrap_err(),
            DenoiseError::WrongFrameSize {
                got: 80,
                expected: 160
            }
        );
        assert!(processor.process_i16(&mut []).is_err());
        assert!(processor.set_strength(-0.1).is_err());
    }

    #[test]
    fn non_finite_and_loud_samples_are_sanitised() {
        let mut processor =
            VoiceProcessor::new(&VoiceConfig::new(16_000, Channels::Mono).with_agc(-10.0, 40.0))
                .unwrap();
        let garbage = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -7.0, 0.5];
        for k in 0..200 {
            let mut frame: Vec<f32> = (0..160)
                .map(|n| garbage[(n * 7 + k) % garbage.len()])
                .collect();
            let report = processor.process(&mut frame).unwrap();
            assert!(report.sanitised_samples > 100);
            assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
            assert!(report.gain_db.is_finite() && report.voice_probability.is_finite());
        }
        let mut frame = [i16::MIN; 160];
        processor.process_i16(&mut frame).unwrap();
    }
}
