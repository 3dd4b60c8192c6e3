//! Text tests on a deferred message decided on its arguments' own text.
//!
//! A call site's message is `L0 t0 L1 t1 ... Lk`: the format's literal
//! runs `Li` (some empty) with each argument's text `ti` between them.
//! Where a needle can sit in such a message is a question about the
//! format alone: each placement (an *alignment*) lays the needle's bytes
//! over the literal runs, which must agree, and over the arguments, each
//! of which must then hold one cut of the needle:
//!
//! - an argument the needle covers whole must be that cut (`==`);
//! - the one it starts in must end with its cut, the one it ends in must
//!   start with its cut, and one holding the whole needle must contain
//!   it.
//!
//! `message contains "id=4"` on the format `"user id={} done"` has one
//! alignment that reaches the argument: `"id="` is the end of the first
//! run and the argument must start with `"4"`; `message contains "record
//! 4242 "` on `"loadgen record {} of thread {}"` has `t0 == "4242"` (the
//! trailing space is the next run's). `starts_with`, `ends_with` and `==`
//! are the same with the needle pinned to the message's start, end or
//! both; a needle may cover several arguments (`ends_with "42 of thread
//! 1"`: `t0` ends with `"42"` and `t1 == "1"`).
//!
//! [`Alignments::of`] lists them once per (format, test); per record
//! [`Alignments::test`] checks each alternative's conditions on the
//! arguments as they are stored: a string in place, an integer against
//! the number a `==` cut spells (no text at all) or, for the other cuts,
//! its digits on the stack (and never when the cut has a byte no integer
//! shows); a float is formatted on the stack only when the cut could be
//! in its text. Nothing is rendered and nothing allocated per record.
//!
//! # Bounds
//!
//! Formats and arguments come from untrusted records. Listing the
//! alignments takes at most [`STEPS`] steps and keeps at most [`ALTS`]
//! alternatives of at most [`CONDS`] conditions in all; past any bound,
//! or for a format with more than [`SLOTS`] placeholders, there are none
//! and the caller renders the message instead. Per record the work is at
//! most [`CONDS`] conditions, each one comparison or substring search on
//! one argument's text.

use super::bytes::{bytes_eq, ends_with, starts_with};
use distlog_core::message::value_piece;
use distlog_core::record::ValueRef;
use distlog_core::wire::tag;
use std::ops::ControlFlow;

/// Most steps (calls and needle positions tried) to list one test's
/// alignments.
const STEPS: usize = 1 << 14;
/// Most alternatives of one test.
const ALTS: usize = 64;
/// Most conditions of one test, all alternatives together.
const CONDS: usize = 256;
/// Most placeholders of a format tested this way (the arguments are
/// read into an array on the stack).
pub(super) const SLOTS: usize = 16;

/// Where the needle is pinned in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Anchor {
    /// Anywhere (`contains`).
    None,
    /// At the start (`starts_with`).
    Start,
    /// At the end (`ends_with`).
    End,
    /// The whole message (`==`).
    Both,
}

/// How one cut of the needle meets one argument's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    StartsWith,
    EndsWith,
    Contains,
}

impl Op {
    #[inline]
    fn test(self, text: &[u8], cut: &[u8]) -> bool {
        match self {
            Op::Eq => bytes_eq(text, cut),
            Op::StartsWith => starts_with(text, cut),
            Op::EndsWith => ends_with(text, cut),
            // An argument's text is usually a few bytes: shorter than the
            // cut is no, short is a plain scan (no searcher built per call).
            Op::Contains if cut.len() > text.len() => false,
            Op::Contains if cut.is_empty() || text.len() > 64 => {
                memchr::memmem::find(text, cut).is_some()
            }
            Op::Contains => text.windows(cut.len()).any(|w| bytes_eq(w, cut)),
        }
    }
}

/// What an integer argument does about a condition, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntCase {
    /// No integer's text meets it.
    Never,
    /// The number decides it, without its text ([`Num::holds`]).
    Num(Num),
    /// Its digits (on the stack) are tested (`contains`).
    Digits,
}

/// A condition on an integer's text decided on the number, (negative,
/// magnitude): the text is `-` for a negative, then the magnitude's
/// digits, with no leading zero (`0` alone for zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
    /// The text is this integer's (`==`).
    Is(bool, u64),
    /// The text ends with `k` digits spelling `rem` (`ends_with`), of
    /// either sign: `mag % pow == rem` with `pow` = 10^k, and the
    /// magnitude has at least `k` digits (`mag >= min`, 10^(k-1), or 0
    /// for one digit), so a cut with leading zeros needs more digits in
    /// front of them.
    Ends { pow: u64, rem: u64, min: u64 },
    /// The text starts with the sign `neg` and then `k` digits spelling
    /// `lead` (`starts_with`): the magnitude's first `k` digits,
    /// `mag / 10^(digits - k)`, are `lead` (a cut with a leading zero
    /// other than `0` alone never is).
    Starts { neg: bool, lead: u64, k: u32 },
}

