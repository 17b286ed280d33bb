//! Criterion benches of the codec hot paths: one iteration is one frame.
//!
//! `cargo bench --bench codecs` runs them all; the README quotes their medians.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::codec::av1::Av1Decoder;
use tincan::codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan::codec::opus::{DredDecoder, OpusConfig, OpusDecoder, OpusEncoder};
use tincan::codec::resample::{Resampler, resample_all};
use tincan::codec::{AudioDecoder, AudioEncoder, EncodeRequest, VideoDecoder, VideoEncoder};
use tincan::media::ivf::IvfReader;
use tincan::media::source::TestPattern;
use tincan::media::{AudioFrame, Channels, Resolution, VideoFrame, wav};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
const FRAME_48K: usize = 960;

/// The speech fixture at 48 kHz mono, cut into 20 ms frames.
fn speech_frames_48k() -> Vec<Vec<i16>> {
    let speech =
        wav::read_wav(format!("{FIXTURES}/speech/speech_orig_16k.wav")).expect("speech fixture");
    let speech: AudioFrame<i16> = resample_all(&speech, 48_000).expect("resample to 48 kHz");
    speech
        .samples()
        .chunks_exact(FRAME_48K)
        .map(<[i16]>::to_vec)
        .collect()
}

fn opus_encoder(fec: bool, dred: bool) -> OpusEncoder {
    let mut config = OpusConfig::new(48_000, Channels::Mono)
        .with_bitrate(32_000)
        .with_inband_fec(fec);
    if fec || dred {
        config = config.with_packet_loss_percent(20);
    }
    if dred {
        config = config.with_dred_duration(std::time::Duration::from_millis(200));
    }
    OpusEncoder::new(&config).expect("opus encoder")
}

fn encode_all(encoder: &mut OpusEncoder, frames: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let mut packet = [0u8; 1500];
    frames
        .iter()
        .map(|frame| {
            let len = encoder.encode(frame, &mut packet).expect("encode");
            packet[..len].to_vec()
        })
        .collect()
}

fn opus(c: &mut Criterion) {
    let frames = speech_frames_48k();
    let mut group = c.benchmark_group("opus_20ms_48k_mono_32kbps");
    group.throughput(Throughput::Elements(1));
    for (name, fec, dred) in [
        ("encode", false, false),
        ("encode_fec", true, false),
        ("encode_dred", false, true),
    ] {
        let mut encoder = opus_encoder(fec, dred);
        let mut packet = [0u8; 1500];
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(
                    encoder
                        .encode(black_box(&frames[i]), &mut packet)
                        .expect("encode"),
                )
            })
        });
    }

    let plain = encode_all(&mut opus_encoder(false, false), &frames);
    let with_fec = encode_all(&mut opus_encoder(true, false), &frames);
    let with_dred = encode_all(&mut opus_encoder(false, true), &frames);
    let mut pcm = vec![0i16; 5760];

    let mut decoder = OpusDecoder::new(48_000, Channels::Mono).expect("decoder");
    let mut i = 0;
    group.bench_function("decode", |b| {
        b.iter(|| {
            i = (i + 1) % plain.len();
            black_box(
                decoder
                    .decode(black_box(&plain[i]), &mut pcm)
                    .expect("decode"),
            )
        })
    });
    // One lost frame rebuilt from the in-band FEC of the packet after it, right after a
    // received packet as in a call; only the FEC decode is timed.
    let mut fec_decoder = OpusDecoder::new(48_000, Channels::Mono).expect("decoder");
    let mut k = 0;
    group.bench_function("decode_fec_recovery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                k = (k + 1) % (with_fec.len() - 2);
                fec_decoder.decode(&with_fec[k], &mut pcm).expect("decode");
                let started = Instant::now();
                let outcome = fec_decoder
                    .decode_fec(black_box(&with_fec[k + 2]), FRAME_48K, &mut pcm)
                    .expect("fec");
                total += started.elapsed();
                black_box(outcome);
            }
            total
        })
    });
    for (name, complexity) in [("conceal_classic_plc", 0), ("conceal_deep_plc", 10)] {
        let mut concealer = OpusDecoder::new(48_000, Channels::Mono).expect("decoder");
        // Complexity 5 and up switches libopus to its neural (deep) PLC.
        concealer.set_complexity(complexity).expect("complexity");
        let mut k = 0;
        group.bench_function(name, |b| {
            // Each loss follows a received packet, as in a call with isolated losses; only
            // the concealment is timed, since PLC after many losses fades to cheap silence.
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    k = (k + 1) % plain.len();
                    concealer.decode(&plain[k], &mut pcm).expect("decode");
                    let started = Instant::now();
                    black_box(concealer.conceal(FRAME_48K, &mut pcm).expect("plc"));
                    total += started.elapsed();
                }
                total
            })
        });
    }
    // A gap of lost 20 ms frames after a received packet, rebuilt from the DRED data of
    // the packet after the gap (parse included); only the recovery is timed. Throughput
    // counts lost frames, so criterion's per-element time is the cost per rebuilt frame.
    let mut dred = DredDecoder::new(48_000).expect("dred decoder");
    let mut recoverer = OpusDecoder::new(48_000, Channels::Mono).expect("decoder");
    let mut pcm_gap = vec![0i16; FRAME_48K * 5];
    for gap in [1usize, 5] {
        group.throughput(Throughput::Elements(gap as u64));
        let mut k = 0;
        group.bench_function(format!("dred_recovery_gap_{gap}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    k = (k + 1) % (with_dred.len() - gap - 1);
                    recoverer.decode(&with_dred[k], &mut pcm).expect("decode");
                    let next = &with_dred[k + gap + 1];
                    let started = Instant::now();
                    let report = recoverer
                        .recover_with_dred(&mut dred, black_box(next), gap, FRAME_48K, &mut pcm_gap)
                        .expect("dred");
                    total += started.elapsed();
                    black_box(report);
                }
                total
            })
        });
    }
    group.finish();
}

