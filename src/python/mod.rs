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
//! let (sender, rec) = distlog::python::decode_json(body).unwrap();
//! assert_eq!(sender.host, "web-1");
//! assert_eq!(rec.key().unwrap(), "3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2");
//! assert_eq!(rec.message, "slow query");
//! ```

mod json;
mod logrecord;
pub mod pickle;

pub use json::decode_json;
pub use pickle::decode_pickle;

use crate::record::Record;
use crate::wire::{Batch, Sender};
use rkyv::util::AlignedVec;
use std::fmt;

/// The largest Python record body accepted (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// Why a Python record was rejected. [`IngestError::reason`] is a stable
/// label for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestError {
    kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    TooLarge(usize),
    Syntax(String),
    NotObject,
    MissingField(&'static str),
    BadType(&'static str),
    Unsupported,
    PickleSyntax(String),
    PickleForbidden(&'static str, usize),
    PickleUnsupported(String),
    PickleLimit(&'static str),
    PickleNotDict,
}

impl IngestError {
    fn new(kind: ErrorKind) -> Self {
        IngestError { kind }
    }

    /// `too_large`, `json_syntax`, `json_not_object`, `missing_field`,
    /// `bad_type`, `unsupported_encoding`, `pickle_syntax` (malformed or
    /// truncated), `pickle_forbidden` (an opcode that would import, construct
    /// or call), `pickle_unsupported` (a harmless opcode or protocol not
    /// read), `pickle_limit` (a bound exceeded) or `pickle_not_dict`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::TooLarge(_) => "too_large",
            ErrorKind::Syntax(_) => "json_syntax",
            ErrorKind::NotObject => "json_not_object",
            ErrorKind::MissingField(_) => "missing_field",
            ErrorKind::BadType(_) => "bad_type",
            ErrorKind::Unsupported => "unsupported_encoding",
            ErrorKind::PickleSyntax(_) => "pickle_syntax",
            ErrorKind::PickleForbidden(..) => "pickle_forbidden",
            ErrorKind::PickleUnsupported(_) => "pickle_unsupported",
            ErrorKind::PickleLimit(_) => "pickle_limit",
            ErrorKind::PickleNotDict => "pickle_not_dict",
        }
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::TooLarge(n) => write!(
                f,
                "Python record of {n} bytes exceeds the {MAX_BODY}-byte limit"
            ),
            ErrorKind::Syntax(e) => write!(f, "Python JSON record does not parse: {e}"),
            ErrorKind::NotObject => {
                f.write_str("Python JSON record is not an object (expected a LogRecord dict)")
            }
            ErrorKind::MissingField(k) => {
                write!(f, "Python record lacks the {k:?} field every LogRecord has")
            }
            ErrorKind::BadType(k) => write!(f, "Python record field {k:?} has the wrong type"),
            ErrorKind::Unsupported => f.write_str("this Python record encoding is not decoded"),
            ErrorKind::PickleSyntax(e) => write!(f, "Python pickle record is malformed {e}"),
            ErrorKind::PickleForbidden(op, at) => write!(
                f,
                "Python pickle record uses {op} at byte {at}, which would import, construct \
                 or call; only plain data is accepted"
            ),
            ErrorKind::PickleUnsupported(what) => {
                write!(f, "Python pickle record uses {what}, which is not read")
            }
            ErrorKind::PickleLimit(what) => {
                write!(f, "Python pickle record exceeds the limit on {what}")
            }
            ErrorKind::PickleNotDict => {
                f.write_str("Python pickle record is not a dict (expected a LogRecord dict)")
            }
        }
    }
}

impl std::error::Error for IngestError {}

/// Decodes one Python record frame by its topic's encoding letter:
/// [`crate::wire::ENCODING_JSON`] or [`crate::wire::ENCODING_PICKLE`].
pub fn decode(encoding: u8, body: &[u8]) -> Result<(Sender, Record), IngestError> {
    match encoding {
        crate::wire::ENCODING_JSON => decode_json(body),
        crate::wire::ENCODING_PICKLE => decode_pickle(body),
        _ => Err(IngestError::new(ErrorKind::Unsupported)),
    }
}

/// Wraps one converted record into an encoded one-record batch.
pub fn to_batch(sender: Sender, record: Record) -> AlignedVec {
    crate::wire::encode_batch_to_vec(&Batch {
        sender,
        first_seq: 0,
        dropped: 0,
        records: vec![record],
    })
}
