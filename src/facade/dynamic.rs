//! DYNAMIC entries: records that carry their own metadata, built in a
//! per-thread scratch buffer and copied into the ring in one piece.
//!
//! The path for everything that has no cached call site: `log` records
//! whose location is not static or that came after the site cache was full
//! ([`super::sites`]), and distlog's own producers of dynamic records (the
//! `tracing` bridge, the panic hook, metrics). The message (`format_args!`
//! output) and key/values are written into a scratch buffer reused for
//! every call: no allocation once it has grown to the largest record the
//! thread logs. Key/values keep their type (`i64`, `u64`, `f64`, `bool`,
//! `str`); other values are formatted with `Display`.

use super::typed::{Typed, ValueSink};
use crate::entry::{self, Cursor};
use crate::pipeline::local;
use crate::record::level;
use std::cell::RefCell;
use std::fmt::Write as _;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends to the scratch buffer; also the `fmt::Write` target.
pub(crate) struct Body<'a>(&'a mut Vec<u8>);

impl Body<'_> {
    pub(crate) fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_ne_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A length-prefixed string produced by `f` (formatting in place).
    pub(crate) fn formatted(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        f(self);
        let len = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends a tagged value, encoded in place.
    pub(crate) fn encoded(&mut self, value: &dyn entry::Encode) {
        let at = self.0.len();
        self.0.resize(at + value.encoded_len(), 0);
        value.encode(&mut Cursor::new(&mut self.0[at..], 0));
    }

    /// Appends a `log` key/value value, keeping its type where it has one.
    pub(crate) fn value(&mut self, v: &log::kv::Value<'_>) {
        let _ = v.visit(Typed(self));
    }
}

impl ValueSink for Body<'_> {
    fn encoded<E: entry::Encode>(&mut self, value: &E) {
        Body::encoded(self, value);
    }

    fn displayed(&mut self, value: &dyn std::fmt::Display) {
        self.0.push(entry::TAG_STR);
        self.formatted(|b| {
            let _ = write!(b, "{value}");
        });
    }
}

impl std::fmt::Write for Body<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

pub(crate) struct Kvs<'a, 'b> {
    body: &'a mut Body<'b>,
    n: u32,
}

impl Kvs<'_, '_> {
    /// Adds one field with a natively encoded value.
    pub(crate) fn pair_encoded(&mut self, key: &str, value: &dyn entry::Encode) {
        self.body.str(key);
        self.body.encoded(value);
        self.n += 1;
    }

    /// Adds one field.
    pub(crate) fn pair(&mut self, key: &str, value: &log::kv::Value<'_>) {
        self.body.str(key);
        self.body.value(value);
        self.n += 1;
    }
}

impl<'kvs> log::kv::VisitSource<'kvs> for Kvs<'_, '_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.pair(key.as_str(), &value);
        Ok(())
    }
}

/// Encodes a `log::Record` as a DYNAMIC entry.
pub(crate) fn emit_record(record: &log::Record<'_>) {
    let parts = Parts {
        level: level::from_log(record.level()),
        kind: b'L',
        target: record.target(),
        module: record.module_path().unwrap_or(""),
        file: record.file().unwrap_or(""),
        line: record.line().unwrap_or(0),
        error: None,
    };
    emit_parts(
        &parts,
        |body| match record.args().as_str() {
            Some(s) => body.str(s),
            None => body.formatted(|b| {
                let _ = b.write_fmt(*record.args());
            }),
        },
        |kvs| {
            let _ = record.key_values().visit(kvs);
        },
    );
}

/// The fixed parts of a dynamic record.
pub(crate) struct Parts<'a> {
    pub level: u8,
    pub kind: u8,
    pub target: &'a str,
    pub module: &'a str,
    pub file: &'a str,
    pub line: u32,
    pub error: Option<&'a str>,
}

/// Encodes a DYNAMIC entry: `message` writes the message (with
/// [`Body::str`] or [`Body::formatted`]), `fields` adds key/values.
pub(crate) fn emit_parts(
    parts: &Parts<'_>,
    message: impl FnOnce(&mut Body<'_>),
    fields: impl FnOnce(&mut Kvs<'_, '_>),
) {
    let (ts, is_tsc) = crate::clock::raw_now();
    let entered = SCRATCH.try_with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            // Logging from inside a `Display` of a record: dropped, and
            // counted like any other drop.
            local::count_unringed_drop();
            return;
        };
        scratch.clear();
        let mut body = Body(&mut scratch);
        body.0.extend_from_slice(&parts.line.to_ne_bytes());
        body.0.extend_from_slice(&[0; 4]); // field count, below
        body.str(parts.target);
        body.str(parts.module);
        body.str(parts.file);
        message(&mut body);
        let mut kvs = Kvs {
            body: &mut body,
            n: 0,
        };
        fields(&mut kvs);
        let n = kvs.n;
        if let Some(err) = parts.error {
            body.str(err);
        }
        scratch[4..8].copy_from_slice(&n.to_ne_bytes());

        crate::context::with_current(|section| {
            let task_len = section.map_or(0, |s| s.len());
            let len = entry::align8(entry::HEADER + scratch.len() + task_len);
            let mut flags = if is_tsc { entry::FLAG_TSC } else { 0 };
            if section.is_some() {
                flags |= entry::FLAG_TASK;
            }
            if parts.error.is_some() {
                flags |= entry::FLAG_ERROR;
            }
            local::with_entry(len, |buf| {
                let mut w = Cursor::new(buf, 0);
                entry::put_header(
                    &mut w,
                    len,
                    entry::DYNAMIC,
                    parts.level,
                    parts.kind,
                    flags,
                    ts,
                );
                buf[entry::HEADER..entry::HEADER + scratch.len()].copy_from_slice(&scratch);
                if let Some(section) = section {
                    let mut w = Cursor::new(buf, entry::HEADER + scratch.len());
                    section.write(&mut w);
                }
            });
        });
    });
    if entered.is_err() {
        local::count_unringed_drop(); // the thread is exiting
    }
}
