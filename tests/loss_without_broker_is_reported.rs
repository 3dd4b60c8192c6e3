//! A short-lived program that logs while no broker is listening does not
//! lose its records silently: nothing is reported as sent, the stats count
//! every record as dropped for want of a broker (`no_broker`), and one
//! line on stderr says how many were lost and why.
//!
//! (A CURVE broker the client cannot authenticate with is the same with
//! the reason `handshake_failed`: `broker/tests/curve.rs`; so is a client
//! with acknowledged delivery at a plain PULL endpoint, below.)
mod common;

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
        .acknowledged(std::env::var_os("DISTLOG_TEST_ACK").is_some())
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

/// Runs the child against `endpoint`: its stdout's stats line, its stderr,
/// and how long it took.
fn run_child(endpoint: &str, ack: bool) -> (String, String, Duration) {
    let start = Instant::now();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("DISTLOG_TEST_CHILD", endpoint);
    if ack {
        cmd.env("DISTLOG_TEST_ACK", "1");
    }
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    // The harness prints the test's name on the same line.
    let stats = stdout
        .lines()
        .find_map(|l| l.find("STATS ").map(|i| l[i..].to_owned()))
        .unwrap_or_else(|| panic!("no stats line: {stdout}"));
    (stats, stderr.into_owned(), took)
}

#[test]
fn records_logged_with_no_broker_are_counted_lost_and_reported() {
    // A port nothing listens on.
    let port = common::ports::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let (stats, stderr, took) = run_child(&endpoint, false);
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

#[test]
fn an_acknowledged_client_at_a_plain_endpoint_says_so() {
    let receiver = common::Receiver::tcp();
    let (stats, stderr, _) = run_child(&receiver.endpoint, true);
    assert_eq!(
        stats,
        format!(
            "STATS sent=0 dropped={N} no_broker=0 handshake_failed={N} buffer_full=0 \
             connection=HandshakeFailed(ClosedInHandshake)"
        )
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("(closed_in_handshake)"))
        .collect();
    assert_eq!(errors.len(), 1, "reported once: {stderr}");
    assert!(errors[0].contains("ack_listen"), "{}", errors[0]);
    assert!(
        stderr.contains(&format!("{N} records lost ({N} handshake_failed)")),
        "{stderr}"
    );
    assert!(receiver.recv(Duration::from_millis(100)).is_none());
}
