//! Zero-copy views of a validated batch, whatever its format version.
//!
//! [`BatchRef`] and [`RecordRef`] are what every reader uses (the broker's
//! filter VM, processors and store, the `distlog` tool, tests): one set of
//! accessors over a version-1 batch ([`crate::wire::ArchivedBatch`], one
//! self-contained record after another) and a version-2 batch
//! ([`crate::wire_v2::ArchivedBatchV2`], records that index call-site and
//! thread tables and carry their values as one tagged byte string). Both
//! are `Copy` and borrow the batch; nothing is allocated to read a record.
//!
//! ```
//! use distlog::record::{Record, ValueRef};
//! use distlog::wire::{access_batch, encode_batch_to_vec, Batch};
//!
//! let batch = Batch {
//!     records: vec![Record { message: "hello".into(), ..Record::default() }],
//!     ..Batch::default()
//! };
//! let body = encode_batch_to_vec(&batch);
//! let view = access_batch(&body).unwrap();
//! let first = view.records().next().unwrap();
//! assert_eq!(first.message(), "hello");
//! assert_eq!(first.field("user"), None::<ValueRef<'_>>);
//! ```

use crate::record::{ArchivedField, ArchivedRecord, ArchivedValue, Field, Record, ValueRef};
use crate::wire::{ArchivedBatch, ArchivedSender, Batch};
use crate::wire_v2::{read_value, ArchivedBatchV2, ArchivedRecordV2, ArchivedSite, ArchivedThread};
use rkyv::rancor;
use rkyv::string::ArchivedString;
use std::borrow::Cow;

/// A validated batch of either format version.
#[derive(Clone, Copy, Debug)]
pub struct BatchRef<'a>(BatchInner<'a>);

#[derive(Clone, Copy, Debug)]
enum BatchInner<'a> {
    V1(&'a ArchivedBatch),
    V2(&'a ArchivedBatchV2),
}

impl<'a> From<&'a ArchivedBatch> for BatchRef<'a> {
    #[inline]
    fn from(b: &'a ArchivedBatch) -> Self {
        BatchRef(BatchInner::V1(b))
    }
}

impl<'a> BatchRef<'a> {
    /// A view of a version-2 batch that passed
    /// [`crate::wire_v2::access_batch`] (which checks every index this view
    /// follows).
    #[inline]
    pub(crate) fn v2(b: &'a ArchivedBatchV2) -> Self {
        BatchRef(BatchInner::V2(b))
    }

    /// The format version: 1 or 2.
    #[inline]
    pub fn version(&self) -> u8 {
        match self.0 {
            BatchInner::V1(_) => 1,
            BatchInner::V2(_) => 2,
        }
    }

    /// The sending process.
    #[inline]
    pub fn sender(&self) -> &'a ArchivedSender {
        match self.0 {
            BatchInner::V1(b) => &b.sender,
            BatchInner::V2(b) => &b.sender,
        }
    }

    /// Sequence number of the first record.
    #[inline]
    pub fn first_seq(&self) -> u64 {
        match self.0 {
            BatchInner::V1(b) => b.first_seq.to_native(),
            BatchInner::V2(b) => b.first_seq.to_native(),
        }
    }

    /// The sender's running count of records dropped before the wire.
    #[inline]
    pub fn dropped(&self) -> u64 {
        match self.0 {
            BatchInner::V1(b) => b.dropped.to_native(),
            BatchInner::V2(b) => b.dropped.to_native(),
        }
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        match self.0 {
            BatchInner::V1(b) => b.records.len(),
            BatchInner::V2(b) => b.records.len(),
        }
    }

    /// Whether the batch holds no records.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`, or `None` past the end.
    #[inline]
    pub fn record(&self, i: usize) -> Option<RecordRef<'a>> {
        match self.0 {
            BatchInner::V1(b) => b.records.get(i).map(RecordRef::from),
            BatchInner::V2(b) => {
                let rec = b.records.get(i)?;
                Some(RecordRef(RecordInner::V2 {
                    site: b.sites.get(rec.site.to_native() as usize)?,
                    thread: b.threads.get(rec.thread.to_native() as usize)?,
                    rec,
                }))
            }
        }
    }

    /// The records, in order.
    #[inline]
    pub fn records(&self) -> Records<'a> {
        Records(match self.0 {
            BatchInner::V1(b) => RecordsInner::V1(b.records.iter()),
            BatchInner::V2(b) => RecordsInner::V2 {
                records: b.records.iter(),
                sites: &b.sites,
                threads: &b.threads,
            },
        })
    }

    /// Copies the batch into the owned (version-1) model.
    pub fn to_batch(&self) -> Batch {
        Batch {
            sender: rkyv::deserialize::<_, rancor::Panic>(self.sender())
                .unwrap_or_else(|e| match e {}),
            first_seq: self.first_seq(),
            dropped: self.dropped(),
            records: self.records().map(|r| r.to_record()).collect(),
        }
    }
}

