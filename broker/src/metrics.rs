//! The broker's own counters: exposed in the Prometheus text format over
//! HTTP (`GET /metrics`), turned into performance records (kind `P`) routed
//! through the broker's own rules, and printed at shutdown.

use distlog_core::record::{kind, level, Field, Record, Value};
use distlog_core::wire::{Batch, Sender};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Every counter of one broker run. Shared by all threads.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages taken off the ingest sockets.
    pub messages: AtomicU64,
    /// Batches accepted (Python records count one batch each).
    pub batches: AtomicU64,
    /// Records accepted.
    pub records: AtomicU64,
    /// Bytes of accepted message bodies.
    pub bytes: AtomicU64,
    /// Records missing between batches of one sender (sequence gaps).
    pub gap_records: AtomicU64,
    /// Records that arrived after a gap had been counted for them
    /// (redelivered or reordered in transit, as an at-least-once input
    /// may): still missing = `gap_records - late_records`.
    pub late_records: AtomicU64,
    /// Sum over senders of the latest drop count each reported.
    pub client_dropped: AtomicU64,
    /// Senders being tracked for gaps.
    pub senders: AtomicU64,
    /// Client connections open on the ingest sockets (counted against
    /// `max_connections`).
    pub connections: AtomicU64,
    /// Records that matched no rule.
    pub unmatched: AtomicU64,
    /// Config reloads applied / rejected.
    pub reloads: AtomicU64,
    /// Config reloads rejected (bad file, processor failed to start).
    pub reloads_failed: AtomicU64,
    /// Rejected messages by reason.
    pub rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Records matched, by rule name.
    pub rule_matches: Mutex<BTreeMap<String, u64>>,
    /// Processor counters, by processor name (kept across reloads).
    pub processors: Mutex<BTreeMap<String, Arc<ProcessorStats>>>,
}

/// One processor's counters, updated by its queue and thread
/// ([`crate::processor::Handle`]); they survive reloads that keep its name.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Records handed to the processor successfully (the store's: once
    /// they are in its file, which may be after it took them).
    pub written: AtomicU64,
    /// Batches handed to the processor successfully.
    pub batches: AtomicU64,
    /// Records not processed: queue overflow or processor errors.
    pub dropped: AtomicU64,
    /// Processor errors (each may drop a batch).
    pub errors: AtomicU64,
    /// Batches waiting in the queue now.
    pub queued: AtomicU64,
    /// Times the processor's program was started again (`exec`).
    pub restarts: AtomicU64,
    /// Records the processor took and could not deliver: an `exec`
    /// program died before reading them, or did not take them before
    /// shutdown.
    pub lost: AtomicU64,
    /// Records sent and not yet confirmed (`exec` with `confirm`), now.
    pub unconfirmed: AtomicU64,
    /// Records the destination already had and skipped (`postgres`: a
    /// redelivered or re-sent record, kept once by its identity).
    pub repeated: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Metrics::messages`].
    pub messages: u64,
    /// See [`Metrics::batches`].
    pub batches: u64,
    /// See [`Metrics::records`].
    pub records: u64,
    /// See [`Metrics::bytes`].
    pub bytes: u64,
    /// See [`Metrics::gap_records`].
    pub gap_records: u64,
    /// See [`Metrics::late_records`].
    pub late_records: u64,
    /// See [`Metrics::client_dropped`].
    pub client_dropped: u64,
    /// See [`Metrics::unmatched`].
    pub unmatched: u64,
    /// Rejected messages by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Records matched by rule.
    pub rule_matches: BTreeMap<String, u64>,
    /// Per processor.
    pub processors: BTreeMap<String, ProcessorSnapshot>,
}

/// One processor's counters (see [`ProcessorStats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorSnapshot {
    /// Records taken.
    pub written: u64,
    /// Records dropped (queue full, errors).
    pub dropped: u64,
    /// Errors.
    pub errors: u64,
    /// Batches queued now.
    pub queued: u64,
    /// Program restarts.
    pub restarts: u64,
    /// Records lost after they were taken.
    pub lost: u64,
    /// Records awaiting confirmation now.
    pub unconfirmed: u64,
    /// Records skipped as already stored.
    pub repeated: u64,
}

