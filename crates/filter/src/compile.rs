//! Expression tree to bytecode: type checks, constant work, codegen.
//!
//! 1. **Lower**: each comparison is checked against its field's type (with a
//!    positioned error when it makes no sense) and becomes one instruction,
//!    with its constants resolved once: level names to numbers, RFC 3339 to
//!    nanoseconds, numeric comparisons to an inclusive range of the field's
//!    domain, substrings to a [`Finder`], lists to sorted sets or bitsets.
//! 2. **Fold**: constant results propagate (`level >= 0` is `true`,
//!    `x and false` is `false`, `not not x` is `x`), nested `and`/`or` flatten.
//! 3. **Order**: the operands of each `and`/`or` are sorted by estimated
//!    cost, cheapest first (stable), so a cheap test can skip an expensive
//!    one. Tests have no side effects, so the result is the same.
//! 4. **Emit** a decision graph, as classic BPF does: each instruction is
//!    one test with two targets, where to go when it passes and when it
//!    fails. `a and b` is `a ? b : F; b ? T : F`, `a or b` is `a ? T : b;
//!    b ? T : F`, and `not a` swaps `a`'s targets, so it costs nothing.
//!    Targets are later instructions or accept/reject: jumps only go
//!    forward, and a program of n instructions runs at most n tests.

use super::ast::{Cmp, CmpOp, Expr, FieldRef, Lit, Rhs, Span};
use super::error::{ErrorKind, FilterError};
use super::program::{
    mask, Const, FieldTest, Instr, NumField, Program, Sep, StrField, StrTest, Test, ValueSet,
    ACCEPT, REJECT,
};
use super::rfc3339;
use distlog_core::record::level;
use memchr::memmem::Finder;
use std::collections::HashMap;

/// The lowered tree (also what a [`FilterSet`](super::FilterSet) combines).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Const(bool),
    Leaf(Test),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

fn not(n: Node) -> Node {
    match n {
        Node::Const(b) => Node::Const(!b),
        Node::Not(inner) => *inner,
        other => Node::Not(Box::new(other)),
    }
}

/// `and` (when `is_and`) or `or` of `nodes`, folded and flattened.
fn junction(is_and: bool, nodes: Vec<Node>) -> Node {
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        match n {
            // The neutral element disappears; the absorbing one wins.
            Node::Const(b) if b == is_and => {}
            Node::Const(b) => return Node::Const(b),
            Node::And(inner) if is_and => out.extend(inner),
            Node::Or(inner) if !is_and => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Node::Const(is_and),
        1 => out.pop().unwrap_or(Node::Const(is_and)),
        _ if is_and => Node::And(out),
        _ => Node::Or(out),
    }
}

/// Compiles a parsed filter.
pub(super) fn compile(src: &str, expr: &Expr) -> Result<Program, FilterError> {
    let mut c = Compiler {
        src,
        prog: Program::default(),
        strs: HashMap::new(),
        finders: HashMap::new(),
    };
    let node = c.lower(expr)?;
    let node = reorder(node);
    if let Node::Const(b) = node {
        c.prog.constant = b;
        return Ok(c.prog);
    }
    let mut e = Emitter::default();
    e.gen(&node, ACCEPT, REJECT);
    let code = e.resolve();
    // The VM relies on this for termination; the emitter guarantees it.
    let forward = code.iter().enumerate().all(|(pc, ins)| {
        [ins.jt, ins.jf]
            .iter()
            .all(|&t| t == ACCEPT || t == REJECT || (t as usize > pc && (t as usize) < code.len()))
    });
    if !forward {
        return Err(FilterError::new(
            src,
            0,
            ErrorKind::Invalid("internal error: the compiler emitted a backward jump".into()),
        ));
    }
    c.prog.code = code;
    Ok(c.prog)
}

struct Compiler<'s> {
    src: &'s str,
    prog: Program,
    /// `prog.strs` by value, so each constant is stored once.
    strs: HashMap<Box<str>, u32>,
    /// `prog.finders` by needle.
    finders: HashMap<Box<str>, u32>,
}

/// Constant pools shared by the filters of a set, so that the same test in
/// two filters lowers to the same [`Test`] (`strs` and `finders` are
/// interned; see [`lower_shared`]).
#[derive(Default)]
pub(super) struct SharedPools {
    pub prog: Program,
    strs: HashMap<Box<str>, u32>,
    finders: HashMap<Box<str>, u32>,
}