/// 10^i for every `i` a `u64`'s digit count less one can be.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Num {
    /// Whether the integer (negative, magnitude) `int`'s text meets it.
    #[inline(always)]
    pub(super) fn holds(self, int: (bool, u64)) -> bool {
        match self {
            // The usual condition, in line (`contains "record 4242 "`).
            Num::Is(n, m) => (n, m) == int,
            _ => self.digits_hold(int),
        }
    }

    /// [`Num::holds`] of the digit conditions, out of line (in line, the
    /// `==` test of records of integers cost 2% more a scan).
    #[inline(never)]
    fn digits_hold(self, (neg, mag): (bool, u64)) -> bool {
        let hit = match self {
            Num::Is(n, m) => (n, m) == (neg, mag),
            Num::Ends { pow, rem, min } => mag % pow == rem && mag >= min,
            Num::Starts { neg: n, lead, k } => {
                // The magnitude's digits: at most 20, so `d - k` indexes
                // `POW10` when `d >= k`.
                let d = mag.checked_ilog10().map_or(1, |l| l + 1);
                n == neg && (k == 0 || (d >= k && mag / POW10[(d - k) as usize] == lead))
            }
        };
        #[cfg(test)]
        tally::digits(hit);
        hit
    }
}

/// One condition: argument `slot`'s text and the needle's bytes
/// `cut.0..cut.1`.
#[derive(Debug, Clone, Copy)]
struct Cond {
    slot: u16,
    op: Op,
    cut: (u32, u32),
    int: IntCase,
    /// The cut has a byte no float's text shows ([`float_may_show`]): the
    /// condition fails on a float without formatting it.
    float_never: bool,
}

/// A test's alignments on one format (module docs): the test passes on a
/// record whose arguments meet every condition of some alternative.
#[derive(Debug, Default)]
pub(super) struct Alignments {
    needle: Box<[u8]>,
    conds: Vec<Cond>,
    /// Each alternative: a range of `conds`, which all must hold (none:
    /// it always holds).
    alts: Vec<(u32, u32)>,
    /// The alternatives integers can meet (no condition that no integer
    /// meets): all a record whose arguments are integers tries.
    int_alts: Vec<(u32, u32)>,
    /// The format's placeholders.
    slots: usize,
    /// Some alternative has no condition: the test always passes.
    always: bool,
}

/// A test on records whose arguments are all integers, read from the
/// values' encoding without decoding them ([`IntTest::test`]): what
/// [`Alignments::test`] answers for such records when every condition
/// integers can meet is decided on the number ([`Num`]), or a fixed
/// verdict.
#[derive(Debug)]
pub(super) struct IntTest {
    slots: usize,
    /// Each alternative: a range of `conds`, which all must hold.
    alts: Vec<(u32, u32)>,
    /// (where the argument starts in the values, condition): the
    /// argument's number meets it.
    conds: Vec<(u32, Num)>,
    /// Passes on any integers.
    always: bool,
}

/// An integer in the values encoding: its tag and 8 bytes, so argument
/// `i` of records of integers starts at byte `i * INT`.
const INT: usize = 9;

impl IntTest {
    /// The verdict `hit` on any `slots` integers (`None` past [`SLOTS`]).
    pub(super) fn fixed(slots: usize, hit: bool) -> Option<IntTest> {
        (slots <= SLOTS).then_some(IntTest {
            slots,
            alts: Vec::new(),
            conds: Vec::new(),
            always: hit,
        })
    }

    /// The verdict on a record whose values are `raw`, led by `count`
    /// format arguments (`RecordRef::raw_values`, `arg_count`); `None`
    /// unless its first `slots` arguments are there and all integers.
    /// In line, loops written out: out of line (the caller's and its
    /// own), it cost 43 instructions a record more (callgrind).
    #[inline(always)]
    pub(super) fn test(&self, raw: &[u8], count: u32) -> Option<bool> {
        if (count as usize) < self.slots {
            return None;
        }
        let vals = raw.get(..self.slots * INT)?;
        let mut at = 0;
        while at < vals.len() {
            if !matches!(vals[at], tag::U64 | tag::I64) {
                return None;
            }
            at += INT;
        }
        if self.always {
            return Some(true);
        }
        if let [(0, _)] = self.alts[..] {
            // One alternative (`==`, `starts_with`): all the conditions.
            return Some(all_hold(vals, &self.conds));
        }
        Some((self.alts.iter()).any(|&(a, b)| all_hold(vals, &self.conds[a as usize..b as usize])))
    }
}

/// Most placeholders of an [`IntWords`].
pub(super) const WORDS: usize = 4;

