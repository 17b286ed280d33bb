//! Criterion benches of the media hot paths the pipeline runs per frame.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tincan::media::source::{TestPattern, ToneSource, read_frame_counter};
use tincan::media::time::SeqNoExtender;
use tincan::media::{AudioFormat, AudioFrame, Resolution, VideoFrame};

fn audio(c: &mut Criterion) {
    let mut group = c.benchmark_group("audio_10ms_48k_mono");
    group.throughput(Throughput::Elements(1));
    let mut tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.5);
    let frame = tone.next_frame(480);
    let mut as_f32 = AudioFrame::<f32>::silence(AudioFormat::MONO_48K, 480);
    group.bench_function("convert_i16_to_f32", |b| {
        b.iter(|| frame.convert_into(black_box(&mut as_f32)))
    });
    let mut pcm = vec![0i16; 480];
    group.bench_function("tone_fill", |b| b.iter(|| tone.fill(black_box(&mut pcm))));
    group.finish();
}

fn video(c: &mut Criterion) {
    let mut group = c.benchmark_group("video_640x360");
    group.throughput(Throughput::Elements(1));
    let mut pattern = TestPattern::new(Resolution::P360, 30);
    let mut frame = VideoFrame::black(Resolution::P360);
    group.bench_function("test_pattern_render", |b| {
        b.iter(|| pattern.render_into(black_box(&mut frame)))
    });
    let reference = pattern.next_frame();
    group.bench_function("read_frame_counter", |b| {
        b.iter(|| black_box(read_frame_counter(black_box(&reference))))
    });
    group.bench_function("psnr_luma", |b| {
        b.iter(|| black_box(frame.psnr(black_box(&reference), 0)))
    });
    group.finish();
}

fn time(c: &mut Criterion) {
    let mut extender = SeqNoExtender::new();
    let mut seq = 0u16;
    c.bench_function("seq_no_extend", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(extender.extend(black_box(seq.into())))
        })
    });
}

criterion_group!(benches, audio, video, time);
criterion_main!(benches);
