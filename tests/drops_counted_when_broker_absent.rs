//! With no broker, logging never blocks, memory stays bounded, and once the
//! broker appears the reported drop count equals exactly what never arrived.
mod common;

use common::{app_records, Receiver};
use std::sync::mpsc;
use std::time::Duration;

const N: u64 = 200_000;

#[test]
fn drops_are_counted_exactly_and_logging_never_blocks() {
    let port = common::ports::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let _guard = distlog::builder()
        .endpoint(endpoint.clone())
        .level("info")
        .buffer_per_thread(16 * 1024)
        .max_pending(64 * 1024)
        .send_hwm(4)
        .batch_records(64)
        .shutdown_timeout(Duration::from_secs(5))
        .install()
        .unwrap();

    // The logging thread must finish on its own: if a call blocked, the
    // watchdog below would fire.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..N {
            distlog::info!(i = i; "no broker yet {}", i);
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("logging blocked while the broker was down");
    // Nothing can be delivered: flush must time out, not hang.
    assert!(!distlog::flush_timeout(Duration::from_millis(300)));

    let receiver = Receiver::bind(&endpoint);
    assert!(
        distlog::flush_timeout(Duration::from_secs(20)),
        "flush after broker came up"
    );
    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(60), |_| false);

    let received = app_records(&batches).count() as u64;
    let stats = distlog::stats();
    assert!(
        stats.dropped > 0,
        "the bounded buffers must have overflowed"
    );
    assert!(received > 0);
    assert_eq!(received + stats.dropped, N, "received + dropped == logged");
    // The drop count reached the broker: in the headers and as a warning.
    let last = batches.last().unwrap();
    assert_eq!(last.dropped, stats.dropped);
    let warned: u64 = batches
        .iter()
        .flat_map(|b| &b.records)
        .filter(|r| r.target == "distlog")
        .filter_map(|r| common::field_u64(r, "dropped"))
        .sum();
    assert_eq!(
        warned, stats.dropped,
        "warning records account for every drop"
    );
    // No batch was lost on the way: sequence numbers are contiguous.
    let mut seq = batches[0].first_seq;
    assert_eq!(seq, 0);
    for b in &batches {
        assert_eq!(b.first_seq, seq);
        seq += b.records.len() as u64;
    }
}