/// A verdict on a call site's records read from their first arguments'
/// encoding: per argument a tag (`I64` or `U64`, else no verdict) and a
/// masked word compared, or the magnitude's last digits. An [`IntTest`]
/// whose conditions are all `==` or `ends_with` on the number, of at most
/// [`WORDS`] placeholders and one alternative ([`IntTest::words`]), gives
/// the same verdicts; so does a verdict fixed for every record
/// ([`IntWords::fixed`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct IntWords {
    /// The bytes of the arguments read (`usize::MAX`: none can be: no
    /// verdict, [`IntWords::NONE`]).
    len: usize,
    /// The verdict when every argument meets its word (`false`: no
    /// alternative holds on integers).
    hit: bool,
    want: [Want; WORDS],
}

/// What one argument's 8 bytes must be, masked, by its tag: index 0 an
/// `I64`, 1 a `U64` (mask 0 and word 0: any; mask 0 and word 1: none);
/// unless `pow` is not 0: then its magnitude's [`Num::Ends`] (`pow`,
/// `rem`, `min`), whatever the sign.
#[derive(Debug, Clone, Copy)]
struct Want {
    mask: [u64; 2],
    word: [u64; 2],
    pow: u64,
    rem: u64,
    min: u64,
}

// `IntWords::test` indexes `Want` by the tag less `I64`.
const _: () = assert!(tag::U64 == tag::I64 + 1);

const ANY: Want = Want {
    mask: [0; 2],
    word: [0; 2],
    pow: 0,
    rem: 0,
    min: 0,
};

impl IntWords {
    /// No verdict on any record.
    pub(super) const NONE: IntWords = IntWords {
        len: usize::MAX,
        hit: false,
        want: [ANY; WORDS],
    };

    /// The verdict `hit` on every record.
    pub(super) const fn fixed(hit: bool) -> IntWords {
        IntWords {
            len: 0,
            hit,
            want: [ANY; WORDS],
        }
    }

    /// How many leading arguments it reads (`None`: [`IntWords::NONE`]).
    pub(super) fn slots(&self) -> Option<usize> {
        (self.len != usize::MAX).then_some(self.len / INT)
    }

    /// The verdict on a record whose values are `raw` (a call site's
    /// record with at least [`IntWords::slots`] format arguments:
    /// [`IntTest::test`]'s verdict on it); `None` unless its first
    /// arguments are all integers.
    #[inline(always)]
    pub(super) fn test(&self, raw: &[u8]) -> Option<bool> {
        let vals = raw.get(..self.len)?;
        let mut hit = self.hit;
        for (v, want) in vals.chunks_exact(INT).zip(&self.want) {
            let k = usize::from(v[0].wrapping_sub(tag::I64));
            let (&mask, &word) = want.mask.get(k).zip(want.word.get(k))?;
            let bits = u64::from_le_bytes(v[1..].try_into().ok()?);
            hit &= if want.pow == 0 {
                bits & mask == word
            } else {
                // `all_hold`'s magnitude: an `I64`'s absolute value.
                let mag = if k == 0 {
                    (bits as i64).unsigned_abs()
                } else {
                    bits
                };
                mag % want.pow == want.rem && mag >= want.min
            };
        }
        Some(hit)
    }
}

impl IntTest {
    /// This test as [`IntWords`], when it is one (above).
    pub(super) fn words(&self) -> Option<IntWords> {
        if self.slots > WORDS {
            return None;
        }
        let mut w = IntWords {
            len: self.slots * INT,
            ..IntWords::fixed(true)
        };
        if self.always {
            return Some(w);
        }
        let conds = match self.alts[..] {
            [] => {
                w.hit = false;
                return Some(w);
            }
            [(a, b)] => self.conds.get(a as usize..b as usize)?,
            _ => return None,
        };
        let mut set = [false; WORDS];
        for &(at, c) in conds {
            let slot = at as usize / INT;
            if std::mem::replace(set.get_mut(slot)?, true) {
                // Two conditions on one argument: left to `IntTest`.
                return None;
            }
            let (neg, mag) = match c {
                Num::Is(neg, mag) => (neg, mag),
                Num::Ends { pow, rem, min } if pow != 0 => {
                    w.want[slot] = Want {
                        pow,
                        rem,
                        min,
                        ..ANY
                    };
                    continue;
                }
                _ => return None,
            };
            // `all_hold`'s reading: an `I64` is its sign and magnitude,
            // a `U64` (false, bits).
            let i = match neg {
                false => (mag <= i64::MAX as u64).then_some(mag),
                true => (mag != 0 && mag <= 1 << 63).then(|| mag.wrapping_neg()),
            };
            let u = (!neg).then_some(mag);
            let exact = |x: Option<u64>| x.map_or((0, 1), |x| (u64::MAX, x));
            let ((mi, wi), (mu, wu)) = (exact(i), exact(u));
            w.want[slot] = Want {
                mask: [mi, mu],
                word: [wi, wu],
                ..ANY
            };
        }
        Some(w)
    }
}

