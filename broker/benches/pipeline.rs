//! The broker's pipeline in process, on batches of 512 records like the
//! client sends (3 fields each, mixed levels and targets):
//!
//! - `decode_route/*`: one worker's job per message: validate the batch
//!   (bytecheck), then route its records, with the embedded default (no
//!   filter runs) and with three rules of one to three clauses each (before
//!   the wire format was unified these were `embedded_v2` and
//!   `three_rules_v2`); and with one rule against 10, 100 and 1,000
//!   (`one_rule`, `rules_10`, `rules_100`, `rules_1000`: the rule mix of
//!   `filter_vm`'s `filter_rules` group, as a config; issue 17's target is
//!   100 rules at <= 2x one rule's time);
//! - `broker/*`: a whole running broker (ingest thread, 2 workers,
//!   dispatcher) fed over ZeroMQ `inproc` by this thread, routing every
//!   record to a `publish` processor nobody subscribes to (a sink that
//!   discards): records/s through the broker's own machinery;
//! - `processors/*`: the same broker with one processor taking every record
//!   (`overflow: block`, so none is dropped), to compare the processors
//!   that turn records into JSON in one run: `jsonl` (a file, rotated at
//!   64 MiB), `publish` with `format: json` (one message per record, no
//!   subscriber: ZeroMQ discards, the JSON is still made) beside the binary
//!   `publish` (batches as they arrived), and `exec` writing JSON lines to
//!   `cat > /dev/null`.
//!
//! `cargo bench -p distlogd --bench pipeline -- --warm-up-time 1 --measurement-time 3`;
//! quick check: `cargo test -p distlogd --benches`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use distlogd::config::Config;
use distlogd::ingest::{decode, Decoded};
use distlogd::rules::RuleSet;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/many_rules.rs"]
mod many_rules;
use many_rules::many_rules;
#[path = "common/route_batch.rs"]
mod route_batch;
use route_batch::{batch, PER_BATCH};

const RULES: &str = r#"
processors:
  store: { type: store }
  errors: { type: console }
  db: { type: console }
rules:
  - filter: level >= error
    processors: [errors, store]
  - filter: target starts_with "db::" and level >= warn
    processors: [db]
  - filter: level >= info and target == "http" and field.user_id > 100
    processors: [store]
"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_route");
    g.throughput(Throughput::Elements(PER_BATCH));
    let sets = [1, 10, 100, 1000].map(many_rules);
    for (name, src) in [
        ("embedded", ""),
        ("three_rules", RULES),
        ("one_rule", &sets[0][..]),
        ("rules_10", &sets[1][..]),
        ("rules_100", &sets[2][..]),
        ("rules_1000", &sets[3][..]),
    ] {
        let frames = [b"PLR".to_vec(), batch(0)];
        let rules = Arc::new(RuleSet::new(&Config::parse(src).unwrap(), 1).unwrap());
        // As the ingest thread hands them over: ZeroMQ messages (made here
        // by copying, as ZeroMQ's receive does).
        let msgs = || frames.iter().map(|f| zmq::Message::from(&f[..])).collect();
        match decode(msgs(), &rules) {
            Decoded::Batch { routed, .. } => assert!(!routed.routes.is_empty()),
            Decoded::Rejected(r) => panic!("bench batch rejected: {r}"),
        }
        g.bench_function(name, |b| {
            b.iter(|| black_box(decode(black_box(msgs()), &rules)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Elements(PER_BATCH * 64));
    through(
        &mut g,
        "tcp_2_workers_to_sink",
        &format!("type: publish, endpoint: \"tcp://127.0.0.1:{}\"", port()),
    );
    g.finish();

    let mut g = c.benchmark_group("processors");
    g.throughput(Throughput::Elements(PER_BATCH * 64));
    let dir = std::env::temp_dir().join(format!("distlogd-bench-{}", std::process::id()));
    let sinks = [
        (
            "jsonl_file",
            format!(
                "type: jsonl, path: \"{}\", rotate_size: 64MiB, keep: 1",
                dir.join("bench.jsonl").display()
            ),
        ),
        (
            "publish_json",
            format!(
                "type: publish, format: json, endpoint: \"tcp://127.0.0.1:{}\"",
                port()
            ),
        ),
        (
            "publish_binary",
            format!("type: publish, endpoint: \"tcp://127.0.0.1:{}\"", port()),
        ),
        (
            "exec_cat_devnull",
            "type: exec, command: [/bin/sh, -c, \"cat > /dev/null\"]".to_owned(),
        ),
    ];
    for (name, sink) in &sinks {
        through(&mut g, name, sink);
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Records/s through a running broker (2 workers) fed over tcp to one
/// processor `sink` (its settings, as YAML flow-mapping entries) that
/// takes every record.
fn through(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    sink: &str,
) {
    let endpoint = format!("tcp://127.0.0.1:{}", port());
    let config = format!(
        "listen: [{endpoint}]\nmetrics: {{interval: 0s}}\nprocessors:\n  sink: {{{sink}, queue: {{overflow: block}}}}\ndefault: [sink]\n"
    );
    let broker = distlogd::Broker::start(&Config::parse(&config).unwrap()).unwrap();
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&endpoint).unwrap();
    let bodies: Vec<Vec<u8>> = (0..64).map(|i| batch(i * PER_BATCH)).collect();
    let sink = broker.metrics().processor("sink");
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let target = sink.written.load(Ordering::Relaxed) + iters * 64 * PER_BATCH;
            for _ in 0..iters {
                for body in &bodies {
                    push.send_multipart([&b"PLR"[..], &body[..]], 0).unwrap();
                }
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while sink.written.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "sink stalled");
                std::thread::yield_now();
            }
            start.elapsed()
        })
    });
    let s = broker.stop();
    assert_eq!(s.rejected.values().sum::<u64>(), 0);
    assert_eq!(
        s.processors["sink"].dropped, 0,
        "every record reached the sink"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
