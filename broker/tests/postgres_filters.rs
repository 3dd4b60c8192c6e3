//! Every construct of the filter language answers the same from PostgreSQL
//! as from the store: `distlog query --database` translates the filter's
//! syntax tree to SQL (or leaves a part to the compiled filter), and a
//! wrong translation would lose rows silently. For each filter below, over
//! records that vary every field the language can test (with `%`, `_` and
//! `\` in the strings, sub-microsecond times, every value type), the
//! records and the `--count` (a `count(*)` in the database when the
//! translation is exact) equal the store's.

mod servers;
mod support;

use distlog_core::record::{Field, Record, Value};
use distlog_core::wire::{encode_batch_to_vec, Batch};
use std::time::Duration;
use support::{distlog_ok, free_port, processor_counts, wait_for, Broker, TempDir};

/// The records of sender `k` (0..3): every field varies with `i`.
fn records(k: u64, base: u64) -> Vec<Record> {
    const TARGETS: [&str; 5] = ["db::pool", "db::pool::conn", "db::poolx", "web", "a_b%c"];
    const FILES: [&str; 4] = ["src/a.rs", "src/a/b.rs", "src/ab.rs", "lib\\x.rs"];
    const TASKS: [&str; 6] = ["", "r1", "r1/1", "r1/10", "r1/1/2", "r2"];
    const WORDS: [&str; 4] = ["timeout", "100%", "under_score", "plain"];
    (0..60u64)
        .map(|i| {
            let n = k * 60 + i;
            let value = match n % 7 {
                0 => Value::U64(n),
                1 => Value::I64(-(n as i64)),
                2 => Value::F64(n as f64 / 100.0),
                3 => Value::Str(format!("a{n}")),
                4 => Value::Bool(n % 2 == 0),
                5 => Value::Null,
                _ => Value::U64(42),
            };
            let mut fields = vec![Field {
                key: "user_id".into(),
                value,
            }];
            if n % 3 == 0 {
                fields.push(Field {
                    key: "flag".into(),
                    value: Value::Bool(n % 2 == 1),
                });
            }
            let task = TASKS[(n % 6) as usize];
            Record {
                seq: i,
                // Sub-microsecond parts, so the coarse `time` bound matters.
                time_ns: base + n * 1_000 + n % 3,
                level: [5, 10, 20, 25, 30, 40, 50][(n % 7) as usize],
                kind: if n % 5 == 0 { b'P' } else { b'L' },
                line: (n % 50) as u32,
                task_n: if task.is_empty() {
                    0
                } else {
                    (n % 4 + 1) as u32
                },
                thread_id: n % 4,
                thread_name: ["main", "worker-1", ""][(n % 3) as usize].into(),
                target: TARGETS[(n % 5) as usize].into(),
                module: TARGETS[(n % 4) as usize].into(),
                file: FILES[(n % 4) as usize].into(),
                func: ["main", "handle", "h_ndle"][(n % 3) as usize].into(),
                message: format!("record {n} {}", WORDS[(n % 4) as usize]),
                fields,
                task: task.into(),
                error: ["", "boom", "Boom: 50%"][(n % 3) as usize].into(),
                ..Record::default()
            }
        })
        .collect()
}