/// Lowers one filter of a set (steps 1 and 2 only: a set does not emit
/// bytecode), its constants going into `pools`.
pub(super) fn lower_shared(
    src: &str,
    expr: &Expr,
    pools: &mut SharedPools,
) -> Result<Node, FilterError> {
    let mut c = Compiler {
        src,
        prog: std::mem::take(&mut pools.prog),
        strs: std::mem::take(&mut pools.strs),
        finders: std::mem::take(&mut pools.finders),
    };
    let node = c.lower(expr);
    pools.prog = c.prog;
    pools.strs = c.strs;
    pools.finders = c.finders;
    node
}

fn ord_mask(op: CmpOp) -> u8 {
    match op {
        CmpOp::Eq => mask::EQ,
        CmpOp::Ne => mask::LT | mask::GT,
        CmpOp::Lt => mask::LT,
        CmpOp::Le => mask::LT | mask::EQ,
        CmpOp::Gt => mask::GT,
        _ => mask::GT | mask::EQ,
    }
}

fn is_ordering(op: CmpOp) -> bool {
    matches!(
        op,
        CmpOp::Eq | CmpOp::Ne | CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge
    )
}

impl Compiler<'_> {
    fn err(&self, span: Span, msg: String) -> FilterError {
        FilterError::new(self.src, span.start, ErrorKind::Invalid(msg))
    }

    fn idx(len: usize) -> u32 {
        // Pools are bounded by the source length (at most 1 MiB).
        len as u32
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.strs.get(s) {
            return i;
        }
        self.prog.strs.push(s.into());
        let i = Self::idx(self.prog.strs.len() - 1);
        self.strs.insert(s.into(), i);
        i
    }

    fn finder(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.finders.get(s) {
            return i;
        }
        self.prog
            .finders
            .push(Finder::new(s.as_bytes()).into_owned());
        let i = Self::idx(self.prog.finders.len() - 1);
        self.finders.insert(s.into(), i);
        i
    }

    fn lower(&mut self, e: &Expr) -> Result<Node, FilterError> {
        Ok(match e {
            Expr::Bool(b) => Node::Const(*b),
            Expr::Not(x) => not(self.lower(x)?),
            Expr::And(xs) | Expr::Or(xs) => {
                let nodes = xs
                    .iter()
                    .map(|x| self.lower(x))
                    .collect::<Result<Vec<_>, _>>()?;
                junction(matches!(e, Expr::And(_)), nodes)
            }
            Expr::Cmp(c) => {
                let n = self.cmp(c)?;
                if c.negated {
                    not(n)
                } else {
                    n
                }
            }
        })
    }

    fn cmp(&mut self, c: &Cmp) -> Result<Node, FilterError> {
        use FieldRef as F;
        match &c.field {
            F::Level => self.num(c, NumField::Level),
            F::Kind => self.num(c, NumField::Kind),
            F::System => self.num(c, NumField::System),
            F::Pid => self.num(c, NumField::Pid),
            F::Line => self.num(c, NumField::Line),
            F::Time => self.num(c, NumField::Time),
            F::Thread => self.thread(c),
            F::Target => self.text(c, StrField::Target, Some(Sep::Colons)),
            F::Module => self.text(c, StrField::Module, Some(Sep::Colons)),
            F::File => self.text(c, StrField::File, Some(Sep::Slash)),
            F::Task => self.text(c, StrField::Task, Some(Sep::Slash)),
            F::Message => self.text(c, StrField::Message, None),
            F::Host => self.text(c, StrField::Host, None),
            F::Process => self.text(c, StrField::Process, None),
            F::Func => self.text(c, StrField::Func, None),
            F::Error => self.text(c, StrField::Error, None),
            F::Key => {
                let (test, negate) = self.str_test(c, None, true)?;
                Ok(match test {
                    Ok(t) => wrap(Node::Leaf(Test::Key(t)), negate),
                    Err(b) => Node::Const(b ^ negate),
                })
            }
            F::Custom(name) => self.custom(c, name),
        }
    }

    // ---- numbers -------------------------------------------------------

    /// The integer a literal means for a numeric field.
    fn num_lit(
        &self,
        field: NumField,
        fname: &str,
        lit: &Lit,
        span: Span,
    ) -> Result<i128, FilterError> {
        let text = match lit {
            Lit::Str(s) | Lit::Name(s) => Some(s.as_str()),
            _ => None,
        };
        match field {
            NumField::Level => {
                if let Lit::Int(n) = lit {
                    return Ok(*n);
                }
                text.and_then(level::parse).map(i128::from).ok_or_else(|| {
                    self.err(
                        span,
                        format!(
                            "unknown level {}: expected trace, debug, info, warn, error, \
                             critical or a number",
                            lit.describe()
                        ),
                    )
                })
            }
            NumField::Kind | NumField::System => {
                let lower = text.map(str::to_ascii_lowercase).unwrap_or_default();
                let (found, expected) = if field == NumField::Kind {
                    let k = match lower.as_str() {
                        "l" | "log" => Some(b'L'),
                        "p" | "perf" | "performance" => Some(b'P'),
                        _ => None,
                    };
                    (k, "`log` (\"L\") or `perf` (\"P\")")
                } else {
                    let s = match lower.as_str() {
                        "t" | "test" => Some(b'T'),
                        "s" | "staging" => Some(b'S'),
                        "p" | "prod" | "production" => Some(b'P'),
                        _ => None,
                    };
                    (
                        s,
                        "`test` (\"T\"), `staging` (\"S\") or `production` (\"P\")",
                    )
                };
                found.map(i128::from).ok_or_else(|| {
                    self.err(
                        span,
                        format!(
                            "expected {expected} for `{fname}`, found {}",
                            lit.describe()
                        ),
                    )
                })
            }
            NumField::Time => match lit {
                Lit::Int(n) => Ok(*n),
                Lit::Str(s) => rfc3339::parse(s)
                    .map_err(|why| self.err(span, format!("invalid time {s:?}: {why}"))),
                other => Err(self.err(
                    span,
                    format!(
                        "`time` expected an RFC 3339 string such as \"2024-05-01T12:00:00Z\" \
                         or an integer of nanoseconds since the epoch, found {}",
                        other.describe()
                    ),
                )),
            },
            NumField::Pid | NumField::Line | NumField::ThreadId => match lit {
                Lit::Int(n) => Ok(*n),
                other => Err(self.err(
                    span,
                    format!(
                        "`{fname}` is a number: expected an integer, found {}",
                        other.describe()
                    ),
                )),
            },
        }
    }

    fn num(&mut self, c: &Cmp, field: NumField) -> Result<Node, FilterError> {
        let fname = c.field.name();
        let byte_like = matches!(field, NumField::Kind | NumField::System);
        let ok = match c.op {
            CmpOp::Eq | CmpOp::Ne | CmpOp::In => true,
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => !byte_like,
            _ => false,
        };
        if !ok {
            let allowed = if byte_like {
                "==, != or in"
            } else {
                "==, !=, <, <=, >, >= or in"
            };
            return Err(self.err(
                c.op_span,
                format!(
                    "`{}` does not apply to `{fname}`: expected {allowed}",
                    c.op.as_str()
                ),
            ));
        }
        match &c.rhs {
            Rhs::One(lit, span) => {
                let v = self.num_lit(field, &fname, lit, *span)?;
                Ok(num_cmp(field, c.op, v))
            }
            Rhs::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for (lit, span) in items {
                    values.push(self.num_lit(field, &fname, lit, *span)?);
                }
                Ok(self.num_in(field, values))
            }
        }
    }

    fn num_in(&mut self, field: NumField, values: Vec<i128>) -> Node {
        let max = i128::from(field.max());
        let mut values: Vec<u64> = values
            .into_iter()
            .filter(|v| (0..=max).contains(v))
            .map(|v| v as u64)
            .collect();
        values.sort_unstable();
        values.dedup();
        match values.as_slice() {
            [] => Node::Const(false),
            [v] => Node::Leaf(Test::Range {
                field,
                lo: *v,
                hi: *v,
            }),
            _ if field.max() == u64::from(u8::MAX) => {
                let mut bits = [0u64; 4];
                for v in values {
                    bits[(v >> 6) as usize] |= 1 << (v & 63);
                }
                self.prog.byte_sets.push(bits);
                let set = Self::idx(self.prog.byte_sets.len() - 1);
                Node::Leaf(Test::ByteIn { field, set })
            }
            _ => {
                self.prog.num_sets.push(values);
                let set = Self::idx(self.prog.num_sets.len() - 1);
                Node::Leaf(Test::NumIn { field, set })
            }
        }
    }

    // ---- text ----------------------------------------------------------

    fn str_lit(&self, fname: &str, lit: &Lit, span: Span) -> Result<String, FilterError> {
        match lit {
            Lit::Str(s) => Ok(s.clone()),
            Lit::Name(n) => Err(self.err(
                span,
                format!("`{fname}` is text: expected a double-quoted string, as in \"{n}\""),
            )),
            other => Err(self.err(
                span,
                format!(
                    "`{fname}` is text: expected a double-quoted string, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn str_in(&mut self, mut values: Vec<String>) -> Result<StrTest, bool> {
        values.sort_unstable();
        values.dedup();
        match values.len() {
            0 => Err(false),
            1 => Ok(StrTest::Eq(self.intern(&values[0]))),
            _ => {
                self.prog
                    .str_sets
                    .push(values.into_iter().map(String::into_boxed_str).collect());
                Ok(StrTest::In(Self::idx(self.prog.str_sets.len() - 1)))
            }
        }
    }

    /// The test for a comparison on a text value: `Ok(test)` or `Err(constant
    /// result)`, and whether to negate it. `maybe_missing`: the value can be
    /// absent (the key outside a task), so no test folds to a constant
    /// `true`, and `!=` stays a test that is false when it is absent.
    #[allow(clippy::type_complexity)]
    fn str_test(
        &mut self,
        c: &Cmp,
        under: Option<Sep>,
        maybe_missing: bool,
    ) -> Result<(Result<StrTest, bool>, bool), FilterError> {
        let fname = c.field.name();
        let one = |this: &Self| match &c.rhs {
            Rhs::One(lit, span) => this.str_lit(&fname, lit, *span),
            Rhs::List(_) => Ok(String::new()),
        };
        let test = match c.op {
            CmpOp::Eq => Ok(StrTest::Eq(self.intern(&one(self)?))),
            CmpOp::Ne if !maybe_missing => {
                return Ok((Ok(StrTest::Eq(self.intern(&one(self)?))), true));
            }
            CmpOp::Ne | CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                Ok(StrTest::Cmp(ord_mask(c.op), self.intern(&one(self)?)))
            }
            CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith => {
                let s = one(self)?;
                if s.is_empty() && !maybe_missing {
                    Err(true)
                } else if c.op == CmpOp::Contains {
                    Ok(StrTest::Contains(self.finder(&s)))
                } else if c.op == CmpOp::StartsWith {
                    Ok(StrTest::StartsWith(self.intern(&s)))
                } else {
                    Ok(StrTest::EndsWith(self.intern(&s)))
                }
            }
            CmpOp::Under => match under {
                Some(sep) => Ok(StrTest::Under(self.intern(&one(self)?), sep)),
                None => {
                    return Err(self.err(
                        c.op_span,
                        format!(
                            "`under` does not apply to `{fname}`: it tests task paths \
                             (task, file: `/`) and module paths (target, module: `::`)"
                        ),
                    ))
                }
            },
            CmpOp::In => {
                let Rhs::List(items) = &c.rhs else {
                    return Ok((Err(false), false));
                };
                let mut values = Vec::with_capacity(items.len());
                for (lit, span) in items {
                    values.push(self.str_lit(&fname, lit, *span)?);
                }
                self.str_in(values)
            }
        };
        Ok((test, false))
    }

    fn text(&mut self, c: &Cmp, field: StrField, under: Option<Sep>) -> Result<Node, FilterError> {
        let (test, negate) = self.str_test(c, under, false)?;
        Ok(match test {
            Ok(test) => wrap(Node::Leaf(Test::Str { field, test }), negate),
            Err(b) => Node::Const(b ^ negate),
        })
    }

    /// `thread`: its name when compared with strings, its id with integers.
    fn thread(&mut self, c: &Cmp) -> Result<Node, FilterError> {
        match &c.rhs {
            Rhs::One(Lit::Int(_), _) => self.num(c, NumField::ThreadId),
            Rhs::One(..) => self.text(c, StrField::Thread, None),
            Rhs::List(items) => {
                let (mut ids, mut names) = (Vec::new(), Vec::new());
                for (lit, span) in items {
                    match lit {
                        Lit::Int(n) => ids.push(*n),
                        other => names.push(self.str_lit("thread", other, *span)?),
                    }
                }
                let by_id = self.num_in(NumField::ThreadId, ids);
                let by_name = match self.str_in(names) {
                    Ok(test) => Node::Leaf(Test::Str {
                        field: StrField::Thread,
                        test,
                    }),
                    Err(b) => Node::Const(b),
                };
                Ok(junction(false, vec![by_id, by_name]))
            }
        }
    }

    // ---- typed fields --------------------------------------------------

    fn const_lit(&self, lit: &Lit, span: Span) -> Result<Const, FilterError> {
        Ok(match lit {
            Lit::Str(s) => Const::Str(s.as_str().into()),
            Lit::Int(n) => Const::Int(*n),
            Lit::Float(x) => Const::Float(*x),
            Lit::Bool(b) => Const::Bool(*b),
            Lit::Null => Const::Null,
            Lit::Name(n) => {
                return Err(self.err(
                    span,
                    format!(
                        "expected a value (a double-quoted string, a number, true, false \
                         or null), found the name `{n}`; text values are double-quoted, as \
                         in \"{n}\""
                    ),
                ))
            }
        })
    }

    fn custom(&mut self, c: &Cmp, name: &str) -> Result<Node, FilterError> {
        let fname = c.field.name();
        let name_idx = self.intern(name);
        let single = |this: &Self| match &c.rhs {
            Rhs::One(lit, span) => Ok((lit.clone(), *span)),
            Rhs::List(_) => Err(this.err(c.op_span, "expected a single value".into())),
        };
        let test = match c.op {
            op if is_ordering(op) => {
                let (lit, span) = single(self)?;
                let k = self.const_lit(&lit, span)?;
                if matches!(k, Const::Bool(_) | Const::Null) && !matches!(op, CmpOp::Eq | CmpOp::Ne)
                {
                    return Err(self.err(
                        c.op_span,
                        format!(
                            "`{}` orders numbers and strings: expected == or != with {}",
                            op.as_str(),
                            lit.describe()
                        ),
                    ));
                }
                self.prog.values.push(k);
                FieldTest::Cmp(ord_mask(op), Self::idx(self.prog.values.len() - 1))
            }
            CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith => {
                let (lit, span) = single(self)?;
                let s = self.str_lit(&fname, &lit, span)?;
                match c.op {
                    CmpOp::Contains => FieldTest::Contains(self.finder(&s)),
                    CmpOp::StartsWith => FieldTest::StartsWith(self.intern(&s)),
                    _ => FieldTest::EndsWith(self.intern(&s)),
                }
            }
            CmpOp::In => {
                let Rhs::List(items) = &c.rhs else {
                    return Ok(Node::Const(false));
                };
                if items.is_empty() {
                    return Ok(Node::Const(false));
                }
                let mut set = ValueSet::default();
                for (lit, span) in items {
                    match self.const_lit(lit, *span)? {
                        Const::Str(s) => set.strs.push(s),
                        Const::Int(n) => set.ints.push(n),
                        Const::Float(x) if x.is_nan() => {}
                        Const::Float(x) if x.fract() == 0.0 && x.abs() < 1e38 => {
                            set.ints.push(x as i128)
                        }
                        Const::Float(x) => set.floats.push(x),
                        Const::Bool(b) => set.bools |= 1 << u8::from(b),
                        Const::Null => set.null = true,
                    }
                }
                set.strs.sort_unstable();
                set.strs.dedup();
                set.ints.sort_unstable();
                set.ints.dedup();
                self.prog.value_sets.push(set);
                FieldTest::In(Self::idx(self.prog.value_sets.len() - 1))
            }
            _ => {
                return Err(self.err(
                    c.op_span,
                    format!(
                        "`under` does not apply to `{fname}`: it tests task paths (task, \
                         file) and module paths (target, module)"
                    ),
                ))
            }
        };
        Ok(Node::Leaf(Test::Field {
            name: name_idx,
            test,
        }))
    }
}

fn wrap(n: Node, negate: bool) -> Node {
    if negate {
        not(n)
    } else {
        n
    }
}

/// A numeric comparison as a range of the field's domain, or a constant.
fn num_cmp(field: NumField, op: CmpOp, v: i128) -> Node {
    let max = i128::from(field.max());
    let (lo, hi) = match op {
        CmpOp::Lt => (0, v.saturating_sub(1)),
        CmpOp::Le => (0, v),
        CmpOp::Gt => (v.saturating_add(1), max),
        CmpOp::Ge => (v, max),
        _ => (v, v),
    };
    let (lo, hi) = (lo.max(0), hi.min(max));
    let node = if lo > hi {
        Node::Const(false)
    } else if lo == 0 && hi == max {
        Node::Const(true)
    } else {
        Node::Leaf(Test::Range {
            field,
            lo: lo as u64,
            hi: hi as u64,
        })
    };
    wrap(node, op == CmpOp::Ne)
}

/// Estimated cost of evaluating a node, in rough nanoseconds.
fn cost(n: &Node) -> u32 {
    match n {
        Node::Const(_) => 0,
        Node::Not(x) => cost(x) + 1,
        Node::And(xs) | Node::Or(xs) => xs.iter().map(cost).sum::<u32>() + 1,
        Node::Leaf(test) => match test {
            Test::Range { .. } | Test::ByteIn { .. } => 1,
            Test::NumIn { .. } => 3,
            Test::Str {
                field: StrField::Message,
                ..
            } => 20,
            Test::Str {
                test: StrTest::Contains(_),
                ..
            } => 10,
            Test::Str { .. } => 3,
            Test::Key(_) => 6,
            Test::Field { .. } => 12,
        },
    }
}

/// Sorts the operands of every `and`/`or` cheapest first.
fn reorder(n: Node) -> Node {
    match n {
        Node::Not(x) => Node::Not(Box::new(reorder(*x))),
        Node::And(xs) => {
            let mut xs: Vec<Node> = xs.into_iter().map(reorder).collect();
            xs.sort_by_key(cost);
            Node::And(xs)
        }
        Node::Or(xs) => {
            let mut xs: Vec<Node> = xs.into_iter().map(reorder).collect();
            xs.sort_by_key(cost);
            Node::Or(xs)
        }
        other => other,
    }
}

/// Emits the decision graph: every test gets its two targets.
#[derive(Default)]
struct Emitter {
    /// Targets are label ids (or ACCEPT / REJECT) until [`Emitter::resolve`].
    code: Vec<Instr>,
    /// Label id to the instruction it names.
    labels: Vec<u32>,
}

impl Emitter {
    fn label(&mut self) -> u32 {
        self.labels.push(0);
        (self.labels.len() - 1) as u32
    }

    fn bind(&mut self, label: u32) {
        self.labels[label as usize] = self.code.len() as u32;
    }

    /// Emits `n`: continue at `t` if it holds, at `f` if not.
    fn gen(&mut self, n: &Node, t: u32, f: u32) {
        match n {
            Node::Leaf(test) => self.code.push(Instr {
                test: *test,
                jt: t,
                jf: f,
            }),
            // Negation is free: swap the targets.
            Node::Not(x) => self.gen(x, f, t),
            Node::And(xs) | Node::Or(xs) => {
                let is_and = matches!(n, Node::And(_));
                let Some((last, init)) = xs.split_last() else {
                    return self.constant(is_and, t, f);
                };
                for x in init {
                    let next = self.label();
                    if is_and {
                        self.gen(x, next, f);
                    } else {
                        self.gen(x, t, next);
                    }
                    self.bind(next);
                }
                self.gen(last, t, f);
            }
            Node::Const(b) => self.constant(*b, t, f),
        }
    }

    /// Folding leaves constants only at the root, which is not emitted;
    /// should one appear inside, a test that always passes carries it.
    fn constant(&mut self, b: bool, t: u32, f: u32) {
        let target = if b { t } else { f };
        self.code.push(Instr {
            test: Test::Range {
                field: NumField::Time,
                lo: 0,
                hi: u64::MAX,
            },
            jt: target,
            jf: target,
        });
    }

    fn resolve(self) -> Vec<Instr> {
        let labels = self.labels;
        let at = |t: u32| match t {
            ACCEPT | REJECT => t,
            label => labels[label as usize],
        };
        self.code
            .into_iter()
            .map(|ins| Instr {
                test: ins.test,
                jt: at(ins.jt),
                jf: at(ins.jf),
            })
            .collect()
    }
}
