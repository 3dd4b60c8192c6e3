//! The VM: runs a [`Program`] against one archived record.
//!
//! A program counter that only moves forward and one `match` per test: run
//! the test, continue at its pass or fail target, stop at accept or reject.
//! Reads go straight to the archived record (rkyv's zero-copy form); nothing
//! is deserialized or allocated. A deferred-format `message` is read piece
//! by piece for `==`, `starts_with`, `ends_with` and `contains`
//! (`message_match.rs`); for the other tests it is rendered into a reused
//! thread-local buffer, at most once per record and only when a test
//! reaches it. Rare tests live out of line so the hot loop stays small.

use super::bytes::{bytes_eq, ends_with, starts_with};
use super::message_match::{self, SiteTest, MAX_NEEDLE};
use super::program::{
    mask, Const, FieldTest, NumField, Program, StrField, StrTest, Test, ValueSet, ACCEPT, REJECT,
};
use super::RecordView;
use distlog_core::record::ValueRef;
use distlog_core::view::RecordRef;
use std::cell::RefCell;
use std::cmp::Ordering;

/// A deferred message is rendered here, once per record (the buffer is
/// reused: it allocates only to grow); a buffer that grew past
/// [`SCRATCH_KEEP`] is released after use rather than kept for the thread's
/// lifetime.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` on `r`'s message rendered from its deferred format, rendering
/// into the thread's buffer unless `ready` says this evaluation already did.
#[cold]
#[inline(never)]
fn with_rendered(r: RecordRef<'_>, ready: &mut bool, f: impl Fn(&str) -> bool) -> bool {
    let render = |buf: &mut String| {
        buf.clear();
        r.write_message(buf);
    };
    let fresh = |f: &dyn Fn(&str) -> bool| {
        let mut own = String::new();
        render(&mut own);
        f(&own)
    };
    SCRATCH
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                if !*ready {
                    render(&mut buf);
                    *ready = true;
                }
                let hit = f(&buf);
                if buf.capacity() > SCRATCH_KEEP {
                    *buf = String::new();
                    *ready = false;
                }
                hit
            }
            // Re-entered, which the VM never does: render privately.
            Err(_) => fresh(&f),
        })
        // The thread is exiting: render privately.
        .unwrap_or_else(|_| fresh(&f))
}

#[inline(always)]
pub(super) fn num(v: &RecordView<'_>, field: NumField) -> u64 {
    let r = v.record;
    match field {
        NumField::Level => u64::from(r.level()),
        NumField::Kind => u64::from(r.kind()),
        NumField::System => u64::from(v.system),
        NumField::Pid => u64::from(v.sender.pid.to_native()),
        NumField::Line => u64::from(r.line()),
        NumField::ThreadId => r.thread_id(),
        NumField::Time => r.time_ns(),
    }
}

/// A text field (for `message`, the stored one, empty when the format is
/// deferred: see [`with_rendered`]).
#[inline(always)]
pub(super) fn text<'b>(v: &RecordView<'b>, field: StrField) -> &'b str {
    let (r, s) = (v.record, v.sender);
    match field {
        StrField::Target => r.target(),
        StrField::Message => r.message(),
        StrField::Host => s.host.as_str(),
        StrField::Process => s.program.as_str(),
        StrField::Thread => r.thread_name(),
        StrField::File => r.file(),
        StrField::Module => r.module(),
        StrField::Func => r.func(),
        StrField::Error => r.error(),
        StrField::Task => r.task(),
    }
}

/// Who runs the text tests on deferred messages: the VM itself, per
/// record ([`PerRecord`]), or a batch scan that keeps the per-site work
/// (`site_memo.rs`).
pub(super) trait Deferred {
    /// `test` on `r`'s deferred message (its format is not empty):
    /// exactly [`Program::deferred_message_test`]'s result.
    fn message_test(
        &mut self,
        p: &Program,
        test: StrTest,
        r: RecordRef<'_>,
        rendered: &mut bool,
    ) -> bool;
}

/// Deferred messages tested record by record.
pub(super) struct PerRecord;

