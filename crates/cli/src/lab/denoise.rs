//! `tincan lab denoise`: speech mixed with noise at several SNRs, through the
//! [`VoiceProcessor`], before and after.
//!
//! Every clip is brought to 16 kHz and to an active speech level of -26 dBov, then mixed with
//! each noise at each SNR. Noises are generated, deterministically from `--seed`: white,
//! pink (-3 dB/octave) and brown (-6 dB/octave) stationary noise, and babble (five talkers
//! from the other fixture clips, summed at staggered offsets). Debian ships no recordings of
//! real noise that the lab could rely on (its only WAVs are codec2's speech samples), so
//! none are used; `--noise-wav` adds any WAV as a further noise. The SNR is the active speech
//! power (frames of the energy reference below) over the noise's mean power.
//!
//! The mixture runs through the processor at `--rate` (16 kHz: the processor's resampling
//! path; 48 kHz: RNNoise's own rate, the mixture upsampled and the output brought back). The
//! output is aligned by the processor's reported latency, so every WAV lines up sample for
//! sample with its clean reference.
//!
//! Figures computed here: segmental SNR of the input and output against the clean speech,
//! and the VAD's agreement with an energy reference of the clean speech. PESQ-WB, STOI and
//! DNSMOS come from `cargo xtask quality DIR`, which reads `manifest.json`
//! (`"kind": "denoise"`).
//!
//! Every clip gets 500 ms of silence before and after (a call has pauses; the fixtures are
//! dense speech), so the VAD is also seen falling silent, on noise alone in the noisy runs.
//!
//! The VAD reference: a 10 ms frame of the clean clip is energetic when its level is within
//! 30 dB of the clip's loud frames (the 95th percentile of frame levels): consonants sit
//! 20-30 dB below vowels, while the fixtures' room tone and breath sit 35-50 dB below. Talkspurts are what a VAD
//! should mark (DTX and the speaking flag want whole words and the gaps inside sentences),
//! so the reference is speech from the first energetic frame until the VAD's own hangover
//! (200 ms) after the last; the agreement with the bare energetic frames is reported too.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tincan_codec::resample::resample_all;
use tincan_denoise::{AdaptiveConfig, FrameReport, VoiceConfig, VoiceProcessor};
use tincan_media::{AudioFormat, AudioFrame, Channels, wav};

use super::LabError;

/// Rate of every WAV the lab writes and of the scoring (PESQ wideband, STOI).
const RATE: u32 = 16_000;
/// 10 ms at [`RATE`]: the VAD's frame.
const FRAME: usize = 160;
/// Segmental SNR frame: 20 ms.
const SEGMENT: usize = 320;
/// Active speech level every clip is normalised to (ITU-T P.56's usual -26 dBov).
const SPEECH_LEVEL_DBOV: f64 = -26.0;
/// An energetic frame is within this many dB of the clip's loud frames.
const ENERGY_RANGE_DB: f64 = 30.0;
/// Silence added before and after every clip, 10 ms frames: the fixtures are dense speech,
/// and a call has pauses; the VAD must also be seen to fall silent (on noise alone in the
/// noisy conditions).
const PAUSE_FRAMES: usize = 50;
/// Percentile of frame levels that stands for "loud".
const LOUD_PERCENTILE: f64 = 0.95;
/// Reference hangover, 10 ms frames: the same as the VAD's default.
const REFERENCE_HANGOVER: usize = 20;
/// Talkers in the babble.
const BABBLE_TALKERS: usize = 5;