impl Metrics {
    /// Counts a rejected message.
    pub fn reject(&self, reason: &'static str) {
        *self.rejected.lock().entry(reason).or_default() += 1;
    }

    /// The counters of processor `name`, created on first use.
    pub fn processor(&self, name: &str) -> Arc<ProcessorStats> {
        self.processors
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            messages: get(&self.messages),
            batches: get(&self.batches),
            records: get(&self.records),
            bytes: get(&self.bytes),
            gap_records: get(&self.gap_records),
            late_records: get(&self.late_records),
            client_dropped: get(&self.client_dropped),
            unmatched: get(&self.unmatched),
            rejected: self.rejected.lock().clone(),
            rule_matches: self.rule_matches.lock().clone(),
            processors: self
                .processors
                .lock()
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        ProcessorSnapshot {
                            written: get(&s.written),
                            dropped: get(&s.dropped),
                            errors: get(&s.errors),
                            queued: get(&s.queued),
                            restarts: get(&s.restarts),
                            lost: get(&s.lost),
                            unconfirmed: get(&s.unconfirmed),
                            repeated: get(&s.repeated),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn prometheus(&self) -> String {
        let s = self.snapshot();
        let mut o = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                o,
                "# HELP distlogd_{name} {help}\n# TYPE distlogd_{name} {kind}\ndistlogd_{name} {v}"
            );
        };
        one(
            "messages_total",
            "counter",
            "Messages taken off the ingest sockets.",
            s.messages,
        );
        one("batches_total", "counter", "Batches accepted.", s.batches);
        one("records_total", "counter", "Records accepted.", s.records);
        one(
            "bytes_total",
            "counter",
            "Bytes of accepted message bodies.",
            s.bytes,
        );
        one(
            "gap_records_total",
            "counter",
            "Records missing in senders' sequence numbers.",
            s.gap_records,
        );
        one(
            "late_records_total",
            "counter",
            "Records that filled a sequence gap after it was counted (still missing: gap minus late).",
            s.late_records,
        );
        one(
            "client_dropped_records",
            "counter",
            "Records clients reported dropping before the wire.",
            s.client_dropped,
        );
        one(
            "unmatched_records_total",
            "counter",
            "Records that matched no rule.",
            s.unmatched,
        );
        one(
            "senders",
            "gauge",
            "Senders tracked for sequence gaps.",
            self.senders.load(Ordering::Relaxed),
        );
        one(
            "connections",
            "gauge",
            "Client connections open on the ingest endpoints (at most max_connections).",
            self.connections.load(Ordering::Relaxed),
        );
        one(
            "reloads_total",
            "counter",
            "Config reloads applied.",
            self.reloads.load(Ordering::Relaxed),
        );
        one(
            "reloads_failed_total",
            "counter",
            "Config reloads rejected.",
            self.reloads_failed.load(Ordering::Relaxed),
        );
        let _ = writeln!(o, "# HELP distlogd_rejected_total Messages rejected, by reason.\n# TYPE distlogd_rejected_total counter");
        for (r, v) in &s.rejected {
            let _ = writeln!(o, "distlogd_rejected_total{{reason=\"{r}\"}} {v}");
        }
        let _ = writeln!(o, "# HELP distlogd_rule_matches_total Records matched, by rule.\n# TYPE distlogd_rule_matches_total counter");
        for (r, v) in &s.rule_matches {
            let _ = writeln!(
                o,
                "distlogd_rule_matches_total{{rule=\"{}\"}} {v}",
                escape(r)
            );
        }
        let per_proc: [Family; 8] = [
            (
                "processor_written_records_total",
                "counter",
                "Records a processor took.",
                |t| t.written,
            ),
            (
                "processor_dropped_records_total",
                "counter",
                "Records a processor dropped (queue full or error).",
                |t| t.dropped,
            ),
            (
                "processor_errors_total",
                "counter",
                "Processor errors.",
                |t| t.errors,
            ),
            (
                "processor_queued_batches",
                "gauge",
                "Batches waiting for a processor.",
                |t| t.queued,
            ),
            (
                "processor_restarts_total",
                "counter",
                "Times a processor's program was started again (exec).",
                |t| t.restarts,
            ),
            (
                "processor_lost_records_total",
                "counter",
                "Records a processor took and could not deliver (an exec program died before reading them).",
                |t| t.lost,
            ),
            (
                "processor_unconfirmed_records",
                "gauge",
                "Records sent to a processor's program and not yet confirmed (exec with confirm).",
                |t| t.unconfirmed,
            ),
            (
                "processor_repeated_records_total",
                "counter",
                "Records the destination already had, skipped (postgres: redelivered or re-sent, stored once).",
                |t| t.repeated,
            ),
        ];
        for (name, kind, help, f) in per_proc {
            let _ = writeln!(
                o,
                "# HELP distlogd_{name} {help}\n# TYPE distlogd_{name} {kind}"
            );
            for (p, t) in &s.processors {
                let _ = writeln!(o, "distlogd_{name}{{processor=\"{}\"}} {}", escape(p), f(t));
            }
        }
        o
    }

