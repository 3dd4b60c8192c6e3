//! Rendering records for readers: deferred messages (a static format string
//! plus typed arguments), whole records as JSON objects with the Python
//! clients' field names ([`json_record`]) and as human-readable lines
//! ([`text_line`]).

use distlog_core::message::{for_each_piece, push_value};
use distlog_core::record::ValueRef;
use distlog_core::view::RecordRef;
use distlog_core::wire::ArchivedSender;
use std::fmt::Write;

// ---------------------------------------------------------------------------
// Whole records: JSON lines and text lines, shared by `distlog tail`/`query`
// and the broker's `jsonl` and `console` processors.
// ---------------------------------------------------------------------------

/// An `io::Write` that appends to a `String`. serde_json writes escaped
/// strings in chunks that end at ASCII characters, so every chunk is valid
/// UTF-8; anything else is refused rather than appended.
struct StrWriter<'a>(&'a mut String);

impl std::io::Write for StrWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = std::str::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.0.push_str(s);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `s` as a JSON string (quoted and escaped by serde_json).
pub fn json_str(s: &str, out: &mut String) {
    let _ = serde_json::to_writer(StrWriter(out), s);
}

/// Appends a value as JSON: numbers as numbers (non-finite floats as
/// `null`, as JSON has no NaN), strings escaped.
pub fn json_value(v: ValueRef<'_>, out: &mut String) {
    match v {
        ValueRef::Null => out.push_str("null"),
        ValueRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        ValueRef::I64(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::U64(u) => {
            let _ = write!(out, "{u}");
        }
        ValueRef::F64(f) => {
            let _ = serde_json::to_writer(StrWriter(out), &f);
        }
        ValueRef::Str(s) => json_str(s, out),
    }
}

/// Appends `time_ns` (nanoseconds since the Unix epoch) as RFC 3339 UTC
/// with microseconds, e.g. `2023-11-14T22:13:20.000001Z`.
pub fn rfc3339(time_ns: u64, out: &mut String) {
    let secs = time_ns / 1_000_000_000;
    let micros = (time_ns % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    if !(0..=9999).contains(&y) {
        // Not four digits (never for a u64 of ns: 1970 to 2554).
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        return;
    }
    // Written digit by digit: this runs once per line of `distlog query`.
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 6, micros);
    // All ASCII digits and separators.
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Nesting depth of a task path: the number of `/` in it (0 for a root task
/// and for records outside a task). `distlog tail` indents by it.
pub fn task_depth(task: &str) -> usize {
    memchr::memchr_iter(b'/', task.as_bytes()).count()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Appends one record as one JSON object (no newline).
///
/// Field names are those of the original Python clients' records (a
/// `logging.LogRecord.__dict__`) where one exists: `name` (target), `msg`
/// (the format string, or the raw message), `args` (deferred arguments, or
/// `null`), `levelname`, `levelno`, `message` (rendered), `created` (float
/// seconds), `msecs`, `hostname`, `process`, `processName`, `thread`,
/// `threadName`, `pathname`, `filename`, `lineno`, `funcName`, `module`,
/// `exc_text` (`null` when none), and `context`: `null` outside a task, else
/// `{"key": "<n>@<path>", ...}` with the record's fields (bound task fields
/// included). distlog's own additions: `time_ns` (exact), `system` and `kind`
/// (topic letters), `seq`, `task` (the path, `null` outside a task) and
/// `fields` (every key/value field; a repeated key keeps its first value).
///
/// ```
/// use distlog_core::record::{Record, Value, Field};
/// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
///
/// let batch = Batch {
///     records: vec![Record {
///         time_ns: 1_700_000_000_250_000_000,
///         level: 30,
///         target: "db".into(),
///         format: "slow {}".into(),
///         args: vec![Value::Str("query".into())],
///         ..Record::default()
///     }],
///     ..Batch::default()
/// };
/// let bytes = encode_batch_to_vec(&batch);
/// let view = access_batch(&bytes).unwrap();
/// let mut line = String::new();
/// distlog_filter::render::json_record(b'P', view.sender(), view.records().next().unwrap(), &mut line);
/// let v: serde_json::Value = serde_json::from_str(&line).unwrap();
/// assert_eq!(v["message"], "slow query");
/// assert_eq!(v["levelname"], "WARNING");
/// assert_eq!(v["created"], 1700000000.25);
/// ```
pub fn json_record(system: u8, sender: &ArchivedSender, rec: RecordRef<'_>, out: &mut String) {
    let time_ns = rec.time_ns();
    out.push_str("{\"name\":");
    json_str(rec.target(), out);
    out.push_str(",\"msg\":");
    if !rec.format().is_empty() {
        json_str(rec.format(), out);
    } else if let Some(ValueRef::Str(m)) = rec.field("msg") {
        json_str(m, out);
    } else {
        json_str(rec.message(), out);
    }
    out.push_str(",\"args\":");
    if rec.format().is_empty() {
        out.push_str("null");
    } else {
        out.push('[');
        for (i, a) in rec.args().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_value(a, out);
        }
        out.push(']');
    }
    let _ = write!(
        out,
        ",\"levelname\":\"{}\",\"levelno\":{},\"message\":",
        distlog_core::record::level::name(rec.level()),
        rec.level()
    );
    if rec.format().is_empty() {
        json_str(rec.message(), out);
    } else {
        let mut m = String::with_capacity(rec.format().len() + 16);
        rec.write_message(&mut m);
        json_str(&m, out);
    }
    let secs = time_ns / 1_000_000_000;
    let frac = time_ns % 1_000_000_000;
    out.push_str(",\"created\":");
    json_value(ValueRef::F64(secs as f64 + frac as f64 / 1e9), out);
    out.push_str(",\"msecs\":");
    json_value(ValueRef::F64(frac as f64 / 1e6), out);
    let _ = write!(out, ",\"time_ns\":{time_ns},\"hostname\":");
    json_str(sender.host.as_str(), out);
    let _ = write!(out, ",\"process\":{},\"processName\":", sender.pid);
    json_str(sender.program.as_str(), out);
    let _ = write!(out, ",\"thread\":{},\"threadName\":", rec.thread_id());
    json_str(rec.thread_name(), out);
    out.push_str(",\"pathname\":");
    json_str(rec.file(), out);
    out.push_str(",\"filename\":");
    json_str(file_name(rec.file()), out);
    let _ = write!(out, ",\"lineno\":{},\"funcName\":", rec.line());
    json_str(rec.func(), out);
    out.push_str(",\"module\":");
    json_str(rec.module(), out);
    out.push_str(",\"exc_text\":");
    if rec.error().is_empty() {
        out.push_str("null");
    } else {
        json_str(rec.error(), out);
    }
    out.push_str(",\"context\":");
    if rec.task().is_empty() {
        out.push_str("null");
    } else {
        let _ = write!(out, "{{\"key\":\"{}@", rec.task_n());
        // The path goes through the escaper (it is untrusted text), minus
        // the quotes the escaper adds around it.
        let at = out.len();
        json_str(rec.task(), out);
        out.remove(at);
        json_fields(rec, out, false);
        out.push('}');
    }
    let _ = write!(
        out,
        ",\"system\":\"{}\",\"kind\":\"{}\",\"seq\":{},\"task\":",
        printable(system),
        printable(rec.kind()),
        rec.seq()
    );
    if rec.task().is_empty() {
        out.push_str("null");
    } else {
        json_str(rec.task(), out);
    }
    out.push_str(",\"fields\":{");
    json_fields(rec, out, true);
    out.push_str("}}");
}

/// A topic letter as a JSON-safe character (`?` for anything unexpected).
fn printable(b: u8) -> char {
    if b.is_ascii_alphanumeric() {
        b as char
    } else {
        '?'
    }
}

/// Appends `"k":v` pairs; `first` says whether the object is empty so far.
/// A key seen before is skipped (the first value wins, as in filters).
fn json_fields(rec: RecordRef<'_>, out: &mut String, mut first: bool) {
    for (key, value) in unique_fields(rec) {
        if key == "key" && !first {
            continue; // inside `context`, `key` is the task key
        }
        if !first {
            out.push(',');
        }
        first = false;
        json_str(key, out);
        out.push(':');
        json_value(value, out);
    }
}

/// The record's fields, each key once with its first value (as the filter
/// language reads them). Linear in the number of fields: the first few are
/// compared directly, past them the keys seen are kept in a set.
pub fn unique_fields<'a>(rec: RecordRef<'a>) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> {
    const FEW: usize = 16;
    let mut seen: Option<std::collections::HashSet<&'a str>> = None;
    rec.fields()
        .enumerate()
        .filter(move |&(i, (key, _))| {
            if i < FEW {
                return !rec.fields().take(i).any(|(k, _)| k == key);
            }
            seen.get_or_insert_with(|| rec.fields().take(i).map(|(k, _)| k).collect())
                .insert(key)
        })
        .map(|(_, f)| f)
}

/// ANSI colour of a level: red for error and worse, yellow for warnings,
/// green for info, blue for debug, dim for trace.
fn level_colour(level: u8) -> &'static str {
    match level {
        0..=9 => "\x1b[2m",
        10..=19 => "\x1b[34m",
        20..=29 => "\x1b[32m",
        30..=39 => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}

/// Appends one record as one human-readable line (no newline):
///
/// ```text
/// 2023-11-14T22:13:20.250000Z WARNING  web-1/4242 3@1b4e…/2 db: slow query rows=1
/// ```
///
/// time (RFC 3339 UTC, microseconds), level (coloured when `colour`),
/// host/pid, the task key (when in a task), target, message, then the
/// fields as `key=value` (strings quoted when they contain spaces, quotes or
/// control characters) and `error="..."` when the record carries one.
/// Control characters in the message are escaped, so a record is always
/// one line.
pub fn text_line(
    system: u8,
    sender: &ArchivedSender,
    rec: RecordRef<'_>,
    colour: bool,
    out: &mut String,
) {
    let _ = system;
    if colour {
        out.push_str("\x1b[2m");
    }
    rfc3339(rec.time_ns(), out);
    if colour {
        out.push_str("\x1b[0m");
    }
    out.push(' ');
    let name = distlog_core::record::level::name(rec.level());
    if colour {
        out.push_str(level_colour(rec.level()));
    }
    // Left-aligned in 8 columns (the longest name, CRITICAL, is 8).
    out.push_str(name);
    out.push_str(&"        "[name.len().min(8)..]);
    if colour {
        out.push_str("\x1b[0m");
    }
    out.push(' ');
    push_escaped(sender.host.as_str(), out);
    out.push('/');
    push_value(ValueRef::U64(sender.pid.to_native().into()), out);
    out.push(' ');
    if !rec.task().is_empty() {
        if colour {
            out.push_str("\x1b[36m");
        }
        push_value(ValueRef::U64(rec.task_n().into()), out);
        out.push('@');
        push_escaped(rec.task(), out);
        if colour {
            out.push_str("\x1b[0m");
        }
        out.push(' ');
    }
    if !rec.target().is_empty() {
        push_escaped(rec.target(), out);
        out.push_str(": ");
    }
    if rec.format().is_empty() {
        push_escaped(rec.message(), out);
    } else {
        // Piece by piece, straight into the line: escaping each piece is
        // escaping the message (pieces end on character boundaries).
        let _ = for_each_piece::<()>(rec.format(), rec.args(), |p| {
            push_escaped(p, out);
            std::ops::ControlFlow::Continue(())
        });
    }
    for (key, value) in rec.fields() {
        out.push(' ');
        if colour {
            out.push_str("\x1b[2m");
        }
        push_escaped(key, out);
        out.push('=');
        if colour {
            out.push_str("\x1b[0m");
        }
        text_value(value, out);
    }
    if !rec.error().is_empty() {
        out.push_str(if colour { " \x1b[31merror=" } else { " error=" });
        text_value(ValueRef::Str(rec.error()), out);
        if colour {
            out.push_str("\x1b[0m");
        }
    }
}

/// A field value in a text line: bare when it is one plain word, else
/// quoted with escapes.
fn text_value(v: ValueRef<'_>, out: &mut String) {
    match v {
        ValueRef::Str(s)
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || must_escape(c) || c == '"' || c == '=') =>
        {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if must_escape(c) => push_escape(c, out),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        other => push_value(other, out),
    }
}

/// Whether a character is escaped in text output: control characters
/// (ASCII C0 and DEL, and the C1 controls U+0080 to U+009F, which some
/// terminals obey) and the bidirectional formatting characters that can
/// make a terminal show text in another order than it was written (U+061C,
/// U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069).
#[inline]
pub fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Appends the escape of one character: `\n`, `\t`, `\r`, else `\u{..}`.
fn push_escape(c: char, out: &mut String) {
    let _ = write!(out, "{}", c.escape_default());
}

/// Appends `s` with every character [`must_escape`] names escaped, so
/// untrusted text is always one line and cannot steer a terminal.
pub fn push_escaped(s: &str, out: &mut String) {
    // Plain ASCII without controls (nearly every record) is copied as is.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if must_escape(c) {
            push_escape(c, out);
        } else {
            out.push(c);
        }
    }
}

