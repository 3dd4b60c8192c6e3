//! The syntax tree of a filter: what [`parse`](super::parse) returns and
//! the compiler lowers to bytecode.
//!
//! It is public so that other back ends can walk it (the `distlog` CLI
//! translates it to SQL): one parser for the language, and a grammar
//! change shows up as a compile error wherever a tree is walked. The enums
//! are deliberately not `#[non_exhaustive]`, so that a `match` without a
//! wildcard breaks the build when a construct is added.
//!
//! The tree is syntax only: a value is what was written (`warn` is
//! [`Lit::Name`]), and a tree that parses may still fail to compile
//! (`pid contains "1"`). Walk the tree of a source that
//! [`Filter::parse`](super::Filter::parse) accepted to see only meaningful
//! comparisons.
//!
//! ```
//! use distlog_filter::ast::{CmpOp, Expr, FieldRef, Lit, Rhs};
//!
//! let Expr::And(terms) = distlog_filter::parse(r#"level >= warn and host == "a""#)? else {
//!     unreachable!()
//! };
//! let Expr::Cmp(c) = &terms[0] else { unreachable!() };
//! assert_eq!((&c.field, c.op, c.negated), (&FieldRef::Level, CmpOp::Ge, false));
//! assert!(matches!(&c.rhs, Rhs::One(Lit::Name(n), _) if n == "warn"));
//! # Ok::<(), distlog_filter::FilterError>(())
//! ```
//!
//! A tree prints back as filter source ([`Expr`]'s `Display`), which the
//! parser reads as the same tree (spans aside): the CLI builds filters
//! from trees that way.

use std::fmt;

/// A byte range of the source (for error positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A parsed filter.
///
/// `a and b and c` is one [`Expr::And`] of three terms (chains are n-ary,
/// never nested pairs); parentheses leave no node of their own.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `true` / `false`.
    Bool(bool),
    /// `not x` / `!x`.
    Not(Box<Expr>),
    /// `a and b ...` / `a && b ...`: two terms or more.
    And(Vec<Expr>),
    /// `a or b ...` / `a || b ...`: two terms or more.
    Or(Vec<Expr>),
    /// One comparison.
    Cmp(Box<Cmp>),
}

/// The fields a comparison can test (see the table in the
/// [module docs](super#fields)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    /// `level`: the severity.
    Level,
    /// `target`: the logger name.
    Target,
    /// `message`: the rendered message.
    Message,
    /// `host`: the sender's host.
    Host,
    /// `pid`: the sender's process id.
    Pid,
    /// `process`: the sender's program name.
    Process,
    /// `thread`: the thread's name (a string) or id (an integer).
    Thread,
    /// `file`: the source file.
    File,
    /// `line`: the source line.
    Line,
    /// `module`: the module path.
    Module,
    /// `func`: the function name.
    Func,
    /// `error`: the error text.
    Error,
    /// `time`: ns since the Unix epoch.
    Time,
    /// `task`: the task path.
    Task,
    /// `key`: `"<n>@<task>"`.
    Key,
    /// `kind`: `log` or `perf`.
    Kind,
    /// `system`: the topic's system.
    System,
    /// `field.<name>`: a typed field of the record (the name without the
    /// `field.` prefix; dotted parts joined with `.`).
    Custom(String),
}

impl FieldRef {
    /// The field called `name` (not `field.*`), if there is one.
    pub(super) fn from_name(name: &str) -> Option<FieldRef> {
        Some(match name {
            "level" => FieldRef::Level,
            "target" => FieldRef::Target,
            "message" => FieldRef::Message,
            "host" => FieldRef::Host,
            "pid" => FieldRef::Pid,
            "process" => FieldRef::Process,
            "thread" => FieldRef::Thread,
            "file" => FieldRef::File,
            "line" => FieldRef::Line,
            "module" => FieldRef::Module,
            "func" => FieldRef::Func,
            "error" => FieldRef::Error,
            "time" => FieldRef::Time,
            "task" => FieldRef::Task,
            "key" => FieldRef::Key,
            "kind" => FieldRef::Kind,
            "system" => FieldRef::System,
            _ => return None,
        })
    }

    /// The name as written in a filter (`level`, `field.user_id`).
    pub fn name(&self) -> String {
        match self {
            FieldRef::Custom(n) => format!("field.{n}"),
            other => format!("{other:?}").to_ascii_lowercase(),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
    /// `in` (the right-hand side is a [`Rhs::List`])
    In,
    /// `under`: equal, or starts with the value and the field's separator.
    Under,
}

impl CmpOp {
    /// The operator as written in a filter.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Contains => "contains",
            CmpOp::StartsWith => "starts_with",
            CmpOp::EndsWith => "ends_with",
            CmpOp::In => "in",
            CmpOp::Under => "under",
        }
    }
}

/// A literal value, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A quoted string, escapes resolved.
    Str(String),
    /// An integer.
    Int(i128),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A bare name (`warn`, `log`), meaningful for some fields only.
    Name(String),
}

impl Lit {
    /// How the value is described in errors (`the string "x"`).
    pub fn describe(&self) -> String {
        match self {
            Lit::Str(s) => format!("the string {s:?}"),
            Lit::Int(n) => format!("the number {n}"),
            Lit::Float(x) => format!("the number {x}"),
            Lit::Bool(b) => format!("`{b}`"),
            Lit::Null => "`null`".to_owned(),
            Lit::Name(n) => format!("the name `{n}`"),
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// One value (every operator but `in`).
    One(Lit, Span),
    /// `[a, b, ...]` (after `in`; may be empty).
    List(Vec<(Lit, Span)>),
}

/// `field op value`, possibly negated (`not in`, `not contains`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    /// The field tested.
    pub field: FieldRef,
    /// Where the field's name is.
    pub field_span: Span,
    /// The operator.
    pub op: CmpOp,
    /// Where the operator is (with its `not`, when negated).
    pub op_span: Span,
    /// `x not in [..]`, `x not contains ".."`: the whole comparison negated.
    pub negated: bool,
    /// The value or list compared with.
    pub rhs: Rhs,
}

/// Writes the expression in the filter language, fully parenthesised:
/// [`parse`](super::parse) reads it back as the same tree, spans aside.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Not(x) => write!(f, "not ({x})"),
            Expr::And(xs) | Expr::Or(xs) => {
                let op = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str(")")
            }
            Expr::Cmp(c) => {
                let not = if c.negated { "not " } else { "" };
                write!(f, "{} {not}{} ", c.field.name(), c.op.as_str())?;
                match &c.rhs {
                    Rhs::One(lit, _) => write!(f, "{lit}"),
                    Rhs::List(items) => {
                        f.write_str("[")?;
                        for (i, (lit, _)) in items.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            write!(f, "{lit}")?;
                        }
                        f.write_str("]")
                    }
                }
            }
        }
    }
}

/// Writes the literal so that the parser reads it back as the same value
/// (strings quoted and escaped, floats in their shortest exact form).
impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                        c => fmt::Write::write_char(f, c)?,
                    }
                }
                f.write_str("\"")
            }
            Lit::Int(n) => write!(f, "{n}"),
            // Debug prints the shortest text that reads back as the same
            // f64, always with a `.` or an exponent.
            Lit::Float(x) => write!(f, "{x:?}"),
            Lit::Bool(b) => write!(f, "{b}"),
            Lit::Null => f.write_str("null"),
            Lit::Name(n) => f.write_str(n),
        }
    }
}
