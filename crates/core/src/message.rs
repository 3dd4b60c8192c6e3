//! A record's message as a reader sees it: the text a Python client sent,
//! or a deferred format string (the native macros' `"took {} ms"`) rendered
//! with its typed arguments. Every reader (filters, renderers, the store's
//! tools) gets the same text from here.

use crate::record::{Record, ValueRef};
use crate::view::RecordRef;
use std::borrow::Cow;
use std::fmt::Write;
use std::ops::ControlFlow;

impl Record {
    /// The message as a reader sees it: [`Record::message`], or the deferred
    /// format rendered with its arguments.
    pub fn rendered_message(&self) -> String {
        if self.format.is_empty() {
            return self.message.clone();
        }
        let mut out = String::with_capacity(self.format.len() + 16);
        render_format(&self.format, self.args.iter().map(ValueRef::from), &mut out);
        out
    }
}

impl<'a> RecordRef<'a> {
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
            render_format(format, self.args(), out);
        }
    }
}

/// Renders `format` with `args` into `out`.
///
/// Each `{...}` placeholder (whatever its contents: `{}`, `{:?}`, `{name}`)
/// takes the next argument in order, shown with its plain `Display` form;
/// `{{` and `}}` are literal braces. A placeholder without an argument is
/// kept as written, so a malformed record never loses text.
///
/// The text is exactly the concatenation of [`for_each_piece`]'s pieces.
pub fn render_format<'a>(format: &str, args: impl Iterator<Item = ValueRef<'a>>, out: &mut String) {
    let _ = for_each_piece::<()>(format, args, |piece| {
        out.push_str(piece);
        ControlFlow::Continue(())
    });
}

/// Calls `f` on the pieces of the message [`render_format`] renders, in
/// order, without building it: the literal runs of `format` (borrowed;
/// `{{` and `}}` as one brace) and each argument's text (a string argument
/// borrowed, any other written into a small buffer on the stack). Stops at
/// the first `Break` and returns it. Nothing is allocated, so a matcher
/// can look for text in a deferred message at the cost of reading it.
///
/// Pieces are never empty; their concatenation is the rendered message.
///
/// ```
/// use distlog_core::message::for_each_piece;
/// use distlog_core::record::ValueRef;
/// use std::ops::ControlFlow;
///
/// let mut pieces = Vec::new();
/// let args = [ValueRef::U64(42), ValueRef::Str("db")];
/// let _ = for_each_piece::<()>("took {} ms {{{}}}", args.into_iter(), |p| {
///     pieces.push(p.to_owned());
///     ControlFlow::Continue(())
/// });
/// assert_eq!(pieces, ["took ", "42", " ms {", "db", "}"]);
/// ```
pub fn for_each_piece<'a, B>(
    format: &str,
    mut args: impl Iterator<Item = ValueRef<'a>>,
    mut f: impl FnMut(&str) -> ControlFlow<B>,
) -> ControlFlow<B> {
    for_each_part(format, |part| match part {
        FormatPart::Literal(s) => piece(s, &mut f),
        FormatPart::Placeholder(p) => match args.next() {
            Some(arg) => arg_piece(arg, &mut f),
            None => piece(p, &mut f),
        },
    })
}