/// Whether the integers `vals` (tags checked) meet every condition of
/// `conds`.
#[inline(always)]
fn all_hold(vals: &[u8], conds: &[(u32, Num)]) -> bool {
    for &(at, c) in conds {
        let v = &vals[at as usize..][..INT];
        let bits = u64::from_le_bytes(v[1..].try_into().unwrap_or([0; 8]));
        let int = match v[0] {
            tag::U64 => (false, bits),
            _ => ((bits as i64) < 0, (bits as i64).unsigned_abs()),
        };
        if !c.holds(int) {
            return false;
        }
    }
    true
}

/// A bound was passed: no alignments, render instead.
struct Over;

/// The listing in progress.
struct Build<'a> {
    runs: &'a [&'a [u8]],
    needle: &'a [u8],
    end: bool,
    /// Conditions of the alignment being laid: (slot, op, cut).
    laid: Vec<(usize, Op, usize, usize)>,
    out: Alignments,
    steps: usize,
}

impl Alignments {
    /// The alignments of `needle` pinned by `anchor` in the messages of a
    /// format whose literal runs are `runs` (`L0 .. Lk`, empty ones
    /// included: one more than the placeholders). `None` past a bound
    /// (module docs).
    pub fn of(runs: &[&[u8]], needle: &[u8], anchor: Anchor) -> Option<Alignments> {
        let slots = runs.len().checked_sub(1)?;
        if slots > SLOTS || u32::try_from(needle.len()).is_err() {
            return None;
        }
        let (start, end) = match anchor {
            Anchor::None => (false, false),
            Anchor::Start => (true, false),
            Anchor::End => (false, true),
            Anchor::Both => (true, true),
        };
        let mut b = Build {
            runs,
            needle,
            end,
            laid: Vec::new(),
            out: Alignments {
                needle: needle.into(),
                slots,
                ..Alignments::default()
            },
            steps: 0,
        };
        b.starts(start).ok()?;
        let mut out = b.out;
        let conds = &out.conds;
        out.int_alts = (out.alts.iter().copied())
            .filter(|&(a, b)| {
                conds[a as usize..b as usize]
                    .iter()
                    .all(|c| c.int != IntCase::Never)
            })
            .collect();
        Some(out)
    }

    /// Whether the test passes on a record with these arguments; `None`
    /// when one of the format's placeholders has no argument (it then
    /// shows itself: the caller renders).
    #[inline]
    pub fn test<'a>(&self, args: impl Iterator<Item = ValueRef<'a>> + Clone) -> Option<bool> {
        if self.always {
            return Some(true);
        }
        if self.int_alts.is_empty() {
            // Integers meet no alternative (`contains "timeout"` on a
            // site of numbers): only whether they are all integers
            // matters, and nothing needs keeping.
            // Stops at the first argument that is not an integer (the
            // path below then reads them all, and counts them itself).
            let mut n = 0;
            let ints = args.clone().take(self.slots).all(|v| {
                n += 1;
                matches!(v, ValueRef::U64(_) | ValueRef::I64(_))
            });
            if ints {
                return if n < self.slots { None } else { Some(false) };
            }
        }
        let mut vals = [ValueRef::Null; SLOTS];
        let mut n = 0;
        let mut ints = true;
        for (slot, v) in vals[..self.slots].iter_mut().zip(args) {
            ints &= matches!(v, ValueRef::U64(_) | ValueRef::I64(_));
            *slot = v;
            n += 1;
        }
        if n < self.slots {
            return None;
        }
        let alts = if ints { &self.int_alts } else { &self.alts };
        Some(alts.iter().any(|&(a, b)| {
            self.conds[a as usize..b as usize]
                .iter()
                .all(|c| self.holds(c, vals[c.slot as usize]))
        }))
    }

    /// The same test on records of integers as an [`IntTest`], when every
    /// condition integers can meet is decided on the number ([`Num`]).
    pub fn int_test(&self) -> Option<IntTest> {
        let mut t = IntTest::fixed(self.slots, self.always)?;
        for &(a, b) in &self.int_alts {
            let at = t.conds.len() as u32;
            for c in &self.conds[a as usize..b as usize] {
                let IntCase::Num(num) = c.int else {
                    return None;
                };
                t.conds.push((u32::from(c.slot) * INT as u32, num));
            }
            t.alts.push((at, t.conds.len() as u32));
        }
        Some(t)
    }

    /// The verdict on every record of a call site with `args` format
    /// arguments, when the format alone decides it: an alternative
    /// without conditions (pass), or none and every placeholder has its
    /// argument (fail; [`Alignments::test`] leaves the others to the
    /// caller).
    pub fn site_verdict(&self, args: u32) -> Option<bool> {
        match self.decided()? {
            true => Some(true),
            false => (args as usize >= self.slots).then_some(false),
        }
    }

    /// Whether the alternatives are only the one that always holds (the
    /// format decides: pass) or none (fail).
    pub fn decided(&self) -> Option<bool> {
        match (self.always, self.alts.is_empty()) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        }
    }

    #[inline]
    fn holds(&self, c: &Cond, v: ValueRef<'_>) -> bool {
        let cut = &self.needle[c.cut.0 as usize..c.cut.1 as usize];
        let hit = match v {
            ValueRef::Str(s) => c.op.test(s.as_bytes(), cut),
            ValueRef::U64(u) => int_holds(c, (false, u), v, cut),
            ValueRef::I64(i) => int_holds(c, (i < 0, i.unsigned_abs()), v, cut),
            ValueRef::F64(_) if c.float_never => false,
            _ => text_test(v, c.op, cut),
        };
        #[cfg(test)]
        tally::held(c.op, v, hit && !cut.is_empty());
        hit
    }
}

