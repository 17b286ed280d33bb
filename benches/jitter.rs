//! Audio jitter buffer benches: the cost of one 10 ms tick (the packet inserts due in that
//! tick plus one pull) with real Opus speech at 48 kHz, in normal operation and while
//! accelerating (the stretch itself is measured per call in the crate's `stretch` tests).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::codec::AudioEncoder;
use tincan::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan::jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioPacket, Operation, OpusPacketDecoder,
};
use tincan::media::{Channels, wav};

/// 10 s of real speech as 20 ms Opus packets at 48 kHz, 32 kbps.
fn speech_packets() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/speech/speech_orig_16k.wav"
    );
    let speech = wav::read_wav(path).expect("fixture");
    let speech = tincan::codec::resample::resample_all(&speech, 48_000).expect("resample");
    let config = OpusConfig::new(48_000, Channels::Mono).with_bitrate(32_000);
    let mut encoder = OpusEncoder::new(&config).expect("encoder");
    let mut packet = [0u8; 1500];
    speech
        .samples()
        .chunks_exact(960)
        .map(|pcm| {
            let len = encoder.encode(pcm, &mut packet).expect("encode");
            packet[..len].to_vec()
        })
        .collect()
}

/// A sender and a receiver: `burst` packets arrive at once every `burst` packet intervals
/// of `interval_us` (20 ms when the clocks agree).
struct Tick {
    buffer: AudioJitterBuffer<OpusPacketDecoder>,
    packets: Vec<Vec<u8>>,
    out: Vec<i16>,
    start: Instant,
    tick: u64,
    sent: u64,
    burst: u64,
    interval_us: u64,
}

impl Tick {
    fn new(config: AudioJitterConfig, burst: u64, interval_us: u64) -> Self {
        let decoder =
            OpusPacketDecoder::new(OpusDecoder::new(48_000, Channels::Mono).expect("decoder"));
        let buffer = AudioJitterBuffer::new(decoder, config).expect("buffer");
        let mut tick = Self {
            out: vec![0; buffer.samples_per_pull()],
            buffer,
            packets: speech_packets(),
            start: Instant::now(),
            tick: 0,
            sent: 0,
            burst,
            interval_us,
        };
        // Warm up: past the start delay and into steady state.
        for _ in 0..500 {
            tick.run();
        }
        tick
    }

    fn run(&mut self) -> Operation {
        let now = self.start + Duration::from_millis(self.tick * 10);
        let due = (self.tick * 10_000 / (self.interval_us * self.burst) + 1) * self.burst;
        while self.sent < due {
            let k = self.sent;
            let payload = &self.packets[(k as usize) % self.packets.len()];
            let packet = AudioPacket {
                ssrc: 1,
                sequence: k as u16,
                timestamp: (k as u32).wrapping_mul(960),
                payload,
            };
            let _ = self.buffer.insert(packet, now);
            self.sent += 1;
        }
        self.tick += 1;
        self.buffer
            .pull(now, &mut self.out)
            .expect("pull")
            .operation
    }
}

fn ticks(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter_audio_tick");
    group.throughput(Throughput::Elements(1));

    // Steady arrivals: the buffer sits at its target and plays decoded audio as is.
    let mut normal = Tick::new(AudioJitterConfig::default(), 1, 20_000);
    let ops: Vec<Operation> = (0..1000).map(|_| normal.run()).collect();
    let share = ops.iter().filter(|o| **o == Operation::Normal).count() as f64 / 10.0;
    eprintln!("normal: {share:.0}% of ticks are Normal");
    group.bench_function("normal_48k", |b| b.iter(|| black_box(normal.run())));

    // Packets arrive 25 at a time (500 ms bursts) while the target is zero: the buffer
    // always holds more than it wants and accelerates whenever fresh speech allows.
    let accelerate = AudioJitterConfig {
        max_delay: Duration::ZERO,
        ..AudioJitterConfig::default()
    };
    let mut stretching = Tick::new(accelerate, 25, 20_000);
    let ops: Vec<Operation> = (0..1000).map(|_| stretching.run()).collect();
    let share = ops
        .iter()
        .filter(|o| matches!(o, Operation::Accelerate | Operation::FastAccelerate))
        .count() as f64
        / 10.0;
    eprintln!("accelerating: {share:.0}% of ticks stretch");
    group.bench_function("accelerating_48k", |b| {
        b.iter(|| black_box(stretching.run()))
    });

    group.finish();
}

criterion_group!(benches, ticks);
criterion_main!(benches);
