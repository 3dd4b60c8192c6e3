//! The tracing layer produces the same tree as the native API for the same
//! program: same keys under the root, levels, messages, statuses, fields.
#![cfg(feature = "tracing")]
mod common;

use common::{app_records, Receiver};
use distlog_core::record::{Record, Value};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

fn native() {
    let root = distlog::task("request", &[("user", &42u64)]);
    distlog::info!("begin");
    {
        let _db = distlog::to("db", &[]);
        distlog::info!(rows = 3u64; "query");
    }
    {
        let cache = distlog::to("cache", &[]);
        distlog::error!("miss");
        cache.fail("miss");
    }
    drop(root);
}

fn traced() {
    let root = tracing::info_span!("request", user = 42u64);
    let entered = root.enter();
    tracing::info!("begin");
    {
        let db = tracing::info_span!("db");
        let _e = db.enter();
        tracing::info!(rows = 3u64, "query");
    }
    {
        let cache = tracing::info_span!("cache");
        let _e = cache.enter();
        tracing::error!("miss");
    }
    drop(entered);
    drop(root);
}

/// (key with the root replaced, level, message, status, error, fields)
type Row = (
    String,
    u8,
    String,
    Option<Value>,
    String,
    Vec<(String, Value)>,
);

fn normalize(recs: &[&Record]) -> Vec<Row> {
    let root = recs[0].task.clone();
    recs.iter()
        .map(|r| {
            let status = r
                .fields
                .iter()
                .find(|f| f.key == "task_status")
                .map(|f| f.value.clone());
            let fields = r
                .fields
                .iter()
                .filter(|f| f.key != "task_status" && f.key != "duration_ns")
                .map(|f| (f.key.clone(), f.value.clone()))
                .collect();
            (
                r.key().unwrap().replace(&root, "R"),
                r.level,
                r.rendered_message(),
                status,
                r.error.clone(),
                fields,
            )
        })
        .collect()
}

#[test]
fn tracing_spans_and_events_make_the_same_tree_as_native_tasks() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .install()
        .unwrap();
    native();
    let subscriber =
        tracing_subscriber::registry().with(distlog::tracing_layer::DistlogLayer::new());
    tracing::subscriber::with_default(subscriber, traced);
    assert!(distlog::flush());

    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false);
    let recs: Vec<&Record> = app_records(&batches).collect();
    assert_eq!(recs.len(), 18);
    let (a, b) = recs.split_at(9);
    assert_ne!(a[0].task, b[0].task, "two separate roots");
    let native = normalize(a);
    let traced = normalize(b);
    assert_eq!(native, traced);
    // And the tree is the one we meant.
    let keys: Vec<&str> = native.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        keys,
        ["1@R", "2@R", "1@R/1", "2@R/1", "3@R/1", "1@R/2", "2@R/2", "3@R/2", "3@R"]
    );
    assert_eq!(native[7].2, "FAILED cache");
    assert_eq!(native[7].4, "miss");
}
