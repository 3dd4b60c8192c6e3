//! The `log` facade allocates nothing in steady state on any of its cached
//! paths: a plain literal, formatted arguments, every key/value type (a
//! `Display` value formatted into the ring), a message longer than the
//! site's first size guess, and records in a task. (The first record of a
//! call site interns it: that allocates, once, during the warm-up.)
mod common;

use common::counting_alloc::{allocs_in, Counting};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const LONG: &str = "a message longer than the first guess of a site's entry size, \
    which is 128 bytes: the first call learns the size and later calls reserve it";

/// The records one call logs.
const PER_CALL: usize = 5;

fn log_all(i: u64) {
    log::info!("plain literal");
    log::info!("request {} done {} {}", i, true, "10.0.0.7");
    log::info!(user_id = i, delta = -7i64, ratio = 1.5f64, ok = true, peer = "10.0.0.7",
        addr:% = std::net::Ipv4Addr::LOCALHOST; "request {} done", i);
    log::warn!(target: "db::pool", i = i; "{} {}", LONG, i);
    log::error!(target: "db::pool", "literal target");
}

#[test]
fn steady_state_facade_calls_do_not_allocate() {
    let receiver = common::Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(60)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    for i in 0..5_000 {
        log_all(i); // warm-up: ring, interned call sites
    }
    let allocs = allocs_in(|| {
        for i in 0..10_000 {
            log_all(i);
        }
    });
    assert_eq!(allocs, 0, "allocations on the facade's path");
    let task = distlog::task("in a task", &[]);
    for i in 0..1_000 {
        log_all(i); // warm-up in the task
    }
    let allocs = allocs_in(|| {
        for i in 0..1_000 {
            log_all(i);
        }
    });
    assert_eq!(allocs, 0, "allocations on the facade's path in a task");
    drop(task);
    common::end_marker();
    let batches = drain.join().unwrap();
    let n = common::app_records(&batches)
        .filter(|r| !r.fields.iter().any(|f| f.key == "task_status"))
        .count();
    assert_eq!(n, 17_000 * PER_CALL, "every record arrived");
}
