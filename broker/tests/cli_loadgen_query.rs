//! `distlog loadgen` through a real broker into the store, then `query`
//! and `stats` on what was stored: counts, filters, limits, time bounds,
//! segment skipping, and errors.

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use support::*;

#[test]
fn loadgen_to_broker_then_query() {
    let tmp = TempDir::new("loadgen");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&endpoint, &tmp.path().join("store"), &[]);
    let store = tmp.path().join("store");
    // Big enough buffers that a modest run drops nothing.
    let out = distlog_ok([
        "loadgen",
        "--endpoint",
        &broker.endpoint,
        "--records",
        "20000",
        "--threads",
        "2",
        "--fields",
        "3",
        "--buffer",
        "8388608",
    ]);
    let last = out.lines().last().expect("a summary line");
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in [
        "sent",
        "delivered",
        "dropped",
        "secs",
        "records_per_sec",
        "attempted_per_sec",
        "p50_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
    ] {
        assert!(summary.get(key).is_some(), "{key} in {summary}");
    }
    let sent = summary["sent"].as_u64().unwrap();
    let dropped = summary["dropped"].as_u64().unwrap();
    assert_eq!(sent, 20000);
    assert_eq!(dropped, 0, "{summary}");
    assert_eq!(summary["delivered"].as_u64().unwrap(), sent, "{summary}");
    // Nothing dropped: both rates count every record.
    let secs = summary["secs"].as_f64().unwrap();
    let rate = summary["records_per_sec"].as_f64().unwrap();
    assert_eq!(rate, summary["attempted_per_sec"].as_f64().unwrap());
    assert!(
        (rate * secs - sent as f64).abs() < 1e-3 * sent as f64,
        "{summary}"
    );
    assert!(summary["p50_ns"].as_u64().unwrap() <= summary["p99_ns"].as_u64().unwrap());
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");

    assert_eq!(count(&store, &[]), sent - dropped);
    // Each thread logs k0 = 0..10000: 2 x 100 records below 100.
    assert_eq!(count(&store, &["--filter", "field.k0 < 100"]), 200);
    assert_eq!(
        count(
            &store,
            &[
                "--filter",
                "field.k0 < 100 and message ends_with \"thread 1\""
            ]
        ),
        100
    );
    assert_eq!(count(&store, &["--filter", "level >= warn"]), 0);
    // Time bounds: everything was logged within the last hour, nothing
    // before it or in the future.
    assert_eq!(count(&store, &["--since", "1h"]), sent);
    assert_eq!(count(&store, &["--until", "1h"]), 0);
    assert_eq!(count(&store, &["--since", "2999-01-01T00:00:00Z"]), 0);
    assert_eq!(
        count(&store, &["--since", "2000-01-01", "--until", "now"]),
        sent
    );
    assert_eq!(count(&store, &["--limit", "7"]), 7);
    assert_eq!(count(&store, &["--threads", "1"]), sent);

    // --limit N prints the first N records in stored order.
    let store_s = store.to_str().unwrap();
    let all = distlog_ok([
        "query",
        "--data-dir",
        store_s,
        "--format",
        "jsonl",
        "--threads",
        "2",
    ]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len() as u64, sent);
    let first5 = distlog_ok([
        "query",
        "--data-dir",
        store_s,
        "--format",
        "jsonl",
        "--limit",
        "5",
    ]);
    assert_eq!(first5.lines().collect::<Vec<_>>(), lines[..5]);
    let one: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(one["name"], "loadgen");
    assert_eq!(one["levelname"], "INFO");
    assert_eq!(one["processName"], "distlog-loadgen");
    assert!(one["created"].as_f64().unwrap() > 1.6e9);
    assert!(one["message"]
        .as_str()
        .unwrap()
        .starts_with("loadgen record "));
    assert_eq!(one["fields"]["k1"], "value");
    assert_eq!(one["context"], serde_json::Value::Null);
    // Sequence numbers of each sender come out in stored (= sent) order.
    let mut last_seq = std::collections::HashMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let pid = v["process"].as_u64().unwrap();
        let seq = v["seq"].as_u64().unwrap();
        if let Some(prev) = last_seq.insert(pid, seq) {
            assert!(seq > prev, "stored order");
        }
    }
    // Text: one line per record.
    let text = distlog_ok(["query", "--data-dir", store_s, "--limit", "3"]);
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains(" INFO "), "{text}");
    assert!(text.contains("loadgen: loadgen record "), "{text}");

    // stats agrees.
    let stats = distlog_ok(["stats", "--data-dir", store_s, "--json"]);
    let stats: serde_json::Value = serde_json::from_str(stats.trim()).unwrap();
    assert_eq!(stats["records"].as_u64().unwrap(), sent);
    assert_eq!(stats["levels"]["INFO"].as_u64().unwrap(), sent);
    let text = distlog_ok(["stats", "--data-dir", store_s]);
    assert!(text.contains(&format!("records   {sent}")), "{text}");
}

