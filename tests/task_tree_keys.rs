//! Nested tasks produce the exact keys and paths of the original Python
//! clients; bound fields ride on every record; failures (explicit, `Err`,
//! panic) are recorded; a task carried to another thread keeps its tree.
mod common;

use common::{app_records, Receiver};
use distlog_core::record::{Record, Value};
use std::time::Duration;

fn field<'a>(r: &'a Record, key: &str) -> Option<&'a Value> {
    r.fields.iter().find(|f| f.key == key).map(|f| &f.value)
}

fn status(r: &Record) -> Option<&str> {
    match field(r, "task_status") {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

#[test]
fn task_trees_have_exact_keys_statuses_and_fields() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .block_when_full(true)
        .panic_hook(false)
        .install()
        .unwrap();

    let root = distlog::task("handle request", &[("user", &42u64)]);
    let root_path = root.path().to_owned();
    distlog::info!("in root"); // 2@root
    {
        let sub = distlog::to("look up", &[]);
        sub.bind("cache", "miss");
        distlog::info!(k = 1u8; "in sub {}", 1u8); // 2@root/1
        log::info!("facade in sub"); // 3@root/1
        sub.success("found it");
    }
    {
        let sub2 = distlog::to("write", &[]);
        sub2.fail("disk full");
    }
    {
        let sub3 = distlog::to("parse", &[]);
        let r: Result<(), String> = sub3.finish(Err("bad input".to_owned()));
        assert!(r.is_err());
    }
    let panicked = std::panic::catch_unwind(|| {
        let _sub4 = distlog::to("explode", &[]);
        panic!("kaboom");
    });
    assert!(panicked.is_err());
    let foreign = root.foreign_id(); // reserves root/5
    std::thread::scope(|s| {
        let carried = distlog::current_task().unwrap();
        s.spawn(move || {
            let _in = carried.enter();
            distlog::info!("from another thread"); // 3@root
        });
    });
    {
        let imported = distlog::import_task(&foreign, "remote part", &[]);
        assert_eq!(imported.path(), format!("{root_path}/5"));
        distlog::info!("remote work"); // 2@root/5
    }
    drop(root);
    distlog::info!("outside any task");
    assert!(distlog::flush());

    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false);
    let recs: Vec<&Record> = app_records(&batches).collect();
    let keys: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r.key().unwrap_or_default(), r.rendered_message()))
        .collect();
    let p = &root_path;
    let expect: Vec<(String, &str)> = vec![
        (format!("1@{p}"), "handle request"),
        (format!("2@{p}"), "in root"),
        (format!("1@{p}/1"), "look up"),
        (format!("2@{p}/1"), "in sub 1"),
        (format!("3@{p}/1"), "facade in sub"),
        (format!("4@{p}/1"), "found it"),
        (format!("1@{p}/2"), "write"),
        (format!("2@{p}/2"), "FAILED write"),
        (format!("1@{p}/3"), "parse"),
        (format!("2@{p}/3"), "FAILED parse"),
        (format!("1@{p}/4"), "explode"),
        (format!("2@{p}/4"), "FAILED explode"),
        (format!("1@{p}/5"), "remote part"),
        (format!("2@{p}/5"), "remote work"),
        (format!("3@{p}/5"), "remote part"),
        (format!("4@{p}"), "handle request"),
        (String::new(), "outside any task"),
    ];
    // The other thread's record comes through its own ring: its place in the
    // stream is not defined, its key is.
    let other = format!("3@{p}");
    assert!(keys.contains(&(other.clone(), "from another thread".to_owned())));
    let got: Vec<(String, &str)> = keys
        .iter()
        .filter(|(k, _)| *k != other)
        .map(|(k, m)| (k.clone(), m.as_str()))
        .collect();
    assert_eq!(got, expect);
    let recs: Vec<&Record> = recs
        .into_iter()
        .filter(|r| r.key().as_deref() != Some(other.as_str()))
        .collect();

    // The root is a version-4 UUID.
    assert_eq!(p.len(), 36);
    // Bound fields: the root's on its records; the subtask's after bind.
    assert_eq!(field(recs[1], "user"), Some(&Value::U64(42)));
    assert_eq!(field(recs[3], "cache"), Some(&Value::Str("miss".into())));
    assert_eq!(field(recs[3], "k"), Some(&Value::U64(1)));
    // Statuses, durations, errors.
    assert_eq!(status(recs[0]), Some("started"));
    assert_eq!(status(recs[5]), Some("succeeded"));
    assert!(matches!(
        field(recs[5], "duration_ns"),
        Some(Value::I64(_) | Value::U64(_))
    ));
    assert_eq!(status(recs[7]), Some("failed"));
    assert_eq!(recs[7].error, "disk full");
    assert_eq!(recs[7].level, distlog_core::record::level::ERROR);
    assert_eq!(recs[9].error, "bad input");
    assert_eq!(recs[11].error, "panicked");
    assert_eq!(status(recs[15]), Some("succeeded"));
}
