//! `tincan demo`: every codec on real and synthetic media, with measured quality and speed.
//!
//! The CLI owns the clock (engine crates never read it), so timing happens here.

use clap::Args;
use serde::Serialize;
use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tincan_codec::av1::Av1Decoder;
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::opus::{DredDecoder, OpusConfig, OpusDecoder, OpusEncoder};
use tincan_codec::resample::resample_all;
use tincan_codec::{AudioDecoder, AudioEncoder, EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_media::ivf::IvfReader;
use tincan_media::quality::{
    adler32_update, compare_aligned, correlation, log_spectrogram, spectrogram_correlation,
};
use tincan_media::source::{TestPattern, read_frame_counter};
use tincan_media::{AudioFrame, Channels, Resolution, Sample, wav};

type DemoResult<T> = Result<T, Box<dyn Error>>;

/// Rebuilds a gap: (decoder, packet after the gap, frames lost, output) → frames rebuilt.
type Recover<'a> = dyn FnMut(&mut OpusDecoder, &[u8], usize, &mut [i16]) -> DemoResult<usize> + 'a;

/// Options of `tincan demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Speech WAV to code (default: the fixture speech_orig_16k.wav).
    #[arg(long)]
    speech: Option<PathBuf>,
    /// Seconds of synthetic video per H.264 run.
    #[arg(long, default_value_t = 3)]
    video_seconds: u32,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

const RATE: u32 = 48_000;
const FRAME: usize = 960; // 20 ms at 48 kHz

#[derive(Serialize, Default)]
struct Report {
    opus: Vec<OpusRun>,
    opus_loss: Vec<LossRun>,
    h264: Vec<VideoRun>,
    av1: Option<Av1Run>,
    resample: Vec<ResampleRun>,
}

#[derive(Serialize)]
struct OpusRun {
    name: String,
    kbps_sent: f64,
    lag_samples: usize,
    snr_db: f64,
    correlation: f64,
    encode_us_per_frame: f64,
    decode_us_per_frame: f64,
}

#[derive(Serialize)]
struct LossRun {
    name: String,
    lost_frames: usize,
    recovered_correlation: f64,
    plc_correlation: f64,
    recovered_spectral_correlation: f64,
    plc_spectral_correlation: f64,
    recovered_frames: usize,
    recover_us_per_frame: f64,
}

#[derive(Serialize)]
struct VideoRun {
    name: String,
    frames: usize,
    kbps_sent: f64,
    psnr_y_mean_db: f64,
    psnr_y_min_db: f64,
    counters_read_back: usize,
    encode_ms_per_frame: f64,
    decode_ms_per_frame: f64,
}

#[derive(Serialize)]
struct Av1Run {
    frames: usize,
    width: u32,
    height: u32,
    matching_ffmpeg_checksums: usize,
    decode_ms_per_frame: f64,
}

#[derive(Serialize)]
struct ResampleRun {
    from_hz: u32,
    to_hz: u32,
    round_trip_snr_db: f64,
    us_per_10ms: f64,
}

/// Runs the demo and prints its report.
pub fn run(args: &DemoArgs) -> DemoResult<()> {
    let fixtures = crate::default_fixtures();
    let speech_path = args
        .speech
        .clone()
        .unwrap_or_else(|| fixtures.join("speech/speech_orig_16k.wav"));
    let speech =
        wav::read_wav(&speech_path).map_err(|e| format!("{}: {e}", speech_path.display()))?;
    let mono = mono_of(&speech);
    println!(
        "tincan demo: speech {} ({:.1} s), libopus with DRED, OpenH264, dav1d",
        speech_path.display(),
        mono.duration().as_secs_f64()
    );

    let mut report = Report::default();
    let speech_48k = resample_all(&mono, RATE)?;
    let frames: Vec<&[i16]> = speech_48k.samples().chunks_exact(FRAME).collect();
    let reference: Vec<f32> = speech_48k.samples()[..frames.len() * FRAME]
        .iter()
        .map(|s| s.to_f32())
        .collect();

    println!("\nOpus, 48 kHz mono, 20 ms frames, no loss");
    println!(
        "  {:<26} {:>8} {:>6} {:>8} {:>7} {:>12} {:>12}",
        "config", "kbps", "lag", "SNR dB", "corr", "enc us/frm", "dec us/frm"
    );
    for (name, config) in opus_configs() {
        let run = opus_round_trip(name, &config, &frames, &reference)?;
        println!(
            "  {:<26} {:>8.1} {:>6} {:>8.1} {:>7.3} {:>12.0} {:>12.0}",
            run.name,
            run.kbps_sent,
            run.lag_samples,
            run.snr_db,
            run.correlation,
            run.encode_us_per_frame,
            run.decode_us_per_frame
        );
        report.opus.push(run);
    }

    println!(
        "\nOpus loss recovery: correlation of the lost stretches with the original, waveform / spectrogram 0-4 kHz"
    );
    println!(
        "  {:<34} {:>6} {:>15} {:>15} {:>8} {:>14}",
        "scheme", "lost", "recovered", "PLC only", "rebuilt", "us/lost frame"
    );
    for run in [
        fec_recovery(&frames, &reference)?,
        dred_recovery(&frames, &reference)?,
    ] {
        println!(
            "  {:<34} {:>6} {:>15} {:>15} {:>8} {:>14.0}",
            run.name,
            run.lost_frames,
            format!(
                "{:.3} / {:.3}",
                run.recovered_correlation, run.recovered_spectral_correlation
            ),
            format!(
                "{:.3} / {:.3}",
                run.plc_correlation, run.plc_spectral_correlation
            ),
            run.recovered_frames,
            run.recover_us_per_frame
        );
        report.opus_loss.push(run);
    }

    println!(
        "\nH.264 (OpenH264), synthetic moving pattern, 30 fps, {} s",
        args.video_seconds
    );
    println!(
        "  {:<22} {:>7} {:>9} {:>11} {:>10} {:>9} {:>11} {:>11}",
        "config",
        "frames",
        "kbps",
        "PSNR-Y avg",
        "PSNR-Y min",
        "counters",
        "enc ms/frm",
        "dec ms/frm"
    );
    for (name, resolution, bitrate) in [
        ("640x360 @ 1 Mbps", Resolution::P360, 1_000_000),
        ("1280x720 @ 2 Mbps", Resolution::P720, 2_000_000),
    ] {
        let run = h264_round_trip(name, resolution, bitrate, 30 * args.video_seconds as usize)?;
        println!(
            "  {:<22} {:>7} {:>9.0} {:>11.2} {:>10.2} {:>9} {:>11.2} {:>11.2}",
            run.name,
            run.frames,
            run.kbps_sent,
            run.psnr_y_mean_db,
            run.psnr_y_min_db,
            format!("{}/{}", run.counters_read_back, run.frames),
            run.encode_ms_per_frame,
            run.decode_ms_per_frame
        );
        report.h264.push(run);
    }

    let av1 = av1_decode(&fixtures)?;
    println!(
        "\nAV1 (dav1d), fixture testsrc2_320x180_30f.ivf: {} frames of {}x{}, {}/{} match FFmpeg's checksums, {:.2} ms/frame",
        av1.frames,
        av1.width,
        av1.height,
        av1.matching_ffmpeg_checksums,
        av1.frames,
        av1.decode_ms_per_frame
    );
    report.av1 = Some(av1);

    println!("\nResampling (rubato), speech, 10 ms frames, there and back");
    println!("  {:<16} {:>12} {:>10}", "rates", "SNR dB", "us/10 ms");
    for (from, to) in [
        (16_000, 48_000),
        (48_000, 16_000),
        (48_000, 44_100),
        (16_000, 32_000),
    ] {
        let run = resample_round_trip(&speech_48k, &mono, from, to)?;
        println!(
            "  {:<16} {:>12.1} {:>10.1}",
            format!("{} -> {}", run.from_hz, run.to_hz),
            run.round_trip_snr_db,
            run.us_per_10ms
        );
        report.resample.push(run);
    }

    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("\nreport written to {}", path.display());
    }
    Ok(())
}