    /// The counters as performance records, in the shape
    /// `distlog::metric::counter` gives them (target `metric`, the name as
    /// message, fields `metric` and `value`, plus a label field).
    pub fn perf_batch(&self, sender: &Sender, first_seq: u64) -> Batch {
        let s = self.snapshot();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut records = Vec::new();
        let mut push = |name: &str, metric: &str, v: u64, label: Option<(&str, &str)>| {
            let mut fields = vec![
                Field {
                    key: "metric".into(),
                    value: Value::Str(metric.into()),
                },
                Field {
                    key: "value".into(),
                    value: Value::U64(v),
                },
            ];
            if let Some((k, l)) = label {
                fields.push(Field {
                    key: k.into(),
                    value: Value::Str(l.into()),
                });
            }
            records.push(Record {
                time_ns: now,
                seq: first_seq + records.len() as u64,
                level: level::INFO,
                kind: kind::PERF,
                target: "metric".into(),
                module: "distlogd".into(),
                message: format!("distlogd.{name}"),
                fields,
                ..Record::default()
            });
        };
        push("messages", "counter", s.messages, None);
        push("batches", "counter", s.batches, None);
        push("records", "counter", s.records, None);
        push("bytes", "counter", s.bytes, None);
        push("gap_records", "counter", s.gap_records, None);
        push("late_records", "counter", s.late_records, None);
        push("client_dropped", "counter", s.client_dropped, None);
        for (r, v) in &s.rejected {
            push("rejected", "counter", *v, Some(("reason", r)));
        }
        for (r, v) in &s.rule_matches {
            push("rule_matches", "counter", *v, Some(("rule", r)));
        }
        for (p, t) in &s.processors {
            push(
                "processor_written",
                "counter",
                t.written,
                Some(("processor", p)),
            );
            push(
                "processor_dropped",
                "counter",
                t.dropped,
                Some(("processor", p)),
            );
        }
        Batch {
            sender: sender.clone(),
            first_seq,
            dropped: 0,
            records,
        }
    }
}

/// A per-processor metric family: name, type, help, and its value.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ProcessorSnapshot) -> u64,
);

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_family_and_label() {
        let m = Metrics::default();
        m.records.store(12, Ordering::Relaxed);
        m.reject("bad_topic");
        m.reject("bad_topic");
        m.rule_matches.lock().insert("errors".into(), 3);
        m.processor("store").written.store(12, Ordering::Relaxed);
        let t = m.prometheus();
        assert!(t.contains("distlogd_records_total 12\n"), "{t}");
        assert!(
            t.contains("distlogd_rejected_total{reason=\"bad_topic\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("distlogd_rule_matches_total{rule=\"errors\"} 3\n"),
            "{t}"
        );
        assert!(
            t.contains("distlogd_processor_written_records_total{processor=\"store\"} 12\n"),
            "{t}"
        );
        let b = m.perf_batch(&Sender::default(), 40);
        assert!(b.records.iter().all(|r| r.kind == kind::PERF));
        assert_eq!(b.records[0].seq, 40);
        assert!(b.records.iter().any(|r| r.message == "distlogd.rejected"
            && r.fields
                .iter()
                .any(|f| f.value == Value::Str("bad_topic".into()))));
    }
}
