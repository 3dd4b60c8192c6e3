//! A record's message as a reader sees it: the text a Python client sent,
//! or a deferred format string (the native macros' `"took {} ms"`) rendered
//! with its typed arguments. Every reader (filters, renderers, the store's
//! tools) gets the same text from here.

use crate::record::{Record, ValueRef};
use crate::view::RecordRef;
use std::borrow::Cow;
use std::fmt::Write;

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
pub fn render_format<'a>(
    format: &str,
    mut args: impl Iterator<Item = ValueRef<'a>>,
    out: &mut String,
) {
    let bytes = format.as_bytes();
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push_str(&format[literal_start..i + 1]);
                i += 2;
                literal_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
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
}