/// The records of a [`BatchRef`], in order.
#[derive(Clone, Debug)]
pub struct Records<'a>(RecordsInner<'a>);

#[derive(Clone, Debug)]
enum RecordsInner<'a> {
    V1(std::slice::Iter<'a, ArchivedRecord>),
    V2 {
        records: std::slice::Iter<'a, ArchivedRecordV2>,
        sites: &'a [ArchivedSite],
        threads: &'a [ArchivedThread],
    },
}

impl<'a> Iterator for Records<'a> {
    type Item = RecordRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordRef<'a>> {
        match &mut self.0 {
            RecordsInner::V1(it) => it.next().map(RecordRef::from),
            RecordsInner::V2 {
                records,
                sites,
                threads,
            } => {
                let rec = records.next()?;
                // The indexes were checked when the batch was validated.
                // (The same lookup as `BatchRef::record`, written out here:
                // a shared helper measured 35-40% slower in the filter VM
                // bench.)
                Some(RecordRef(RecordInner::V2 {
                    site: sites.get(rec.site.to_native() as usize)?,
                    thread: threads.get(rec.thread.to_native() as usize)?,
                    rec,
                }))
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            RecordsInner::V1(it) => it.size_hint(),
            RecordsInner::V2 { records, .. } => (0, Some(records.len())),
        }
    }
}

/// One record of a validated batch, of either format version.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a>(RecordInner<'a>);

#[derive(Clone, Copy, Debug)]
enum RecordInner<'a> {
    V1(&'a ArchivedRecord),
    V2 {
        rec: &'a ArchivedRecordV2,
        site: &'a ArchivedSite,
        thread: &'a ArchivedThread,
    },
}

impl<'a> From<&'a ArchivedRecord> for RecordRef<'a> {
    #[inline]
    fn from(r: &'a ArchivedRecord) -> Self {
        RecordRef(RecordInner::V1(r))
    }
}

/// Picks the field of either version.
macro_rules! either {
    ($self:ident, $v1:ident => $a:expr, $rec:ident, $site:ident, $thread:ident => $b:expr) => {
        match $self.0 {
            RecordInner::V1($v1) => $a,
            #[allow(unused_variables)]
            RecordInner::V2 {
                rec: $rec,
                site: $site,
                thread: $thread,
            } => $b,
        }
    };
}

impl<'a> RecordRef<'a> {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    #[inline]
    pub fn time_ns(&self) -> u64 {
        either!(self, r => r.time_ns.to_native(), r, s, t => r.time_ns.to_native())
    }

    /// The sender's sequence number.
    #[inline]
    pub fn seq(&self) -> u64 {
        either!(self, r => r.seq.to_native(), r, s, t => r.seq.to_native())
    }

    /// Numeric severity on Python's scale.
    #[inline]
    pub fn level(&self) -> u8 {
        either!(self, r => r.level, r, s, t => r.level)
    }

    /// [`crate::record::kind::LOG`] or [`crate::record::kind::PERF`].
    #[inline]
    pub fn kind(&self) -> u8 {
        either!(self, r => r.kind, r, s, t => r.kind)
    }

