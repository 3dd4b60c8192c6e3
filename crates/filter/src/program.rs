//! The bytecode: instructions, constant pools, and a disassembler.
//!
//! See the module docs of [`crate`] for the model. Every index in an
//! instruction points into one of the [`Program`]'s pools; the compiler is
//! the only producer, and it checks that jumps go forward.

use memchr::memmem::Finder;
use std::fmt::{self, Write};

/// A numeric field of the record (or its sender, or the topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum NumField {
    Level,
    Kind,
    System,
    Pid,
    Line,
    ThreadId,
    Time,
}

impl NumField {
    /// The largest value the field can hold.
    pub fn max(self) -> u64 {
        match self {
            NumField::Level | NumField::Kind | NumField::System => u8::MAX as u64,
            NumField::Pid | NumField::Line => u32::MAX as u64,
            NumField::ThreadId | NumField::Time => u64::MAX,
        }
    }
}

/// A text field of the record or its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StrField {
    Target,
    Message,
    Host,
    Process,
    Thread,
    File,
    Module,
    Func,
    Error,
    Task,
}

/// The separator `under` looks for after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Sep {
    /// `/`: task paths, file paths.
    Slash,
    /// `::`: targets and module paths.
    Colons,
}

impl Sep {
    pub fn as_str(self) -> &'static str {
        match self {
            Sep::Slash => "/",
            Sep::Colons => "::",
        }
    }
}

/// A test on a text value (a field, or the task key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StrTest {
    /// Equal to `strs[i]`.
    Eq(u32),
    /// The value's ordering against `strs[i]` is in the mask (see [`mask`]).
    Cmp(u8, u32),
    StartsWith(u32),
    EndsWith(u32),
    /// `finders[i]` finds its needle.
    Contains(u32),
    /// Equal to `strs[i]`, or starts with it followed by the separator.
    Under(u32, Sep),
    /// In the sorted `str_sets[i]`.
    In(u32),
}

/// A test on a typed `field.<name>`; false when the field is missing or its
/// type does not compare with the constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum FieldTest {
    /// The ordering against `values[i]` is in the mask.
    Cmp(u8, u32),
    StartsWith(u32),
    EndsWith(u32),
    Contains(u32),
    /// In `value_sets[i]`.
    In(u32),
}

/// Bits of an ordering mask: which outcomes of `value.cmp(constant)` pass.
pub(super) mod mask {
    use std::cmp::Ordering;

    pub const LT: u8 = 1;
    pub const EQ: u8 = 2;
    pub const GT: u8 = 4;

    /// Whether `ord` passes `mask`.
    #[inline(always)]
    pub fn hit(mask: u8, ord: Ordering) -> bool {
        let bit = match ord {
            Ordering::Less => LT,
            Ordering::Equal => EQ,
            Ordering::Greater => GT,
        };
        mask & bit != 0
    }

    pub fn symbol(mask: u8) -> &'static str {
        match mask {
            EQ => "==",
            m if m == LT | GT => "!=",
            LT => "<",
            m if m == LT | EQ => "<=",
            GT => ">",
            m if m == GT | EQ => ">=",
            _ => "?",
        }
    }
}

/// A test: one comparison of one field of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Test {
    /// lo <= field <= hi (one subtraction and one compare).
    Range { field: NumField, lo: u64, hi: u64 },
    /// The field is in the sorted `num_sets[set]`.
    NumIn { field: NumField, set: u32 },
    /// Bit `field` of the 256-bit `byte_sets[set]` is set (byte fields).
    ByteIn { field: NumField, set: u32 },
    /// The test on a text field.
    Str { field: StrField, test: StrTest },
    /// The test on the key `"<task_n>@<task>"`; false outside a task.
    Key(StrTest),
    /// The test on `field.<strs[name]>`.
    Field { name: u32, test: FieldTest },
}

/// Target: the record matches.
pub(super) const ACCEPT: u32 = u32::MAX;
/// Target: the record does not match.
pub(super) const REJECT: u32 = u32::MAX - 1;

/// One instruction: run the test, then continue at `jt` if it passed or at
/// `jf` if not. A target is a later instruction, [`ACCEPT`] or [`REJECT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Instr {
    pub test: Test,
    pub jt: u32,
    pub jf: u32,
}

/// A constant a typed field is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Const {
    Int(i128),
    Float(f64),
    Str(Box<str>),
    Bool(bool),
    Null,
}

/// The constants of an `in [...]` list on a typed field, split by type for
/// quick lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ValueSet {
    /// Sorted.
    pub strs: Vec<Box<str>>,
    /// Sorted; includes the floats with integral values.
    pub ints: Vec<i128>,
    /// The non-integral floats (no NaN: it equals nothing).
    pub floats: Vec<f64>,
    /// Bit 0: `false` is in the set, bit 1: `true` is.
    pub bools: u8,
    pub null: bool,
}

