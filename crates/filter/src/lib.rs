//! The filter language: one small expression language for the broker's
//! rules, `distlog tail` and `distlog query`.
//!
//! ```
//! use distlog_filter::Filter;
//!
//! let f: Filter = r#"level >= warn and target starts_with "db::""#.parse().unwrap();
//! assert_eq!(f.source(), r#"level >= warn and target starts_with "db::""#);
//!
//! let err = Filter::parse("level >= ").unwrap_err();
//! assert_eq!((err.line(), err.column()), (1, 10));
//! ```
//!
//! A filter compiles once ([`Filter::parse`]) to flat bytecode and is then
//! evaluated against archived records ([`Filter::matches`] on a
//! [`RecordView`]) without deserializing them or allocating: evaluation
//! has no loops and always terminates.
//!
//! The stages: the lexer (`lexer.rs`) cuts the source into tokens, the
//! parser (`parser.rs`) builds the syntax tree ([`ast`], public: [`parse`]
//! gives it to other back ends, such as the CLI's SQL translation), the
//! compiler (`compile.rs`) checks types and emits bytecode (`program.rs`),
//! and the VM (`vm.rs`) runs it.
//!
//! # Examples
//!
//! ```text
//! level >= warn and target starts_with "db::"
//! message contains "timeout" or field.user_id == 42
//! task under "1b4e28ba-2fa1-11d2-883f-0016d3cca427"   # the task and its subtree
//! host in ["web-1", "web-2"] and not (pid == 7)
//! time >= "2024-05-01T00:00:00Z" and kind == log
//! true                                                # everything
//! ```
//!
//! # Grammar
//!
//! ```text
//! filter     = or_expr EOF ;
//! or_expr    = and_expr { ( "or" | "||" ) and_expr } ;
//! and_expr   = unary { ( "and" | "&&" ) unary } ;
//! unary      = ( "not" | "!" ) unary | primary ;
//! primary    = "(" or_expr ")" | "true" | "false" | comparison ;
//! comparison = field ( cmp_op value
//!                    | [ "not" ] text_op value
//!                    | [ "not" ] "in" list ) ;
//! cmp_op     = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! text_op    = "contains" | "starts_with" | "ends_with" | "under" ;
//! list       = "[" [ value { "," value } [ "," ] ] "]" ;
//! field      = "level" | "target" | "message" | "host" | "pid" | "process"
//!            | "thread" | "file" | "line" | "module" | "func" | "error"
//!            | "time" | "task" | "key" | "kind" | "system"
//!            | "field" "." name { "." name } ;
//! name       = word | string ;
//! value      = string | integer | float | "true" | "false" | "null" | word ;
//! string     = '"' { char | escape } '"' ;   (* \\ \" \n \r \t \0 \u{HEX} *)
//! integer    = [ "-" ] digit { digit } ;
//! float      = integer ( "." digit { digit } [ exponent ] | exponent ) ;
//! word       = ( letter | "_" ) { letter | digit | "_" } ;
//! ```
//!
//! Precedence, tightest first: comparisons, `not`, `and`, `or`. Keywords are
//! lower case. `#` starts a comment that runs to the end of the line.
//! `x not in [..]` (and `not contains`, ...) means `not (x in [..])`.
//!
//! # Fields
//!
//! | field | type | compares with |
//! |---|---|---|
//! | `level` | severity, Python's scale | a name (`trace` 5 `debug` 10 `info` 20 `warn`/`warning` 30 `error` 40 `critical`/`fatal` 50, bare or quoted, any case) or a number |
//! | `target` | text (logger name) | strings; `under` uses `::` |
//! | `message` | text | strings; a deferred message is matched piece by piece (format text and each argument's text), `<` and `in` render it first |
//! | `host`, `process` | text (the sender's host and program) | strings |
//! | `pid` | number (the sender's) | integers |
//! | `thread` | the thread's name, or its id | strings (name) or integers (id) |
//! | `file` | text | strings; `under` uses `/` |
//! | `module` | text | strings; `under` uses `::` |
//! | `func`, `error` | text (function name, error text) | strings |
//! | `line` | number | integers |
//! | `time` | ns since the Unix epoch | an RFC 3339 string (`"2024-05-01T12:00:00.5+02:00"`, or a bare date for midnight UTC) or an integer of ns |
//! | `task` | text (`<root uuid>/<n>/...`, empty outside a task) | strings; `under` uses `/` |
//! | `key` | text `"<n>@<task>"` | strings; missing outside a task |
//! | `kind` | `log` or `perf` | `log`/`perf`, `"L"`/`"P"`: `==`, `!=`, `in` |
//! | `system` | the topic's system | `test`/`staging`/`production`, `"T"`/`"S"`/`"P"`: `==`, `!=`, `in` |
//! | `field.<name>` | typed: the record's first field of that name | strings, numbers, `true`/`false`, `null` |
//!
//! Semantics:
//!
//! - Text compares byte-wise (`<` is lexicographic); `contains`,
//!   `starts_with` and `ends_with` are case-sensitive.
//! - `x under "p"` is `x == "p" or x starts_with "p" + sep`: `task under
//!   "uuid/1"` matches `uuid/1` and `uuid/1/4`, not `uuid/10`.
//! - Typed fields compare numbers numerically and exactly across signed,
//!   unsigned and float values; strings with strings; booleans and `null`
//!   with `==`/`!=` only. A **missing field, or a value of another type,
//!   makes the comparison false**, `!=` included (`field.x != null` thus
//!   tests that `x` is present); `not (...)` and `not in` negate the whole
//!   comparison, so they are true for a missing field. The same holds for
//!   `key` outside a task.
//! - Misuse is a compile error with its position: `pid contains "1"`,
//!   `level == loud`, `host == web1` (unquoted), a bad RFC 3339 time.
//!
//! # Bytecode
//!
//! A program is a `Vec` of small instructions (32 bytes) plus constant
//! pools (strings, [`memchr::memmem::Finder`]s built once, sorted sets,
//! 256-bit sets for byte fields, typed constants). As in classic BPF, each
//! instruction is one test with two targets, `test ? jt : jf`: where to
//! continue when it passes and when it fails. A target is a later
//! instruction, `accept` or `reject`.
//!
//! - Tests: `range F lo..=hi` (every numeric comparison, folded at compile
//!   time into an inclusive range of the field's domain: one subtraction
//!   and one compare), `in F {sorted set}`, `in F {bitset}`,
//!   `str F <op> "k"`, `key <op> "k"`, `field NAME <op> k`.
//! - `a and b` is `0: a ? 1 : reject; 1: b ? accept : reject`; `a or b` is
//!   `0: a ? accept : 1; 1: b ? accept : reject`; `not` swaps a test's
//!   targets and costs nothing; `!=` on a number is a range with swapped
//!   targets.
//! - Targets only go forward (the compiler checks), so a program of n
//!   instructions runs at most n tests: no loops, always terminates.
//!
//! ```text
//! level >= warn and target starts_with "db::" and message contains "timeout"
//!
//!    0  range Level 30..=255  ? 1 : reject
//!    1  str Target starts_with "db::"  ? 2 : reject
//!    2  str Message contains "timeout"  ? accept : reject
//! ```
//!
//! The compiler folds constants (`level >= 0` is `true`, `x or true` is
//! `true`; a filter that folds to a constant has no instructions),
//! flattens nested `and`/`or`, and orders the operands of each `and`/`or`
//! cheapest first (tests have no side effects, so only the cost changes).
//! [`Filter::disassemble`] shows the result.
//!
//! # Cost
//!
//! No allocation in steady state: `==`, `starts_with`, `ends_with` and
//! `contains` on a record whose formatting was deferred walk its pieces
//! (the format's literal runs and each argument's text, numbers written on
//! the stack) through a 256-byte stack window, without building the
//! message; needles over 128 bytes, `<` and `in` render it into a
//! thread-local buffer that is reused (it allocates only to grow), once per
//! record, and only if a test reaches it;
//! `key` is compared piecewise (counter digits on the stack, task path
//! borrowed), never built.
//!
//! # Many filters
//!
//! [`FilterSet`] evaluates many filters (a broker's rules) together: each
//! distinct test once, each field's tests at once (one table lookup for all
//! level tests, one hash probe for all `==` on a field, one automaton scan
//! for all `contains` on it), results memoized per set of passing tests.
//! See [`FilterSet`] for the model and its bounds.