/// What the randomized tests reached (`message_match.rs`).
#[cfg(test)]
pub(super) mod tally {
    use super::Op;
    use distlog_core::record::ValueRef;
    use std::cell::Cell;

    thread_local! {
        /// Conditions that held with a nonempty cut on an integer (0) and
        /// a string (1) argument, where the needle goes on past the
        /// argument's text (not `contains`).
        static HELD: Cell<[usize; 2]> = const { Cell::new([0; 2]) };
    }

    pub(super) fn held(op: Op, v: ValueRef<'_>, hit: bool) {
        let i = match v {
            ValueRef::U64(_) | ValueRef::I64(_) => 0,
            ValueRef::Str(_) => 1,
            _ => return,
        };
        if hit && op != Op::Contains {
            HELD.with(|h| {
                let mut x = h.get();
                x[i] += 1;
                h.set(x);
            });
        }
    }

    /// The counts so far on this thread.
    pub(crate) fn get() -> [usize; 2] {
        HELD.with(Cell::get)
    }

    thread_local! {
        /// `ends_with` / `starts_with` conditions decided on an integer's
        /// number ([`super::Num`]) that failed (0) and held (1).
        static DIGITS: Cell<[usize; 2]> = const { Cell::new([0; 2]) };
    }

    pub(super) fn digits(hit: bool) {
        DIGITS.with(|h| {
            let mut x = h.get();
            x[usize::from(hit)] += 1;
            h.set(x);
        });
    }

    /// The counts of [`digits`] so far on this thread.
    pub(crate) fn get_digits() -> [usize; 2] {
        DIGITS.with(Cell::get)
    }
}

/// `c` on the integer `v`, (negative, magnitude) `int`.
#[inline(always)]
fn int_holds(c: &Cond, int: (bool, u64), v: ValueRef<'_>, cut: &[u8]) -> bool {
    match c.int {
        IntCase::Never => false,
        IntCase::Num(num) => num.holds(int),
        IntCase::Digits => text_test(v, c.op, cut),
    }
}

/// `op` on `v`'s text as the message shows it.
fn text_test(v: ValueRef<'_>, op: Op, cut: &[u8]) -> bool {
    // `value_piece` hands out nothing for an empty string.
    let mut hit = op.test(b"", cut);
    let _ = value_piece::<()>(v, |t| {
        hit = op.test(t.as_bytes(), cut);
        ControlFlow::Break(())
    });
    hit
}

/// Whether a float's text as a message shows it (`ValueRef`'s `Display`:
/// digits, `-`, `.`, the exponent form's `e`, `inf`, `NaN`) can hold `b`.
/// A cut with any other byte is met by no float, so the float is not
/// formatted to find that out (formatting one costs ~500 instructions).
fn float_may_show(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'i' | b'n' | b'f' | b'N' | b'a')
}

