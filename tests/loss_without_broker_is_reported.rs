//! A short-lived program that logs while no broker is listening does not
//! lose its records silently: nothing is reported as sent, the stats count
//! every record as dropped for want of a broker (`no_broker`), and one
//! line on stderr says how many were lost and why.
//!
//! (A CURVE broker the client cannot authenticate with is the same with
//! the reason `handshake_failed`: `broker/tests/curve.rs`.)

use std::process::Command;
use std::time::{Duration, Instant};

const N: u64 = 1_000;

/// The child: runs only when the parent test sets DISTLOG_TEST_CHILD.
#[test]
fn child() {
    let Ok(endpoint) = std::env::var("DISTLOG_TEST_CHILD") else {
        return;
    };
    let guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .shutdown_timeout(Duration::from_millis(500))
        .install()
        .unwrap();
    for i in 0..N {
        distlog::info!(i = i; "nobody listens {}", i);
    }
    drop(guard);
    let s = distlog::stats();
    println!(
        "STATS sent={} dropped={} no_broker={} handshake_failed={} buffer_full={} connection={:?}",
        s.sent,
        s.dropped,
        s.drops.no_broker,
        s.drops.handshake_failed,
        s.drops.buffer_full,
        s.connection
    );
}

#[test]
fn records_logged_with_no_broker_are_counted_lost_and_reported() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let start = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("DISTLOG_TEST_CHILD", &endpoint)
        .output()
        .unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    // The harness prints the test's name on the same line.
    let stats = stdout
        .lines()
        .find_map(|l| l.find("STATS ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no stats line: {stdout}"));
    assert_eq!(
        stats,
        format!(
            "STATS sent=0 dropped={N} no_broker={N} handshake_failed=0 buffer_full=0 \
             connection=Connecting"
        )
    );
    let lost: Vec<&str> = stderr.lines().filter(|l| l.contains("lost")).collect();
    assert_eq!(lost.len(), 1, "one line about the loss: {stderr}");
    assert!(
        lost[0].contains(&format!("{N} records lost ({N} no_broker)"))
            && lost[0].contains(&endpoint),
        "{}",
        lost[0]
    );
    // One shutdown timeout (0.5 s) for the whole exit, not one per stage.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