pub mod ast;
mod bounds;
mod bytes;
mod combine;
mod compile;
mod error;
mod lexer;
mod message_align;
mod message_match;
mod parser;
mod program;
pub mod render;
mod rfc3339;
mod set;
mod set_batch;
mod set_cache;
mod set_fields;
mod set_memo;
mod set_sites;
mod set_vm;
mod site_memo;
mod site_shape;
mod vm;

#[cfg(test)]
mod set_tests;
#[cfg(test)]
mod tests;

pub use error::{FilterError, SetError};
pub use set::{FilterSet, Matcher, Router};
pub use site_memo::{BatchScan, InBatch};

use distlog_core::view::RecordRef;
use distlog_core::wire::ArchivedSender;
use program::Program;
use std::fmt;
use std::sync::Arc;

/// Parses `src` into its syntax tree, without compiling it: for code that
/// walks a filter itself (see [`ast`]). Same errors and limits as
/// [`Filter::parse`], except the type checks, which only compiling does:
/// `pid contains "1"` parses.
///
/// ```
/// use distlog_filter::ast::Expr;
///
/// assert_eq!(distlog_filter::parse("true")?, Expr::Bool(true));
/// assert!(distlog_filter::parse("pid contains \"1\"").is_ok());
/// assert!(distlog_filter::Filter::parse("pid contains \"1\"").is_err());
/// # Ok::<(), distlog_filter::FilterError>(())
/// ```
pub fn parse(src: &str) -> Result<ast::Expr, FilterError> {
    parser::parse(src)
}