/// A compiled filter.
#[derive(Debug, Clone, Default)]
pub(super) struct Program {
    pub code: Vec<Instr>,
    /// The result when `code` is empty (the filter folded to a constant).
    pub constant: bool,
    pub strs: Vec<Box<str>>,
    pub finders: Vec<Finder<'static>>,
    pub str_sets: Vec<Vec<Box<str>>>,
    pub num_sets: Vec<Vec<u64>>,
    pub byte_sets: Vec<[u64; 4]>,
    pub values: Vec<Const>,
    pub value_sets: Vec<ValueSet>,
}

/// Debug form of a pool entry (`?` for a bad index, which the compiler
/// never produces).
fn show<T: fmt::Debug + ?Sized>(x: Option<&T>) -> String {
    x.map_or_else(|| "?".to_owned(), |x| format!("{x:?}"))
}

impl Program {
    fn fmt_str_test(&self, out: &mut String, t: &StrTest) -> fmt::Result {
        let s = |i: u32| self.strs.get(i as usize).map_or("?", |s| &**s);
        match *t {
            StrTest::Eq(i) => write!(out, "== {:?}", s(i)),
            StrTest::Cmp(m, i) => write!(out, "{} {:?}", mask::symbol(m), s(i)),
            StrTest::StartsWith(i) => write!(out, "starts_with {:?}", s(i)),
            StrTest::EndsWith(i) => write!(out, "ends_with {:?}", s(i)),
            StrTest::Contains(i) => {
                let needle = self.finders.get(i as usize).map(|f| f.needle());
                let needle = needle.map(String::from_utf8_lossy).unwrap_or_default();
                write!(out, "contains {needle:?}")
            }
            StrTest::Under(i, sep) => write!(out, "under {:?} sep {:?}", s(i), sep.as_str()),
            StrTest::In(i) => write!(out, "in {}", show(self.str_sets.get(i as usize))),
        }
    }

    fn fmt_test(&self, out: &mut String, test: &Test) -> fmt::Result {
        match test {
            Test::Range { field, lo, hi } => write!(out, "range {field:?} {lo}..={hi}"),
            Test::NumIn { field, set } => {
                write!(
                    out,
                    "in {field:?} {}",
                    show(self.num_sets.get(*set as usize))
                )
            }
            Test::ByteIn { field, set } => {
                let bits = self
                    .byte_sets
                    .get(*set as usize)
                    .copied()
                    .unwrap_or_default();
                let members: Vec<u8> = (0..=255u8)
                    .filter(|b| bits[(b >> 6) as usize] >> (b & 63) & 1 == 1)
                    .collect();
                write!(out, "in {field:?} {members:?}")
            }
            Test::Str { field, test } => {
                write!(out, "str {field:?} ")?;
                self.fmt_str_test(out, test)
            }
            Test::Key(test) => {
                write!(out, "key ")?;
                self.fmt_str_test(out, test)
            }
            Test::Field { name, test } => {
                let name = self.strs.get(*name as usize).map_or("?", |s| &**s);
                write!(out, "field {name:?} ")?;
                let v = |i: u32| self.values.get(i as usize);
                let s = |i: u32| self.strs.get(i as usize);
                match *test {
                    FieldTest::Cmp(m, i) => write!(out, "{} {}", mask::symbol(m), show(v(i))),
                    FieldTest::StartsWith(i) => write!(out, "starts_with {}", show(s(i))),
                    FieldTest::EndsWith(i) => write!(out, "ends_with {}", show(s(i))),
                    FieldTest::Contains(i) => {
                        let needle = self.finders.get(i as usize).map(|f| f.needle());
                        let needle = needle.map(String::from_utf8_lossy).unwrap_or_default();
                        write!(out, "contains {needle:?}")
                    }
                    FieldTest::In(i) => write!(out, "in {}", show(self.value_sets.get(i as usize))),
                }
            }
        }
    }

    /// A readable listing, one instruction per line:
    /// `pc  test  ? jt : jf`.
    pub fn disassemble(&self) -> String {
        let target = |t: u32| match t {
            ACCEPT => "accept".to_owned(),
            REJECT => "reject".to_owned(),
            t => t.to_string(),
        };
        if self.code.is_empty() {
            return format!("{}\n", if self.constant { "accept" } else { "reject" });
        }
        let mut out = String::new();
        for (pc, ins) in self.code.iter().enumerate() {
            let _ = write!(out, "{pc:4}  ");
            let _ = self.fmt_test(&mut out, &ins.test);
            let _ = writeln!(out, "  ? {} : {}", target(ins.jt), target(ins.jf));
        }
        out
    }
}