/// Options of `tincan lab denoise`.
#[derive(Args, Debug)]
pub struct DenoiseArgs {
    /// Where the WAVs and `manifest.json` go.
    #[arg(long, default_value = "target/lab-denoise")]
    out: PathBuf,
    /// Speech WAVs (repeatable; default: every clip in `fixtures/speech`).
    #[arg(long = "speech", value_name = "WAV")]
    speech: Vec<PathBuf>,
    /// SNRs in dB (repeatable; default 0, 5, 10, 20).
    #[arg(long = "snr", value_name = "DB")]
    snrs: Vec<f64>,
    /// Noises (repeatable; white, pink, brown, babble; default all).
    #[arg(long = "noise", value_name = "NAME")]
    noises: Vec<String>,
    /// A recorded noise WAV to add to the noises (repeatable; looped to the clip's length).
    #[arg(long = "noise-wav", value_name = "WAV")]
    noise_wavs: Vec<PathBuf>,
    /// Rate the processor runs at: 16000 (resampled inside) or 48000.
    #[arg(long, default_value_t = 16_000)]
    rate: u32,
    /// Suppression strength, 0..=1 (the most the noise-adaptive control applies).
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// Turns the processor's noise-adaptive strength off: the strength is applied as given.
    #[arg(long)]
    fixed_strength: bool,
    /// Turns the processor's band limit off (the low-pass above the talker's speech).
    #[arg(long)]
    no_band_limit: bool,
    /// Seed of the generated noises.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One condition's figures, as written to the manifest.
#[derive(Debug, Serialize)]
struct RunEntry {
    clip: String,
    /// `none` for the clean condition.
    noise: String,
    /// `None` for the clean condition.
    snr_db: Option<f64>,
    /// Clean speech, relative to the manifest.
    reference: String,
    /// What went into the processor.
    input: String,
    /// What came out, aligned with the reference.
    output: String,
    segsnr_in_db: f64,
    segsnr_out_db: f64,
    /// VAD frames agreeing with the talkspurt reference.
    vad_agreement: f64,
    /// VAD frames agreeing with the bare energetic frames.
    vad_agreement_energy: f64,
    /// Share of frames the reference marks as speech.
    reference_speech_share: f64,
    /// Output level minus input level, dB (over the whole clip).
    level_change_db: f64,
    /// Mean share of RNNoise's output in the mix over the frames with speech energy (the
    /// noise-adaptive strength; the fixed strength otherwise).
    suppression: f64,
    /// The adaptive control's mean estimated SNR over those frames, dB.
    estimated_snr_db: f64,
    /// Share of those frames whose output was low-passed by the band limit.
    band_limited: f64,
    seconds: f64,
}

/// The manifest `cargo xtask quality` reads.
#[derive(Debug, Serialize)]
struct Manifest {
    /// Tells the scorer which lab wrote it.
    kind: &'static str,
    sample_rate: u32,
    processing_rate: u32,
    strength: f32,
    /// Whether the noise-adaptive strength was on.
    adaptive: bool,
    /// Whether the band limit was on.
    band_limit: bool,
    latency_ms: f64,
    noise_sources: String,
    speech_level_dbov: f64,
    runs: Vec<RunEntry>,
}

/// A clip at 16 kHz, normalised, with its energy reference.
struct Clip {
    name: String,
    samples: Vec<f32>,
    energetic: Vec<bool>,
    talkspurt: Vec<bool>,
}

fn frame_level_db(frame: &[f32]) -> f64 {
    let mean_square = frame
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / frame.len().max(1) as f64;
    10.0 * (mean_square + 1e-12).log10()
}

/// Energetic 10 ms frames of clean speech (see the module docs).
fn energetic_frames(samples: &[f32]) -> Vec<bool> {
    let levels: Vec<f64> = samples.chunks_exact(FRAME).map(frame_level_db).collect();
    if levels.is_empty() {
        return Vec::new();
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f64::total_cmp);
    let loud = sorted[((sorted.len() - 1) as f64 * LOUD_PERCENTILE) as usize];
    levels.iter().map(|&l| l > loud - ENERGY_RANGE_DB).collect()
}

/// Energetic frames extended by the hangover.
fn talkspurts(energetic: &[bool]) -> Vec<bool> {
    let mut since = usize::MAX;
    energetic
        .iter()
        .map(|&e| {
            since = if e { 0 } else { since.saturating_add(1) };
            since <= REFERENCE_HANGOVER
        })
        .collect()
}

fn mean_square(samples: &[f32]) -> f64 {
    samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len().max(1) as f64
}

/// Mean square of the energetic frames: the active speech power.
fn active_power(samples: &[f32], energetic: &[bool]) -> f64 {
    let (sum, count) = samples
        .chunks_exact(FRAME)
        .zip(energetic)
        .filter(|(_, e)| **e)
        .fold((0.0, 0usize), |(sum, count), (frame, _)| {
            (sum + mean_square(frame), count + 1)
        });
    sum / count.max(1) as f64
}

fn read_mono_16k(path: &Path) -> Result<Vec<f32>, LabError> {
    let clip = wav::read_wav(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let clip = if clip.format().channels() == Channels::Mono {
        clip
    } else {
        let samples = clip
            .samples()
            .chunks_exact(2)
            .map(|p| ((i32::from(p[0]) + i32::from(p[1])) / 2) as i16)
            .collect();
        AudioFrame::from_samples(
            AudioFormat::new(clip.format().sample_rate(), Channels::Mono)?,
            samples,
        )?
    };
    let clip = resample_all(&clip, RATE)?;
    Ok(clip
        .samples()
        .iter()
        .map(|&s| f32::from(s) / 32_768.0)
        .collect())
}

fn load_clip(path: &Path) -> Result<Clip, LabError> {
    let mut samples = read_mono_16k(path)?;
    samples.truncate(samples.len() / FRAME * FRAME);
    if samples.is_empty() {
        return Err(format!("{}: shorter than 10 ms", path.display()).into());
    }
    let energetic = energetic_frames(&samples);
    let power = active_power(&samples, &energetic);
    if power <= 0.0 {
        return Err(format!("{}: silent", path.display()).into());
    }
    let gain = (10f64.powf(SPEECH_LEVEL_DBOV / 10.0) / power).sqrt() as f32;
    let pause = vec![0.0f32; PAUSE_FRAMES * FRAME];
    let samples: Vec<f32> = pause
        .iter()
        .copied()
        .chain(samples.iter().map(|s| s * gain))
        .chain(pause.iter().copied())
        .collect();
    let energetic: Vec<bool> = std::iter::repeat_n(false, PAUSE_FRAMES)
        .chain(energetic)
        .chain(std::iter::repeat_n(false, PAUSE_FRAMES))
        .collect();
    let talkspurt = talkspurts(&energetic);
    Ok(Clip {
        name: path
            .file_stem()
            .map_or_else(|| "clip".to_owned(), |n| n.to_string_lossy().into_owned()),
        samples,
        energetic,
        talkspurt,
    })
}

/// SplitMix64: a deterministic generator for the noises, so runs repeat exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The noise of one kind for a clip of `len` samples, unscaled.
fn noise(kind: &str, len: usize, seed: u64, babble_pool: &[f32]) -> Result<Vec<f32>, LabError> {
    let mut rng = SplitMix(seed);
    Ok(match kind {
        "white" => (0..len).map(|_| rng.uniform()).collect(),
        "pink" => {
            // Paul Kellet's economy filter: within 0.5 dB of -3 dB/octave above 40 Hz.
            let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
            (0..len)
                .map(|_| {
                    let white = rng.uniform();
                    b0 = 0.99765 * b0 + white * 0.099_046;
                    b1 = 0.96300 * b1 + white * 0.296_516_4;
                    b2 = 0.57000 * b2 + white * 1.052_691_3;
                    b0 + b1 + b2 + white * 0.1848
                })
                .collect()
        }
        "brown" => {
            // Leaky integration of white noise: -6 dB/octave above about 8 Hz.
            let mut state = 0.0f32;
            (0..len)
                .map(|_| {
                    state = 0.997 * state + 0.05 * rng.uniform();
                    state
                })
                .collect()
        }
        "babble" => {
            if babble_pool.is_empty() {
                return Err("babble needs other speech clips than the one being mixed".into());
            }
            let mut babble = vec![0.0f32; len];
            let start = rng.next_u64() as usize % babble_pool.len();
            for talker in 0..BABBLE_TALKERS {
                let offset = start + talker * babble_pool.len() / BABBLE_TALKERS;
                for (n, sample) in babble.iter_mut().enumerate() {
                    *sample += babble_pool[(offset + n) % babble_pool.len()];
                }
            }
            babble
        }
        other => return Err(format!("unknown noise {other} (white, pink, brown, babble)").into()),
    })
}

/// Segmental SNR of `test` against `reference`, dB: 20 ms frames, each frame's SNR clamped
/// to -10..35 dB (the usual limits: silent frames would dominate otherwise), averaged over
/// the frames whose reference is energetic.
fn segmental_snr(reference: &[f32], test: &[f32], energetic: &[bool]) -> f64 {
    let frames_per_segment = SEGMENT / FRAME;
    let mut sum = 0.0;
    let mut count = 0usize;
    for (k, (r, t)) in reference
        .chunks_exact(SEGMENT)
        .zip(test.chunks_exact(SEGMENT))
        .enumerate()
    {
        let active = energetic
            .iter()
            .skip(k * frames_per_segment)
            .take(frames_per_segment)
            .any(|&e| e);
        if !active {
            continue;
        }
        let signal: f64 = r.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let error: f64 = r
            .iter()
            .zip(t)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let snr = 10.0 * ((signal + 1e-20) / (error + 1e-20)).log10();
        sum += snr.clamp(-10.0, 35.0);
        count += 1;
    }
    sum / count.max(1) as f64
}

fn agreement(flags: &[bool], reference: &[bool]) -> f64 {
    let n = flags.len().min(reference.len());
    let same = flags.iter().zip(reference).filter(|(a, b)| a == b).count();
    same as f64 / n.max(1) as f64
}

/// Runs `input` (16 kHz) through a fresh processor at `rate`; returns the output aligned
/// with the input (16 kHz, same length) and the processor's report of every 10 ms input
/// frame.
type Processed = (Vec<f32>, Vec<FrameReport>);

fn process(input: &[f32], config: &VoiceConfig) -> Result<Processed, LabError> {
    let rate = config.sample_rate();
    let mut processor = VoiceProcessor::new(config)?;
    let at_rate: Vec<f32> = if rate == RATE {
        input.to_vec()
    } else {
        let clip =
            AudioFrame::from_samples(AudioFormat::new(RATE, Channels::Mono)?, input.to_vec())?;
        resample_all(&clip, rate)?.into_samples()
    };
    let size = processor.frame_samples();
    let latency = processor.latency_samples();
    let frames = at_rate.len().div_ceil(size) + latency.div_ceil(size);
    let mut output = Vec::with_capacity(frames * size);
    let mut reports = Vec::with_capacity(frames);
    let mut frame = vec![0.0f32; size];
    for k in 0..frames {
        let start = (k * size).min(at_rate.len());
        let end = (start + size).min(at_rate.len());
        frame.fill(0.0);
        frame[..end - start].copy_from_slice(&at_rate[start..end]);
        let report = processor.process(&mut frame)?;
        reports.push(report);
        output.extend_from_slice(&frame);
    }
    let aligned = output[latency..latency + at_rate.len()].to_vec();
    let aligned = if rate == RATE {
        aligned
    } else {
        let clip = AudioFrame::from_samples(AudioFormat::new(rate, Channels::Mono)?, aligned)?;
        let mut back = resample_all(&clip, RATE)?.into_samples();
        back.resize(input.len(), 0.0);
        back
    };
    // At 48 kHz a processor frame is 10 ms too, so the per-frame figures line up.
    reports.truncate(input.len() / FRAME);
    Ok((aligned, reports))
}

fn write_16k(path: &Path, samples: &[f32]) -> Result<(), LabError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let pcm: Vec<i16> = samples
        .iter()
        .map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
        .collect();
    let frame = AudioFrame::from_samples(AudioFormat::new(RATE, Channels::Mono)?, pcm)?;
    wav::write_wav(path, &frame)?;
    Ok(())
}

fn default_speech() -> Result<Vec<PathBuf>, LabError> {
    let dir = crate::default_fixtures().join("speech");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    Ok(clips)
}

/// Runs the lab.
///
/// # Errors
///
/// Unreadable WAVs, unknown noises, a rate or strength the processor refuses.
pub fn run(args: &DenoiseArgs) -> Result<(), LabError> {
    let started = Instant::now();
    if args.rate != RATE && args.rate != 48_000 {
        return Err(format!("--rate {}: 16000 or 48000", args.rate).into());
    }
    let speech_paths = if args.speech.is_empty() {
        default_speech()?
    } else {
        args.speech.clone()
    };
    let snrs = if args.snrs.is_empty() {
        vec![0.0, 5.0, 10.0, 20.0]
    } else {
        args.snrs.clone()
    };
    let noise_names: Vec<String> = if args.noises.is_empty() {
        ["white", "pink", "brown", "babble"]
            .map(String::from)
            .to_vec()
    } else {
        args.noises.clone()
    };
    // Babble talkers come from every fixture clip and every given one.
    let mut pool_paths = default_speech().unwrap_or_default();
    pool_paths.extend(speech_paths.iter().cloned());
    pool_paths.sort();
    pool_paths.dedup();
    let mut pool = Vec::with_capacity(pool_paths.len());
    for path in &pool_paths {
        pool.push((path.clone(), load_clip(path)?));
    }
    let mut recorded = Vec::new();
    for path in &args.noise_wavs {
        let name = path.file_stem().map_or_else(
            || "recorded".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        recorded.push((name, read_mono_16k(path)?));
    }

    let adaptive = (!args.fixed_strength).then(AdaptiveConfig::default);
    let config = VoiceConfig::new(args.rate, Channels::Mono)
        .with_strength(args.strength)
        .with_adaptive(adaptive)
        .with_band_limit(!args.no_band_limit);
    let latency_ms = {
        let probe = VoiceProcessor::new(&config)?;
        probe.latency_samples() as f64 * 1000.0 / f64::from(args.rate)
    };
    let mut runs = Vec::new();
    for (clip_index, path) in speech_paths.iter().enumerate() {
        let clip = match pool.iter().find(|(p, _)| p == path) {
            Some((_, clip)) => clip,
            None => return Err(format!("{}: not loaded", path.display()).into()),
        };
        let babble_pool: Vec<f32> = pool
            .iter()
            .filter(|(p, c)| p != path && c.name != clip.name)
            .flat_map(|(_, c)| c.samples.iter().copied())
            .collect();
        let reference_path = format!("clean/{}.wav", clip.name);
        write_16k(&args.out.join(&reference_path), &clip.samples)?;
        let seconds = clip.samples.len() as f64 / f64::from(RATE);

        let mut conditions: Vec<(String, Option<f64>, Vec<f32>)> =
            vec![("none".to_owned(), None, clip.samples.clone())];
        let mut noises: Vec<(String, Vec<f32>)> = Vec::new();
        for (k, name) in noise_names.iter().enumerate() {
            let seed = args
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add((clip_index * 64 + k) as u64);
            noises.push((
                name.clone(),
                noise(name, clip.samples.len(), seed, &babble_pool)?,
            ));
        }
        for (name, samples) in &recorded {
            let looped = (0..clip.samples.len()).map(|n| samples[n % samples.len().max(1)]);
            noises.push((name.clone(), looped.collect()));
        }
        let speech_power = active_power(&clip.samples, &clip.energetic);
        for (name, noise) in &noises {
            let noise_power = mean_square(noise);
            if noise_power <= 0.0 {
                return Err(format!("noise {name} is silent").into());
            }
            for &snr in &snrs {
                let gain = (speech_power / noise_power / 10f64.powf(snr / 10.0)).sqrt() as f32;
                let mixed = clip
                    .samples
                    .iter()
                    .zip(noise)
                    .map(|(&s, &n)| s + gain * n)
                    .collect();
                conditions.push((name.clone(), Some(snr), mixed));
            }
        }

        for (noise_name, snr, input) in conditions {
            let tag = match snr {
                None => format!("{}_clean", clip.name),
                Some(snr) => format!("{}_{noise_name}_{snr}dB", clip.name),
            };
            let (output, reports) = process(&input, &config)?;
            let flags: Vec<bool> = reports.iter().map(|r| r.speaking).collect();
            let over_speech = |value: fn(&FrameReport) -> f32| {
                let picked: Vec<f64> = reports
                    .iter()
                    .zip(&clip.energetic)
                    .filter(|&(_, &e)| e)
                    .map(|(r, _)| f64::from(value(r)))
                    .collect();
                picked.iter().sum::<f64>() / picked.len().max(1) as f64
            };
            let input_path = format!("noisy/{tag}.wav");
            let output_path = format!("processed/{tag}.wav");
            write_16k(&args.out.join(&input_path), &input)?;
            write_16k(&args.out.join(&output_path), &output)?;
            runs.push(RunEntry {
                clip: clip.name.clone(),
                noise: noise_name,
                snr_db: snr,
                reference: reference_path.clone(),
                input: input_path,
                output: output_path,
                segsnr_in_db: segmental_snr(&clip.samples, &input, &clip.energetic),
                segsnr_out_db: segmental_snr(&clip.samples, &output, &clip.energetic),
                vad_agreement: agreement(&flags, &clip.talkspurt),
                vad_agreement_energy: agreement(&flags, &clip.energetic),
                reference_speech_share: clip.talkspurt.iter().filter(|&&t| t).count() as f64
                    / clip.talkspurt.len().max(1) as f64,
                level_change_db: 10.0 * (mean_square(&output) / mean_square(&input)).log10(),
                suppression: over_speech(|r| r.suppression),
                estimated_snr_db: over_speech(|r| r.estimated_snr_db),
                band_limited: over_speech(|r| f32::from(u8::from(r.band_limit_hz.is_some()))),
                seconds,
            });
        }
    }

    let manifest = Manifest {
        kind: "denoise",
        sample_rate: RATE,
        processing_rate: args.rate,
        strength: args.strength,
        adaptive: adaptive.is_some(),
        band_limit: !args.no_band_limit,
        latency_ms,
        noise_sources: format!(
            "generated (seed {}): white, pink, brown, babble of {BABBLE_TALKERS} talkers from the other clips; recorded: {}",
            args.seed,
            if recorded.is_empty() {
                "none (Debian ships no noise recordings)".to_owned()
            } else {
                recorded
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        speech_level_dbov: SPEECH_LEVEL_DBOV,
        runs,
    };
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    print!("{}", table(&manifest));
    println!(
        "{} runs in {:.1} s; WAVs and manifest.json in {}; PESQ/STOI: cargo xtask quality {}",
        manifest.runs.len(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// Means over clips, one row per noise and SNR.
fn table(manifest: &Manifest) -> String {
    let mut out = format!(
        "tincan lab denoise: processor at {} Hz, strength {}{}{}, latency {:.1} ms\n{:<10} {:>6} {:>6} {:>12} {:>13} {:>10} {:>10} {:>9} {:>6} {:>7} {:>7}\n",
        manifest.processing_rate,
        manifest.strength,
        if manifest.adaptive {
            " (noise-adaptive)"
        } else {
            " (fixed)"
        },
        if manifest.band_limit {
            ", band limit on"
        } else {
            ", band limit off"
        },
        manifest.latency_ms,
        "noise",
        "SNR",
        "clips",
        "segSNR in",
        "segSNR out",
        "VAD agree",
        "VAD energy",
        "level dB",
        "supp",
        "estSNR",
        "limited",
    );
    let mut keys: Vec<(String, Option<f64>)> = Vec::new();
    for run in &manifest.runs {
        let key = (run.noise.clone(), run.snr_db);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (noise, snr) in keys {
        let runs: Vec<&RunEntry> = manifest
            .runs
            .iter()
            .filter(|r| r.noise == noise && r.snr_db == snr)
            .collect();
        let mean =
            |f: fn(&RunEntry) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64;
        out += &format!(
            "{:<10} {:>6} {:>6} {:>12.2} {:>13.2} {:>9.1}% {:>9.1}% {:>9.2} {:>6.2} {:>7.1} {:>6.0}%\n",
            noise,
            snr.map_or_else(|| "clean".to_owned(), |s| format!("{s}")),
            runs.len(),
            mean(|r| r.segsnr_in_db),
            mean(|r| r.segsnr_out_db),
            100.0 * mean(|r| r.vad_agreement),
            100.0 * mean(|r| r.vad_agreement_energy),
            mean(|r| r.level_change_db),
            mean(|r| r.suppression),
            mean(|r| r.estimated_snr_db),
            100.0 * mean(|r| r.band_limited),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmental_snr_of_identical_signals_is_the_ceiling_and_drops_with_noise() {
        let clean: Vec<f32> = (0..3200).map(|n| 0.1 * (n as f32 * 0.05).sin()).collect();
        let energetic = energetic_frames(&clean);
        assert!(energetic.iter().all(|&e| e));
        assert_eq!(segmental_snr(&clean, &clean, &energetic), 35.0);
        let noisy: Vec<f32> = clean.iter().map(|&s| s * 0.9).collect();
        // 10% amplitude error: 20 dB.
        assert!((segmental_snr(&clean, &noisy, &energetic) - 20.0).abs() < 0.01);
    }

    #[test]
    fn talkspurts_extend_energetic_frames_by_the_hangover() {
        let mut energetic = vec![false; 60];
        energetic[5] = true;
        let spurts = talkspurts(&energetic);
        assert!(!spurts[4]);
        assert!(spurts[5..=5 + REFERENCE_HANGOVER].iter().all(|&s| s));
        assert!(!spurts[6 + REFERENCE_HANGOVER]);
    }

    #[test]
    fn generated_noises_have_their_slopes() {
        // Power in 0-1 kHz against 4-8 kHz via first differences: a differentiator tilts
        // the spectrum by +6 dB/octave, so the ratio of difference power to signal power
        // grows from brown to pink to white.
        let tilt = |kind: &str| {
            let x = noise(kind, 64_000, 9, &[]).unwrap();
            let diff: Vec<f32> = x.windows(2).map(|w| w[1] - w[0]).collect();
            mean_square(&diff) / mean_square(&x)
        };
        let (white, pink, brown) = (tilt("white"), tilt("pink"), tilt("brown"));
        assert!(white > pink && pink > brown, "{white} {pink} {brown}");
        assert!(noise("hum", 10, 1, &[]).is_err());
        assert!(noise("babble", 10, 1, &[]).is_err());
    }
}
