//! A lone record leaves on its own: the sender keeps a small batch open
//! through one idle sleep (so that, under load, batches fill up), and must
//! still seal and send it afterwards without a flush or a shutdown.
mod common;

use std::time::Duration;

#[test]
fn a_lone_record_is_sent_without_a_flush() {
    let receiver = common::Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .system('T')
        .level("info")
        .log_facade(false)
        .install()
        .unwrap();
    distlog::info!(n = 7u64; "alone");
    // No flush: the batch must leave once the sender's idle sleeps pass
    // (1 ms each by default); the bound only ends a broken run.
    let got = receiver
        .recv(Duration::from_secs(60))
        .expect("the record was sent without a flush");
    assert_eq!(got.records.len(), 1);
    assert_eq!(common::field_u64(&got.records[0], "n"), Some(7));
}