/// A part of a format string, as [`for_each_piece`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatPart<'f> {
    /// Literal text of the format (`{{` and `}}` as one brace; may be
    /// empty).
    Literal(&'f str),
    /// A `{...}` placeholder as written: it shows the next argument, or
    /// itself when no argument is left.
    Placeholder(&'f str),
}

/// Calls `f` on the parts of `format` in order (each a slice of
/// `format`), stopping at the first `Break`: what [`for_each_piece`]
/// walks, so a reader that splits a format once (per call site) and fills
/// in each record's arguments gets the same pieces.
///
/// ```
/// use distlog_core::message::{for_each_part, FormatPart};
/// use std::ops::ControlFlow;
///
/// let mut parts = Vec::new();
/// let _ = for_each_part::<()>("took {} ms {{", |p| {
///     parts.push(p);
///     ControlFlow::Continue(())
/// });
/// assert_eq!(
///     parts,
///     [
///         FormatPart::Literal("took "),
///         FormatPart::Placeholder("{}"),
///         FormatPart::Literal(" ms {"),
///         FormatPart::Literal(""),
///     ]
/// );
/// ```
pub fn for_each_part<'f, B>(
    format: &'f str,
    mut f: impl FnMut(FormatPart<'f>) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let bytes = format.as_bytes();
    let mut literal_start = 0;
    let mut at = 0;
    while let Some(i) = next_brace(bytes, at) {
        if bytes.get(i + 1) == Some(&bytes[i]) {
            // `{{` or `}}`: the literal up to and including one brace.
            f(FormatPart::Literal(&format[literal_start..i + 1]))?;
            literal_start = i + 2;
            at = i + 2;
        } else if bytes[i] == b'{' {
            let Some(close) = memchr::memchr(b'}', &bytes[i..]) else {
                break;
            };
            f(FormatPart::Literal(&format[literal_start..i]))?;
            f(FormatPart::Placeholder(&format[i..i + close + 1]))?;
            literal_start = i + close + 1;
            at = literal_start;
        } else {
            // A lone `}` is literal text.
            at = i + 1;
        }
    }
    f(FormatPart::Literal(&format[literal_start..]))
}

/// Calls `f` on `v`'s text as a message shows it (nothing when it is
/// empty): strings borrowed, numbers written on the stack.
///
/// ```
/// use distlog_core::message::value_piece;
/// use distlog_core::record::ValueRef;
/// use std::ops::ControlFlow;
///
/// let mut s = String::new();
/// let _ = value_piece::<()>(ValueRef::I64(-42), |p| {
///     s.push_str(p);
///     ControlFlow::Continue(())
/// });
/// assert_eq!(s, "-42");
/// ```
#[inline]
pub fn value_piece<B>(
    v: ValueRef<'_>,
    mut f: impl FnMut(&str) -> ControlFlow<B>,
) -> ControlFlow<B> {
    arg_piece(v, &mut f)
}

/// Appends `v`'s `Display` text to `out`, without going through
/// `std::fmt` for integers (the text renderers' hot path).
///
/// ```
/// let mut s = String::new();
/// distlog_core::message::push_value(distlog_core::record::ValueRef::I64(-42), &mut s);
/// assert_eq!(s, "-42");
/// ```
pub fn push_value(v: ValueRef<'_>, out: &mut String) {
    let _ = arg_piece::<()>(v, &mut |p| {
        out.push_str(p);
        ControlFlow::Continue(())
    });
}

/// The first `{` or `}` of `bytes` at or after `from`. A format is
/// usually a few dozen bytes, where a plain loop beats `memchr2`'s vector
/// setup (measured: `memchr2` was a quarter of a deferred `message`
/// test); longer ones use it.
#[inline]
fn next_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let found = if rest.len() >= 64 {
        memchr::memchr2(b'{', b'}', rest)
    } else {
        rest.iter().position(|&b| b == b'{' || b == b'}')
    };
    found.map(|i| from + i)
}

#[inline(always)]
fn piece<B>(s: &str, f: &mut impl FnMut(&str) -> ControlFlow<B>) -> ControlFlow<B> {
    if s.is_empty() {
        ControlFlow::Continue(())
    } else {
        f(s)
    }
}

/// Longest `Display` of a non-string [`ValueRef`]: an `f64` is at most 24
/// bytes (`-1.2345678901234567e-308`, or `-0.000012345678901234567`), an
/// integer 20.
const ARG_TEXT: usize = 32;