impl Deferred for PerRecord {
    #[inline(always)]
    fn message_test(
        &mut self,
        p: &Program,
        test: StrTest,
        r: RecordRef<'_>,
        rendered: &mut bool,
    ) -> bool {
        p.deferred_message_test(test, r, rendered)
    }
}

impl Program {
    /// Evaluates the program on one record.
    #[inline]
    pub(super) fn run(&self, v: &RecordView<'_>) -> bool {
        self.run_with(v, &mut PerRecord)
    }

    /// Evaluates the program on one record, deferred messages tested by
    /// `d`.
    #[inline]
    pub(super) fn run_with<D: Deferred>(&self, v: &RecordView<'_>, d: &mut D) -> bool {
        let code = self.code.as_slice();
        // Whether this evaluation has rendered a deferred message already.
        let mut rendered = false;
        let mut pc = 0;
        // Terminates: every target is a later instruction, ACCEPT or REJECT
        // (checked by the compiler).
        while let Some(ins) = code.get(pc) {
            let next = if self.test(&ins.test, v, &mut rendered, d) {
                ins.jt
            } else {
                ins.jf
            };
            if next >= REJECT {
                return next == ACCEPT;
            }
            pc = next as usize;
        }
        self.constant
    }

    #[inline(always)]
    pub(super) fn test<D: Deferred>(
        &self,
        test: &Test,
        v: &RecordView<'_>,
        rendered: &mut bool,
        d: &mut D,
    ) -> bool {
        match *test {
            Test::Range { field, lo, hi } => num(v, field).wrapping_sub(lo) <= hi.wrapping_sub(lo),
            Test::Str {
                field: StrField::Message,
                test,
            } => {
                let r = v.record;
                if r.format().is_empty() {
                    self.str_test(test, r.message())
                } else {
                    d.message_test(self, test, r, rendered)
                }
            }
            Test::Str { field, test } => self.str_test(test, text(v, field)),
            Test::NumIn { .. } | Test::ByteIn { .. } => self.set_test(test, v),
            Test::Key(test) => self.key_test(test, v.record),
            Test::Field { name, test } => self.field_test(name, test, v.record),
        }
    }

