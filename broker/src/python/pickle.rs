//! The pickle form of a Python LogRecord (`xLP`), decoded without executing
//! anything.
//!
//! The original client's `PickleFormatter` sends
//! `pickle.dumps(record.__dict__, 3)`: a dict of plain data (it sets
//! `exc_info` and `args` to `None` first, after formatting the exception
//! into `exc_text`). This is a pickle *reader for plain data only*, not an
//! unpickler: it understands the opcodes Python 3 emits for dicts, lists,
//! tuples, sets, `str`, `bytes`, `int`, `float`, `bool` and `None` in
//! protocols 2 to 5, plus the memo, `MARK`, `FRAME`, `PROTO` and `STOP`.
//!
//! - Opcodes that import, construct or call anything (`GLOBAL`,
//!   `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`,
//!   `NEWOBJ_EX`, `PERSID`, `BINPERSID`, `EXT1/2/4`) are rejected as
//!   `pickle_forbidden`; the protocol-0 text opcodes and out-of-band buffers
//!   as `pickle_unsupported`; a pickle that does not start with `PROTO` 2..=5
//!   as `pickle_unsupported` too.
//! - Malformed input (truncated, stack underflow, unknown memo slot, data
//!   after `STOP`...) is `pickle_syntax`; exceeding a bound is
//!   `pickle_limit`; a top value that is not a dict is `pickle_not_dict`.
//!
//! The top-level dict's entries go through the same LogRecord mapping as
//! the JSON form (string keys and values borrowed from the parsed pickle);
//! values that are not strings become `serde_json::Value`s first, as the
//! whole pickle does in [`to_json`]. Where pickle can say more than JSON:
//! `bytes` (and `bytearray`) become their Python `repr`, `b'...'` (lossless,
//! and what `'%s' % value` prints in Python); tuples and sets become arrays;
//! ints outside `i64`/`u64` become decimal strings (up to
//! [`MAX_BIG_INT_BYTES`] bytes, else rejected); non-finite floats become the
//! strings `nan`, `inf`, `-inf`; non-string dict keys become strings as
//! `json.dumps` would write them (`1`, `true`, `null`...), compound keys
//! their JSON text; a container that contains itself becomes `[...]` or
//! `{...}` at the point of recursion (as Python's `repr`). Strings that are
//! not valid UTF-8 (lone surrogates, which Python pickles with
//! `surrogatepass`) are decoded lossily.
//!
//! Bounds: the body ([`super::MAX_BODY`]), values created ([`MAX_VALUES`]),
//! the stack and marks ([`MAX_STACK`]), memo entries ([`MAX_MEMO`]),
//! nesting ([`MAX_DEPTH`]) and the size of the expanded value
//! ([`output_budget`]: memo references can share one value many times, so
//! what they produce is charged, [`VALUE_COST`] per value plus its string
//! bytes, against [`distlog_core::limits::EXPANSION`] times the pickle's size). Every length field is checked
//! against the remaining input before anything is allocated.

