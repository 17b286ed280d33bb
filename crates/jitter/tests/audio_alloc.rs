//! The audio buffer's real-time path (insert and pull) does not allocate once warmed up,
//! through jitter, reordering, losses, FEC recovery, concealment and time stretching.
//!
//! One test in this file: the counting allocator is global to the test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioPacket, Operation, OpusPacketDecoder,
};
use tincan_media::{Channels, wav};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn insert_and_pull_do_not_allocate_after_warm_up() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/speech/speech_orig_16k.wav"
    );
    let speech = wav::read_wav(path).expect("fixture").into_samples();
    let config = OpusConfig::new(16_000, Channels::Mono)
        .with_bitrate(24_000)
        .with_inband_fec(true)
        .with_packet_loss_percent(10);
    let mut encoder = OpusEncoder::new(&config).expect("encoder");
    let mut buf = [0u8; 1500];
    let count = 3000usize;
    let packets: Vec<Vec<u8>> = (0..count)
        .map(|k| {
            let pcm: Vec<i16> = (0..320)
                .map(|i| speech[(k * 320 + i) % speech.len()])
                .collect();
            let len = encoder.encode(&pcm, &mut buf).expect("encode");
            buf[..len].to_vec()
        })
        .collect();
    // Arrivals: 40 ms plus up to 60 ms of jitter, 3% lost, 3% held back 50 ms.
    let mut state = 12345u64;
    let mut random = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut arrivals: Vec<(u64, usize)> = Vec::new();
    for k in 0..count {
        if random() < 0.03 {
            continue;
        }
        let mut delay = 40.0 + 60.0 * random() * random();
        if random() < 0.03 {
            delay += 50.0;
        }
        arrivals.push(((k as f64 * 20_000.0 + delay * 1000.0) as u64, k));
    }
    arrivals.sort_unstable();

    let decoder =
        OpusPacketDecoder::new(OpusDecoder::new(16_000, Channels::Mono).expect("decoder"));
    let mut jb = AudioJitterBuffer::new(decoder, AudioJitterConfig::default()).expect("buffer");
    let start = Instant::now();
    let mut out = vec![0i16; jb.samples_per_pull()];
    let mut next = 0;
    let mut operations = [0usize; 9];
    let mut before = 0;
    for pull in 0..(count as u64 * 2) {
        if pull == 1000 {
            before = ALLOCATIONS.load(Ordering::Relaxed);
        }
        let now_us = pull * 10_000;
        while next < arrivals.len() && arrivals[next].0 <= now_us {
            let k = arrivals[next].1;
            let packet = AudioPacket {
                ssrc: 3,
                sequence: k as u16,
                timestamp: (k as u32) * 960,
                payload: &packets[k],
            };
            jb.insert(packet, start + Duration::from_micros(arrivals[next].0))
                .expect("insert");
            next += 1;
        }
        let info = jb
            .pull(start + Duration::from_micros(now_us), &mut out)
            .expect("pull");
        operations[info.operation as usize] += 1;
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    // Every kind of work happened in the measured stretch.
    for operation in [
        Operation::Normal,
        Operation::Expand,
        Operation::Recover,
        Operation::Accelerate,
        Operation::PreemptiveExpand,
    ] {
        assert!(
            operations[operation as usize] > 0,
            "{operation:?} never happened: {operations:?}"
        );
    }
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations in {} pulls",
        count * 2 - 1000
    );
}
