//! The original Python clients' records (PyPI `distlog` 0.1.dev0): one
//! `logging.LogRecord.__dict__` per message, plus `hostname` and `context`.
//!
//! [`decode_json`] reads the JSON form (`xLJ`) into a [`Sender`] and a
//! [`Record`]; [`to_batch`] wraps one into a one-record batch (sender
//! `instance` 0: no sequence tracking), so the broker stores and filters
//! Python and Rust records alike. [`decode_pickle`] reads the pickle form
//! (`xLP`) as plain data only, never importing or calling anything, and
//! maps it the same way (see the [`pickle`] module for how Python types
//! map and which bounds apply).
//!
//! ```
//! let body = br#"{"name": "app.db", "msg": "slow %s", "args": null, "levelno": 30,
//!   "levelname": "WARNING", "created": 1700000000.25, "message": "slow query",
//!   "hostname": "web-1", "process": 77, "processName": "MainProcess",
//!   "context": {"key": "3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2", "user": "alice"}}"#;
//! let (sender, rec) = distlogd::python::decode_json(body).unwrap();
//! assert_eq!(sender.host, "web-1");
//! assert_eq!(rec.key().unwrap(), "3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2");
//! assert_eq!(rec.message, "slow query");
//! ```

mod error;
mod json;
mod logrecord;
pub mod pickle;

use error::ErrorKind;
pub use error::{IngestError, MAX_BODY};

pub use json::decode_json;
pub use pickle::decode_pickle;

use distlog_core::record::{Record, ValueRef};
use distlog_core::wire::{put_value, Sender, Site, Thread, WireBatch, WireRecord, PREFIX_LEN};
use rkyv::util::AlignedVec;

/// Decodes one Python record frame by its topic's encoding letter:
/// [`distlog_core::wire::ENCODING_JSON`] or [`distlog_core::wire::ENCODING_PICKLE`].
pub fn decode(encoding: u8, body: &[u8]) -> Result<(Sender, Record), IngestError> {
    match encoding {
        distlog_core::wire::ENCODING_JSON => decode_json(body),
        distlog_core::wire::ENCODING_PICKLE => decode_pickle(body),
        _ => Err(IngestError::new(ErrorKind::Unsupported)),
    }
}

/// Wraps one converted record into an encoded one-record batch: the bytes
/// [`distlog_core::wire::encode_batch_to_vec`] writes for a
/// [`distlog_core::wire::Batch`] of this one record (`first_seq` 0,
/// nothing dropped), made by moving the record's
/// strings into the archived form instead of copying them, into a buffer
/// sized for them up front.
pub fn to_batch(sender: Sender, record: Record) -> AlignedVec {
    let Record {
        time_ns,
        seq,
        level,
        kind,
        line,
        task_n,
        thread_id,
        thread_name,
        target,
        module,
        file,
        func,
        message,
        format,
        args,
        fields,
        task,
        error,
    } = record;
    let mut values = Vec::new();
    for v in args.iter().chain(fields.iter().map(|f| &f.value)) {
        put_value(&mut values, ValueRef::from(v));
    }
    let keys: Vec<String> = fields.into_iter().map(|f| f.key).collect();
    let batch = WireBatch {
        sender,
        first_seq: 0,
        dropped: 0,
        sites: vec![Site {
            target,
            module,
            file,
            func,
            line,
            format,
            args: args.len() as u32,
            keys,
        }],
        threads: vec![Thread {
            id: thread_id,
            name: thread_name,
        }],
        records: vec![WireRecord {
            time_ns,
            seq,
            level,
            kind,
            site: 0,
            thread: 0,
            task_n,
            line: 0,
            task,
            message,
            error,
            values,
        }],
    };
    let capacity = archive_capacity(&batch);
    let mut out = AlignedVec::with_capacity(capacity);
    batch.encode_into(&mut out);
    debug_assert!(out.len() <= capacity, "{} > {capacity}", out.len());
    out
}

