//! The real-time path does not allocate per packet once its queues have grown.
//!
//! This file holds one test because the counting allocator is global to the test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tincan_netsim::{Link, Poll, Profile};

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

fn run(link: &mut Link<u64>, start: Instant, from: u64, to: u64) -> Instant {
    let mut now = start;
    for i in from..to {
        now = start + Duration::from_micros(500) * (i - from) as u32;
        link.send(i, 1200, now);
        while let Poll::Deliver(_) = link.poll(now) {}
    }
    now
}

#[test]
fn steady_state_send_and_poll_do_not_allocate() {
    for name in Profile::NAMES {
        let mut link = Link::new(Profile::named(name).unwrap().link, 5).unwrap();
        // Warm-up: the delivery heap and bottleneck backlog grow to their working size.
        let t = run(&mut link, Instant::now(), 0, 50_000);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        run(&mut link, t, 50_000, 100_000);
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        // Rare heap growth after warm-up (a record spike) is allowed, per-packet is not.
        assert!(
            after - before <= 2,
            "{name}: {} allocations",
            after - before
        );
    }
}
