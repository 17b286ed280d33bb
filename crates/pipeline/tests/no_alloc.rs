//! The real-time paths do not allocate per frame after warm-up: a counting allocator
//! around two sessions talking directly, and four sessions connected by a zero-delay
//! relay (no network in between; one of the four silent, so DTX runs), datagram buffers
//! given back with `Session::recycle`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tincan_pipeline::{FRAME_SAMPLES, Input, Output, RemoteParticipant, Session, SessionConfig};

/// The allocation counter is global: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

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
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn a_four_party_call_does_not_allocate_per_frame() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const PARTIES: usize = 4;
    let t0 = Instant::now();
    let ssrcs: Vec<u32> = (1..=PARTIES as u32).collect();
    let mut sessions: Vec<Session> = ssrcs
        .iter()
        .map(|&ssrc| {
            let mut s = Session::new(SessionConfig::new(ssrc), t0).expect("session");
            for &other in ssrcs.iter().filter(|&&o| o != ssrc) {
                s.add_remote(RemoteParticipant::new(other)).expect("remote");
            }
            s
        })
        .collect();
    // Three speak gated tones at different pitches and phases; the fourth is silent.
    let voices: Vec<Vec<i16>> = (0..PARTIES)
        .map(|p| {
            (0..FRAME_SAMPLES * 100)
                .map(|i| {
                    if p == PARTIES - 1 {
                        return 0;
                    }
                    let t = i as f32 / 48_000.0;
                    let gate = if (t * 4.0 + p as f32 / 3.0).fract() < 0.6 {
                        1.0
                    } else {
                        0.0
                    };
                    let pitch = 200.0 + 100.0 * p as f32;
                    ((t * pitch * std::f32::consts::TAU).sin() * 6000.0 * gate) as i16
                })
                .collect()
        })
        .collect();
    let mut out = [0i16; FRAME_SAMPLES];
    let mut outboxes: Vec<Vec<Vec<u8>>> = (0..PARTIES).map(|_| Vec::with_capacity(512)).collect();
    let mut counted = 0;
    for tick in 0..WARM_UP_TICKS + COUNTED_TICKS {
        if tick == WARM_UP_TICKS {
            counted = ALLOCATIONS.load(Ordering::Relaxed);
        }
        let now = t0 + Duration::from_millis(10 * tick);
        let k = (tick as usize % 100) * FRAME_SAMPLES;
        for (i, session) in sessions.iter_mut().enumerate() {
            session
                .push_audio(&voices[i][k..k + FRAME_SAMPLES], now)
                .expect("push");
            session.handle_input(Input::Timeout, now).expect("timeout");
        }
        // A relay that hands every datagram to everyone else (a superset of the routing
        // rules: sessions ignore RTCP about streams that are not theirs).
        for i in 0..PARTIES {
            loop {
                match sessions[i].poll_output() {
                    Output::Transmit(d) => outboxes[i].push(d),
                    Output::Timeout(_) => break,
                    _ => {}
                }
            }
        }
        for i in 0..PARTIES {
            while let Some(d) = outboxes[i].pop() {
                for (j, session) in sessions.iter_mut().enumerate() {
                    if j != i {
                        session
                            .handle_input(Input::Receive(&d), now)
                            .expect("receive");
                    }
                }
                sessions[i].recycle(d);
            }
        }
        for session in &mut sessions {
            session.pull_audio(now, &mut out).expect("pull");
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - counted;
    println!("allocations in {COUNTED_TICKS} ticks (3 s) of a four-party call: {allocations}");
    for session in &sessions {
        let stats = session.stats(t0 + Duration::from_millis(10 * (WARM_UP_TICKS + COUNTED_TICKS)));
        assert_eq!(stats.remotes, PARTIES - 1);
        assert!(stats.packets_received > 0);
    }
    assert_eq!(allocations, 0);
}
