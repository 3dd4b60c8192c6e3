//! Why a Python record was refused, and the size bound checked first.

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
pub(super) enum ErrorKind {
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
    pub(super) fn new(kind: ErrorKind) -> Self {
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