/// `s` with [`push_escaped`]'s escapes, borrowed when nothing needs one.
pub fn escaped(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(s, &mut out);
    std::borrow::Cow::Owned(out)
}

/// The text renderer before it was made faster (issue 17): the new one must
/// write the same bytes.
#[cfg(test)]
mod before {
    use super::*;

    fn old_rfc3339(time_ns: u64, out: &mut String) {
        let secs = time_ns / 1_000_000_000;
        let micros = (time_ns % 1_000_000_000) / 1_000;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
    }

    fn old_text_value(v: ValueRef<'_>, out: &mut String) {
        match v {
            ValueRef::Str(s)
                if s.is_empty()
                    || s.chars()
                        .any(|c| c.is_whitespace() || must_escape(c) || c == '"' || c == '=') =>
            {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if must_escape(c) => push_escape(c, out),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }

    pub fn old_text_line(
        system: u8,
        sender: &ArchivedSender,
        rec: RecordRef<'_>,
        colour: bool,
        out: &mut String,
    ) {
        let _ = system;
        if colour {
            out.push_str("\x1b[2m");
        }
        old_rfc3339(rec.time_ns(), out);
        if colour {
            out.push_str("\x1b[0m");
        }
        out.push(' ');
        let name = distlog_core::record::level::name(rec.level());
        if colour {
            out.push_str(level_colour(rec.level()));
        }
        let _ = write!(out, "{name:<8}");
        if colour {
            out.push_str("\x1b[0m");
        }
        out.push(' ');
        push_escaped(sender.host.as_str(), out);
        let _ = write!(out, "/{} ", sender.pid);
        if !rec.task().is_empty() {
            if colour {
                out.push_str("\x1b[36m");
            }
            let _ = write!(out, "{}@", rec.task_n());
            push_escaped(rec.task(), out);
            if colour {
                out.push_str("\x1b[0m");
            }
            out.push(' ');
        }
        if !rec.target().is_empty() {
            push_escaped(rec.target(), out);
            out.push_str(": ");
        }
        if rec.format().is_empty() {
            push_escaped(rec.message(), out);
        } else {
            let mut m = String::with_capacity(rec.format().len() + 16);
            rec.write_message(&mut m);
            push_escaped(&m, out);
        }
        for (key, value) in rec.fields() {
            out.push(' ');
            if colour {
                out.push_str("\x1b[2m");
            }
            push_escaped(key, out);
            out.push('=');
            if colour {
                out.push_str("\x1b[0m");
            }
            old_text_value(value, out);
        }
        if !rec.error().is_empty() {
            out.push_str(if colour { " \x1b[31merror=" } else { " error=" });
            old_text_value(ValueRef::Str(rec.error()), out);
            if colour {
                out.push_str("\x1b[0m");
            }
        }
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use distlog_core::record::{Field, Record, Value};
    use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, Sender};

    /// Runs `f` on `rec`, encoded and read back.
    fn with_record<R>(rec: Record, f: impl Fn(&ArchivedSender, RecordRef<'_>) -> R) -> R {
        let batch = Batch {
            sender: Sender {
                host: "web-1".into(),
                pid: 4242,
                program: "api".into(),
                start_ns: 1,
                instance: 9,
            },
            first_seq: rec.seq,
            dropped: 0,
            records: vec![rec],
        };
        let body = encode_batch_to_vec(&batch);
        let view = access_batch(&body).unwrap();
        f(view.sender(), view.records().next().unwrap())
    }

    fn json(rec: Record) -> serde_json::Value {
        with_record(rec, |s, r| {
            let mut line = String::new();
            json_record(b'P', s, r, &mut line);
            assert!(!line.contains('\n'), "{line}");
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
    }

    fn text(rec: Record, colour: bool) -> String {
        with_record(rec, |s, r| {
            let mut line = String::new();
            text_line(b'P', s, r, colour, &mut line);
            line
        })
    }

    #[test]
    fn json_escapes_hostile_text() {
        let nasty = "quote \" backslash \\ newline \n tab \t nul \0 bell \x07 é 🦀";
        let v = json(Record {
            time_ns: 1_700_000_000_000_000_000,
            level: 40,
            target: nasty.into(),
            message: nasty.into(),
            error: "Traceback\n  boom".into(),
            fields: vec![Field {
                key: nasty.into(),
                value: Value::Str(nasty.into()),
            }],
            task: "a\"b/1".into(),
            task_n: 2,
            ..Record::default()
        });
        assert_eq!(v["name"], nasty);
        assert_eq!(v["message"], nasty);
        assert_eq!(v["msg"], nasty);
        assert_eq!(v["exc_text"], "Traceback\n  boom");
        assert_eq!(v["fields"][nasty], nasty);
        assert_eq!(v["context"]["key"], "2@a\"b/1");
        assert_eq!(v["levelname"], "ERROR");
        assert_eq!(v["args"], serde_json::Value::Null);
    }

    #[test]
    fn json_deferred_format_and_typed_values() {
        let v = json(Record {
            time_ns: 1_700_000_000_000_001_000,
            seq: 7,
            level: 30,
            kind: b'L',
            format: "slow {} took {} ms ({})".into(),
            args: vec![
                Value::Str("query".into()),
                Value::F64(12.5),
                Value::Bool(true),
            ],
            fields: vec![
                Field {
                    key: "n".into(),
                    value: Value::U64(u64::MAX),
                },
                Field {
                    key: "x".into(),
                    value: Value::F64(f64::NAN),
                },
                Field {
                    key: "n".into(),
                    value: Value::I64(-1),
                },
            ],
            ..Record::default()
        });
        assert_eq!(v["message"], "slow query took 12.5 ms (true)");
        assert_eq!(v["msg"], "slow {} took {} ms ({})");
        assert_eq!(v["args"], serde_json::json!(["query", 12.5, true]));
        assert_eq!(v["fields"]["n"], u64::MAX);
        assert_eq!(v["fields"]["x"], serde_json::Value::Null);
        assert_eq!(v["context"], serde_json::Value::Null);
        assert_eq!(v["task"], serde_json::Value::Null);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["time_ns"], 1_700_000_000_000_001_000u64);
    }

    #[test]
    fn text_line_plain_and_coloured() {
        let rec = Record {
            time_ns: 1_700_000_000_250_000_000,
            level: 30,
            target: "app::db".into(),
            format: "slow {}".into(),
            args: vec![Value::Str("query".into())],
            fields: vec![
                Field {
                    key: "rows".into(),
                    value: Value::U64(1),
                },
                Field {
                    key: "sql".into(),
                    value: Value::Str("select 1".into()),
                },
            ],
            task: "1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1".into(),
            task_n: 3,
            ..Record::default()
        };
        assert_eq!(
            text(rec.clone(), false),
            "2023-11-14T22:13:20.250000Z WARNING  web-1/4242 \
             3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1 app::db: slow query rows=1 sql=\"select 1\""
        );
        let coloured = text(rec, true);
        assert!(coloured.contains("\x1b[33mWARNING"), "{coloured:?}");
        let plain = text(
            Record {
                message: "two\nlines".into(),
                error: "boom".into(),
                ..Record::default()
            },
            false,
        );
        assert_eq!(
            plain,
            "1970-01-01T00:00:00.000000Z TRACE    web-1/4242 two\\nlines error=boom"
        );
    }

    #[test]
    fn depth_and_dates() {
        assert_eq!(task_depth(""), 0);
        assert_eq!(task_depth("1b4e28ba"), 0);
        assert_eq!(task_depth("1b4e28ba/2/1"), 2);
        let mut s = String::new();
        rfc3339(951_782_400_000_000_000, &mut s);
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
        s.clear();
        rfc3339(u64::MAX, &mut s);
        assert_eq!(s, "2554-07-21T23:34:33.709551Z");
    }

    #[test]
    fn text_lines_are_byte_identical_to_the_renderer_before() {
        let seed = std::cell::Cell::new(0x853c_49e6_748f_ea9bu64);
        let next = || {
            let mut x = seed.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            seed.set(x);
            x
        };
        let texts = [
            "",
            "plain",
            "two\nlines",
            "tab\there",
            "quote \" eq =",
            "é 🦀 \u{202E}bidi",
            "\u{85}c1",
            "{}",
            "a b",
        ];
        let values = |n: u64, t: &str| match n % 7 {
            0 => Value::Null,
            1 => Value::Bool(n % 2 == 0),
            2 => Value::I64([i64::MIN, -7, 0, 42][(n / 7 % 4) as usize]),
            3 => Value::U64([0, 1, u64::MAX][(n / 7 % 3) as usize]),
            4 => {
                Value::F64([1.5, -0.0, 1e300, f64::NAN, 1e-7, f64::INFINITY][(n / 7 % 6) as usize])
            }
            _ => Value::Str(t.into()),
        };
        for i in 0..3_000u64 {
            let pick = || texts[(next() % texts.len() as u64) as usize];
            let (format, message) = if i % 2 == 0 {
                (format!("{} {{}} x {{:?}}{}", pick(), pick()), String::new())
            } else {
                (String::new(), pick().to_owned())
            };
            let args = (0..next() % 4).map(|_| values(next(), pick())).collect();
            let fields = (0..next() % 4)
                .map(|_| Field {
                    key: pick().into(),
                    value: values(next(), pick()),
                })
                .collect();
            let rec = Record {
                time_ns: [0, 1_700_000_000_250_000_123, u64::MAX, next()][(i % 4) as usize],
                level: (next() % 64) as u8,
                target: pick().into(),
                format,
                message,
                args,
                fields,
                error: if i % 3 == 0 {
                    pick().into()
                } else {
                    String::new()
                },
                task: if i % 5 == 0 {
                    format!("{}/2", pick())
                } else {
                    String::new()
                },
                task_n: (next() % 1000) as u32,
                ..Record::default()
            };
            for colour in [false, true] {
                let (new, old) = with_record(rec.clone(), |s, r| {
                    let (mut a, mut b) = (String::new(), String::new());
                    text_line(b'P', s, r, colour, &mut a);
                    before::old_text_line(b'P', s, r, colour, &mut b);
                    (a, b)
                });
                assert_eq!(new, old);
            }
        }
    }
}
