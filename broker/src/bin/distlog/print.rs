//! How `distlog query` prints records: text lines written straight into a
//! byte buffer.
//!
//! The format is [`distlog_filter::render::text_line`]'s (part of the
//! stable command line, docs/DESIGN.md), and so are the bytes: this module
//! is a faster way to write the same line for the records nearly every
//! store holds, where every string is printable ASCII. For those it writes
//! each part once into the piece's buffer ([`Lines`]) with no `std::fmt`,
//! no UTF-8 checks (every byte comes from a `&str` or was checked to be
//! printable ASCII) and no per-record allocation: the time's date and
//! seconds are kept from the line before (records of one second share
//! them), a deferred message's format is split once and kept, its
//! arguments and the fields are read from the record's raw values,
//! numbers are written two digits at a time. Any other record (a string
//! with a control character or any non-ASCII byte, which the renderer
//! escapes character by character, or values the core's reader would
//! read another way) is rendered by `text_line` itself, after the line's
//! partial text is cut, so escaping has one implementation. Either way a
//! line costs time linear in the record's size: the fast pass reads each
//! byte at most twice before giving up.
//!
//! Colour (a terminal) and JSON lines are the filter crate's renderers'
//! (JSON lines written by `json_record` straight into the buffer).

use distlog_core::message::{for_each_part, push_value, FormatPart};
use distlog_core::record::{level, ValueRef};
use distlog_core::view::RecordRef;
use distlog_core::wire::{tag, ArchivedSender};
use distlog_filter::render;
use std::ops::ControlFlow;

/// Output lines of one piece of the scan, and what writing them keeps from
/// line to line.
#[derive(Default)]
pub struct Lines {
    /// The text: whole lines, each ending in `\n`; always UTF-8. Empty
    /// while `json` holds the lines.
    buf: Vec<u8>,
    /// The text when every line so far is a JSON line: `json_record`
    /// writes a `String`, so JSON lines go straight into one (over
    /// `buf`'s allocation) instead of through `scratch`.
    json: String,
    /// The last second written and its RFC 3339 text up to and including
    /// the `.` before the microseconds (`2023-11-14T22:13:20.`).
    second: Option<(u64, [u8; SECOND_TEXT])>,
    /// The last level written and its name, padded to 9 columns.
    level: Option<(u8, [u8; 9])>,
    /// Deferred messages' formats split into parts, the last few seen.
    formats: Formats,
    /// A reusable line for the renderers that write a `String`.
    scratch: String,
}

/// Length of `YYYY-MM-DDTHH:MM:SS.`.
const SECOND_TEXT: usize = 20;

impl Lines {
    /// An empty buffer that reuses `buf`'s allocation.
    pub fn with_buffer(mut buf: Vec<u8>) -> Lines {
        buf.clear();
        Lines {
            buf,
            ..Lines::default()
        }
    }

    /// The lines written so far.
    pub fn bytes(&self) -> &[u8] {
        if self.json.is_empty() {
            &self.buf
        } else {
            self.json.as_bytes()
        }
    }