/// What an integer does about `op` with `cut` (module docs, [`Num`]).
fn int_case(op: Op, cut: &[u8]) -> IntCase {
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    // The number `d` spells (its digits only), when a `u64` holds it.
    let value = |d: &[u8]| {
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
    };
    let num = |n: Option<Num>| n.map_or(IntCase::Never, IntCase::Num);
    match op {
        Op::Eq => {
            let (neg, d) = match cut.strip_prefix(b"-") {
                Some(d) => (true, d),
                None => (false, cut),
            };
            // The text an integer shows: no leading zero, no `-0`.
            let canonical = digits(d) && (d[0] != b'0' || (d.len() == 1 && !neg));
            match value(d) {
                Some(m) if canonical && (!neg || m <= 1 << 63) => IntCase::Num(Num::Is(neg, m)),
                _ => IntCase::Never,
            }
        }
        // A `-` is only ever the text's first byte: a cut it leads
        // covers the whole text, any other `-` is met by none.
        Op::EndsWith if cut.first() == Some(&b'-') => int_case(Op::Eq, cut),
        Op::EndsWith if cut.is_empty() => IntCase::Num(Num::Ends {
            pow: 1,
            rem: 0,
            min: 0,
        }),
        Op::EndsWith if !digits(cut) => IntCase::Never,
        // Twenty digits: the whole of a `u64` past 10^19 (a negative has
        // at most 19).
        Op::EndsWith if cut.len() == POW10.len() => match value(cut) {
            Some(m) if cut[0] != b'0' => IntCase::Num(Num::Is(false, m)),
            _ => IntCase::Never,
        },
        Op::EndsWith => num(POW10.get(cut.len() - 1).and_then(|&min| {
            Some(Num::Ends {
                pow: min.checked_mul(10)?,
                rem: value(cut)?,
                min: if cut.len() == 1 { 0 } else { min },
            })
        })),
        Op::StartsWith if cut.is_empty() => int_case(Op::EndsWith, cut),
        Op::StartsWith => {
            let (neg, d) = match cut.strip_prefix(b"-") {
                Some(d) => (true, d),
                None => (false, cut),
            };
            if d.is_empty() {
                return IntCase::Num(Num::Starts { neg, lead: 0, k: 0 });
            }
            if !digits(d) {
                return IntCase::Never;
            }
            num((d.len() <= POW10.len())
                .then(|| value(d))
                .flatten()
                .map(|lead| Num::Starts {
                    neg,
                    lead,
                    k: d.len() as u32,
                }))
        }
        Op::Contains if cut.iter().all(|&b| b.is_ascii_digit() || b == b'-') => IntCase::Digits,
        Op::Contains => IntCase::Never,
    }
}

