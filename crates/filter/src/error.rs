//! [`FilterError`]: what went wrong, and where; [`SetError`]: why a
//! [`FilterSet`](crate::FilterSet) could not be built.

use std::fmt;

/// Why a filter did not parse or compile, with its position.
///
/// `Display` names the line and column (both 1-based, the column counted in
/// characters), says what was expected, and shows the source line with a
/// caret under the offending spot:
///
/// ```text
/// line 1, column 10: expected a level (a name such as `warn`, or a number) after `>=`, found end of input
///   level >=
///            ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    kind: ErrorKind,
    offset: usize,
    line: usize,
    column: usize,
    source_line: String,
}

/// What went wrong (private: the message is the interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ErrorKind {
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A string literal without its closing quote.
    UnterminatedString,
    /// An unknown backslash escape (the escape as written).
    BadEscape(String),
    /// A malformed or out-of-range number (as written), and why.
    BadNumber(String, &'static str),
    /// The usual: something else was expected here.
    Expected { expected: String, found: String },
    /// A field name the language does not know.
    UnknownField(String),
    /// A well-formed comparison that makes no sense (types, levels, times).
    Invalid(String),
    /// Parentheses or `not`s nested deeper than [`super::bounds::MAX_DEPTH`].
    TooDeep,
    /// A source longer than [`super::bounds::MAX_SOURCE`].
    TooLong,
}

impl FilterError {
    /// An error at byte `offset` of `src` (clamped to the source and to a
    /// character boundary, so any offset is safe).
    pub(super) fn new(src: &str, offset: usize, kind: ErrorKind) -> FilterError {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
        let line = src[..offset].matches('\n').count() + 1;
        let column = src[line_start..offset].chars().count() + 1;
        let source_line = src[line_start..line_end].trim_end_matches('\r').to_owned();
        FilterError {
            kind,
            offset,
            line,
            column,
            source_line,
        }
    }

    /// 1-based line of the error.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column of the error, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Byte offset of the error in the source.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The message without the position and source excerpt.
    pub fn message(&self) -> String {
        match &self.kind {
            ErrorKind::UnexpectedChar(c) => format!(
                "unexpected character {c:?}: expected a field, an operator, a value, \
                 a parenthesis or a bracket"
            ),
            ErrorKind::UnterminatedString => {
                "unterminated string: expected a closing `\"`".to_owned()
            }
            ErrorKind::BadEscape(esc) => format!(
                "invalid escape `{esc}`: expected one of \\\\ \\\" \\n \\r \\t \\0 \\u{{HEX}}"
            ),
            ErrorKind::BadNumber(text, why) => format!("invalid number `{text}`: {why}"),
            ErrorKind::Expected { expected, found } => {
                format!("expected {expected}, found {found}")
            }
            ErrorKind::UnknownField(name) => format!(
                "unknown field `{name}`: expected one of level, target, message, host, pid, \
                 process, thread, file, line, module, func, error, time, task, key, kind, \
                 system, or field.<name>"
            ),
            ErrorKind::Invalid(msg) => msg.clone(),
            ErrorKind::TooDeep => format!(
                "expression nested too deeply: expected at most {} levels of parentheses \
                 and `not`",
                super::bounds::MAX_DEPTH
            ),
            ErrorKind::TooLong => format!(
                "filter too long: expected at most {} bytes",
                super::bounds::MAX_SOURCE
            ),
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line,
            self.column,
            self.message()
        )?;
        // Long lines are shown as a window around the column.
        const WIDTH: usize = 100;
        let chars: Vec<char> = self.source_line.chars().collect();
        let col = self.column - 1;
        let start = if chars.len() > WIDTH {
            col.saturating_sub(WIDTH / 2).min(chars.len() - WIDTH)
        } else {
            0
        };
        let end = (start + WIDTH).min(chars.len());
        let (lead, tail) = (
            if start > 0 { "..." } else { "" },
            if end < chars.len() { "..." } else { "" },
        );
        let excerpt: String = chars[start..end].iter().collect();
        let pad: String = chars[start..col.min(chars.len())]
            .iter()
            .map(|&c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let lead_pad = " ".repeat(lead.len());
        write!(f, "\n  {lead}{excerpt}{tail}\n  {lead_pad}{pad}^")
    }
}

impl std::error::Error for FilterError {}

/// Why a [`FilterSet`](crate::FilterSet) could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum SetError {
    /// Filter `index` (0-based, in the order given) does not compile.
    Filter {
        /// Which filter.
        index: usize,
        /// Why (with its line and column in that filter).
        error: FilterError,
    },
    /// The filters exceed a bound of the set (the message says which, and
    /// what to do).
    TooLarge(String),
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::Filter { index, error } => write!(f, "filter {index}: {error}"),
            SetError::TooLarge(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetError::Filter { error, .. } => Some(error),
            SetError::TooLarge(_) => None,
        }
    }
}