    /// Source line, 0 when unknown.
    #[inline]
    pub fn line(&self) -> u32 {
        either!(self, r => r.line.to_native(), r, s, t => match r.line.to_native() {
            0 => s.line.to_native(),
            line => line,
        })
    }

    /// The record counter within its task, 0 outside a task.
    #[inline]
    pub fn task_n(&self) -> u32 {
        either!(self, r => r.task_n.to_native(), r, s, t => r.task_n.to_native())
    }

    /// OS thread id.
    #[inline]
    pub fn thread_id(&self) -> u64 {
        either!(self, r => r.thread_id.to_native(), r, s, t => t.id.to_native())
    }

    /// Thread name, empty when unnamed.
    #[inline]
    pub fn thread_name(&self) -> &'a str {
        either!(self, r => r.thread_name.as_str(), r, s, t => t.name.as_str())
    }

    /// Target / logger name.
    #[inline]
    pub fn target(&self) -> &'a str {
        either!(self, r => r.target.as_str(), r, s, t => s.target.as_str())
    }

    /// Module path.
    #[inline]
    pub fn module(&self) -> &'a str {
        either!(self, r => r.module.as_str(), r, s, t => s.module.as_str())
    }

    /// Source file path.
    #[inline]
    pub fn file(&self) -> &'a str {
        either!(self, r => r.file.as_str(), r, s, t => s.file.as_str())
    }

    /// Function name, empty when unknown.
    #[inline]
    pub fn func(&self) -> &'a str {
        either!(self, r => r.func.as_str(), r, s, t => s.func.as_str())
    }

    /// The message; empty when it is deferred to [`RecordRef::format`] and
    /// [`RecordRef::args`] (see [`RecordRef::rendered_message`]).
    #[inline]
    pub fn message(&self) -> &'a str {
        either!(self, r => r.message.as_str(), r, s, t => r.message.as_str())
    }

    /// The format string of a deferred message, empty otherwise.
    #[inline]
    pub fn format(&self) -> &'a str {
        either!(self, r => r.format.as_str(), r, s, t => s.format.as_str())
    }

    /// Task path, empty outside a task.
    #[inline]
    pub fn task(&self) -> &'a str {
        either!(self, r => r.task.as_str(), r, s, t => r.task.as_str())
    }

    /// Error or exception text, empty when none.
    #[inline]
    pub fn error(&self) -> &'a str {
        either!(self, r => r.error.as_str(), r, s, t => r.error.as_str())
    }

    /// The arguments of [`RecordRef::format`], in order.
    #[inline]
    pub fn args(&self) -> Args<'a> {
        Args(
            either!(self, r => ArgsInner::V1(r.args.iter()), r, s, t => ArgsInner::V2 {
                values: &r.values,
                left: s.args.to_native(),
            }),
        )
    }

    /// The key/values: the record's own, then its task's bound fields.
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields(
            either!(self, r => FieldsInner::V1(r.fields.iter()), r, s, t => FieldsInner::V2 {
                values: skip_values(&r.values, s.args.to_native()),
                keys: s.keys.iter(),
            }),
        )
    }

    /// The first field named `key`.
    #[inline]
    pub fn field(&self, key: &str) -> Option<ValueRef<'a>> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The task key `"<n>@<path>"`, or `None` outside a task.
    pub fn key(&self) -> Option<String> {
        let task = self.task();
        (!task.is_empty()).then(|| format!("{}@{}", self.task_n(), task))
    }

    /// The message as a reader sees it: [`RecordRef::message`] (borrowed),
    /// or the deferred format rendered with its arguments.
    pub fn rendered_message(&self) -> Cow<'a, str> {
        if self.format().is_empty() {
            return Cow::Borrowed(self.message());
        }
        let mut out = String::new();
        self.write_message(&mut out);
        Cow::Owned(out)
    }

    /// Appends [`RecordRef::rendered_message`] to `out`.
    pub fn write_message(&self, out: &mut String) {
        let format = self.format();
        if format.is_empty() {
            out.push_str(self.message());
        } else {
            crate::render::render_format(format, self.args(), out);
        }
    }

    /// Copies the record into the owned model.
    pub fn to_record(&self) -> Record {
        Record {
            time_ns: self.time_ns(),
            seq: self.seq(),
            level: self.level(),
            kind: self.kind(),
            line: self.line(),
            task_n: self.task_n(),
            thread_id: self.thread_id(),
            thread_name: self.thread_name().to_owned(),
            target: self.target().to_owned(),
            module: self.module().to_owned(),
            file: self.file().to_owned(),
            func: self.func().to_owned(),
            message: self.message().to_owned(),
            format: self.format().to_owned(),
            args: self.args().map(|v| v.to_owned_value()).collect(),
            fields: self
                .fields()
                .map(|(k, v)| Field {
                    key: k.to_owned(),
                    value: v.to_owned_value(),
                })
                .collect(),
            task: self.task().to_owned(),
            error: self.error().to_owned(),
        }
    }
}