impl Build<'_> {
    fn step(&mut self, n: usize) -> Result<(), Over> {
        self.steps += n;
        if self.steps > STEPS {
            Err(Over)
        } else {
            Ok(())
        }
    }

    /// Every place the needle may start: the message's start, or (not
    /// pinned there) inside a literal run or inside an argument.
    fn starts(&mut self, pinned: bool) -> Result<(), Over> {
        if pinned {
            return self.run(0, 0);
        }
        let n = self.needle.len();
        if n == 0 {
            return self.emit();
        }
        for i in 0..self.runs.len() {
            let l = self.runs[i];
            self.step(l.len())?;
            for o in 0..l.len() {
                let tail = &l[o..];
                if tail.len() >= n {
                    if tail.starts_with(self.needle) && (!self.end || tail.len() == n) {
                        if self.end {
                            self.rest_empty(i + 1, i)?;
                        } else {
                            self.emit()?;
                        }
                    }
                } else if i + 1 < self.runs.len() && self.needle.starts_with(tail) {
                    self.slot(i, tail.len(), true)?;
                }
            }
            if i + 1 < self.runs.len() && n > 0 {
                self.slot(i, 0, false)?;
            }
        }
        Ok(())
    }

    /// The needle's bytes from `q` on laid from the start of run `i`.
    fn run(&mut self, i: usize, q: usize) -> Result<(), Over> {
        self.step(1)?;
        let (l, r) = (self.runs[i], &self.needle[q..]);
        if r.len() <= l.len() {
            if !l.starts_with(r) {
                return Ok(());
            }
            return match (self.end, r.len() == l.len()) {
                (false, _) => self.emit(),
                (true, true) => self.rest_empty(i + 1, i),
                (true, false) => Ok(()),
            };
        }
        if !r.starts_with(l) || i + 1 == self.runs.len() {
            return Ok(());
        }
        self.slot(i, q + l.len(), true)
    }

    /// The needle's bytes from `q` on (at least one) laid over argument
    /// `i`, from its start when `at_start`, else from anywhere in it.
    fn slot(&mut self, i: usize, q: usize, at_start: bool) -> Result<(), Over> {
        let n = self.needle.len();
        self.step(1 + n - q)?;
        // The needle ends in this argument.
        let op = match (at_start, self.end) {
            (true, true) => Op::Eq,
            (true, false) => Op::StartsWith,
            (false, true) => Op::EndsWith,
            (false, false) => Op::Contains,
        };
        self.laid.push((i, op, q, n));
        if self.end {
            self.rest_empty(i + 1, i + 1)?;
        } else {
            self.emit()?;
        }
        self.laid.pop();
        // It runs past the argument into run i + 1 from `m` on (not
        // from `q` when the start is free: that is a start in the run).
        let next = self.runs[i + 1];
        let op = if at_start { Op::Eq } else { Op::EndsWith };
        for m in q + usize::from(!at_start)..n {
            let k = next.len().min(n - m);
            if self.needle[m..m + k] != next[..k] {
                continue;
            }
            self.laid.push((i, op, q, m));
            self.run(i + 1, m)?;
            self.laid.pop();
        }
        Ok(())
    }

    /// The needle ended where the message goes on with run `run` and
    /// argument `slot` (after a run: the argument after it; after an
    /// argument: the next one). Pinned at the end, the rest of the message
    /// must be empty: those runs are, those arguments must be.
    fn rest_empty(&mut self, run: usize, slot: usize) -> Result<(), Over> {
        if self.runs[run..].iter().any(|l| !l.is_empty()) {
            return Ok(());
        }
        let n = self.needle.len();
        let before = self.laid.len();
        for slot in slot..self.runs.len() - 1 {
            self.laid.push((slot, Op::Eq, n, n));
        }
        let r = self.emit();
        self.laid.truncate(before);
        r
    }

    /// The alignment laid so far is one alternative.
    fn emit(&mut self) -> Result<(), Over> {
        let out = &mut self.out;
        if out.alts.len() == ALTS || out.conds.len() + self.laid.len() > CONDS {
            return Err(Over);
        }
        let a = out.conds.len() as u32;
        out.always |= self.laid.is_empty();
        for &(slot, op, x, y) in &self.laid {
            let cut = &self.needle[x..y];
            out.conds.push(Cond {
                slot: slot as u16,
                op,
                cut: (x as u32, y as u32),
                int: int_case(op, cut),
                float_never: !cut.iter().all(|&b| float_may_show(b)),
            });
        }
        let conds = &mut out.conds[a as usize..];
        // The cheapest test first: an integer's `==`, then the others.
        conds.sort_by_key(|c| !matches!(c.op, Op::Eq));
        out.alts.push((a, out.conds.len() as u32));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn al(runs: &[&str], needle: &str, anchor: Anchor) -> Alignments {
        let runs: Vec<&[u8]> = runs.iter().map(|r| r.as_bytes()).collect();
        Alignments::of(&runs, needle.as_bytes(), anchor).expect("within bounds")
    }

    #[test]
    fn a_needle_into_an_argument_is_a_condition_on_it() {
        let runs = ["loadgen record ", " of thread ", ""];
        let a = al(&runs, "record 4242 ", Anchor::None);
        let t = |x: u64, y: u64| a.test([ValueRef::U64(x), ValueRef::U64(y)].into_iter());
        assert_eq!(t(4242, 1), Some(true));
        assert_eq!(t(42421, 1), Some(false));
        assert_eq!(t(424, 1), Some(false));
        assert_eq!(a.test([ValueRef::U64(4242)].into_iter()), None, "missing");
        let s = |x: &str| a.test([ValueRef::Str(x), ValueRef::U64(1)].into_iter());
        assert_eq!(s("4242"), Some(true));
        assert_eq!(s("4242 x"), Some(true), "the needle ends in the argument");
        assert_eq!(s("x4242"), Some(false));
        assert_eq!(s("record 4242 "), Some(true), "inside the argument");
        let e = al(&runs, "4242 of thread 1", Anchor::End);
        let t = |x: i64, y: u64| e.test([ValueRef::I64(x), ValueRef::U64(y)].into_iter());
        assert_eq!(t(4242, 1), Some(true));
        assert_eq!(t(-14242, 1), Some(true));
        assert_eq!(t(4242, 11), Some(false));
        assert_eq!(t(4241, 1), Some(false));
        let q = al(&runs, "loadgen record -7 of thread 0", Anchor::Both);
        let t = |x: i64, y: u64| q.test([ValueRef::I64(x), ValueRef::U64(y)].into_iter());
        assert_eq!(
            (t(-7, 0), t(7, 0), t(-7, 1)),
            (Some(true), Some(false), Some(false))
        );
    }

    #[test]
    fn the_format_alone_decides_some() {
        let runs = ["took ", " ms"];
        assert_eq!(al(&runs, "ook", Anchor::None).decided(), Some(true));
        assert_eq!(al(&runs, "ms", Anchor::End).decided(), Some(true));
        assert_eq!(al(&runs, "x", Anchor::Start).decided(), Some(false));
        assert_eq!(al(&[""], "", Anchor::Both).decided(), Some(true));
        assert_eq!(al(&["a"], "", Anchor::Both).decided(), Some(false));
    }

    #[test]
    fn integers_compare_as_numbers_only_for_their_own_text() {
        assert_eq!(
            int_case(Op::Eq, b"4242"),
            IntCase::Num(Num::Is(false, 4242))
        );
        assert_eq!(
            int_case(Op::Eq, b"-9223372036854775808"),
            IntCase::Num(Num::Is(true, 1 << 63))
        );
        assert_eq!(int_case(Op::Eq, b"-9223372036854775809"), IntCase::Never);
        assert_eq!(
            int_case(Op::Eq, b"18446744073709551615"),
            IntCase::Num(Num::Is(false, u64::MAX))
        );
        assert_eq!(int_case(Op::Eq, b"18446744073709551616"), IntCase::Never);
        for t in ["042", "-0", "", "-", "+4", "4 "] {
            assert_eq!(int_case(Op::Eq, t.as_bytes()), IntCase::Never, "{t:?}");
        }
        assert_eq!(int_case(Op::Eq, b"0"), IntCase::Num(Num::Is(false, 0)));
        assert_eq!(int_case(Op::EndsWith, b"-0"), IntCase::Never);
        assert_eq!(int_case(Op::Contains, b""), IntCase::Digits);
        assert_eq!(int_case(Op::StartsWith, b"4 "), IntCase::Never);
    }

    /// Every condition an integer can meet, decided on the number, must
    /// be the text's answer: integers at and around each power of ten,
    /// both signs, the extremes; cuts that are the text's own prefixes and
    /// suffixes, and near misses of them (a digit changed, a `0` put in
    /// front, the sign added or dropped, one digit more or fewer).
    #[test]
    fn numbers_meet_conditions_as_their_text_does() {
        let mut rng = fastrand::Rng::with_seed(0x17);
        let mut ints: Vec<(bool, u64)> = vec![(false, u64::MAX), (true, 1 << 63), (true, 1)];
        for p in POW10 {
            for m in [
                p - 1,
                p,
                p + 1,
                p.saturating_mul(10) - 1,
                p.saturating_mul(4).saturating_add(2),
            ] {
                ints.extend([(false, m), (true, m.min(1 << 63))]);
            }
        }
        ints.extend((0..2_000).map(|_| {
            let m = rng.u64(..) >> rng.u32(0..64);
            (rng.bool() && m != 0 && m <= 1 << 63, m)
        }));
        ints.retain(|&(neg, m)| !(neg && m == 0));
        let text = |(neg, m): (bool, u64)| format!("{}{m}", if neg { "-" } else { "" });
        let mut tried = [0usize; 2];
        for &int in &ints {
            let t = text(int);
            // Cuts of this integer's text and of a neighbour's.
            let other = text(ints[rng.usize(..ints.len())]);
            let mut cuts: Vec<String> = Vec::new();
            for s in [&t, &other] {
                for i in 0..=s.len() {
                    cuts.extend([s[..i].to_string(), s[i..].to_string()]);
                }
            }
            for c in cuts.clone() {
                let b = c.as_bytes();
                if let Some(i) = (!b.is_empty()).then(|| rng.usize(..b.len())) {
                    let mut x = b.to_vec();
                    x[i] = if x[i] == b'9' { b'0' } else { x[i] + 1 };
                    cuts.push(String::from_utf8(x).unwrap());
                    cuts.push(c[..i].to_string() + &c[i + 1..]);
                }
                cuts.push(format!("0{c}"));
                cuts.push(format!("-{c}"));
                cuts.push(format!("{c}0"));
                cuts.push(c.trim_start_matches('-').to_string());
            }
            for c in &cuts {
                for (op, want) in [
                    (Op::Eq, t == *c),
                    (Op::StartsWith, t.starts_with(c.as_str())),
                    (Op::EndsWith, t.ends_with(c.as_str())),
                ] {
                    let got = match int_case(op, c.as_bytes()) {
                        IntCase::Never => false,
                        IntCase::Num(n) => n.holds(int),
                        IntCase::Digits => panic!("{op:?} {c:?} is decided on the number"),
                    };
                    assert_eq!(got, want, "{t} {op:?} {c:?}");
                    tried[usize::from(want)] += 1;
                }
            }
        }
        assert!(tried[0] > 10_000 && tried[1] > 10_000, "{tried:?}");
    }

    #[test]
    fn every_byte_a_float_shows_is_one_float_may_show() {
        let mut rng = fastrand::Rng::with_seed(17);
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e16,
            1e-5,
            0.1,
            -2.5e-7,
        ];
        let randoms = (0..20_000).map(|_| f64::from_bits(rng.u64(..)));
        for x in specials.into_iter().chain(randoms) {
            let text = ValueRef::F64(x).to_string();
            assert!(text.bytes().all(float_may_show), "{x:?} shows as {text:?}");
        }
        // A cut with another byte fails on a float without formatting it,
        // and the answer is the one the text gives.
        let a = al(&["a ", ""], "a x", Anchor::None);
        assert_eq!(a.test([ValueRef::F64(1.5)].into_iter()), Some(false));
        assert_eq!(a.test([ValueRef::Str("x")].into_iter()), Some(true));
        let a = al(&["a ", ""], "a 1.5", Anchor::None);
        assert_eq!(a.test([ValueRef::F64(1.5)].into_iter()), Some(true));
    }

    #[test]
    fn the_bounds_hold() {
        // Adjacent placeholders: the needle splits between them in many
        // ways; past the bound there are no alignments.
        let runs = vec![&b""[..]; SLOTS + 1];
        assert!(Alignments::of(&runs, &[b'1'; 100], Anchor::None).is_none());
        let runs = vec![&b""[..]; SLOTS + 2];
        assert!(Alignments::of(&runs, b"1", Anchor::None).is_none());
        let a = al(&["a", "b"], &"ab".repeat(2), Anchor::None);
        assert!(a.alts.len() <= ALTS && a.conds.len() <= CONDS);
    }
}
