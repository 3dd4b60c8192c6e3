//! Counters, gauges and timings travel as kind-P records in P batches.
mod common;

use common::Receiver;
use distlog_core::record::Value;
use std::time::Duration;

#[test]
fn metrics_arrive_as_perf_records_in_their_own_batches() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .system('S')
        .install()
        .unwrap();
    distlog::info!("a log record");
    distlog::metric::counter("http.requests", 3, &[("route", &"/home")]);
    distlog::metric::gauge("queue.depth", 17.5, &[]);
    distlog::metric::timing("db.query", Duration::from_micros(850), &[]);
    assert!(distlog::flush());
    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false);
    let perf: Vec<_> = batches
        .iter()
        .filter(|b| b.topic.bytes() == *b"SPR")
        .flat_map(|b| &b.records)
        .collect();
    let logs: Vec<_> = batches
        .iter()
        .filter(|b| b.topic.bytes() == *b"SLR")
        .flat_map(|b| &b.records)
        .collect();
    assert_eq!(logs.len(), 1);
    assert_eq!(perf.len(), 3);
    assert!(perf.iter().all(|r| r.kind == b'P' && r.target == "metric"));
    let f = |i: usize, k: &str| {
        perf[i]
            .fields
            .iter()
            .find(|f| f.key == k)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(perf[0].message, "http.requests");
    assert_eq!(f(0, "metric"), Value::Str("counter".into()));
    assert_eq!(f(0, "value"), Value::U64(3));
    assert_eq!(f(0, "route"), Value::Str("/home".into()));
    assert_eq!(f(1, "value"), Value::F64(17.5));
    assert_eq!(f(2, "metric"), Value::Str("timing".into()));
    assert_eq!(f(2, "value"), Value::U64(850_000));
}
