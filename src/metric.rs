//! Performance records (kind `P`): counters, gauges and timings that travel
//! through the same pipeline as log records, in batches of their own (topic
//! `<system>PR`), so dashboards can subscribe to them alone.
//!
//! Each is a record with target `metric`, the measurement's name as the
//! message, and fields `metric` (`counter`, `gauge` or `timing`) and
//! `value` (`u64` for counters, `f64` for gauges, nanoseconds as `u64` for
//! timings), followed by the caller's fields and, inside a task, the task's.
//!
//! ```
//! use std::time::Duration;
//! distlog::metric::counter("http.requests", 1, &[("route", &"/home")]);
//! distlog::metric::gauge("queue.depth", 17.0, &[]);
//! distlog::metric::timing("db.query", Duration::from_micros(850), &[("table", &"users")]);
//! ```

use crate::entry::Encode;
use crate::facade::{emit_parts, Parts};
use crate::record::{kind, level};
use std::time::Duration;

#[track_caller]
fn emit(name: &str, metric: &str, value: &dyn Encode, fields: &[(&str, &dyn Encode)]) {
    let loc = std::panic::Location::caller();
    let parts = Parts {
        level: level::INFO,
        kind: kind::PERF,
        target: "metric",
        module: "",
        file: loc.file(),
        line: loc.line(),
        error: None,
    };
    emit_parts(
        &parts,
        |b| b.str(name),
        |kvs| {
            kvs.pair_encoded("metric", &metric);
            kvs.pair_encoded("value", value);
            for (k, v) in fields {
                kvs.pair_encoded(k, *v);
            }
        },
    );
}

/// Counts `n` occurrences of `name`.
#[track_caller]
pub fn counter(name: &str, n: u64, fields: &[(&str, &dyn Encode)]) {
    emit(name, "counter", &n, fields);
}

/// Reports the current level of `name`.
#[track_caller]
pub fn gauge(name: &str, value: f64, fields: &[(&str, &dyn Encode)]) {
    emit(name, "gauge", &value, fields);
}

/// Reports how long `name` took.
#[track_caller]
pub fn timing(name: &str, took: Duration, fields: &[(&str, &dyn Encode)]) {
    emit(name, "timing", &(took.as_nanos() as u64), fields);
}
