//! `distlog tree`: one request through three processes (frontend → api →
//! db, each continuing the tree from a task id handed over on its command
//! line) plus a Python service's records, stored by a real broker and
//! rendered with correct nesting, statuses and order; a failed subtask is
//! marked. And a tree whose records arrived out of order with a missing
//! middle still renders, with the gaps shown.

mod support;

use support::*;

/// The entry point of the request's child processes (`support::request_flow`).
#[test]
fn child_role() {
    request_flow::child_role();
}

/// Splits a tree line into its drawing prefix and the rest.
fn split(line: &str) -> (String, &str) {
    let rest = line.trim_start_matches(['│', '├', '└', '─', ' ']);
    (line[..line.len() - rest.len()].to_owned(), rest)
}

#[test]
fn three_processes_and_python_in_one_tree() {
    let tmp = TempDir::new("tree");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&endpoint, &tmp.path().join("store"), &[]);
    let root = request_flow::run(&broker.endpoint);
    let store = tmp.path().join("store");
    wait_for(
        "the request's records stored",
        std::time::Duration::from_secs(30),
        || stored(&store, &[]) >= request_flow::RECORDS,
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
    let store = store.to_str().unwrap();

    let text = distlog_ok(["tree", &root, "--data-dir", store]);
    let lines: Vec<&str> = text.lines().collect();
    let expected: &[(&str, &str)] = &[
        ("", "GET /orders/17 user=alice  [FAILED "),
        ("├── ", "INFO     routing route=/orders/{id}"),
        ("├── ", "/1  load order 17  [FAILED "),
        ("│   ├── ", "/1/1  check permissions  [succeeded "),
        ("│   │   ├── ", "INFO     alice may read orders"),
        ("│   │   └── ", "INFO     allowed"),
        ("│   ├── ", "/1/2  SELECT order 17 table=orders  [FAILED "),
        (
            "│   │   ├── ",
            "WARNING  slow plan: sequential scan on orders rows=0",
        ),
        (
            "│   │   └── ",
            "ERROR    FAILED SELECT order 17 error=\"timeout after 5s\"",
        ),
        ("│   ├── ", "/1/3  fallback to cache  [succeeded "),
        ("│   │   ├── ", "INFO     cache hit key=order:17"),
        ("│   │   └── ", "INFO     served from cache"),
        (
            "│   └── ",
            "ERROR    FAILED load order 17 error=\"db failed\"",
        ),
        ("├── ", "/2  price lookup sku=A-17  [succeeded "),
        ("│   ├── ", "1 "),
        ("│   └── ", "2 "),
        (
            "└── ",
            "ERROR    FAILED GET /orders/17 error=\"502 from api\"",
        ),
        ("", "6 tasks: 3 succeeded, 3 failed, 0 running"),
        ("", "FAILED: "),
    ];
    assert_eq!(lines.len(), expected.len(), "\n{text}");
    for (line, (prefix, fragment)) in lines.iter().zip(expected) {
        let (p, rest) = split(line);
        assert_eq!(&p, prefix, "prefix of {line:?}\n{text}");
        assert!(rest.contains(fragment), "{fragment:?} in {line:?}\n{text}");
    }
    assert!(lines[0].starts_with(&root), "{text}");
    assert!(lines[2].contains(" api"), "{text}");
    assert!(lines[6].contains(" db"), "{text}");
    assert!(lines[13].contains("py-1/999 MainProcess"), "{text}");
    assert!(lines[14].contains("cache hit"), "{text}");
    assert!(lines[15].contains("price lookup"), "{text}");
    assert_eq!(lines[18], format!("FAILED: {root}, /1, /1/2"));

    // JSON lines: one object per task, parents first, children in order.
    let jsonl = distlog_ok(["tree", &root, "--data-dir", store, "--format", "jsonl"]);
    let tasks: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, u64)> = tasks
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
                t["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        (root.as_str(), "failed", 0),
        ("/1", "failed", 1),
        ("/1/1", "succeeded", 2),
        ("/1/2", "failed", 2),
        ("/1/3", "succeeded", 2),
        ("/2", "succeeded", 1),
    ];
    assert_eq!(
        got,
        want.map(|(l, s, d)| (l.to_owned(), s.to_owned(), d)),
        "{jsonl}"
    );
    assert_eq!(tasks[3]["error"], "timeout after 5s");
    assert_eq!(tasks[3]["processName"], "db");
    assert!(tasks[3]["duration_ns"].as_u64().is_some());
    assert_eq!(tasks[5]["hostname"], "py-1");
    let recs = tasks[5]["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["context"]["key"], format!("0@{root}/2"));
    assert_eq!(recs[0]["context"]["sku"], "A-17");

    // A sub-path, given as a key, is a tree of its own.
    let sub = distlog_ok(["tree", &format!("2@{root}/1"), "--data-dir", store]);
    let first = sub.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{root}/1  load order 17  [FAILED")),
        "{sub}"
    );
    assert!(
        sub.contains("4 tasks: 2 succeeded, 2 failed, 0 running"),
        "{sub}"
    );
    assert!(!sub.contains("routing"), "{sub}");
}