fn mono_of(frame: &AudioFrame<i16>) -> AudioFrame<i16> {
    if frame.format().channels() == Channels::Mono {
        return frame.clone();
    }
    let format = tincan_media::AudioFormat::new(frame.format().sample_rate(), Channels::Mono)
        .expect("rate already validated");
    let samples = frame
        .samples()
        .chunks_exact(2)
        .map(|lr| ((i32::from(lr[0]) + i32::from(lr[1])) / 2) as i16)
        .collect();
    AudioFrame::from_samples(format, samples).expect("mono frames are never ragged")
}

fn opus_configs() -> Vec<(&'static str, OpusConfig)> {
    let base = OpusConfig::new(RATE, Channels::Mono).with_bitrate(32_000);
    vec![
        ("32 kbps", base.clone()),
        (
            "32 kbps + FEC (loss 20%)",
            base.clone()
                .with_inband_fec(true)
                .with_packet_loss_percent(20),
        ),
        (
            "32 kbps + DRED 200 ms",
            base.with_packet_loss_percent(20)
                .with_dred_duration(Duration::from_millis(200)),
        ),
    ]
}

fn encode_all(
    config: &OpusConfig,
    frames: &[&[i16]],
) -> DemoResult<(Vec<Vec<u8>>, Duration, usize)> {
    let mut encoder = OpusEncoder::new(config)?;
    let mut packet = [0u8; 1500];
    let mut packets = Vec::with_capacity(frames.len());
    let started = Instant::now();
    for frame in frames {
        let len = encoder.encode(frame, &mut packet)?;
        packets.push(packet[..len].to_vec());
    }
    Ok((packets, started.elapsed(), encoder.lookahead_samples()))
}

