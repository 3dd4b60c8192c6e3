//! A `log` call made while the same thread is inside a `log` call (from a
//! `Display` of an argument) cannot use the thread's scratch buffer: the
//! inner record is dropped, and counted in `distlog::stats().dropped`
//! like every other drop (it used to vanish uncounted). The sender thread
//! folds drop counts into `stats()`, so the test waits for the count.

use std::fmt;

struct LogsWhileFormatted;

impl fmt::Display for LogsWhileFormatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        log::info!("from inside a Display");
        f.write_str("outer")
    }
}

#[test]
fn reentrant_facade_record_is_dropped_and_counted() {
    // A peer to hand the records to, so `flush` completes.
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .shutdown_timeout(std::time::Duration::from_millis(100))
        .install()
        .unwrap();
    assert_eq!(distlog::stats().dropped, 0);
    log::info!("{}", LogsWhileFormatted);
    wait_for_dropped(1, "the inner record, counted");
    log::info!("plain");
    assert!(distlog::flush(), "handed to the peer");
    wait_for_dropped(1, "the outer ones were queued, not dropped");
    assert_eq!(
        distlog::stats().drops.buffer_full,
        1,
        "{:?}",
        distlog::stats()
    );
}

/// Waits (at most 10 s) until the sender has counted exactly `n` drops.
fn wait_for_dropped(n: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let dropped = distlog::stats().dropped;
        assert!(dropped <= n, "{what}: {dropped} dropped, expected {n}");
        if dropped == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {dropped} dropped after 10 s, expected {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
