//! The record model: what one log (or performance) record carries.
//!
//! [`Record`] is the owned form: what the builder
//! [`Batch`](crate::wire::Batch) holds and what reading a batch back gives
//! ([`crate::view::RecordRef::to_record`]). On the wire a batch writes each
//! call site and thread once and its records index them
//! ([`crate::wire::WireBatch`]); readers see a record joined with them
//! through [`crate::view::RecordRef`]. Process-level facts (host, pid,
//! program) live once per batch in the [`Sender`](crate::wire::Sender)
//! header, not in every record.
//!
//! The model can express everything the original Python clients send: the
//! `logging.LogRecord` fields map as follows.
//!
//! | Python field                    | distlog                                      |
//! |---------------------------------|----------------------------------------------|
//! | `created`, `msecs`              | [`Record::time_ns`]                          |
//! | `levelno`, `levelname`          | [`Record::level`] (numeric, Python scale)    |
//! | `name`                          | [`Record::target`]                           |
//! | `message` (`msg % args`)        | [`Record::message`]                          |
//! | `msg` when it differs, `args`   | fields `msg`, `args`                         |
//! | `pathname` / `filename`         | [`Record::file`] / derived                   |
//! | `module`, `funcName`, `lineno`  | [`Record::module`], [`Record::func`], [`Record::line`] |
//! | `thread`, `threadName`          | [`Record::thread_id`], [`Record::thread_name`] |
//! | `process`, `processName`, `hostname` | batch [`Sender`](crate::wire::Sender)   |
//! | `exc_text`, `stack_info`        | [`Record::error`], field `stack_info`        |
//! | `context.key`                   | [`Record::task`] and [`Record::task_n`]      |
//! | other `context` entries         | [`Record::fields`]                           |
//! | `relativeCreated`, `asctime`    | derived from the time                        |

/// Numeric severity on Python's scale, so that Python's custom levels survive.
///
/// Rust's `log` levels map to: trace 5, debug 10, info 20, warn 30, error 40.
/// Python's CRITICAL is 50.
pub mod level {
    /// `TRACE` (Rust only).
    pub const TRACE: u8 = 5;
    /// `DEBUG`.
    pub const DEBUG: u8 = 10;
    /// `INFO`.
    pub const INFO: u8 = 20;
    /// `WARNING` / `warn`.
    pub const WARN: u8 = 30;
    /// `ERROR`.
    pub const ERROR: u8 = 40;
    /// `CRITICAL` (Python only).
    pub const CRITICAL: u8 = 50;

    /// Python's `levelname` for a numeric level (levels between the standard
    /// ones take the name of the one below, as a severity class).
    pub fn name(level: u8) -> &'static str {
        match level {
            0..=9 => "TRACE",
            10..=19 => "DEBUG",
            20..=29 => "INFO",
            30..=39 => "WARNING",
            40..=49 => "ERROR",
            _ => "CRITICAL",
        }
    }

    /// Parses a level name (case-insensitive; `warn` and `warning`,
    /// `fatal` and `critical` are synonyms) or a number.
    pub fn parse(s: &str) -> Option<u8> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" => TRACE,
            "debug" => DEBUG,
            "info" => INFO,
            "warn" | "warning" => WARN,
            "error" => ERROR,
            "critical" | "fatal" => CRITICAL,
            other => return other.parse().ok(),
        })
    }

    /// Converts a `log` crate level.
    pub fn from_log(level: log::Level) -> u8 {
        match level {
            log::Level::Error => ERROR,
            log::Level::Warn => WARN,
            log::Level::Info => INFO,
            log::Level::Debug => DEBUG,
            log::Level::Trace => TRACE,
        }
    }
}

/// What a record is: an ordinary log record, or a performance measurement.
pub mod kind {
    /// A log record (topic kind `L`).
    pub const LOG: u8 = b'L';
    /// A performance / metric record (topic kind `P`).
    pub const PERF: u8 = b'P';
}

/// A typed value: a key/value field, or an argument of a deferred format.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (Python `None`, JSON `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A string.
    Str(String),
}

/// A named field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// One record, owned. See the module docs for how Python fields map here.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The sender's sequence number: contiguous per sending process.
    pub seq: u64,
    /// Numeric severity on Python's scale (see [`level`]).
    pub level: u8,
    /// [`kind::LOG`] or [`kind::PERF`].
    pub kind: u8,
    /// Source line, 0 when unknown.
    pub line: u32,
    /// The record counter `n` within its task (the `n` of `"<n>@<path>"`);
    /// 0 outside a task.
    pub task_n: u32,
    /// OS thread id (Python: `thread`).
    pub thread_id: u64,
    /// Thread name, empty when unnamed.
    pub thread_name: String,
    /// Target / logger name (Python: `name`).
    pub target: String,
    /// Module path.
    pub module: String,
    /// Source file path.
    pub file: String,
    /// Function name (Python: `funcName`), empty when unknown.
    pub func: String,
    /// The message. Empty when the message is deferred: then it is
    /// [`Record::format`] rendered with [`Record::args`].
    pub message: String,
    /// A static format string with `{}` placeholders, when formatting was
    /// deferred to readers; empty otherwise.
    pub format: String,
    /// Arguments of [`Record::format`], in order.
    pub args: Vec<Value>,
    /// Typed key/values: the record's own, then its task's bound fields.
    pub fields: Vec<Field>,
    /// Task path (`<root uuid>/<n>/<n>...`), empty outside a task.
    pub task: String,
    /// Error or exception text (Python: `exc_text`), empty when none.
    pub error: String,
}

impl Record {
    /// The task key `"<n>@<path>"`, or `None` outside a task.
    pub fn key(&self) -> Option<String> {
        (!self.task.is_empty()).then(|| format!("{}@{}", self.task_n, self.task))
    }
}

/// A borrowed view of a value, owned or read off the wire: what readers
/// format and compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A string.
    Str(&'a str),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::I64(i) => ValueRef::I64(*i),
            Value::U64(u) => ValueRef::U64(*u),
            Value::F64(f) => ValueRef::F64(*f),
            Value::Str(s) => ValueRef::Str(s),
        }
    }
}

impl std::fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueRef::Null => f.write_str("null"),
            ValueRef::Bool(b) => write!(f, "{b}"),
            ValueRef::I64(i) => write!(f, "{i}"),
            ValueRef::U64(u) => write!(f, "{u}"),
            // Very large and very small magnitudes in exponent form
            // (`1e300`, not 301 digits): a value's text stays short.
            ValueRef::F64(x) if *x != 0.0 && (x.abs() >= 1e16 || x.abs() < 1e-5) => {
                write!(f, "{x:e}")
            }
            ValueRef::F64(x) => write!(f, "{x}"),
            ValueRef::Str(s) => f.write_str(s),
        }
    }
}

impl ValueRef<'_> {
    /// Converts to an owned [`Value`].
    pub fn to_owned_value(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::I64(i) => Value::I64(i),
            ValueRef::U64(u) => Value::U64(u),
            ValueRef::F64(f) => Value::F64(f),
            ValueRef::Str(s) => Value::Str(s.to_owned()),
        }
    }
}
