//! The per-packet paths do not allocate once warmed up: packets recorded as sent, arrivals
//! recorded, feedback written, parsed and processed, and the REMB estimator, counted by a
//! global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tincan_abr::{
    ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, RembConfig, RembEstimator,
    SendSideController, SentPacket,
};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `packets` packets from `first` through sender, path and receiver.
#[allow(clippy::too_many_arguments)]
fn run(
    t0: Instant,
    first: usize,
    packets: usize,
    sender: &mut SendSideController,
    receiver: &mut FeedbackGenerator,
    remb: &mut RembEstimator,
    rtcp: &mut Vec<u8>,
    remb_out: &mut Vec<u8>,
) {
    for i in first..first + packets {
        // 1200-byte packets at 2 Mbps through a 50 ms path, with some jitter and a loss
        // every 50 packets.
        let sent_at = t0 + Duration::from_micros(4_800 * i as u64);
        let seq = i as u16;
        sender.on_packet_sent(SentPacket {
            transport_seq: seq,
            size_bytes: 1200,
            send_time: sent_at,
            probe_cluster: None,
            class: PacketClass::Video,
        });
        let _ = sender.poll_probe();
        if i % 50 == 0 {
            continue;
        }
        let arrival = sent_at + Duration::from_micros(50_000 + (i % 7) as u64 * 400);
        receiver.on_packet_received(seq, arrival);
        let abs = ((4_800 * i as u64 * (1 << 18) / 1_000_000) as u32) & 0xFF_FFFF;
        remb.on_packet_received(arrival, abs, 1200, 7);
        remb_out.clear();
        remb.poll_remb(arrival, remb_out).unwrap();
        rtcp.clear();
        if receiver.poll_feedback(arrival, rtcp).unwrap() {
            let at = arrival + Duration::from_millis(50);
            for packet in RtcpCompound::parse(rtcp).unwrap().packets() {
                if let Ok(RtcpPacket::TransportCc(fb)) = packet {
                    sender.on_transport_feedback(&fb, at).unwrap();
                }
            }
            sender.handle_timeout(at);
        }
    }
}

#[test]
fn per_packet_paths_do_not_allocate_after_warm_up() {
    let t0 = Instant::now();
    let mut sender = SendSideController::new(ControllerConfig::default(), t0).unwrap();
    let mut receiver = FeedbackGenerator::new(FeedbackConfig::default()).unwrap();
    let mut remb = RembEstimator::new(RembConfig::default()).unwrap();
    let mut rtcp = Vec::with_capacity(1500);
    let mut remb_out = Vec::with_capacity(64);
    // Warm-up: 10 s of packets, past the send history's and receive window's first lap.
    let warm = 2_100;
    run(
        t0,
        0,
        warm,
        &mut sender,
        &mut receiver,
        &mut remb,
        &mut rtcp,
        &mut remb_out,
    );
    COUNTING.store(true, Ordering::SeqCst);
    run(
        t0,
        warm,
        20_000,
        &mut sender,
        &mut receiver,
        &mut remb,
        &mut rtcp,
        &mut remb_out,
    );
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0);
    // The run did real work: feedback reached the controller, which measured the rate.
    assert!(sender.stats().feedbacks > 1_000);
    assert!(
        sender
            .stats()
            .acknowledged_bps
            .is_some_and(|a| a > 1_500_000)
    );
    assert!(receiver.stats().received > 20_000);
}
