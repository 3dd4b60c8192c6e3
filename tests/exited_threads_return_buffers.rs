//! Threads that exit give their ring back: far more short-lived threads
//! than the memory bound allows rings for all log without loss, one after
//! another, and each record names the thread that logged it although the
//! rings pass from thread to thread. Also: the `log` facade honours
//! per-target level directives.
mod common;

use common::{app_records, Receiver};
use std::time::Duration;

const THREADS: u64 = 64;
const PER_THREAD: u64 = 500;

#[test]
fn rings_are_recycled_and_facade_directives_apply() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info,noisy=error,chatty::db=debug")
        .buffer_per_thread(16 * 1024)
        .max_memory(2 * 16 * 1024) // rings for two threads at a time
        .block_when_full(true)
        .install()
        .unwrap();
    for t in 0..THREADS {
        std::thread::Builder::new()
            .name(format!("worker-{t}"))
            .spawn(move || {
                for i in 0..PER_THREAD {
                    distlog::info!(t = t, i = i; "short-lived");
                }
            })
            .unwrap()
            .join()
            .unwrap();
        // The sender retires an exited thread's ring once it is drained.
        assert!(distlog::flush_timeout(Duration::from_secs(10)));
    }
    log::info!(target: "noisy::x", "filtered out");
    log::error!(target: "noisy::x", "kept: error");
    log::debug!(target: "chatty::db", "kept: debug");
    log::debug!(target: "chatty::web", "filtered out");
    assert!(distlog::flush());

    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(60), |_| false);
    let records: Vec<_> = app_records(&batches).collect();
    let natives: Vec<_> = records
        .iter()
        .filter(|r| r.format == "short-lived")
        .collect();
    assert_eq!(
        natives.len() as u64,
        THREADS * PER_THREAD,
        "no thread lost records"
    );
    for r in &natives {
        let t = common::field_u64(r, "t").unwrap();
        assert_eq!(
            r.thread_name,
            format!("worker-{t}"),
            "the thread that logged it"
        );
    }
    let ids: std::collections::HashSet<_> = natives.iter().map(|r| r.thread_id).collect();
    assert!(
        ids.len() > 2,
        "more threads than rings: {} thread ids",
        ids.len()
    );
    assert_eq!(distlog::stats().dropped, 0);
    let facade: Vec<_> = records
        .iter()
        .filter(|r| r.format.is_empty())
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(facade, ["kept: error", "kept: debug"]);
}