    /// `test` as [`message_match`] runs it on a deferred message: `==`,
    /// `starts_with`, `ends_with` and `contains` (the last two with
    /// needles short enough to stream); `None`: the rendered message is
    /// tested.
    #[inline(always)]
    pub(super) fn site_test_of(&self, test: StrTest) -> Option<SiteTest<'_>> {
        let k = |i: u32| self.strs[i as usize].as_bytes();
        match test {
            StrTest::Contains(i) if self.finders[i as usize].needle().len() <= MAX_NEEDLE => {
                Some(SiteTest::Contains(&self.finders[i as usize]))
            }
            StrTest::StartsWith(i) => Some(SiteTest::StartsWith(k(i))),
            StrTest::Eq(i) => Some(SiteTest::Eq(k(i))),
            StrTest::EndsWith(i) if k(i).len() <= MAX_NEEDLE => Some(SiteTest::EndsWith(k(i))),
            _ => None,
        }
    }

    /// A text test on a deferred message: `==`, `starts_with`,
    /// `ends_with` and `contains` read it piece by piece
    /// ([`message_match`]); the rest (and needles too long to stream) test
    /// the rendered message.
    #[inline(never)]
    pub(super) fn deferred_message_test(
        &self,
        test: StrTest,
        r: RecordRef<'_>,
        rendered: &mut bool,
    ) -> bool {
        match self.site_test_of(test) {
            Some(site) => message_match::site_test(r.format(), r.args(), site),
            None => with_rendered(r, rendered, |m| self.str_test(test, m)),
        }
    }

    #[inline(never)]
    fn set_test(&self, test: &Test, v: &RecordView<'_>) -> bool {
        match *test {
            Test::NumIn { field, set } => {
                let x = num(v, field);
                self.num_sets[set as usize].binary_search(&x).is_ok()
            }
            Test::ByteIn { field, set } => {
                let x = num(v, field);
                let bits = &self.byte_sets[set as usize];
                x < 256 && (bits[(x >> 6) as usize] >> (x & 63)) & 1 == 1
            }
            _ => false,
        }
    }

    #[inline(always)]
    fn str_test(&self, test: StrTest, s: &str) -> bool {
        let k = |i: u32| &*self.strs[i as usize];
        match test {
            StrTest::Eq(i) => bytes_eq(s.as_bytes(), k(i).as_bytes()),
            StrTest::StartsWith(i) => starts_with(s.as_bytes(), k(i).as_bytes()),
            StrTest::EndsWith(i) => ends_with(s.as_bytes(), k(i).as_bytes()),
            StrTest::Contains(i) => self.finders[i as usize].find(s.as_bytes()).is_some(),
            _ => self.str_test_rare(test, s),
        }
    }

    #[inline(never)]
    fn str_test_rare(&self, test: StrTest, s: &str) -> bool {
        let k = |i: u32| &*self.strs[i as usize];
        match test {
            StrTest::Cmp(m, i) => mask::hit(m, s.cmp(k(i))),
            StrTest::Under(i, sep) => {
                let p = k(i);
                s.starts_with(p) && {
                    let rest = &s[p.len()..];
                    rest.is_empty() || rest.starts_with(sep.as_str())
                }
            }
            StrTest::In(i) => self.str_sets[i as usize]
                .binary_search_by(|x| (**x).cmp(s))
                .is_ok(),
            StrTest::Eq(_)
            | StrTest::StartsWith(_)
            | StrTest::EndsWith(_)
            | StrTest::Contains(_) => self.str_test(test, s),
        }
    }

    #[inline(never)]
    fn key_test(&self, test: StrTest, r: RecordRef<'_>) -> bool {
        let Some(key) = KeyView::new(r) else {
            return false;
        };
        let k = |i: u32| self.strs[i as usize].as_bytes();
        match test {
            StrTest::Eq(i) => key.eq(k(i)),
            StrTest::Cmp(m, i) => mask::hit(m, key.cmp(k(i))),
            StrTest::StartsWith(i) => key.starts_with(k(i)),
            StrTest::EndsWith(i) => key.ends_with(k(i)),
            StrTest::Contains(i) => key.contains(&self.finders[i as usize]),
            StrTest::In(i) => self.str_sets[i as usize]
                .binary_search_by(|x| key.cmp(x.as_bytes()).reverse())
                .is_ok(),
            // The compiler rejects `key under ...`.
            StrTest::Under(..) => false,
        }
    }

    #[inline(never)]
    fn field_test(&self, name: u32, test: FieldTest, r: RecordRef<'_>) -> bool {
        let name = &*self.strs[name as usize];
        let Some((_, v)) = r
            .fields()
            .find(|(k, _)| bytes_eq(k.as_bytes(), name.as_bytes()))
        else {
            return false;
        };
        let k = |i: u32| &*self.strs[i as usize];
        match (test, v) {
            (FieldTest::Cmp(m, i), v) => {
                cmp_value(v, &self.values[i as usize]).is_some_and(|o| mask::hit(m, o))
            }
            (FieldTest::StartsWith(i), ValueRef::Str(s)) => s.starts_with(k(i)),
            (FieldTest::EndsWith(i), ValueRef::Str(s)) => s.ends_with(k(i)),
            (FieldTest::Contains(i), ValueRef::Str(s)) => {
                self.finders[i as usize].find(s.as_bytes()).is_some()
            }
            (FieldTest::In(i), v) => self.value_sets[i as usize].contains(v),
            _ => false,
        }
    }
}

/// The key `"<task_n>@<task>"` as two pieces, never concatenated: the
/// decimal counter and `@` on the stack, the task path borrowed.
struct KeyView<'a> {
    buf: [u8; 11],
    start: usize,
    tail: &'a [u8],
}