/// `values` after its first `n` values (empty if it has fewer).
fn skip_values(mut values: &[u8], n: u32) -> &[u8] {
    for _ in 0..n {
        match read_value(values) {
            Some((_, rest)) => values = rest,
            None => return &[],
        }
    }
    values
}

/// The format arguments of a record ([`RecordRef::args`]).
#[derive(Clone, Debug)]
pub struct Args<'a>(ArgsInner<'a>);

#[derive(Clone, Debug)]
enum ArgsInner<'a> {
    V1(std::slice::Iter<'a, ArchivedValue>),
    V2 { values: &'a [u8], left: u32 },
}

impl<'a> Iterator for Args<'a> {
    type Item = ValueRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<ValueRef<'a>> {
        match &mut self.0 {
            ArgsInner::V1(it) => it.next().map(ValueRef::from),
            ArgsInner::V2 { values, left } => {
                if *left == 0 {
                    return None;
                }
                let (v, rest) = read_value(values)?;
                *values = rest;
                *left -= 1;
                Some(v)
            }
        }
    }
}

/// The key/values of a record ([`RecordRef::fields`]).
#[derive(Clone, Debug)]
pub struct Fields<'a>(FieldsInner<'a>);

#[derive(Clone, Debug)]
enum FieldsInner<'a> {
    V1(std::slice::Iter<'a, ArchivedField>),
    V2 {
        values: &'a [u8],
        keys: std::slice::Iter<'a, ArchivedString>,
    },
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, ValueRef<'a>);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, ValueRef<'a>)> {
        match &mut self.0 {
            FieldsInner::V1(it) => it
                .next()
                .map(|f| (f.key.as_str(), ValueRef::from(&f.value))),
            FieldsInner::V2 { values, keys } => {
                let key = match keys.next() {
                    Some(k) => k.as_str(),
                    None => {
                        // Past the call site's keys: bound (key, value) pairs.
                        let (ValueRef::Str(k), rest) = read_value(values)? else {
                            return None;
                        };
                        *values = rest;
                        k
                    }
                };
                let (v, rest) = read_value(values)?;
                *values = rest;
                Some((key, v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use crate::wire::{access_batch, encode_batch_to_vec, Sender};
    use crate::wire_v2::{self, put_value, BatchV2, RecordV2, Site, Thread};
    use rkyv::util::AlignedVec;

    fn sender() -> Sender {
        Sender {
            host: "web-1".into(),
            pid: 7,
            program: "api".into(),
            start_ns: 1,
            instance: 9,
        }
    }

    /// The same two records, once as version 1 and once as version 2.
    fn both() -> (AlignedVec, AlignedVec) {
        let records = vec![
            Record {
                time_ns: 10,
                seq: 5,
                level: 20,
                kind: b'L',
                line: 12,
                thread_id: 42,
                thread_name: "worker".into(),
                target: "http".into(),
                module: "app::http".into(),
                file: "src/http.rs".into(),
                func: "serve".into(),
                format: "served {} in {}".into(),
                args: vec![Value::Str("/a".into()), Value::F64(1.5)],
                fields: vec![
                    Field {
                        key: "status".into(),
                        value: Value::U64(200),
                    },
                    Field {
                        key: "user".into(),
                        value: Value::I64(-3),
                    },
                ],
                task: "root/1".into(),
                task_n: 4,
                ..Record::default()
            },
            Record {
                time_ns: 11,
                seq: 6,
                level: 40,
                kind: b'L',
                line: 99,
                thread_id: 42,
                thread_name: "worker".into(),
                target: "http".into(),
                module: "app::http".into(),
                file: "src/http.rs".into(),
                func: "serve".into(),
                message: "failed".into(),
                error: "boom".into(),
                fields: vec![Field {
                    key: "ok".into(),
                    value: Value::Bool(false),
                }],
                ..Record::default()
            },
        ];
        let v1 = encode_batch_to_vec(&Batch {
            sender: sender(),
            first_seq: 5,
            dropped: 1,
            records: records.clone(),
        });
        let site = |format: &str, args, keys: &[&str], line| Site {
            target: "http".into(),
            module: "app::http".into(),
            file: "src/http.rs".into(),
            func: "serve".into(),
            line,
            format: format.into(),
            args,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        };
        let mut first = Vec::new();
        put_value(&mut first, ValueRef::Str("/a"));
        put_value(&mut first, ValueRef::F64(1.5));
        put_value(&mut first, ValueRef::U64(200));
        // "user" is a bound field: a key/value pair after the site's keys.
        put_value(&mut first, ValueRef::Str("user"));
        put_value(&mut first, ValueRef::I64(-3));
        let mut second = Vec::new();
        put_value(&mut second, ValueRef::Bool(false));
        let mut v2 = AlignedVec::new();
        wire_v2::encode_batch(
            &BatchV2 {
                sender: sender(),
                first_seq: 5,
                dropped: 1,
                sites: vec![
                    site("served {} in {}", 2, &["status"], 12),
                    site("", 0, &["ok"], 1),
                ],
                threads: vec![Thread {
                    id: 42,
                    name: "worker".into(),
                }],
                records: vec![
                    RecordV2 {
                        time_ns: 10,
                        seq: 5,
                        level: 20,
                        kind: b'L',
                        task: "root/1".into(),
                        task_n: 4,
                        values: first,
                        ..RecordV2::default()
                    },
                    RecordV2 {
                        time_ns: 11,
                        seq: 6,
                        level: 40,
                        kind: b'L',
                        site: 1,
                        line: 99,
                        message: "failed".into(),
                        error: "boom".into(),
                        values: second,
                        ..RecordV2::default()
                    },
                ],
            },
            &mut v2,
        );
        (v1, v2)
    }

    #[test]
    fn both_versions_read_the_same() {
        let (v1, v2) = both();
        let (a, b) = (access_batch(&v1).unwrap(), access_batch(&v2).unwrap());
        assert_eq!((a.version(), b.version()), (1, 2));
        assert_eq!(a.to_batch(), b.to_batch());
        for (x, y) in a.records().zip(b.records()) {
            assert_eq!(x.rendered_message(), y.rendered_message());
            assert_eq!(x.key(), y.key());
            assert_eq!(x.line(), y.line());
            assert_eq!(x.field("user"), y.field("user"));
        }
        let r = b.record(0).unwrap();
        assert_eq!(r.rendered_message(), "served /a in 1.5");
        assert_eq!(r.field("user"), Some(ValueRef::I64(-3)));
        assert_eq!(r.field("status"), Some(ValueRef::U64(200)));
        assert_eq!(r.field("nope"), None);
        assert_eq!(r.key().as_deref(), Some("4@root/1"));
        assert_eq!(b.record(1).unwrap().line(), 99);
        assert!(b.record(2).is_none());
        assert_eq!(b.records().count(), 2);
        assert_eq!(b.to_batch().records[0].args.len(), 2);
    }
}
