//! The metrics endpoint of the real `distlogd` under hostile clients: an
//! endless header line costs a fixed buffer (refused 431, counted), and
//! hundreds of idle or never-reading connections cost no thread each and
//! are timed out (counted), after which the endpoint answers again.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{free_port, wait_for, Broker, TempDir};

const WAIT: Duration = Duration::from_secs(30);

/// A line of the broker's /proc status (`VmRSS:` in KiB, `Threads:`).
fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// `GET /metrics`, or `None` if the connection was refused or cut.
fn try_metrics(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.contains("200 OK").then_some(out)
}

fn counted(addr: &str, reason: &str) -> u64 {
    let want = format!("distlogd_rejected_total{{reason=\"{reason}\"}} ");
    try_metrics(addr)
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(want.as_str())?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn start(name: &str) -> (TempDir, Broker, String) {
    let tmp = TempDir::new(name);
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let addr = format!("127.0.0.1:{}", free_port());
    let broker = Broker::start(&endpoint, &tmp.path().join("store"), &["--metrics", &addr]);
    wait_for("metrics up", WAIT, || try_metrics(&addr).is_some());
    (tmp, broker, addr)
}

/// Before: tiny_http buffered the header line whole, so the broker's heap
/// grew with every byte sent. Now the connection is closed after 8 KiB of
/// head: the client cannot send more than the socket buffers hold, and the
/// broker's RSS grows by less than 8 MiB while 256 MiB are offered.
#[test]
fn endless_header_line_is_cut_at_the_head_limit() {
    let (_tmp, broker, addr) = start("metrics-header");
    let rss_before = proc_status(broker.id(), "VmRSS:");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
        .unwrap();
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0usize;
    while sent < 256 << 20 && s.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    assert!(
        sent < 16 << 20,
        "the broker kept reading: {sent} bytes taken"
    );
    wait_for("the refusal counted", WAIT, || {
        counted(&addr, "metrics_http_head_too_large") == 1
    });
    let rss_after = proc_status(broker.id(), "VmRSS:");
    eprintln!("endless header: {sent} bytes taken; RSS {rss_before} KiB -> {rss_after} KiB");
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
}

/// 200 idle connections and 200 that pipeline requests and never read:
/// the broker starts no thread for them, times the idle ones out (and
/// refuses past its queue), and answers a normal scrape again.
#[test]
fn idle_and_never_reading_clients_cost_no_thread_and_time_out() {
    let (_tmp, broker, addr) = start("metrics-idle");
    let threads_before = proc_status(broker.id(), "Threads:");
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(TcpStream::connect(&addr).unwrap());
    }
    let pipelined = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(&pipelined);
        held.push(s);
    }
    assert!(
        proc_status(broker.id(), "Threads:") <= threads_before,
        "a thread per connection"
    );
    wait_for(
        "idle connections timed out and the endpoint answering",
        WAIT,
        || counted(&addr, "metrics_http_timeout") >= 1,
    );
    assert!(counted(&addr, "metrics_http_busy") >= 1);
    assert!(proc_status(broker.id(), "Threads:") <= threads_before);
    drop(held);
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
}
