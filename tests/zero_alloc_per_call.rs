//! A log call allocates nothing in steady state, on both paths: the native
//! macros and the `log` facade (with key/values and formatted arguments).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; counting has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn log_both(i: u64) {
    let name = "alice";
    distlog::info!(user_id = i, ok = true, name = name; "request {} took {} ms", i, 1.5);
    log::info!(user_id = i, ok = true, name = name; "request {} took {} ms", i, 1.5);
}

#[test]
fn steady_state_log_calls_do_not_allocate() {
    let receiver = common::Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || {
        receiver.collect_until(Duration::from_secs(3), Duration::from_secs(60), |_| false)
    });
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    for i in 0..10_000 {
        log_both(i); // warm-up: ring, scratch buffer, call-site registration
    }
    COUNTING.with(|c| c.set(true));
    for i in 0..20_000 {
        log_both(i);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations on the hot path"
    );
    assert!(distlog::flush());
    let batches = drain.join().unwrap();
    let n: usize = common::app_records(&batches).count();
    assert_eq!(n, 60_000, "every record arrived");
}