fn opus_round_trip(
    name: &str,
    config: &OpusConfig,
    frames: &[&[i16]],
    reference: &[f32],
) -> DemoResult<OpusRun> {
    let (packets, encode_time, lookahead) = encode_all(config, frames)?;
    let mut decoder = OpusDecoder::new(RATE, Channels::Mono)?;
    let mut pcm = vec![0i16; FRAME];
    let mut decoded = Vec::with_capacity(reference.len());
    let started = Instant::now();
    for packet in &packets {
        let n = decoder.decode(packet, &mut pcm)?;
        decoded.extend(pcm[..n].iter().map(|s| s.to_f32()));
    }
    let decode_time = started.elapsed();
    let comparison = compare_aligned(reference, &decoded, lookahead * 4);
    let bytes: usize = packets.iter().map(Vec::len).sum();
    Ok(OpusRun {
        name: name.to_owned(),
        kbps_sent: bytes as f64 * 8.0 / (packets.len() as f64 * 0.02) / 1000.0,
        lag_samples: comparison.lag,
        snr_db: comparison.snr_db,
        correlation: comparison.correlation,
        encode_us_per_frame: micros(encode_time) / packets.len() as f64,
        decode_us_per_frame: micros(decode_time) / packets.len() as f64,
    })
}

/// Decodes `packets` with the frames in `lost` missing, rebuilding them with `recover`
/// (given the decoder, the packet after the gap, the gap length and the output) or, when
/// `recover` is `None`, with PLC. Returns the decoded signal, frames rebuilt and time spent
/// rebuilding.
fn decode_with_losses(
    packets: &[Vec<u8>],
    lost: &[bool],
    mut recover: Option<&mut Recover<'_>>,
) -> DemoResult<(Vec<f32>, usize, Duration)> {
    let mut decoder = OpusDecoder::new(RATE, Channels::Mono)?;
    let mut out = Vec::with_capacity(packets.len() * FRAME);
    let mut pcm = vec![0i16; FRAME * 16];
    let (mut rebuilt, mut spent, mut gap) = (0, Duration::ZERO, 0usize);
    for (packet, &is_lost) in packets.iter().zip(lost) {
        if is_lost {
            gap += 1;
            continue;
        }
        if gap > 0 {
            let started = Instant::now();
            let span = &mut pcm[..gap * FRAME];
            match recover.as_deref_mut() {
                Some(recover) => rebuilt += recover(&mut decoder, packet, gap, span)?,
                None => {
                    for frame in span.chunks_exact_mut(FRAME) {
                        decoder.conceal(FRAME, frame)?;
                    }
                }
            }
            spent += started.elapsed();
            out.extend(span.iter().map(|s| s.to_f32()));
            gap = 0;
        }
        let n = decoder.decode(packet, &mut pcm[..FRAME])?;
        out.extend(pcm[..n].iter().map(|s| s.to_f32()));
    }
    Ok((out, rebuilt, spent))
}

