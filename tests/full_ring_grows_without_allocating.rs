//! A full ring continues in a spare one without allocating in the logging
//! call (`grow_when_full`, the default builder's, which this test pins):
//! the smallest rings (4 KiB), one
//! thread logging native and facade records far faster than the sender
//! reads them, counted by the counting allocator until the rings have
//! grown many times inside the counted stretch. Every record arrives or is
//! counted dropped, and the rings in use never pass the memory bound.
mod common;

use common::counting_alloc::{allocs_in, Counting};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn burst(i: u64) {
    for k in 0..64 {
        distlog::info!(seq = i, k = k; "record {} {}", i, k);
        log::info!("facade {} {} {}", i, k, true);
    }
}

#[test]
fn full_ring_grows_without_allocating() {
    let receiver = common::Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(120)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .panic_hook(false)
        .buffer_per_thread(4096)
        .max_memory(64 * 4096)
        .install()
        .unwrap();
    // Warm-up: the thread's first ring, call sites, the facade's sites.
    for i in 0..100 {
        burst(i);
    }
    let grown_before = distlog::stats().rings_grown;
    let mut bursts = 100u64;
    let allocs = allocs_in(|| {
        // Until the rings grew a good many times while counted (a fixed
        // number of bursts would not say that growth happened here).
        while distlog::stats().rings_grown < grown_before + 20 && bursts < 1_000_000 {
            burst(bursts);
            bursts += 1;
        }
    });
    let grown = distlog::stats().rings_grown - grown_before;
    assert!(grown >= 20, "the rings grew while counted: {grown}");
    assert_eq!(allocs, 0, "allocations while rings grew {grown} times");

    common::end_marker();
    let batches = drain.join().unwrap();
    let received = common::app_records(&batches).count() as u64;
    let dropped = distlog::stats().dropped;
    assert_eq!(
        received + dropped,
        bursts * 128,
        "received + dropped == logged"
    );
}