impl<'a> KeyView<'a> {
    fn new(r: RecordRef<'a>) -> Option<KeyView<'a>> {
        let task = r.task();
        if task.is_empty() {
            return None;
        }
        let mut buf = [0u8; 11];
        buf[10] = b'@';
        let mut n = r.task_n();
        let mut start = 10;
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Some(KeyView {
            buf,
            start,
            tail: task.as_bytes(),
        })
    }

    fn head(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn eq(&self, c: &[u8]) -> bool {
        let h = self.head();
        c.len() == h.len() + self.tail.len() && c[..h.len()] == *h && c[h.len()..] == *self.tail
    }

    fn cmp(&self, c: &[u8]) -> Ordering {
        self.head().iter().chain(self.tail).cmp(c.iter())
    }

    fn starts_with(&self, c: &[u8]) -> bool {
        let h = self.head();
        if c.len() <= h.len() {
            h.starts_with(c)
        } else {
            c[..h.len()] == *h && self.tail.starts_with(&c[h.len()..])
        }
    }

    fn ends_with(&self, c: &[u8]) -> bool {
        let t = self.tail;
        if c.len() <= t.len() {
            t.ends_with(c)
        } else {
            c.ends_with(t) && self.head().ends_with(&c[..c.len() - t.len()])
        }
    }

    fn contains(&self, finder: &memchr::memmem::Finder<'_>) -> bool {
        if finder.find(self.tail).is_some() {
            return true;
        }
        // Matches starting in the head (at most 11 positions).
        let n = finder.needle();
        let h = self.head();
        (0..h.len()).any(|i| {
            let hs = &h[i..];
            if n.len() <= hs.len() {
                hs.starts_with(n)
            } else {
                n.starts_with(hs) && self.tail.starts_with(&n[hs.len()..])
            }
        })
    }
}

/// Exact ordering of an integer and a float; `None` for NaN.
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^127: every i128 is below it, and every f64 above -2^127 truncates
    // to an i128 exactly.
    const BIG: f64 = 1.701_411_834_604_692_3e38;
    if f >= BIG {
        return Some(Ordering::Less);
    }
    if f < -BIG {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match i.cmp(&(t as i128)) {
        Ordering::Equal if f > t => Some(Ordering::Less),
        Ordering::Equal if f < t => Some(Ordering::Greater),
        o => Some(o),
    }
}

/// The ordering of a field's value against a constant, when they compare:
/// numbers with numbers (exactly, across i64/u64/f64), strings with
/// strings, bools with bools, null with null.
fn cmp_value(v: ValueRef<'_>, k: &Const) -> Option<Ordering> {
    match (v, k) {
        (ValueRef::I64(x), Const::Int(c)) => Some(i128::from(x).cmp(c)),
        (ValueRef::U64(x), Const::Int(c)) => Some(i128::from(x).cmp(c)),
        (ValueRef::F64(x), Const::Int(c)) => cmp_int_float(*c, x).map(Ordering::reverse),
        (ValueRef::I64(x), Const::Float(f)) => cmp_int_float(i128::from(x), *f),
        (ValueRef::U64(x), Const::Float(f)) => cmp_int_float(i128::from(x), *f),
        (ValueRef::F64(x), Const::Float(f)) => x.partial_cmp(f),
        (ValueRef::Str(s), Const::Str(c)) => Some(s.cmp(c)),
        (ValueRef::Bool(b), Const::Bool(c)) => Some(b.cmp(c)),
        (ValueRef::Null, Const::Null) => Some(Ordering::Equal),
        // Only `==` and `!=` compile with null: any present value differs.
        (_, Const::Null) => Some(Ordering::Greater),
        _ => None,
    }
}

impl ValueSet {
    fn contains(&self, v: ValueRef<'_>) -> bool {
        match v {
            ValueRef::Str(s) => self.strs.binary_search_by(|x| (**x).cmp(s)).is_ok(),
            ValueRef::I64(x) => self.ints.binary_search(&i128::from(x)).is_ok(),
            ValueRef::U64(x) => self.ints.binary_search(&i128::from(x)).is_ok(),
            ValueRef::F64(x) if x.fract() == 0.0 && x.abs() < 1e38 => {
                self.ints.binary_search(&(x as i128)).is_ok()
            }
            ValueRef::F64(x) => self.floats.contains(&x),
            ValueRef::Bool(b) => (self.bools >> u8::from(b)) & 1 == 1,
            ValueRef::Null => self.null,
        }
    }
}