/// Waveform and spectrogram (0-4 kHz) correlation with the reference over the lost frames
/// only, after aligning by `lag`. DRED rebuilds the spectrum, pitch and level of speech
/// but not its phase, so the spectral measure is the one that shows what it recovers.
fn lost_correlation(reference: &[f32], decoded: &[f32], lost: &[bool], lag: usize) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (k, _) in lost.iter().enumerate().filter(|(_, l)| **l) {
        let start = k * FRAME;
        if start + lag + FRAME <= decoded.len() && start + FRAME <= reference.len() {
            a.extend_from_slice(&reference[start..start + FRAME]);
            b.extend_from_slice(&decoded[start + lag..start + lag + FRAME]);
        }
    }
    let spectral = spectrogram_correlation(
        &log_spectrogram(&a, RATE, 4000.0),
        &log_spectrogram(&b, RATE, 4000.0),
    );
    (correlation(&a, &b), spectral)
}

/// Decodes `packets` with the `lost` ones rebuilt by `recover` and, for comparison, by PLC
/// alone, and measures both over the lost stretches.
fn measure_recovery(
    name: &str,
    packets: &[Vec<u8>],
    lost: &[bool],
    reference: &[f32],
    lag: usize,
    recover: &mut Recover<'_>,
) -> DemoResult<LossRun> {
    let (recovered, rebuilt, spent) = decode_with_losses(packets, lost, Some(recover))?;
    let (concealed, _, _) = decode_with_losses(packets, lost, None)?;
    let lost_count = lost.iter().filter(|l| **l).count();
    let recovered_measures = lost_correlation(reference, &recovered, lost, lag);
    let plc_measures = lost_correlation(reference, &concealed, lost, lag);
    Ok(LossRun {
        name: name.into(),
        lost_frames: lost_count,
        recovered_correlation: recovered_measures.0,
        plc_correlation: plc_measures.0,
        recovered_spectral_correlation: recovered_measures.1,
        plc_spectral_correlation: plc_measures.1,
        recovered_frames: rebuilt,
        recover_us_per_frame: micros(spent) / lost_count.max(1) as f64,
    })
}

fn fec_recovery(frames: &[&[i16]], reference: &[f32]) -> DemoResult<LossRun> {
    let config = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(32_000)
        .with_inband_fec(true)
        .with_packet_loss_percent(20);
    let (packets, _, lag) = encode_all(&config, frames)?;
    // Every tenth packet lost, one at a time: what in-band FEC is for.
    let lost: Vec<bool> = (0..packets.len()).map(|k| k % 10 == 5).collect();
    let mut fec = |decoder: &mut OpusDecoder,
                   next: &[u8],
                   gap: usize,
                   out: &mut [i16]|
     -> DemoResult<usize> {
        let mut rebuilt = 0;
        let (older, newest) = out.split_at_mut((gap - 1) * FRAME);
        for frame in older.chunks_exact_mut(FRAME) {
            decoder.conceal(FRAME, frame)?;
        }
        if decoder.decode_fec(next, FRAME, newest)?.from_fec {
            rebuilt += 1;
        }
        Ok(rebuilt)
    };
    measure_recovery(
        "in-band FEC, 10% single losses",
        &packets,
        &lost,
        reference,
        lag,
        &mut fec,
    )
}

fn dred_recovery(frames: &[&[i16]], reference: &[f32]) -> DemoResult<LossRun> {
    let config = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(32_000)
        .with_packet_loss_percent(20)
        .with_dred_duration(Duration::from_millis(200));
    let (packets, _, lag) = encode_all(&config, frames)?;
    // Bursts of five lost packets (100 ms) every 50 packets: beyond what in-band FEC covers.
    let lost: Vec<bool> = (0..packets.len())
        .map(|k| k % 50 >= 20 && k % 50 < 25)
        .collect();
    let mut dred = DredDecoder::new(RATE)?;
    let mut recover = |decoder: &mut OpusDecoder,
                       next: &[u8],
                       gap: usize,
                       out: &mut [i16]|
     -> DemoResult<usize> {
        let report = decoder.recover_with_dred(&mut dred, next, gap, FRAME, out)?;
        Ok(report.dred_frames + report.fec_frames)
    };
    measure_recovery(
        "DRED, 100 ms bursts",
        &packets,
        &lost,
        reference,
        lag,
        &mut recover,
    )
}