    /// The buffer, for [`Lines::with_buffer`] to reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        if self.json.is_empty() {
            self.buf
        } else {
            self.json.into_bytes()
        }
    }

    /// Appends `s` (whole lines).
    pub fn push_str(&mut self, s: &str) {
        self.bytes_mode().extend_from_slice(s.as_bytes());
    }

    /// `buf`, holding every line so far (moved from `json` if there).
    #[inline]
    fn bytes_mode(&mut self) -> &mut Vec<u8> {
        if !self.json.is_empty() {
            self.buf = std::mem::take(&mut self.json).into_bytes();
        }
        &mut self.buf
    }

    /// Appends one record as `text_line` writes it, without colour, and a
    /// newline.
    pub fn text(&mut self, system: u8, sender: &ArchivedSender, rec: RecordRef<'_>) {
        let start = self.bytes_mode().len();
        if self.plain_line(sender, rec).is_none() {
            // A string the renderer escapes (or a time it writes another
            // way): the whole line from the renderer.
            self.buf.truncate(start);
            self.scratch.clear();
            render::text_line(system, sender, rec, false, &mut self.scratch);
            self.buf.extend_from_slice(self.scratch.as_bytes());
        }
        self.buf.push(b'\n');
    }

    /// Appends one record as `text_line` writes it with colour, and a
    /// newline.
    pub fn coloured(&mut self, system: u8, sender: &ArchivedSender, rec: RecordRef<'_>) {
        self.scratch.clear();
        render::text_line(system, sender, rec, true, &mut self.scratch);
        self.bytes_mode();
        self.buf.extend_from_slice(self.scratch.as_bytes());
        self.buf.push(b'\n');
    }

    /// Appends one record as a JSON object (`json_record`) and a newline.
    pub fn json(&mut self, system: u8, sender: &ArchivedSender, rec: RecordRef<'_>) {
        if self.json.is_empty() && self.buf.is_empty() {
            // Take `buf`'s allocation: an empty Vec is valid UTF-8.
            let buf = std::mem::take(&mut self.buf);
            self.json = String::from_utf8(buf).unwrap_or_default();
        }
        if self.buf.is_empty() {
            render::json_record(system, sender, rec, &mut self.json);
            self.json.push('\n');
        } else {
            // Text lines came first: keep one buffer, in order.
            self.scratch.clear();
            render::json_record(system, sender, rec, &mut self.scratch);
            self.buf.extend_from_slice(self.scratch.as_bytes());
            self.buf.push(b'\n');
        }
    }

    /// Writes the line without its newline when every string in it is
    /// printable ASCII; `None` (with part of the line written) otherwise.
    fn plain_line(&mut self, sender: &ArchivedSender, rec: RecordRef<'_>) -> Option<()> {
        self.time(rec.time_ns())?;
        let name = match self.level {
            Some((l, name)) if l == rec.level() => name,
            _ => {
                // Left-aligned in 8 columns (the longest name, CRITICAL,
                // is 8), and the space after it.
                let mut padded = *b"         ";
                let name = level::name(rec.level()).as_bytes();
                let n = name.len().min(8);
                padded[..n].copy_from_slice(&name[..n]);
                self.level = Some((rec.level(), padded));
                padded
            }
        };
        let out = &mut self.buf;
        out.extend_from_slice(&name);
        plain(sender.host.as_str(), out)?;
        out.push(b'/');
        number(u64::from(sender.pid.to_native()), out);
        out.push(b' ');
        let task = rec.task();
        if !task.is_empty() {
            number(u64::from(rec.task_n()), out);
            out.push(b'@');
            plain(task, out)?;
            out.push(b' ');
        }
        let target = rec.target();
        if !target.is_empty() {
            plain(target, out)?;
            out.extend_from_slice(b": ");
        }
        // The values are read raw (`raw_value`): a string's bytes are
        // written only when they are printable ASCII, so its UTF-8 needs
        // no check; anything `RecordRef::args`/`fields` would read another
        // way (a value that does not parse) sends the line to the renderer.
        let mut values = rec.raw_values();
        let mut args = rec.arg_count();
        let format = rec.format();
        if format.is_empty() {
            plain(rec.message(), out)?;
        } else {
            let split = self.formats.get(format)?;
            for &part in &split.parts {
                match part {
                    Part::Literal(a, b) => out.extend_from_slice(&split.text[a..b]),
                    Part::Slot(a, b) if args == 0 => out.extend_from_slice(&split.text[a..b]),
                    Part::Slot(..) => {
                        let (v, rest) = raw_value(values)?;
                        (values, args) = (rest, args - 1);
                        match v {
                            Raw::Str(s) => plain_bytes(s, out)?,
                            Raw::Value(v) => value(v, out, &mut self.scratch),
                        }
                    }
                }
            }
        }
        // Arguments the format has no placeholder for.
        for _ in 0..args {
            values = raw_value(values)?.1;
        }
        // The call site's keys, then bound (key, value) pairs.
        let mut keys = rec.site_keys().iter();
        while !values.is_empty() {
            let key = match keys.next() {
                Some(k) => k.as_str().as_bytes(),
                None => {
                    let (Raw::Str(k), rest) = raw_value(values)? else {
                        return None;
                    };
                    values = rest;
                    k
                }
            };
            let (v, rest) = raw_value(values)?;
            values = rest;
            out.push(b' ');
            plain_bytes(key, out)?;
            out.push(b'=');
            match v {
                Raw::Str(s) => field_str(s, out)?,
                Raw::Value(v) => value(v, out, &mut self.scratch),
            }
        }
        if keys.next().is_some() {
            // Keys without values: the renderer's walk stops there.
            return None;
        }
        let error = rec.error();
        if !error.is_empty() {
            out.extend_from_slice(b" error=");
            field_str(error.as_bytes(), out)?;
        }
        Some(())
    }

    /// Writes `time_ns` as RFC 3339 with microseconds and the space after
    /// it: the seconds' text from the line before when it is the same
    /// second, else from the renderer (`None` if that is not the usual 27
    /// bytes: never for a u64 of nanoseconds).
    #[inline]
    fn time(&mut self, time_ns: u64) -> Option<()> {
        let secs = time_ns / 1_000_000_000;
        let micros = (time_ns % 1_000_000_000) / 1_000;
        let prefix = match self.second {
            Some((s, text)) if s == secs => text,
            _ => {
                self.scratch.clear();
                render::rfc3339(secs * 1_000_000_000, &mut self.scratch);
                let text: [u8; SECOND_TEXT] = self
                    .scratch
                    .as_bytes()
                    .get(..SECOND_TEXT)?
                    .try_into()
                    .ok()?;
                if self.scratch.len() != SECOND_TEXT + 7 || text[SECOND_TEXT - 1] != b'.' {
                    return None;
                }
                self.second = Some((secs, text));
                text
            }
        };
        let mut digits = *b"000000Z ";
        let micros = micros as usize; // below 1,000,000
        for (i, pair) in [micros / 10_000, micros / 100 % 100, micros % 100]
            .into_iter()
            .enumerate()
        {
            digits[2 * i..2 * i + 2].copy_from_slice(&PAIRS[2 * pair..2 * pair + 2]);
        }
        self.buf.extend_from_slice(&prefix);
        self.buf.extend_from_slice(&digits);
        Some(())
    }
}