fn h264(c: &mut Criterion) {
    for (name, resolution, bitrate) in [
        ("640x360_1mbps", Resolution::P360, 1_000_000),
        ("1280x720_2mbps", Resolution::P720, 2_000_000),
    ] {
        let mut group = c.benchmark_group(format!("h264_{name}"));
        group.throughput(Throughput::Elements(1));
        let config = H264Config {
            bitrate_bps: bitrate,
            ..H264Config::default()
        };
        let mut encoder = H264Encoder::new(config.clone()).expect("encoder");
        let mut pattern = TestPattern::new(resolution, 30);
        let source: Vec<_> = (0..60).map(|_| pattern.next_frame()).collect();
        let mut out = Vec::new();
        let mut i = 0;
        group.bench_function("encode_frame", |b| {
            b.iter(|| {
                i = (i + 1) % source.len();
                black_box(
                    encoder
                        .encode(black_box(&source[i]), EncodeRequest::default(), &mut out)
                        .expect("encode"),
                )
            })
        });

        // A fresh stream, so decoding can start at its keyframe and run in order.
        let mut encoder = H264Encoder::new(config).expect("encoder");
        let stream: Vec<Vec<u8>> = source
            .iter()
            .map(|frame| {
                encoder
                    .encode(frame, EncodeRequest::default(), &mut out)
                    .expect("encode");
                out.clone()
            })
            .collect();
        let mut decoder = H264Decoder::new().expect("decoder");
        let mut picture = VideoFrame::black(resolution);
        let mut j = 0;
        group.bench_function("decode_frame", |b| {
            b.iter(|| {
                if j == 0 {
                    decoder = H264Decoder::new().expect("decoder");
                }
                let decoded = decoder
                    .decode_into(black_box(&stream[j]), &mut picture)
                    .expect("decode");
                j = (j + 1) % stream.len();
                black_box(decoded)
            })
        });
        group.finish();
    }
}

fn av1(c: &mut Criterion) {
    let file = std::fs::File::open(format!("{FIXTURES}/video/testsrc2_320x180_30f.ivf"))
        .expect("AV1 fixture");
    let mut reader = IvfReader::new(std::io::BufReader::new(file)).expect("IVF");
    let mut units = Vec::new();
    while let Some(frame) = reader.read_frame().expect("IVF frame") {
        units.push(frame.data);
    }
    let mut group = c.benchmark_group("av1_320x180");
    group.throughput(Throughput::Elements(1));
    let mut decoder = Av1Decoder::new().expect("decoder");
    let mut picture = VideoFrame::black(Resolution::new(320, 180).expect("size"));
    let mut j = 0;
    group.bench_function("decode_frame", |b| {
        b.iter(|| {
            if j == 0 {
                decoder = Av1Decoder::new().expect("decoder");
            }
            let decoded = decoder
                .decode_into(black_box(&units[j]), &mut picture)
                .expect("decode");
            j = (j + 1) % units.len();
            black_box(decoded)
        })
    });
    group.finish();
}

fn resample(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample_10ms_mono");
    group.throughput(Throughput::Elements(1));
    for (from, to) in [
        (48_000, 16_000),
        (16_000, 48_000),
        (44_100, 48_000),
        (48_000, 8_000),
    ] {
        let frame = from as usize / 100;
        let mut resampler = Resampler::new(from, to, Channels::Mono, frame).expect("resampler");
        let input: Vec<f32> = (0..frame).map(|n| (n as f32 * 0.05).sin() * 0.5).collect();
        let mut output = Vec::with_capacity(resampler.output_frame_samples_max());
        group.bench_function(format!("{from}_to_{to}"), |b| {
            b.iter(|| {
                black_box(
                    resampler
                        .process(black_box(&input), &mut output)
                        .expect("resample"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, opus, h264, av1, resample);
criterion_main!(benches);