#[test]
fn out_of_order_records_and_missing_middles_render_with_gaps() {
    use distlog_core::record::{Field, Record, Value};
    use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
    let tmp = TempDir::new("tree-gaps");
    let root = "0b4e28ba-2fa1-41d2-883f-0016d3cca427";
    let rec = |task: &str, n: u32, t: u64, msg: &str, status: &str| Record {
        time_ns: 1_700_000_000_000_000_000 + t,
        level: if status == "failed" { 40 } else { 20 },
        kind: b'L',
        target: "task".into(),
        message: msg.into(),
        task: task.into(),
        task_n: n,
        fields: vec![Field {
            key: "task_status".into(),
            value: Value::Str(status.into()),
        }],
        ..Record::default()
    };
    let sender = Sender {
        host: "h".into(),
        pid: 7,
        program: "p".into(),
        start_ns: 1,
        instance: 3,
    };
    // Arrival order: the grandchild first, the root's end before its start;
    // `<root>/1` never arrives, nor does record 2 of the root.
    let batches = [
        vec![rec(&format!("{root}/1/1"), 1, 30, "grandchild", "started")],
        vec![rec(root, 4, 90, "done", "succeeded")],
        vec![rec(root, 1, 10, "request", "started")],
        vec![rec(root, 3, 20, "middle", "")],
    ];
    let mut w = distlogd::store::Writer::open(tmp.path(), 1 << 20).unwrap();
    let mut seq = 0;
    for mut records in batches {
        for r in &mut records {
            r.seq = seq;
            seq += 1;
        }
        let b = Batch {
            sender: sender.clone(),
            first_seq: records[0].seq,
            dropped: 0,
            records,
        };
        w.append(*b"TLR", &encode_batch_to_vec(&b)).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    let text = distlog_ok(["tree", root, "--data-dir", tmp.path().to_str().unwrap()]);
    let shape: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (p, rest) = split(l);
            (p, rest.split("  [").next().unwrap().to_owned())
        })
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[0].starts_with(&format!("{root}  request  [succeeded")),
        "{text}"
    );
    assert_eq!(
        shape[1],
        ("├── ".into(), "┄ record 2 missing".into()),
        "{text}"
    );
    assert!(shape[2].1.ends_with("INFO     middle"), "{text}");
    assert_eq!(
        shape[3],
        ("├── ".into(), "/1  (no record of this task arrived)".into()),
        "{text}"
    );
    assert_eq!(
        shape[4],
        ("│   └── ".into(), "/1/1  grandchild".into()),
        "{text}"
    );
    assert!(lines[4].contains("[running]"), "{text}");
    assert!(shape[5].1.contains("INFO     done"), "{text}");
    assert!(
        lines[6]
            .contains("3 tasks: 1 succeeded, 0 failed, 1 running, 1 missing; 1 records missing"),
        "{text}"
    );
}
