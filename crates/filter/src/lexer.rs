//! Turns filter source into tokens with byte spans.

use super::error::{ErrorKind, FilterError};

/// A token's kind (and value, for literals).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A name: a field, a keyword (`and`, `contains`, ...) or a bare value
    /// (`warn`). Its text is the token's span.
    Ident,
    /// A double-quoted string, escapes resolved.
    Str(String),
    /// An integer literal.
    Int(i128),
    /// A float literal (has a `.` or an exponent).
    Float(f64),
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    /// `!`, a synonym of `not`.
    Bang,
    /// `&&`, a synonym of `and`.
    AndAnd,
    /// `||`, a synonym of `or`.
    OrOr,
    Eof,
}

/// A token and where it is: `src[start..end]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(super) fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let bytes = src.as_bytes();
    let err = |at: usize, kind| Err(FilterError::new(src, at, kind));
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let tok = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'"' => {
                let (s, end) = lex_string(src, i)?;
                i = end;
                Tok::Str(s)
            }
            b'0'..=b'9' => {
                let (t, end) = lex_number(src, i)?;
                i = end;
                t
            }
            b'-' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let (t, end) = lex_number(src, i)?;
                i = end;
                t
            }
            _ if is_ident_start(b) => {
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                Tok::Ident
            }
            _ => {
                let (t, len) = match (b, next) {
                    (b'=', Some(b'=')) => (Tok::Eq, 2),
                    (b'!', Some(b'=')) => (Tok::Ne, 2),
                    (b'<', Some(b'=')) => (Tok::Le, 2),
                    (b'>', Some(b'=')) => (Tok::Ge, 2),
                    (b'&', Some(b'&')) => (Tok::AndAnd, 2),
                    (b'|', Some(b'|')) => (Tok::OrOr, 2),
                    (b'<', _) => (Tok::Lt, 1),
                    (b'>', _) => (Tok::Gt, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b'[', _) => (Tok::LBracket, 1),
                    (b']', _) => (Tok::RBracket, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b'.', _) => (Tok::Dot, 1),
                    (b'!', _) => (Tok::Bang, 1),
                    (b'=' | b'&' | b'|', _) => {
                        let want = match b {
                            b'=' => "`==`",
                            b'&' => "`&&` or `and`",
                            _ => "`||` or `or`",
                        };
                        return err(
                            i,
                            ErrorKind::Expected {
                                expected: want.to_owned(),
                                found: format!("`{}`", b as char),
                            },
                        );
                    }
                    _ => {
                        let c = src[i..].chars().next().unwrap_or('\u{fffd}');
                        return err(i, ErrorKind::UnexpectedChar(c));
                    }
                };
                i += len;
                t
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(out)
}

/// Lexes the string starting at the quote at `start`; returns its value and
/// the offset after the closing quote.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), FilterError> {
    let mut out = String::new();
    let mut chars = src[start + 1..]
        .char_indices()
        .map(|(i, c)| (start + 1 + i, c));
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let bad = |end: usize| {
                    let end = end.min(src.len());
                    let mut end = end;
                    while !src.is_char_boundary(end) {
                        end += 1;
                    }
                    FilterError::new(src, i, ErrorKind::BadEscape(src[i..end].to_owned()))
                };
                let Some((j, e)) = chars.next() else {
                    return Err(FilterError::new(src, start, ErrorKind::UnterminatedString));
                };
                match e {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    'u' => {
                        // \u{1F600}: 1 to 6 hex digits in braces.
                        let rest = &src[j + 1..];
                        let close = rest.find('}');
                        let Some(close) = close.filter(|&c| rest.starts_with('{') && c <= 7) else {
                            return Err(bad(j + 1));
                        };
                        let hex = &rest[1..close];
                        let ch = u32::from_str_radix(hex, 16)
                            .ok()
                            .filter(|_| !hex.is_empty() && !hex.starts_with('+'))
                            .and_then(char::from_u32);
                        let Some(ch) = ch else {
                            return Err(bad(j + 1 + close + 1));
                        };
                        out.push(ch);
                        // Skip `{hex}`.
                        for _ in 0..close + 1 {
                            chars.next();
                        }
                    }
                    other => return Err(bad(j + other.len_utf8())),
                }
            }
            c => out.push(c),
        }
    }
    Err(FilterError::new(src, start, ErrorKind::UnterminatedString))
}

/// Lexes a number (optionally negative) at `start`; returns it and the offset
/// after it.
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = src.as_bytes();
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = start;
    if bytes[i] == b'-' {
        i += 1;
    }
    i = digits(i);
    let mut float = false;
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        float = true;
        i = digits(i + 1);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            float = true;
            i = digits(j);
        }
    }
    if i < bytes.len() && is_ident_char(bytes[i]) {
        let mut end = i;
        while end < bytes.len() && (is_ident_char(bytes[end]) || bytes[end] == b'-') {
            end += 1;
        }
        return Err(FilterError::new(
            src,
            start,
            ErrorKind::BadNumber(
                src[start..end].to_owned(),
                "expected digits; text values must be double-quoted",
            ),
        ));
    }
    let text = &src[start..i];
    let tok = if float {
        match text.parse::<f64>() {
            Ok(f) => Tok::Float(f),
            Err(_) => {
                return Err(FilterError::new(
                    src,
                    start,
                    ErrorKind::BadNumber(text.to_owned(), "not a valid float"),
                ))
            }
        }
    } else {
        match text.parse::<i128>() {
            Ok(n) => Tok::Int(n),
            Err(_) => {
                return Err(FilterError::new(
                    src,
                    start,
                    ErrorKind::BadNumber(text.to_owned(), "out of range"),
                ))
            }
        }
    };
    Ok((tok, i))
}