/// How many split formats [`Formats`] keeps: a store's batches hold the
/// records of a few call sites each.
const FORMATS: usize = 8;

/// The formats of the last deferred messages written, split once
/// ([`for_each_part`], which the renderer's `for_each_piece` walks): a
/// record of a kept format is written by copying the literal text and
/// filling in its arguments, without looking for braces again.
/// Allocation happens only when a format is first seen or replaces another
/// (its slot's buffers are reused), so memory is bounded by the formats'
/// sizes.
#[derive(Default)]
struct Formats {
    kept: Vec<Split>,
    /// The slot looked at first (the last one hit or filled).
    last: usize,
    /// The slot the next new format replaces once all are taken.
    next: usize,
}

/// One format, split.
#[derive(Default)]
struct Split {
    format: String,
    /// Its literal runs (a doubled brace as one) and placeholders, in
    /// order, as ranges of `text`.
    text: Vec<u8>,
    parts: Vec<Part>,
}

/// A part of a [`Split`] format: a range of its `text`.
#[derive(Clone, Copy)]
enum Part {
    /// Literal text.
    Literal(usize, usize),
    /// A placeholder: the next argument, else the placeholder as written.
    Slot(usize, usize),
}

impl Formats {
    /// `format` split, or `None` when any of its text is not printable
    /// ASCII (the renderer would escape it).
    #[inline]
    fn get(&mut self, format: &str) -> Option<&Split> {
        if self.kept.get(self.last).is_some_and(|s| s.format == format) {
            return self.kept.get(self.last);
        }
        if let Some(i) = self.kept.iter().position(|s| s.format == format) {
            self.last = i;
            return self.kept.get(i);
        }
        self.insert(format)
    }