use super::error::{ErrorKind, IngestError, MAX_BODY};
use super::logrecord::{Dict, Val};
use distlog_core::record::Record;
use distlog_core::wire::Sender;
use serde_json::{Map, Number, Value as Json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The most values (scalars and containers) one pickle may create.
pub const MAX_VALUES: usize = 1 << 18;
/// The deepest the pickle stack (values plus marks) may grow.
pub const MAX_STACK: usize = 1 << 16;
/// The most memo entries one pickle may hold.
pub const MAX_MEMO: usize = 1 << 17;
/// The deepest container nesting accepted (serde_json's limit for JSON).
pub const MAX_DEPTH: usize = 128;
/// The largest expanded value of any pickle, in [`VALUE_COST`] units per
/// value plus one per byte of string. A pickle of `B` bytes may expand to
/// at most `min(MAX_OUTPUT, EXPANSION * B)` ([`output_budget`]).
pub const MAX_OUTPUT: usize = 4 * MAX_BODY;

/// What each decoded value is charged beyond its string bytes: about the
/// memory of one node of the decoded tree (a `serde_json::Value` and its
/// slot in a list or map), so that many small values shared through the
/// memo cost what they take.
pub const VALUE_COST: usize = 32;

/// The expansion budget of a pickle of `len` bytes:
/// [`distlog_core::limits::EXPANSION`] times its size, at most [`MAX_OUTPUT`].
pub fn output_budget(len: usize) -> usize {
    (distlog_core::limits::budget(len) as usize).min(MAX_OUTPUT)
}
/// The largest integer (in pickled bytes) turned into a decimal string; a
/// longer one is rejected.
pub const MAX_BIG_INT_BYTES: usize = 64;

/// Decodes a pickled Python record (the `logging.LogRecord.__dict__` the
/// original `PickleFormatter` sends). The top-level dict's entries go
/// straight into the LogRecord mapping's [`Dict`] (string keys and values
/// borrowed from the parsed pickle), charged against the budget exactly
/// as [`to_json`] charges them, so the same input gives the same record or
/// the same error either way.
pub fn decode_pickle(body: &[u8]) -> Result<(Sender, Record), IngestError> {
    let (p, root) = parse(body)?;
    let mut out = Output {
        nodes: &p.nodes,
        budget: output_budget(body.len()),
        on_path: vec![false; p.nodes.len()],
    };
    match &p.nodes[root as usize] {
        Node::Dict(pairs) => out.dict(root, pairs)?.into_record(),
        _ => {
            out.value(root, 0)?;
            Err(IngestError::new(ErrorKind::PickleNotDict))
        }
    }
}

/// Reads a plain-data pickle into a JSON value (see the module docs for how
/// Python types map).
pub fn to_json(body: &[u8]) -> Result<Json, IngestError> {
    let (p, root) = parse(body)?;
    let mut out = Output {
        nodes: &p.nodes,
        budget: output_budget(body.len()),
        on_path: vec![false; p.nodes.len()],
    };
    out.value(root, 0)
}

/// Parses a pickle into its node arena and the id of its top value.
fn parse(body: &[u8]) -> Result<(Parser<'_>, Id), IngestError> {
    if body.len() > MAX_BODY {
        return Err(IngestError::new(ErrorKind::TooLarge(body.len())));
    }
    let mut p = Parser {
        input: body,
        pos: 0,
        op_at: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = p.run()?;
    Ok((p, root))
}

type Id = u32;

/// Shared constants: `None`, `True` and `False` take no arena slot.
const NONE: Id = 0;
const TRUE: Id = 1;
const FALSE: Id = 2;

enum Node {
    None,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// An int beyond 64 bits, already in decimal.
    Big(String),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(SeqKind, Vec<Id>),
    Dict(Vec<(Id, Id)>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SeqKind {
    List,
    Tuple,
    Set,
    FrozenSet,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed, for error messages.
    op_at: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each MARK (as CPython's metastack).
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

fn syntax(at: usize, what: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::PickleSyntax(format!(
        "at byte {at}: {}",
        what.into()
    )))
}

impl Parser<'_> {
    fn err(&self, what: impl Into<String>) -> IngestError {
        syntax(self.op_at, what)
    }

    fn limit(&self, what: &'static str) -> IngestError {
        IngestError::new(ErrorKind::PickleLimit(what))
    }

    #[inline]
    fn take(&mut self, n: u64) -> Result<&[u8], IngestError> {
        let left = self.input.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.input[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => Err(self.truncated(n, left)),
        }
    }

    /// The error of a `take` past the end: out of line, so the hot path
    /// that inlines `take` carries no formatting.
    #[cold]
    #[inline(never)]
    fn truncated(&self, n: u64, left: usize) -> IngestError {
        self.err(format!("truncated: needs {n} bytes, {left} remain"))
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], IngestError> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, IngestError> {
        Ok(self.arr::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, IngestError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64, IngestError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    /// A signed 4-byte length (BINSTRING, LONG4): negative is malformed.
    fn len_i32(&mut self) -> Result<u64, IngestError> {
        let n = i32::from_le_bytes(self.arr()?);
        u64::try_from(n).map_err(|_| self.err(format!("negative length {n}")))
    }

    fn new_node(&mut self, n: Node) -> Result<Id, IngestError> {
        if self.nodes.len() >= MAX_VALUES {
            return Err(self.limit("values"));
        }
        self.nodes.push(n);
        Ok((self.nodes.len() - 1) as Id)
    }

    fn push(&mut self, id: Id) -> Result<(), IngestError> {
        if self.stack.len() + self.marks.len() >= MAX_STACK {
            return Err(self.limit("stack"));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, n: Node) -> Result<(), IngestError> {
        let id = self.new_node(n)?;
        self.push(id)
    }

    /// The stack's floor: values below the last mark belong to an outer
    /// level and cannot be popped by a plain pop.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Id, IngestError> {
        if self.stack.len() <= self.fence() {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().unwrap_or(NONE))
    }

    fn top(&self) -> Result<Id, IngestError> {
        if self.stack.len() <= self.fence() {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack[self.stack.len() - 1])
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, IngestError> {
        let m = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        Ok(self.stack.split_off(m))
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, IngestError> {
        if items.len() % 2 != 0 {
            return Err(self.err("odd number of items for a dict"));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    fn seq(&mut self, kind: SeqKind, items: Vec<Id>) -> Result<(), IngestError> {
        self.push_new(Node::Seq(kind, items))
    }

    /// Appends to the list (or adds to the set) on top of the stack.
    fn extend(&mut self, want: SeqKind, items: Vec<Id>) -> Result<(), IngestError> {
        let target = self.top()?;
        match &mut self.nodes[target as usize] {
            Node::Seq(kind, v) if *kind == want => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.err(match want {
                SeqKind::Set => "ADDITEMS to a non-set",
                _ => "APPEND to a non-list",
            })),
        }
    }

    fn set_items(&mut self, pairs: Vec<(Id, Id)>) -> Result<(), IngestError> {
        let target = self.top()?;
        match &mut self.nodes[target as usize] {
            Node::Dict(v) => {
                v.extend(pairs);
                Ok(())
            }
            _ => Err(self.err("SETITEM on a non-dict")),
        }
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), IngestError> {
        let id = self.top()?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&idx) {
            return Err(self.limit("memo"));
        }
        self.memo.insert(idx, id);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> Result<(), IngestError> {
        let id = *self
            .memo
            .get(&idx)
            .ok_or_else(|| self.err(format!("memo slot {idx} is empty")))?;
        self.push(id)
    }

    fn string(&mut self, n: u64) -> Result<(), IngestError> {
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.push_new(Node::Str(s))
    }

    fn bytes(&mut self, n: u64) -> Result<(), IngestError> {
        let b = self.take(n)?.to_vec();
        self.push_new(Node::Bytes(b))
    }

    fn long(&mut self, n: u64) -> Result<(), IngestError> {
        let b = self.take(n)?;
        let node = int_from_le(b).ok_or(IngestError::new(ErrorKind::PickleLimit(
            "integer larger than 64 bytes",
        )))?;
        self.push_new(node)
    }

    fn run(&mut self) -> Result<Id, IngestError> {
        // Shared None / True / False.
        self.nodes
            .extend([Node::None, Node::Bool(true), Node::Bool(false)]);
        let mut first = true;
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            if first && op != 0x80 {
                return Err(IngestError::new(ErrorKind::PickleUnsupported(
                    "no PROTO opcode: protocol 0 or 1 (2 to 5 are read)".into(),
                )));
            }
            first = false;
            match op {
                // PROTO
                0x80 => {
                    let v = self.u8()?;
                    if !(2..=5).contains(&v) {
                        return Err(IngestError::new(ErrorKind::PickleUnsupported(format!(
                            "protocol {v} (2 to 5 are read)"
                        ))));
                    }
                }
                // FRAME: a length prefix for buffering; the frame must fit.
                0x95 => {
                    let n = self.u64()?;
                    let left = (self.input.len() - self.pos) as u64;
                    if n > left {
                        return Err(self.err(format!("frame of {n} bytes, {left} remain")));
                    }
                }
                b'.' => {
                    // STOP
                    if self.pos != self.input.len() {
                        return Err(self.err("data after STOP"));
                    }
                    if !self.marks.is_empty() || self.stack.len() != 1 {
                        return Err(self.err(format!(
                            "{} values and {} marks left at STOP (expected one value)",
                            self.stack.len(),
                            self.marks.len()
                        )));
                    }
                    return Ok(self.stack[0]);
                }
                b'(' => {
                    // MARK
                    if self.stack.len() + self.marks.len() >= MAX_STACK {
                        return Err(self.limit("stack"));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    // POP (a value, or the mark when none is above it)
                    if self.stack.len() > self.fence() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    // POP_MARK
                    self.pop_mark()?;
                }
                b'2' => {
                    // DUP
                    let id = self.top()?;
                    self.push(id)?;
                }
                b'N' => self.push(NONE)?,
                0x88 => self.push(TRUE)?,
                0x89 => self.push(FALSE)?,
                b'J' => {
                    let v = i32::from_le_bytes(self.arr()?);
                    self.push_new(Node::Int(v.into()))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push_new(Node::Int(v.into()))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.arr()?);
                    self.push_new(Node::Int(v.into()))?;
                }
                0x8a => {
                    // LONG1
                    let n = self.u8()?;
                    self.long(n.into())?;
                }
                0x8b => {
                    // LONG4
                    let n = self.len_i32()?;
                    self.long(n)?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.arr()?);
                    self.push_new(Node::Float(v))?;
                }
                b'X' => {
                    let n = self.u32()?;
                    self.string(n.into())?;
                }
                0x8c => {
                    let n = self.u8()?;
                    self.string(n.into())?;
                }
                0x8d => {
                    let n = self.u64()?;
                    self.string(n)?;
                }
                // BINSTRING / SHORT_BINSTRING: Python 2 `str`, which Python 3
                // reads as text.
                b'T' => {
                    let n = self.len_i32()?;
                    self.string(n)?;
                }
                b'U' => {
                    let n = self.u8()?;
                    self.string(n.into())?;
                }
                b'B' => {
                    let n = self.u32()?;
                    self.bytes(n.into())?;
                }
                b'C' => {
                    let n = self.u8()?;
                    self.bytes(n.into())?;
                }
                // BINBYTES8, BYTEARRAY8
                0x8e | 0x96 => {
                    let n = self.u64()?;
                    self.bytes(n)?;
                }
                b'}' => self.push_new(Node::Dict(Vec::new()))?,
                b']' => self.seq(SeqKind::List, Vec::new())?,
                b')' => self.seq(SeqKind::Tuple, Vec::new())?,
                0x8f => self.seq(SeqKind::Set, Vec::new())?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push_new(Node::Dict(pairs))?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.seq(SeqKind::List, items)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.seq(SeqKind::Tuple, items)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.seq(SeqKind::FrozenSet, items)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = vec![NONE; n];
                    for slot in items.iter_mut().rev() {
                        *slot = self.pop()?;
                    }
                    self.seq(SeqKind::Tuple, items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend(SeqKind::List, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend(SeqKind::List, items)?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    self.extend(SeqKind::Set, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.set_items(pairs)?;
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    // MEMOIZE: the next slot is the memo's length.
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(i.into())?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                _ => {
                    if let Some(name) = forbidden(op) {
                        return Err(IngestError::new(ErrorKind::PickleForbidden(
                            name, self.op_at,
                        )));
                    }
                    if let Some(name) = unsupported(op) {
                        return Err(IngestError::new(ErrorKind::PickleUnsupported(format!(
                            "opcode {name} at byte {}",
                            self.op_at
                        ))));
                    }
                    return Err(self.err(format!("unknown opcode 0x{op:02x}")));
                }
            }
        }
    }
}

/// Opcodes that import, construct or call: never executed.
fn forbidden(op: u8) -> Option<&'static str> {
    Some(match op {
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        _ => return None,
    })
}

/// Harmless opcodes this reader does not take: protocol 0's text forms
/// (Python 3 never writes them at protocol 2 or above) and protocol 5's
/// out-of-band buffers.
fn unsupported(op: u8) -> Option<&'static str> {
    Some(match op {
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'g' => "GET",
        b'p' => "PUT",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

/// A little-endian two's-complement integer (LONG1/LONG4): an `i64`, a
/// `u64`, a decimal string up to [`MAX_BIG_INT_BYTES`], else `None`.
fn int_from_le(b: &[u8]) -> Option<Node> {
    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
    let ext = if negative { 0xff } else { 0 };
    // Drop redundant sign-extension bytes.
    let mut n = b.len();
    while n > 0 && b[n - 1] == ext {
        n -= 1;
    }
    if n <= 8 {
        let mut a = [ext; 8];
        a[..n].copy_from_slice(&b[..n]);
        let v = u64::from_le_bytes(a);
        if negative {
            // The dropped bytes were 0xff: the value fits i64 when bit 63 is set.
            if v & (1 << 63) != 0 {
                return Some(Node::Int(v as i64));
            }
        } else {
            return Some(match i64::try_from(v) {
                Ok(i) => Node::Int(i),
                Err(_) => Node::UInt(v),
            });
        }
    }
    if b.len() > MAX_BIG_INT_BYTES {
        return None;
    }
    Some(Node::Big(big_decimal(b, negative)))
}

/// Decimal text of a two's-complement little-endian integer of at most
/// [`MAX_BIG_INT_BYTES`] bytes (schoolbook division by 10^9).
fn big_decimal(b: &[u8], negative: bool) -> String {
    // Magnitude as little-endian bytes.
    let mut mag: Vec<u8> = b.to_vec();
    if negative {
        let mut carry = true;
        for x in mag.iter_mut() {
            *x = !*x;
            if carry {
                let (y, c) = x.overflowing_add(1);
                *x = y;
                carry = c;
            }
        }
    }
    // Big-endian u32 limbs.
    let mut limbs: Vec<u32> = mag
        .chunks(4)
        .rev()
        .map(|c| {
            let mut a = [0u8; 4];
            a[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(a)
        })
        .collect();
    let mut chunks = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for l in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
    }
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    match chunks.split_last() {
        None => s.push('0'),
        Some((hi, rest)) => {
            let _ = write!(s, "{hi}");
            for c in rest.iter().rev() {
                let _ = write!(s, "{c:09}");
            }
        }
    }
    s
}

/// Python's `repr` of a bytes value: `b'...'`.
fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(quote);
    s
}

fn float_json(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("nan".into()),
        None if f > 0.0 => Json::String("inf".into()),
        None => Json::String("-inf".into()),
    }
}

/// Expands the parsed graph into a JSON tree, within the output budget.
struct Output<'a> {
    nodes: &'a [Node],
    budget: usize,
    on_path: Vec<bool>,
}

impl<'a> Output<'a> {
    /// Charges a key made here for what it is.
    fn charged(&mut self, s: String) -> Result<String, IngestError> {
        self.charge(s.len())?;
        Ok(s)
    }

    fn charge(&mut self, n: usize) -> Result<(), IngestError> {
        self.budget = self
            .budget
            .checked_sub(n.saturating_add(VALUE_COST))
            .ok_or(IngestError::new(ErrorKind::PickleLimit("expanded size")))?;
        Ok(())
    }

    fn value(&mut self, id: Id, depth: usize) -> Result<Json, IngestError> {
        let i = id as usize;
        let nodes = self.nodes;
        let node = &nodes[i];
        // The bytes of the string this node becomes, if it becomes one.
        let len = match node {
            Node::Str(s) | Node::Big(s) => s.len(),
            Node::Bytes(b) => b.len() * 4 + 3,
            Node::Float(f) if !f.is_finite() => 4,
            Node::Seq(..) | Node::Dict(_) if self.on_path[i] => 5,
            _ => 0,
        };
        self.charge(len)?;
        Ok(match node {
            Node::None => Json::Null,
            Node::Bool(b) => Json::Bool(*b),
            Node::Int(v) => Json::from(*v),
            Node::UInt(v) => Json::from(*v),
            Node::Big(s) | Node::Str(s) => Json::String(s.clone()),
            Node::Float(f) => float_json(*f),
            Node::Bytes(b) => Json::String(bytes_repr(b)),
            Node::Dict(_) if self.on_path[i] => Json::String("{...}".into()),
            // A container inside itself: Python's repr marker.
            Node::Seq(..) if self.on_path[i] => Json::String("[...]".into()),
            Node::Seq(_, items) => {
                if depth >= MAX_DEPTH {
                    return Err(IngestError::new(ErrorKind::PickleLimit("nesting")));
                }
                self.on_path[i] = true;
                let mut v = Vec::with_capacity(items.len());
                for &item in items {
                    v.push(self.value(item, depth + 1)?);
                }
                self.on_path[i] = false;
                Json::Array(v)
            }
            Node::Dict(pairs) => {
                if depth >= MAX_DEPTH {
                    return Err(IngestError::new(ErrorKind::PickleLimit("nesting")));
                }
                self.on_path[i] = true;
                let mut m = Map::new();
                for &(k, v) in pairs {
                    let key = self.key(k, depth + 1)?;
                    let val = self.value(v, depth + 1)?;
                    // Later keys win, as in a Python dict.
                    m.insert(key, val);
                }
                self.on_path[i] = false;
                Json::Object(m)
            }
        })
    }

    /// The top-level dict `id` (with `pairs`) as the LogRecord mapping's
    /// [`Dict`]: what [`Output::value`] would make of it at depth 0, with
    /// the same charges in the same order, but string keys and values
    /// borrowed instead of copied into a `serde_json::Map`.
    fn dict<'n>(&mut self, id: Id, pairs: &'n [(Id, Id)]) -> Result<Dict<'n>, IngestError>
    where
        'a: 'n,
    {
        let nodes: &'n [Node] = self.nodes;
        self.charge(0)?;
        self.on_path[id as usize] = true;
        let mut d = Dict::default();
        for &(k, v) in pairs {
            let key = match &nodes[k as usize] {
                Node::Str(s) => {
                    self.charge(s.len())?;
                    Cow::Borrowed(s.as_str())
                }
                _ => Cow::Owned(self.key(k, 1)?),
            };
            let val = match &nodes[v as usize] {
                Node::Str(s) => {
                    self.charge(s.len())?;
                    Val::Str(Cow::Borrowed(s.as_str()))
                }
                _ => Val::from(self.value(v, 1)?),
            };
            d.set(key, val);
        }
        self.on_path[id as usize] = false;
        Ok(d)
    }

    /// A dict key as `json.dumps` writes it; compound keys as JSON text.
    fn key(&mut self, id: Id, depth: usize) -> Result<String, IngestError> {
        Ok(match &self.nodes[id as usize] {
            Node::Str(s) => {
                self.charge(s.len())?;
                s.clone()
            }
            Node::None => self.charged("null".into())?,
            Node::Bool(b) => self.charged(b.to_string())?,
            Node::Int(v) => self.charged(v.to_string())?,
            Node::UInt(v) => self.charged(v.to_string())?,
            Node::Float(f) if f.is_finite() => self.charged(format!("{f:?}"))?,
            Node::Big(_) | Node::Float(_) | Node::Bytes(_) => match self.value(id, depth)? {
                Json::String(s) => s,
                other => other.to_string(),
            },
            Node::Seq(..) | Node::Dict(_) => {
                let v = self.value(id, depth)?;
                let s = v.to_string();
                self.charge(s.len())?;
                s
            }
        })
    }
}

#[cfg(test)]
mod tests;