/// An upper bound on the encoded size of a one-record batch, so that
/// encoding it never reallocates: the archive holds each string once (up
/// to 8 bytes inline, else a relative pointer plus its bytes out of line,
/// padded), each fixed-size struct once, and alignment padding.
fn archive_capacity(b: &WireBatch) -> usize {
    let padded = |s: &String| s.len() + 16;
    let site = |s: &Site| {
        [&s.target, &s.module, &s.file, &s.func, &s.format]
            .into_iter()
            .chain(&s.keys)
            .map(padded)
            .sum::<usize>()
    };
    let record = |r: &WireRecord| {
        [&r.task, &r.message, &r.error]
            .into_iter()
            .map(padded)
            .sum::<usize>()
            + r.values.len()
            + 8
    };
    PREFIX_LEN
        + FIXED_ARCHIVE_BYTES
        + padded(&b.sender.host)
        + padded(&b.sender.program)
        + b.sites.iter().map(site).sum::<usize>()
        + b.threads.iter().map(|t| padded(&t.name)).sum::<usize>()
        + b.records.iter().map(record).sum::<usize>()
}

/// The archived batch's fixed-size parts for one record (batch, sender,
/// site, thread, record and their vectors' headers), with room for
/// alignment: an upper bound, checked by `to_batch_matches_encode_batch`.
const FIXED_ARCHIVE_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};

    #[test]
    fn json_python_record_with_context() {
        // What the broker stores for a Python client's JSON record.
        let (sender, rec) = super::decode_json(
            br#"{"name": "shop.cart", "msg": "added %s", "args": ["x"], "levelname": "INFO",
            "levelno": 20, "pathname": "/app/cart.py", "filename": "cart.py", "module": "cart",
            "exc_text": null, "lineno": 41, "funcName": "add", "created": 1700000000.5,
            "msecs": 500.0, "thread": 140001, "threadName": "MainThread",
            "processName": "MainProcess", "process": 4321, "message": "added x",
            "hostname": "shop-1", "order_id": 17,
            "context": {"key": "4@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1/2", "user": "bob"}}"#,
        )
        .unwrap();
        let batch = Batch {
            sender,
            records: vec![rec],
            ..Batch::default()
        };
        let bytes = encode_batch_to_vec(&batch);
        let view = access_batch(&bytes).unwrap();
        let mut line = String::new();
        distlog_filter::render::json_record(
            b'P',
            view.sender(),
            view.records().next().unwrap(),
            &mut line,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["name"], "shop.cart");
        assert_eq!(v["msg"], "added %s");
        assert_eq!(v["message"], "added x");
        assert_eq!(v["levelname"], "INFO");
        assert_eq!(v["levelno"], 20);
        assert_eq!(v["created"], 1700000000.5);
        assert_eq!(v["msecs"], 500.0);
        assert_eq!(v["hostname"], "shop-1");
        assert_eq!(v["process"], 4321);
        assert_eq!(v["processName"], "MainProcess");
        assert_eq!(v["thread"], 140001);
        assert_eq!(v["threadName"], "MainThread");
        assert_eq!(v["pathname"], "/app/cart.py");
        assert_eq!(v["filename"], "cart.py");
        assert_eq!(v["lineno"], 41);
        assert_eq!(v["funcName"], "add");
        assert_eq!(v["module"], "cart");
        assert_eq!(v["exc_text"], serde_json::Value::Null);
        assert_eq!(
            v["context"]["key"],
            "4@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1/2"
        );
        assert_eq!(v["context"]["user"], "bob");
        assert_eq!(v["fields"]["order_id"], 17);
        assert_eq!(v["task"], "1b4e28ba-2fa1-11d2-883f-0016d3cca427/1/2");
        assert_eq!(v["system"], "P");
        assert_eq!(v["kind"], "L");
    }
}
