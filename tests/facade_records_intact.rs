//! `log` records arrive intact and in order over a real socket, on every
//! path the facade has: a cached call site with a plain literal (stored as
//! its address, not copied), with formatted arguments (written straight
//! into the ring), with a message longer than the site's first size guess
//! (written twice), every key/value type (a `u64` stays a `u64`), targets
//! given as literals and built at run time at one call site, records in a
//! task, and a hand-built record without a static location (the uncached
//! path). Level and target directives still filter.
mod common;

use common::{app_records, Receiver};
use distlog_core::record::{level, Record, Value};
use std::time::Duration;

fn field<'a>(r: &'a Record, key: &str) -> Option<&'a Value> {
    r.fields.iter().find(|f| f.key == key).map(|f| &f.value)
}

const ROUNDS: u64 = 300;

/// One round: the records of `expected(i)`, in this order.
fn log_round(i: u64) {
    log::info!("plain literal");
    log::warn!("request {} done {} {}", i, true, "10.0.0.7");
    log::info!(
        user_id = i, delta = -7i64, small = 7i64, ratio = 1.5f64, ok = true,
        peer = "10.0.0.7", addr:% = std::net::Ipv4Addr::LOCALHOST;
        "request {} done", i
    );
    // Longer than the first guess of the site's size (128 bytes), and
    // some longer than the largest guess a site keeps (1 KiB).
    let long = "x".repeat(200 + (i as usize % 7) * 400);
    log::info!(i = i; "long {} {}", long, i);
    log::error!(target: "db::pool", i = i; "literal target");
    let dynamic = format!("dyn::t{}", i % 3);
    log::info!(target: &dynamic, i = i; "dynamic target");
    log::info!(target: "quiet", i = i; "filtered out by quiet=warn");
    log::debug!(i = i; "filtered out by the level");
    log::logger().log(
        &log::Record::builder()
            .args(format_args!("hand-built {}", i))
            .level(log::Level::Info)
            .target("hand")
            .file(Some(&format!("gen{}.rs", i % 2)))
            .line(Some(7))
            .build(),
    );
}

/// (level, target, message) of round `i`'s records, in order.
fn expected(i: u64) -> Vec<(u8, String, String)> {
    let long = "x".repeat(200 + (i as usize % 7) * 400);
    let here = module_path!().to_owned();
    vec![
        (level::INFO, here.clone(), "plain literal".into()),
        (
            level::WARN,
            here.clone(),
            format!("request {i} done true 10.0.0.7"),
        ),
        (level::INFO, here.clone(), format!("request {i} done")),
        (level::INFO, here.clone(), format!("long {long} {i}")),
        (level::ERROR, "db::pool".into(), "literal target".into()),
        (
            level::INFO,
            format!("dyn::t{}", i % 3),
            "dynamic target".into(),
        ),
        (level::INFO, "hand".into(), format!("hand-built {i}")),
    ]
}

#[test]
fn facade_records_arrive_intact_and_in_order() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info,quiet=warn")
        .block_when_full(true)
        .panic_hook(false)
        .install()
        .unwrap();

    for i in 0..ROUNDS {
        log_round(i);
    }
    // In a task: the task section follows the fields.
    let task = distlog::task("facade in a task", &[("bound", &9u64)]);
    let task_path = task.path().to_owned();
    log::info!(k = 1u64; "in task {}", 1);
    log::info!("literal in task");
    drop(task);

    common::end_marker();
    let batches = receiver.collect_until_end(Duration::from_secs(60));
    let recs: Vec<&Record> = app_records(&batches)
        .filter(|r| field(r, "task_status").is_none())
        .collect();

    let mut want: Vec<(u8, String, String)> = (0..ROUNDS).flat_map(expected).collect();
    want.push((level::INFO, module_path!().into(), "in task 1".into()));
    want.push((level::INFO, module_path!().into(), "literal in task".into()));
    let got: Vec<(u8, String, String)> = recs
        .iter()
        .map(|r| (r.level, r.target.clone(), r.rendered_message()))
        .collect();
    assert_eq!(got.len(), want.len(), "record count");
    for (n, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "record {n}");
    }

    for (round, chunk) in recs.chunks(7).take(ROUNDS as usize).enumerate() {
        let i = round as u64;
        for r in chunk {
            // Facade messages are formatted (or literal) text, never a
            // deferred format.
            assert!(r.format.is_empty() && r.args.is_empty());
            assert_eq!(r.message, r.rendered_message());
        }
        let [literal, args, kv, long, lit_target, dyn_target, hand] = chunk else {
            panic!("round {i}: {} records", chunk.len());
        };
        for r in [literal, args, kv, long, lit_target, dyn_target] {
            assert_eq!(r.file, file!());
            assert_eq!(r.module, module_path!());
        }
        assert!(literal.fields.is_empty() && args.fields.is_empty());
        assert_eq!(field(kv, "user_id"), Some(&Value::U64(i)), "u64 stays u64");
        assert_eq!(field(kv, "delta"), Some(&Value::I64(-7)));
        assert_eq!(field(kv, "small"), Some(&Value::I64(7)), "i64 stays i64");
        assert_eq!(field(kv, "ratio"), Some(&Value::F64(1.5)));
        assert_eq!(field(kv, "ok"), Some(&Value::Bool(true)));
        assert_eq!(field(kv, "peer"), Some(&Value::Str("10.0.0.7".into())));
        assert_eq!(field(kv, "addr"), Some(&Value::Str("127.0.0.1".into())));
        let keys: Vec<&str> = kv.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["user_id", "delta", "small", "ratio", "ok", "peer", "addr"]
        );
        for r in [long, lit_target, dyn_target] {
            assert_eq!(field(r, "i"), Some(&Value::U64(i)));
        }
        assert_eq!(hand.file, format!("gen{}.rs", i % 2));
        assert_eq!(hand.line, 7);
        assert!(kv.line > args.line && args.line > literal.line);
    }

    let in_task = &recs[recs.len() - 2..];
    for r in in_task {
        assert!(
            r.task.starts_with(&task_path),
            "{} in {}",
            r.task,
            task_path
        );
        assert_eq!(field(r, "bound"), Some(&Value::U64(9)));
    }
    assert_eq!(field(in_task[0], "k"), Some(&Value::U64(1)));
    assert_eq!(distlog::stats().dropped, 0);
}