/// Parses an RFC 3339 timestamp, exactly as the filter's `time`
/// comparisons accept it (a bare `YYYY-MM-DD` is midnight UTC; an offset is
/// required), to nanoseconds since the Unix epoch. The error says what was
/// expected.
///
/// ```
/// assert_eq!(
///     distlog_filter::parse_rfc3339("2023-11-14T22:13:20Z"),
///     Ok(1_700_000_000_000_000_000)
/// );
/// ```
pub fn parse_rfc3339(s: &str) -> Result<i128, &'static str> {
    rfc3339::parse(s)
}

/// What a filter looks at: one archived record, its batch's sender, and the
/// system byte of the topic it arrived with (`T`, `S` or `P`).
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The topic's system byte: `b'T'`, `b'S'` or `b'P'`.
    pub system: u8,
    /// The sender of the record's batch (host, pid, program).
    pub sender: &'a ArchivedSender,
    /// The record.
    pub record: RecordRef<'a>,
}

impl<'a> RecordView<'a> {
    /// A view of `record`, sent by `sender` under `system`.
    pub fn new(system: u8, sender: &'a ArchivedSender, record: impl Into<RecordRef<'a>>) -> Self {
        RecordView {
            system,
            sender,
            record: record.into(),
        }
    }
}

/// A compiled filter. Cheap to clone (shared), `Send` and `Sync`.
///
/// ```
/// use distlog_filter::Filter;
///
/// let f = Filter::parse(r#"host in ["web-1", "web-2"] and not (pid == 7)"#)?;
/// assert!(!f.is_always());
/// assert!(Filter::always().is_always());
/// # Ok::<(), distlog_filter::FilterError>(())
/// ```
#[derive(Clone)]
pub struct Filter {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<str>,
    program: Program,
}

impl Filter {
    /// Parses and compiles `src`.
    ///
    /// Errors carry their line and column ([`FilterError`]). Never panics,
    /// whatever the input; nesting deeper than 64 levels and sources longer
    /// than 1 MiB are errors.
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        let expr = parser::parse(src)?;
        let program = compile::compile(src, &expr)?;
        Ok(Filter {
            inner: Arc::new(Inner {
                source: src.into(),
                program,
            }),
        })
    }

    /// The filter that matches every record (source `true`).
    pub fn always() -> Filter {
        Filter {
            inner: Arc::new(Inner {
                source: "true".into(),
                program: Program {
                    constant: true,
                    ..Program::default()
                },
            }),
        }
    }

    /// The source text this filter was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Whether the filter compiled to "match everything" (`true`, or
    /// anything that folds to it, like `level >= 0`), so callers can skip it.
    pub fn is_always(&self) -> bool {
        self.inner.program.code.is_empty() && self.inner.program.constant
    }

    /// Whether the record passes the filter. Allocates nothing in steady
    /// state (see the module docs).
    #[inline]
    pub fn matches(&self, view: &RecordView<'_>) -> bool {
        self.inner.program.run(view)
    }

    /// A scan of whole batches with this filter: [`Filter::matches`]
    /// with the work on a deferred message's call site (its format's plan,
    /// the needle's verdict, the test's alignments) done once per batch
    /// and site rather than per record. See [`BatchScan`].
    pub fn batch_scan(&self) -> BatchScan<'_> {
        BatchScan::new(&self.inner.program)
    }

    /// The compiled bytecode as text, one instruction per line (for
    /// debugging and documentation; the format is not stable).
    pub fn disassemble(&self) -> String {
        self.inner.program.disassemble()
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

impl Default for Filter {
    /// [`Filter::always`].
    fn default() -> Filter {
        Filter::always()
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.source()).finish()
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source())
    }
}