#[test]
fn bad_filter_missing_dir_and_bad_time_are_one_line_errors() {
    let tmp = TempDir::new("errors");
    let dir = tmp.path().to_str().unwrap();
    let out = distlog(["query", "--data-dir", dir, "--filter", "level >= "]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line 1, column 10"), "{err}");
    assert!(out.stdout.is_empty());

    let out = distlog(["query", "--data-dir", "/nonexistent/distlog", "--count"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/distlog"), "{err}");

    let out = distlog(["query", "--data-dir", dir, "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad time"));

    let out = distlog([
        "tree",
        "0b4e28ba-0000-4000-8000-000000000000",
        "--data-dir",
        dir,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no records of task"));

    // loadgen refuses a pace it cannot keep, before starting anything.
    for rate in ["0", "-5", "NaN"] {
        let arg = format!("--rate={rate}");
        let out = distlog(["loadgen", "--records", "10", arg.as_str()]);
        assert!(!out.status.success(), "--rate {rate}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--rate must be a positive number"), "{err}");
    }
}

/// With no broker every record is dropped: `records_per_sec` counts only
/// what was delivered (none), `attempted_per_sec` every call.
#[test]
fn loadgen_rate_counts_delivered_records_only() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let out = distlog_ok([
        "loadgen",
        "--endpoint",
        &endpoint,
        "--records",
        "5000",
        "--flush-timeout",
        "0.2",
    ]);
    let last = out.lines().last().expect("a summary line");
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["sent"].as_u64().unwrap(), 5000, "{summary}");
    // The client's own drop warnings are dropped (and counted) too.
    assert!(summary["dropped"].as_u64().unwrap() >= 5000, "{summary}");
    assert_eq!(summary["delivered"].as_u64().unwrap(), 0, "{summary}");
    assert_eq!(
        summary["records_per_sec"].as_f64().unwrap(),
        0.0,
        "{summary}"
    );
    let secs = summary["secs"].as_f64().unwrap();
    let attempted = summary["attempted_per_sec"].as_f64().unwrap();
    assert!((attempted * secs - 5000.0).abs() < 5.0, "{summary}");
}

fn batch(first_seq: u64, n: u64, time_ns: u64) -> Vec<u8> {
    let b = Batch {
        sender: Sender {
            host: "h".into(),
            pid: 1,
            program: "p".into(),
            start_ns: 1,
            instance: 5,
        },
        first_seq,
        dropped: 0,
        records: (0..n)
            .map(|i| Record {
                seq: first_seq + i,
                time_ns: time_ns + i,
                level: 20,
                kind: b'L',
                message: format!("r{}", first_seq + i),
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}

/// A segment whose arrival span lies before --since is never opened: here
/// it is a directory named like a segment, which fails if read.
#[test]
fn time_bounds_skip_old_segments_without_reading_them() {
    let tmp = TempDir::new("skip");
    let store = tmp.path();
    let hour = 3_600_000_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut w = distlogd::store::Writer::open(store, 1 << 20).unwrap();
    w.append(*b"TLR", &batch(0, 10, now - 8 * hour - hour / 2))
        .unwrap();
    w.append(*b"TLR", &batch(10, 10, now)).unwrap();
    w.sync().unwrap();
    drop(w);
    // The Writer names its segment by the time it opened it (now): rename it
    // to sit right after the directory, so the directory's span ends 9 h ago.
    let segs = distlogd::store::segments(store).unwrap();
    let real = segs.iter().find(|p| p.is_file()).unwrap();
    std::fs::rename(
        real,
        store.join(format!("seg-{:020}-000001.dls", now - 9 * hour)),
    )
    .unwrap();

    // An unreadable "segment" from long ago, followed by an old real one.
    std::fs::create_dir(store.join(format!("seg-{:020}-000000.dls", now - 10 * hour))).unwrap();
    // Reading everything trips over the directory...
    let out = distlog(["query", "--data-dir", store.to_str().unwrap(), "--count"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    // ...a time-bounded query never opens it, and checks record times.
    assert_eq!(count(store, &["--since", "8h"]), 10);
    assert_eq!(count(store, &["--since", "8h45m", "--until", "8h"]), 10);
    assert_eq!(count(store, &["--since", "8h20m", "--until", "1h"]), 0);
    // A range reaching into the directory's span does open it.
    let out = distlog([
        "query",
        "--data-dir",
        store.to_str().unwrap(),
        "--since",
        "9h30m",
        "--count",
    ]);
    assert!(!out.status.success());
}