fn h264_round_trip(
    name: &str,
    resolution: Resolution,
    bitrate: u32,
    frames: usize,
) -> DemoResult<VideoRun> {
    let mut encoder = H264Encoder::new(H264Config {
        bitrate_bps: bitrate,
        ..H264Config::default()
    })?;
    let mut decoder = H264Decoder::new()?;
    let mut pattern = TestPattern::new(resolution, 30);
    let mut source = tincan_media::VideoFrame::black(resolution);
    let mut picture = tincan_media::VideoFrame::black(resolution);
    let mut bitstream = Vec::new();
    let (mut encode_time, mut decode_time, mut bytes) = (Duration::ZERO, Duration::ZERO, 0usize);
    let (mut psnr_sum, mut psnr_min, mut decoded, mut counters) =
        (0.0, f64::INFINITY, 0usize, 0usize);
    for _ in 0..frames {
        let index = pattern.frame_index();
        pattern.render_into(&mut source);
        let started = Instant::now();
        let info = encoder.encode(&source, EncodeRequest::default(), &mut bitstream)?;
        encode_time += started.elapsed();
        bytes += info.len;
        if info.len == 0 {
            continue;
        }
        let started = Instant::now();
        let got_picture = decoder.decode_into(&bitstream, &mut picture)?;
        decode_time += started.elapsed();
        if got_picture {
            let psnr = picture.psnr(&source, 0).unwrap_or(0.0).min(99.0);
            psnr_sum += psnr;
            psnr_min = f64::min(psnr_min, psnr);
            decoded += 1;
            counters += usize::from(read_frame_counter(&picture) == Some(index));
        }
    }
    Ok(VideoRun {
        name: name.to_owned(),
        frames: decoded,
        kbps_sent: bytes as f64 * 8.0 / (frames as f64 / 30.0) / 1000.0,
        psnr_y_mean_db: psnr_sum / decoded.max(1) as f64,
        psnr_y_min_db: psnr_min,
        counters_read_back: counters,
        encode_ms_per_frame: millis(encode_time) / frames as f64,
        decode_ms_per_frame: millis(decode_time) / decoded.max(1) as f64,
    })
}

fn av1_decode(fixtures: &std::path::Path) -> DemoResult<Av1Run> {
    let path = fixtures.join("video/testsrc2_320x180_30f.ivf");
    let mut reader = IvfReader::new(std::io::BufReader::new(std::fs::File::open(&path)?))?;
    let expected: Vec<u32> =
        std::fs::read_to_string(fixtures.join("video/testsrc2_320x180_30f.framecrc"))?
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit(',').next())
            .filter_map(|c| u32::from_str_radix(c.trim().trim_start_matches("0x"), 16).ok())
            .collect();
    let mut decoder = Av1Decoder::new()?;
    let mut pictures = Vec::new();
    let mut spent = Duration::ZERO;
    let mut unit = Vec::new();
    while reader.read_frame_into(&mut unit)?.is_some() {
        let started = Instant::now();
        let picture = decoder.decode(&unit)?;
        spent += started.elapsed();
        pictures.extend(picture);
    }
    pictures.extend(decoder.flush()?);
    let mut packed = Vec::new();
    let matching = pictures
        .iter()
        .zip(&expected)
        .filter(|(picture, crc)| {
            picture.write_packed_i420(&mut packed);
            // FFmpeg's framecrc seeds Adler-32 with 0, not RFC 1950's 1.
            adler32_update(0, &packed) == **crc
        })
        .count();
    let (width, height) = pictures.first().map_or((0, 0), |p| (p.width(), p.height()));
    Ok(Av1Run {
        frames: pictures.len(),
        width,
        height,
        matching_ffmpeg_checksums: matching,
        decode_ms_per_frame: millis(spent) / pictures.len().max(1) as f64,
    })
}

fn resample_round_trip(
    speech_48k: &AudioFrame<i16>,
    speech: &AudioFrame<i16>,
    from: u32,
    to: u32,
) -> DemoResult<ResampleRun> {
    let source = if speech.format().sample_rate() == from {
        speech.clone()
    } else {
        resample_all(speech_48k, from)?
    };
    let started = Instant::now();
    let there = resample_all(&source, to)?;
    let spent = started.elapsed();
    let back = resample_all(&there, from)?;
    let reference: Vec<f32> = source.samples().iter().map(|s| s.to_f32()).collect();
    let returned: Vec<f32> = back.samples().iter().map(|s| s.to_f32()).collect();
    let comparison = compare_aligned(&reference, &returned, from as usize / 50);
    let frames_10ms = source.samples_per_channel() as f64 / (from as f64 / 100.0);
    Ok(ResampleRun {
        from_hz: from,
        to_hz: to,
        round_trip_snr_db: comparison.snr_db,
        us_per_10ms: micros(spent) / frames_10ms,
    })
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
