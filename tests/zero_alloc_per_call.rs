//! A log call allocates nothing in steady state, on both paths: the native
//! macros and the `log` facade (with key/values and formatted arguments).
mod common;

use common::counting_alloc::{allocs_in, Counting};

use std::time::Duration;

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
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(60)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    for i in 0..10_000 {
        log_both(i); // warm-up: ring, scratch buffer, call-site registration
    }
    let allocs = allocs_in(|| {
        for i in 0..20_000 {
            log_both(i);
        }
    });
    assert_eq!(allocs, 0, "allocations on the hot path");
    common::end_marker();
    let batches = drain.join().unwrap();
    let n: usize = common::app_records(&batches).count();
    assert_eq!(n, 60_000, "every record arrived");
}