/// A fixed buffer `fmt::Write` fills; `Err` when the text does not fit.
struct StackText {
    buf: [u8; ARG_TEXT],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The decimal digits of `n` at the end of `buf`; returns where they start.
#[inline]
fn digits(mut n: u64, buf: &mut [u8; ARG_TEXT]) -> usize {
    let mut i = ARG_TEXT;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Hands `f` one argument's text, as `ValueRef`'s `Display` writes it.
#[inline]
fn arg_piece<B>(arg: ValueRef<'_>, f: &mut impl FnMut(&str) -> ControlFlow<B>) -> ControlFlow<B> {
    let mut buf = [0u8; ARG_TEXT];
    let start = match arg {
        ValueRef::Str(s) => return piece(s, f),
        ValueRef::Null => return f("null"),
        ValueRef::Bool(b) => return f(if b { "true" } else { "false" }),
        ValueRef::U64(u) => digits(u, &mut buf),
        ValueRef::I64(i) => {
            let start = digits(i.unsigned_abs(), &mut buf);
            if i < 0 {
                buf[start - 1] = b'-';
                start - 1
            } else {
                start
            }
        }
        ValueRef::F64(_) => {
            let mut w = StackText { buf, len: 0 };
            if write!(w, "{arg}").is_err() {
                // Longer than any f64's text: never, but stay correct.
                return f(&arg.to_string());
            }
            return match std::str::from_utf8(&w.buf[..w.len]) {
                Ok(s) => f(s),
                Err(_) => f(&arg.to_string()),
            };
        }
    };
    // ASCII digits and `-`: always UTF-8.
    match std::str::from_utf8(&buf[start..]) {
        Ok(s) => f(s),
        Err(_) => f(&arg.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: &str, args: &[ValueRef<'_>]) -> String {
        let mut s = String::new();
        render_format(f, args.iter().copied(), &mut s);
        s
    }

    #[test]
    fn substitutes_in_order_and_keeps_escapes() {
        assert_eq!(
            render(
                "a {} b {:?} {{x}} {}",
                &[ValueRef::I64(-1), ValueRef::Str("s"), ValueRef::Bool(true)]
            ),
            "a -1 b s {x} true"
        );
    }

    #[test]
    fn missing_args_and_unclosed_braces_keep_text() {
        assert_eq!(render("x {} {}", &[ValueRef::U64(1)]), "x 1 {}");
        assert_eq!(render("open { end", &[]), "open { end");
        assert_eq!(render("", &[]), "");
    }
    /// The renderer before [`for_each_piece`] (byte by byte into a
    /// `String`): the reference the piecewise one must equal.
    fn reference(format: &str, args: &[ValueRef<'_>]) -> String {
        let mut args = args.iter();
        let mut out = String::new();
        let bytes = format.as_bytes();
        let (mut i, mut literal_start) = (0, 0);
        while i < bytes.len() {
            match bytes[i] {
                b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => {
                    out.push_str(&format[literal_start..i + 1]);
                    i += 2;
                    literal_start = i;
                }
                b'{' => {
                    let Some(close) = memchr::memchr(b'}', &bytes[i..]) else {
                        break;
                    };
                    out.push_str(&format[literal_start..i]);
                    match args.next() {
                        Some(arg) => {
                            let _ = write!(out, "{arg}");
                        }
                        None => out.push_str(&format[i..i + close + 1]),
                    }
                    i += close + 1;
                    literal_start = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(&format[literal_start..]);
        out
    }

    /// A small xorshift generator: the tests need no dependency.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn pieces_are_the_rendered_message_for_random_formats_and_every_value_type() {
        const ATOMS: &[&str] = &[
            "{", "}", "{}", "{{", "}}", "{:?}", "{x}", "a", "é", " ", "{{}}", "🦀",
        ];
        let floats = [
            0.0,
            -0.0,
            1.5,
            -2.25,
            1e16,
            9.999e15,
            1e-5,
            9.99e-6,
            -1.2345678901234567e-308,
            0.000012345678901234567,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456789.123,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let format: String = (0..rng.below(8))
                .map(|_| ATOMS[rng.below(ATOMS.len())])
                .collect();
            let args: Vec<ValueRef<'_>> = (0..rng.below(4))
                .map(|_| match rng.below(7) {
                    0 => ValueRef::Null,
                    1 => ValueRef::Bool(rng.below(2) == 1),
                    2 => ValueRef::I64([i64::MIN, -1, 0, 7, i64::MAX][rng.below(5)]),
                    3 => ValueRef::I64(rng.next() as i64),
                    4 => ValueRef::U64([0, 10, u64::MAX, rng.next()][rng.below(4)]),
                    5 => ValueRef::F64(floats[rng.below(floats.len())]),
                    _ => ValueRef::Str(["", "s", "{}", "ü"][rng.below(4)]),
                })
                .collect();
            let want = reference(&format, &args);
            assert_eq!(render(&format, &args), want, "{format:?} {args:?}");
            let mut joined = String::new();
            let _ = for_each_piece::<()>(&format, args.iter().copied(), |p| {
                assert!(!p.is_empty());
                joined.push_str(p);
                ControlFlow::Continue(())
            });
            assert_eq!(joined, want, "{format:?} {args:?}");
        }
    }

    #[test]
    fn a_break_stops_at_that_piece() {
        let mut seen = 0;
        let r = for_each_piece(
            "a{}b{}c",
            [ValueRef::U64(1), ValueRef::U64(2)].into_iter(),
            |p| {
                seen += 1;
                if p == "1" {
                    ControlFlow::Break(seen)
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!(r, ControlFlow::Break(2));
    }
}
