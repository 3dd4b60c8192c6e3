//! SIGTERM while two client processes are sending as fast as they can:
//! everything the broker received is stored (count in = count stored), in
//! order per sender, and the broker exits 0.

mod support;

use distlogd::store::Reader;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, Broker, TempDir};

#[test]
fn sigterm_under_load_loses_nothing_received() {
    let tmp = TempDir::new("sigterm-load");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&endpoint, &tmp.path().join("store"), &[]);
    let clients: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_distlog"))
                .args(["loadgen", "--endpoint", &broker.endpoint])
                .args(["--records", "3000000", "--threads", "1", "--fields", "3"])
                .args(["--flush-timeout", "5"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Stop the broker once it is busy.
    let store = tmp.path().join("store");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bytes: u64 = distlogd::store::segments(&store)
            .map(|v| {
                v.iter()
                    .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                    .sum()
            })
            .unwrap_or(0);
        if bytes > 4 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the clients never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    let summary = stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .expect(&stderr);
    let received: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("records="))
        .and_then(|n| n.parse().ok())
        .expect(summary);

    let mut stored = 0u64;
    let mut next: HashMap<u64, u64> = HashMap::new();
    for (_, r) in Reader::open_dir(&store).unwrap() {
        assert_eq!(r.torn(), 0);
        for b in r.batches() {
            let b = b.unwrap();
            let inst = b.batch.sender().instance.to_native();
            let first = b.batch.first_seq();
            let n = next.entry(inst).or_insert(first);
            assert!(first >= *n, "sender {inst}: batches out of order");
            *n = first + b.batch.len() as u64;
            stored += b.batch.len() as u64;
        }
    }
    assert!(received > 0);
    assert_eq!(stored, received, "{summary}");
    assert_eq!(next.len(), 2, "both clients' records arrived");
}
