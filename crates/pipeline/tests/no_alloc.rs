//! The real-time paths do not allocate per frame after warm-up: a counting allocator
//! around two sessions talking directly (no network in between), datagram buffers given
//! back with `Session::recycle`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tincan_pipeline::{FRAME_SAMPLES, Input, Output, Session, SessionConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Warm-up before counting: the jitter buffer, encoders and pools settle.
const WARM_UP_TICKS: u64 = 300;
/// Ticks counted.
const COUNTED_TICKS: u64 = 300;

#[test]
fn a_steady_call_does_not_allocate_per_frame() {
    let t0 = Instant::now();
    let mut alice = Session::new(SessionConfig::new(1), t0).expect("alice");
    let mut bob = Session::new(SessionConfig::new(2), t0).expect("bob");
    let voice: Vec<i16> = (0..FRAME_SAMPLES * 100)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            // A tone gated at 4 Hz: speech-like on and off.
            let gate = if (t * 4.0).fract() < 0.6 { 1.0 } else { 0.0 };
            ((t * 300.0 * std::f32::consts::TAU).sin() * 6000.0 * gate) as i16
        })
        .collect();
    let mut out = [0i16; FRAME_SAMPLES];
    let mut inbox_bob: Vec<Vec<u8>> = Vec::with_capacity(64);
    let mut inbox_alice: Vec<Vec<u8>> = Vec::with_capacity(64);
    let mut counted = 0;
    for tick in 0..WARM_UP_TICKS + COUNTED_TICKS {
        if tick == WARM_UP_TICKS {
            counted = ALLOCATIONS.load(Ordering::Relaxed);
        }
        let now = t0 + Duration::from_millis(10 * tick);
        let k = (tick as usize % 100) * FRAME_SAMPLES;
        alice
            .push_audio(&voice[k..k + FRAME_SAMPLES], now)
            .expect("push");
        bob.push_audio(&voice[k..k + FRAME_SAMPLES], now)
            .expect("push");
        alice.handle_input(Input::Timeout, now).expect("timeout");
        bob.handle_input(Input::Timeout, now).expect("timeout");
        while let Output::Transmit(d) = alice.poll_output() {
            inbox_bob.push(d);
        }
        while let Output::Transmit(d) = bob.poll_output() {
            inbox_alice.push(d);
        }
        for d in inbox_bob.drain(..) {
            bob.handle_input(Input::Receive(&d), now)
                .expect("bob receive");
            alice.recycle(d);
        }
        for d in inbox_alice.drain(..) {
            alice
                .handle_input(Input::Receive(&d), now)
                .expect("alice receive");
            bob.recycle(d);
        }
        alice.pull_audio(now, &mut out).expect("pull");
        bob.pull_audio(now, &mut out).expect("pull");
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - counted;
    println!("allocations in {COUNTED_TICKS} ticks (3 s) of a two-way call: {allocations}");
    assert_eq!(allocations, 0);
}