#[test]
fn every_filter_construct_answers_from_postgres_as_from_the_store() {
    let pg = servers::Postgres::start("filters");
    let tmp = TempDir::new("pg-filters");
    let store = tmp.path().join("store");
    let url = pg.url();
    let cfg = tmp.path().join("distlogd.yaml");
    std::fs::write(
        &cfg,
        format!(
            "metrics: {{interval: 0s}}\n\
             processors:\n  \
               store: {{type: store}}\n  \
               db: {{type: postgres, url: {url:?}, batch: 100, retry: 100ms}}\n\
             default: [store, db]\n"
        ),
    )
    .unwrap();
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&ep, &store, &["--config", cfg.to_str().unwrap()]);
    let base = servers::now_ns() / 1_000_000_000 * 1_000_000_000;
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &ep);
    let senders = [("web-1", 11), ("web-2", 22), ("db_1%", 33)];
    let mut total = 0;
    for (k, (host, pid)) in senders.into_iter().enumerate() {
        let body = encode_batch_to_vec(&Batch {
            sender: servers::sender(host, pid, 100 + k as u64),
            first_seq: 0,
            dropped: 0,
            records: records(k as u64, base),
        });
        let topic = [b"TLR", b"SLR", b"PLR"][k];
        push.send_multipart([&topic[..], &body[..]], 0).unwrap();
        total += 60;
    }
    drop(push);
    let st = store.to_str().unwrap();
    wait_for("every record in both", Duration::from_secs(60), || {
        pg.try_count(
            "SELECT (SELECT count(*) FROM distlog_log) + (SELECT count(*) FROM distlog_perf)",
        ) == total
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        processor_counts(&stderr, "db"),
        (total as u64, 0),
        "{stderr}"
    );

    let t = |offset_us: u64| {
        let mut s = String::new();
        distlog_filter::render::rfc3339(base + offset_us * 1_000, &mut s);
        s
    };
    let exact_ns = base + 61 * 1_000 + 1; // record 61's time
    let filters: Vec<String> = [
        "true",
        "false",
        "not true",
        "level >= warn",
        "level == 25",
        "level != info",
        "level < 20",
        "level <= \"debug\"",
        "level > 30 and level <= 50",
        "level in [warn, error, 5]",
        "level not in [info]",
        "level in []",
        "pid == 11",
        "pid != 11",
        "pid < 20",
        "pid in [11, 33]",
        "pid > 99999999999999999999",
        "line >= 25",
        "line in [1, 2, 3]",
        "line != 7",
        "host == \"web-1\"",
        "host != \"web-1\"",
        "host in [\"web-1\", \"db_1%\"]",
        "host starts_with \"db_\"",
        "host ends_with \"1%\"",
        "host contains \"_1\"",
        "host < \"w\"",
        "host >= \"web-2\"",
        "process == \"web-1-app\"",
        "target under \"db::pool\"",
        "target starts_with \"db::pool\"",
        "target == \"a_b%c\"",
        "module under \"db\"",
        "file under \"src/a\"",
        "file ends_with \".rs\"",
        "file contains \"\\\\\"",
        "task under \"r1/1\"",
        "task == \"\"",
        "task not under \"r1\"",
        "func == \"h_ndle\"",
        "func not contains \"_\"",
        "error contains \"%\"",
        "error == \"\"",
        "message contains \"100%\"",
        "message starts_with \"record 1\"",
        "message not contains \"timeout\"",
        "thread == \"main\"",
        "thread == 2",
        "thread in [1, 3]",
        "key == \"1@r1\"",
        "key starts_with \"2@\"",
        "kind == perf",
        "kind != log",
        "kind in [log]",
        "system == production",
        "system in [test, staging]",
        "system != \"S\"",
        "field.user_id == 42",
        "field.user_id > 10",
        "field.user_id != null",
        "field.user_id == null",
        "field.flag == true",
        "field.user_id starts_with \"a1\"",
        "field.user_id < 0.5",
        "field.missing == null",
        "field.\"user_id\" in [42, \"a3\", true]",
        "level >= warn and not (host == \"web-1\")",
        "not (level >= warn or task under \"r1\")",
        "host == \"web-1\" || pid == 33 && level > 10",
        "!(kind == perf) and message contains \"record\"",
        "not (field.flag == true) and pid != 22",
        "time < 18446744073709551615",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        format!("time >= \"{}\" and time < \"{}\"", t(30), t(90)),
        format!("time == {exact_ns}"),
        format!("time != {exact_ns}"),
        format!("time <= {exact_ns} or time > {}", exact_ns + 50_000),
        format!("time in [{exact_ns}, {}]", base + 2_000 + 2),
        format!("time > \"{}\"", t(61)),
    ])
    .collect();
    let query = |args: &[&str]| {
        let mut a = vec!["query"];
        a.extend_from_slice(args);
        distlog_ok(&a)
    };
    // Which records came back: host/pid/seq, sorted (the database orders
    // by time, the store by arrival; JSONB reorders a record's fields).
    let sorted = |s: String| {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{}/{}/{}", v["hostname"], v["process"], v["seq"])
            })
            .collect();
        v.sort();
        v
    };
    let mut nonempty = 0;
    for f in &filters {
        let from_store = sorted(query(&[
            "--data-dir",
            st,
            "--format",
            "jsonl",
            "--filter",
            f,
        ]));
        let from_db = sorted(query(&[
            "--database",
            &url,
            "--format",
            "jsonl",
            "--filter",
            f,
        ]));
        assert_eq!(from_db, from_store, "records of filter {f}");
        let count = |src: &[&str]| {
            let mut a = src.to_vec();
            a.extend(["--count", "--filter", f]);
            query(&a).trim().parse::<usize>().unwrap()
        };
        assert_eq!(
            count(&["--database", &url]),
            from_store.len(),
            "count of {f}"
        );
        assert_eq!(count(&["--data-dir", st]), from_store.len(), "count of {f}");
        nonempty += usize::from(!from_store.is_empty() && from_store.len() < total as usize);
    }
    // The filters select something, and not everything, mostly.
    assert!(
        nonempty > filters.len() * 3 / 4,
        "{nonempty} of {}",
        filters.len()
    );
    // A time range from the command line, with a filter.
    let range = [
        "--since",
        &t(20),
        "--until",
        &t(150),
        "--filter",
        "level >= warn",
    ];
    let from_store = sorted(query(
        &[&["--data-dir", st, "--format", "jsonl"][..], &range].concat(),
    ));
    let from_db = sorted(query(
        &[&["--database", &url, "--format", "jsonl"][..], &range].concat(),
    ));
    assert_eq!(from_db, from_store);
    assert!(!from_store.is_empty());
}