    #[cold]
    fn insert(&mut self, format: &str) -> Option<&Split> {
        if !is_plain(format.as_bytes()) {
            return None;
        }
        let i = if self.kept.len() < FORMATS {
            self.kept.push(Split::default());
            self.kept.len() - 1
        } else {
            let i = self.next;
            self.next = (self.next + 1) % FORMATS;
            i
        };
        let split = &mut self.kept[i];
        split.format.clear();
        split.format.push_str(format);
        split.text.clear();
        split.parts.clear();
        let (text, parts) = (&mut split.text, &mut split.parts);
        let _ = for_each_part::<()>(format, |part| {
            let (s, literal) = match part {
                FormatPart::Literal(s) => (s, true),
                FormatPart::Placeholder(p) => (p, false),
            };
            let a = text.len();
            text.extend_from_slice(s.as_bytes());
            let b = text.len();
            if !literal {
                parts.push(Part::Slot(a, b));
            } else if b > a {
                parts.push(Part::Literal(a, b));
            }
            ControlFlow::Continue(())
        });
        self.last = i;
        Some(&self.kept[i])
    }
}

/// Whether `text_line` writes `s` as it is: printable ASCII only (so
/// also UTF-8).
#[inline]
fn is_plain(s: &[u8]) -> bool {
    s.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Appends `s` when the renderer would write it unescaped; `None` when it
/// would escape something.
#[inline]
fn plain(s: &str, out: &mut Vec<u8>) -> Option<()> {
    plain_bytes(s.as_bytes(), out)
}

/// [`plain`] of a string's bytes.
#[inline]
fn plain_bytes(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if !is_plain(s) {
        return None;
    }
    out.extend_from_slice(s);
    Some(())
}

/// A value of a record's raw values: a string as its bytes, unchecked.
enum Raw<'a> {
    Str(&'a [u8]),
    Value(ValueRef<'static>),
}

/// Splits the first value off `b` as `distlog_core::wire::read_value`
/// does, without checking a string's UTF-8; `None` where `read_value`
/// fails, and also for a string that is not UTF-8 (which `read_value`
/// refuses), since no such string is printable ASCII.
#[inline]
fn raw_value(b: &[u8]) -> Option<(Raw<'_>, &[u8])> {
    let (&t, rest) = b.split_first()?;
    let word =
        |rest: &[u8]| -> Option<u64> { Some(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?)) };
    let (v, used) = match t {
        tag::NULL => (Raw::Value(ValueRef::Null), 0),
        tag::BOOL => match rest.first()? {
            0 => (Raw::Value(ValueRef::Bool(false)), 1),
            1 => (Raw::Value(ValueRef::Bool(true)), 1),
            _ => return None,
        },
        tag::I64 => (Raw::Value(ValueRef::I64(word(rest)? as i64)), 8),
        tag::U64 => (Raw::Value(ValueRef::U64(word(rest)?)), 8),
        tag::F64 => (Raw::Value(ValueRef::F64(f64::from_bits(word(rest)?))), 8),
        tag::STR => {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            (Raw::Str(rest.get(4..4usize.checked_add(n)?)?), 4 + n)
        }
        _ => return None,
    };
    Some((v, rest.get(used..)?))
}

/// The two digits of 0 to 99.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `n` in decimal, written two digits at a time from the end of a
/// stack buffer.
#[inline(always)]
fn number(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a non-string value as the renderer shows it (its `Display`).
#[inline(always)]
fn value(v: ValueRef<'_>, out: &mut Vec<u8>, scratch: &mut String) {
    match v {
        ValueRef::U64(u) => number(u, out),
        ValueRef::I64(i) => {
            if i < 0 {
                out.push(b'-');
            }
            number(i.unsigned_abs(), out);
        }
        ValueRef::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        ValueRef::Null => out.extend_from_slice(b"null"),
        v => {
            scratch.clear();
            push_value(v, scratch);
            out.extend_from_slice(scratch.as_bytes());
        }
    }
}

/// Appends a string field value as the renderer shows it: bare when it is
/// one plain word, else quoted with `"` and `\` escaped. `None` when it is
/// not printable ASCII.
#[inline]
fn field_str(bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if !is_plain(bytes) {
        return None;
    }
    // Printable ASCII: the only whitespace is the space.
    if !bytes.is_empty() && !bytes.iter().any(|&b| matches!(b, b' ' | b'"' | b'=')) {
        out.extend_from_slice(bytes);
        return Some(());
    }
    out.push(b'"');
    for &b in bytes {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog_core::record::{Field, Record, Value};
    use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, BatchRef, Sender};

    /// Strings that take each path: plain words, words the renderer
    /// quotes, escapes, braces, non-ASCII, controls, bidi marks, long.
    const STRINGS: [&str; 20] = [
        "",
        "a",
        "web-1",
        "two words",
        "k=v",
        "say \"hi\"",
        "back\\slash",
        "{}",
        "{{x}}",
        "{:?} and {",
        "}",
        "tab\there",
        "line\nbreak",
        "\u{1b}[31mred",
        "caf\u{e9}",
        "\u{202e}evil",
        "\u{85}c1",
        "\u{7f}",
        "\u{1F600}",
        "a rather long string of plain words that goes on past the usual size of a message",
    ];

    /// Writes `b`'s records with [`Lines::text`] and asserts the bytes are
    /// `text_line`'s, one line each; returns how many took the fast path.
    fn assert_renderers_bytes(b: BatchRef<'_>) -> usize {
        let mut lines = Lines::default();
        let mut expected = String::new();
        let mut fast = 0;
        for r in b.records() {
            lines.text(b'P', b.sender(), r);
            render::text_line(b'P', b.sender(), r, false, &mut expected);
            expected.push('\n');
            if Lines::default().plain_line(b.sender(), r).is_some() {
                fast += 1;
            }
        }
        assert_eq!(String::from_utf8(lines.into_buffer()).unwrap(), expected);
        fast
    }

    fn value(rnd: &mut impl FnMut(usize) -> usize) -> Value {
        match rnd(7) {
            0 => Value::Null,
            1 => Value::Bool(rnd(2) == 1),
            2 => Value::I64([0, -1, i64::MIN, i64::MAX, 42][rnd(5)]),
            3 => Value::U64([0, 7, u64::MAX, 1_000_000][rnd(4)]),
            4 => Value::F64([0.5, -0.0, 1e300, f64::NAN, f64::INFINITY, 3.0][rnd(6)]),
            _ => Value::Str(STRINGS[rnd(STRINGS.len())].into()),
        }
    }

    /// Random records, strings from every path above: the fast lines are
    /// byte for byte `text_line`'s, with and without the time kept from
    /// the line before.
    #[test]
    fn lines_are_the_renderers_bytes() {
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        let mut fast_lines = 0;
        for round in 0..400 {
            let formats = ["", "took {} ms", "{} {{}} {:?} {}", "x {", "{}{}{}{}", "{}"];
            let batch = Batch {
                sender: Sender {
                    host: ["vm", "web 1", "h\u{e9}", ""][rnd(4)].into(),
                    pid: [0, 31085, u32::MAX][rnd(3)],
                    program: "p".into(),
                    ..Sender::default()
                },
                records: (0..8)
                    .map(|i| Record {
                        seq: i,
                        time_ns: [0, 1_765_000_000_123_456_789, u64::MAX][rnd(3)]
                            .saturating_add(i * [1, 999, 1_000_000_000][rnd(3)] * (round % 2)),
                        level: [0, 10, 20, 30, 40, 50, 255][rnd(7)],
                        target: STRINGS[rnd(STRINGS.len())].into(),
                        message: STRINGS[rnd(STRINGS.len())].into(),
                        format: if rnd(3) == 0 {
                            STRINGS[rnd(STRINGS.len())].into()
                        } else {
                            formats[rnd(formats.len())].into()
                        },
                        args: (0..rnd(5)).map(|_| value(&mut rnd)).collect(),
                        fields: (0..rnd(4))
                            .map(|_| Field {
                                key: STRINGS[rnd(STRINGS.len())].into(),
                                value: value(&mut rnd),
                            })
                            .collect(),
                        task: ["", "1b4e/2", "t\u{7}"][rnd(3)].into(),
                        task_n: rnd(5) as u32,
                        error: ["", "boom", "two words", "x\ny"][rnd(4)].into(),
                        ..Record::default()
                    })
                    .collect(),
                ..Batch::default()
            };
            let body = encode_batch_to_vec(&batch);
            fast_lines += assert_renderers_bytes(access_batch(&body).unwrap());
        }
        assert!(fast_lines > 100, "{fast_lines}");
    }

    /// Records built value by value (what `Record` cannot express: bound
    /// key/value pairs after the call site's keys, fewer or more values
    /// than the site names, arguments the format has no placeholder for):
    /// every batch validation accepts prints `text_line`'s bytes.
    #[test]
    fn raw_values_print_as_the_renderer_reads_them() {
        use distlog_core::wire::{put_value, Site, Thread, WireBatch, WireRecord};
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        let (mut accepted, mut fast) = (0, 0);
        for _ in 0..3_000 {
            let formats = ["", "a {} b", "{} {}", "no slots", "{}{}{}"];
            let sites: Vec<Site> = (0..3)
                .map(|_| Site {
                    target: ["t", "", "caf\u{e9}"][rnd(3)].into(),
                    format: formats[rnd(formats.len())].into(),
                    args: rnd(4) as u32,
                    keys: (0..rnd(3))
                        .map(|_| ["k", "two words", "x\u{7}"][rnd(3)].into())
                        .collect(),
                    ..Site::default()
                })
                .collect();
            let records = (0..4)
                .map(|i| {
                    let site = rnd(3);
                    let mut values = Vec::new();
                    let put = |values: &mut Vec<u8>, rnd: &mut dyn FnMut(usize) -> usize| {
                        let v = match rnd(6) {
                            0 => ValueRef::Null,
                            1 => ValueRef::Bool(rnd(2) == 1),
                            2 => ValueRef::I64(-5),
                            3 => ValueRef::U64(77),
                            4 => ValueRef::F64(2.5),
                            _ => ValueRef::Str(STRINGS[rnd(STRINGS.len())]),
                        };
                        put_value(values, v);
                    };
                    // The site's arguments and keys, then bound pairs;
                    // now and then a value short or over.
                    let n = sites[site].args as usize + sites[site].keys.len();
                    let n = match rnd(8) {
                        0 => n.saturating_sub(1),
                        1 => n + 1,
                        _ => n,
                    };
                    for _ in 0..n {
                        put(&mut values, &mut rnd);
                    }
                    for _ in 0..rnd(3) {
                        put_value(&mut values, ValueRef::Str(STRINGS[rnd(6)]));
                        put(&mut values, &mut rnd);
                    }
                    WireRecord {
                        seq: i,
                        time_ns: 1_765_000_000_123_456_789 + i,
                        level: 20,
                        kind: b'L',
                        site: site as u32,
                        message: STRINGS[rnd(4)].into(),
                        values,
                        ..WireRecord::default()
                    }
                })
                .collect();
            let body = WireBatch {
                sites,
                threads: vec![Thread::default()],
                records,
                ..WireBatch::default()
            }
            .to_body();
            let Ok(b) = access_batch(&body) else {
                continue;
            };
            accepted += 1;
            fast += assert_renderers_bytes(b);
        }
        assert!(accepted > 300 && fast > 300, "{accepted} {fast}");
    }

    #[test]
    fn coloured_and_json_lines_are_the_renderers() {
        let batch = Batch {
            records: vec![Record {
                time_ns: 1_700_000_000_250_000_000,
                level: 30,
                target: "db".into(),
                format: "slow {}".into(),
                args: vec![Value::Str("query".into())],
                ..Record::default()
            }],
            ..Batch::default()
        };
        let body = encode_batch_to_vec(&batch);
        let b = access_batch(&body).unwrap();
        let r = b.record(0).unwrap();
        let (mut colour, mut json) = (String::new(), String::new());
        render::text_line(b'P', b.sender(), r, true, &mut colour);
        render::json_record(b'P', b.sender(), r, &mut json);
        // Either kind first: one buffer, lines in order.
        let mut lines = Lines::default();
        lines.coloured(b'P', b.sender(), r);
        lines.json(b'P', b.sender(), r);
        assert_eq!(
            String::from_utf8(lines.into_buffer()).unwrap(),
            format!("{colour}\n{json}\n")
        );
        let mut lines = Lines::with_buffer(Vec::with_capacity(4096));
        lines.json(b'P', b.sender(), r);
        lines.json(b'P', b.sender(), r);
        assert_eq!(lines.bytes(), format!("{json}\n{json}\n").as_bytes());
        lines.coloured(b'P', b.sender(), r);
        lines.json(b'P', b.sender(), r);
        lines.push_str("end\n");
        assert_eq!(
            String::from_utf8(lines.into_buffer()).unwrap(),
            format!("{json}\n{json}\n{colour}\n{json}\nend\n")
        );
    }
}
