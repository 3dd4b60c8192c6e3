//! A `log` call made while the same thread is inside a `log` call (from a
//! `Display` of an argument) cannot use the thread's scratch buffer: the
//! inner record is dropped, and counted in `distlog::stats().dropped`
//! like every other drop (it used to vanish uncounted).

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _guard = distlog::builder()
        .endpoint(format!("tcp://127.0.0.1:{port}"))
        .level("info")
        .shutdown_timeout(std::time::Duration::from_millis(100))
        .install()
        .unwrap();
    assert_eq!(distlog::stats().dropped, 0);
    log::info!("{}", LogsWhileFormatted);
    assert_eq!(distlog::stats().dropped, 1, "the inner record, counted");
    log::info!("plain");
    assert_eq!(distlog::stats().dropped, 1, "the outer ones were queued");
}
