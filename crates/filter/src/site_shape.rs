//! What a call site's format alone decides about text tests on its
//! messages: the one analysis behind both the single filter's per-site
//! plans (`message_match.rs`) and a [`FilterSet`](super::FilterSet)'s
//! per-site verdicts (`set_sites.rs`).
//!
//! A record from the native macros carries its message as a format and
//! typed arguments (`"query {} took {} ms"`, `[42, 12.5]`); every record
//! of a call site shares the format. A [`Shape`] is that format split into
//! literal runs (adjacent ones joined) and placeholders, and answers, for
//! arguments whose text is over an [`Alphabet`]:
//!
//! - `contains`: a needle inside a literal run passes on every record; a
//!   needle that cannot overlap an argument's text fails on every record
//!   when it is in no literal run. The arguments of most call sites are
//!   numbers, whose text has few distinct bytes (`0-9`, `-`; for floats
//!   also `.`, `e`, `NaN`, `inf`), so whether a needle can overlap one is
//!   a question about the format and that alphabet alone: is the needle a
//!   substring of some text `L0 A* L1 A* ... Ln` (the literal runs `Li`
//!   with any argument text over the alphabet `A` between them)?
//!   [`feasible`] answers it with a small automaton over the format's
//!   positions;
//! - `starts_with`, `ends_with`: decided by the first (last) literal run
//!   unless the constant continues past it into an argument;
//! - `==`: fails unless the value starts with the first run and ends with
//!   the last.
//!
//! A string argument can hold any text, but a record's strings are short
//! and their bytes cheap to collect ([`arg_kinds`]): a `contains` needle
//! that fails for numbers still fails when it has a byte (its rarest,
//! [`Shape::guard_byte`]) in no literal run, no number and none of the
//! record's strings.
//!
//! # Bounds
//!
//! Formats come from untrusted records; the callers bound their length.
//! One [`feasible`] call costs at most (format positions + 1) x needle
//! bytes steps, counted against [`BUDGET`] per analysis; past it the
//! answer is "depends" (render).

use crate::bytes::{ends_with as ends, starts_with as starts};
use distlog_core::message::{for_each_part, FormatPart};
use distlog_core::record::ValueRef;
use std::ops::ControlFlow;

/// Most automaton steps (format positions x needle bytes) of one analysis.
pub(super) const BUDGET: usize = 1 << 18;

/// A set of bytes, 256 bits.
pub(super) type Bytes = [u64; 4];

#[inline(always)]
pub(super) fn add(set: &mut Bytes, b: u8) {
    set[(b >> 6) as usize] |= 1 << (b & 63);
}

#[inline(always)]
pub(super) fn has(set: &Bytes, b: u8) -> bool {
    set[(b >> 6) as usize] & (1 << (b & 63)) != 0
}

/// The bytes an argument's text may hold.
pub(super) type Alphabet = [bool; 256];

/// Integers' text: `0-9`, `-`, and the bytes of `extra`.
pub(super) fn alphabet(extra: &[u8]) -> Alphabet {
    let mut a = [false; 256];
    for b in b'0'..=b'9' {
        a[b as usize] = true;
    }
    a[b'-' as usize] = true;
    for &b in extra {
        a[b as usize] = true;
    }
    a
}

/// The bytes an integer's text can have.
pub(super) fn ints() -> Alphabet {
    alphabet(b"")
}

/// The bytes any number's text can have (`1.5e-7`, `NaN`, `inf`).
pub(super) fn nums() -> Alphabet {
    alphabet(b".eE+NaNinf")
}

/// A format position: a literal byte, or a placeholder (any text over
/// the alphabet, empty included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pos {
    Byte(u8),
    Slot,
}

/// What a format decides about one test, for arguments over one alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Passes on every record.
    Pass,
    /// Fails on every record.
    Fail,
    /// Depends on the arguments' values: render.
    Depends,
}

/// A format split into positions and literal runs (module docs).
#[derive(Debug, Default)]
pub(super) struct Shape {
    pos: Vec<Pos>,
    /// The literal runs' bytes, one after the other.
    text: Vec<u8>,
    /// Each literal run: a range of `text` (adjacent runs joined).
    runs: Vec<(u32, u32)>,
    /// How many placeholders.
    pub slots: usize,
    /// The bytes some literal run has.
    in_literals: Bytes,
    /// The first and last literal runs' ranges of `text` when the format
    /// starts (ends) with one, else empty.
    first: (u32, u32),
    last: (u32, u32),
}

impl Shape {
    /// The shape of `format` (at most `u32::MAX` bytes, which callers'
    /// much smaller bounds keep).
    pub fn of(format: &str) -> Shape {
        let mut s = Shape::default();
        s.fill(format);
        s
    }

    /// Splits `format` into this shape, reusing its buffers.
    pub fn fill(&mut self, format: &str) {
        self.pos.clear();
        self.text.clear();
        self.runs.clear();
        self.slots = 0;
        self.in_literals = [0; 4];
        self.first = (0, 0);
        self.last = (0, 0);
        let _ = for_each_part::<()>(format, |p| {
            match p {
                FormatPart::Literal(s) if !s.is_empty() => {
                    let joined = matches!(self.pos.last(), Some(Pos::Byte(_)));
                    self.pos.extend(s.bytes().map(Pos::Byte));
                    let at = self.text.len() as u32;
                    self.text.extend_from_slice(s.as_bytes());
                    for b in s.bytes() {
                        add(&mut self.in_literals, b);
                    }
                    let end = self.text.len() as u32;
                    match self.runs.last_mut() {
                        Some((_, e)) if joined => *e = end,
                        _ => self.runs.push((at, end)),
                    }
                }
                FormatPart::Literal(_) => {}
                FormatPart::Placeholder(_) => {
                    self.pos.push(Pos::Slot);
                    self.slots += 1;
                }
            }
            ControlFlow::Continue(())
        });
        if let (Some(Pos::Byte(_)), Some(&r)) = (self.pos.first(), self.runs.first()) {
            self.first = r;
        }
        if let (Some(Pos::Byte(_)), Some(&r)) = (self.pos.last(), self.runs.last()) {
            self.last = r;
        }
    }

    /// The literal runs, in order.
    pub fn literals(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.runs
            .iter()
            .map(|&(a, b)| &self.text[a as usize..b as usize])
    }

    /// The format's literal text, which is the message when it has no
    /// placeholder.
    pub fn literal_text(&self) -> &[u8] {
        &self.text
    }

    /// The literal run every message starts with (empty when the format
    /// starts with a placeholder).
    #[inline]
    pub fn first(&self) -> &[u8] {
        &self.text[self.first.0 as usize..self.first.1 as usize]
    }

    /// The literal run every message ends with (empty when the format
    /// ends with a placeholder).
    #[inline]
    pub fn last(&self) -> &[u8] {
        &self.text[self.last.0 as usize..self.last.1 as usize]
    }

    /// Whether the format ends with a literal run or has no placeholder:
    /// otherwise [`Shape::ends_with`] decides nothing and [`Shape::eq`]
    /// only by the first run.
    #[inline]
    pub fn ends_literal(&self) -> bool {
        self.last.1 > self.last.0 || self.slots == 0
    }

    /// Whether a literal run holds `needle`.
    pub fn in_literal(&self, needle: &[u8]) -> bool {
        needle.is_empty()
            || self
                .literals()
                .any(|l| memchr::memmem::find(l, needle).is_some())
    }

    /// `contains needle` for a needle in no literal run ([`Shape::in_literal`]
    /// false), arguments over `a`: `Fail` or `Depends`. `steps` counts the
    /// automaton's work against [`BUDGET`].
    pub fn outside_literals(&self, needle: &[u8], a: &Alphabet, steps: &mut usize) -> Fate {
        if self.slots == 0 {
            // The message is the literal text: one run, which lacks it.
            return Fate::Fail;
        }
        // A byte no literal run and no argument can show: no match.
        if needle
            .iter()
            .any(|&b| !has(&self.in_literals, b) && !a[b as usize])
        {
            return Fate::Fail;
        }
        match feasible(&self.pos, needle, a, steps) {
            Some(false) => Fate::Fail,
            Some(true) | None => Fate::Depends,
        }
    }

    /// `contains needle`, arguments over `a`.
    pub fn contains(&self, needle: &[u8], a: &Alphabet, steps: &mut usize) -> Fate {
        if self.in_literal(needle) {
            Fate::Pass
        } else {
            self.outside_literals(needle, a, steps)
        }
    }

    /// The byte of `needle` (its rarest, by [`COMMON`]) that no literal
    /// run and no text over `a` has: a record whose text arguments lack it
    /// cannot match where a number could not. `None`: no such byte.
    pub fn guard_byte(&self, needle: &[u8], a: &Alphabet) -> Option<u8> {
        let rank = |b: u8| COMMON.iter().position(|&c| c == b).unwrap_or(COMMON.len());
        needle
            .iter()
            .copied()
            .filter(|&b| !has(&self.in_literals, b) && !a[b as usize])
            .max_by_key(|&b| rank(b))
    }

    /// The bytes of `needle` that no literal run and no text over `a`
    /// has ([`covers`]).
    pub fn escapes(&self, needle: &[u8], a: &Alphabet) -> Bytes {
        let mut set = [0; 4];
        for &b in needle {
            if !has(&self.in_literals, b) && !a[b as usize] {
                add(&mut set, b);
            }
        }
        set
    }

    /// `starts_with p`, whatever the arguments (missing ones included).
    /// The single filter compares pieces in order, the first literal run
    /// first, and a set walks its prefix trie along that run: this is for
    /// the tests that pin the rule.
    #[cfg(test)]
    pub fn starts_with(&self, p: &[u8]) -> Fate {
        edge(self.slots, self.literal_text(), self.first(), p, starts)
    }

    /// `ends_with p`, whatever the arguments (missing ones included).
    #[inline]
    pub fn ends_with(&self, p: &[u8]) -> Fate {
        edge(self.slots, self.literal_text(), self.last(), p, ends)
    }

    /// `== v`, whatever the arguments (missing ones included).
    #[inline]
    pub fn eq(&self, v: &[u8]) -> Fate {
        if self.slots == 0 {
            return fate(self.literal_text() == v);
        }
        let (first, last) = (self.first(), self.last());
        if v.len() >= first.len() + last.len() && starts(v, first) && ends(v, last) {
            Fate::Depends
        } else {
            Fate::Fail
        }
    }
}

fn fate(pass: bool) -> Fate {
    if pass {
        Fate::Pass
    } else {
        Fate::Fail
    }
}

/// `starts_with` (`ends_with`, by `test`) on a message whose edge run is
/// `run`: a constant inside the run passes, one that leaves it fails, one
/// that continues past it depends.
#[inline(always)]
fn edge(slots: usize, text: &[u8], run: &[u8], p: &[u8], test: fn(&[u8], &[u8]) -> bool) -> Fate {
    if slots == 0 {
        return fate(test(text, p));
    }
    if test(run, p) {
        Fate::Pass
    } else if p.len() > run.len() && test(p, run) {
        Fate::Depends
    } else {
        Fate::Fail
    }
}

/// Bytes in order of how common they are in log text (a rough English
/// and path ranking); bytes not listed are rarer still.
const COMMON: &[u8] = b"e tao/insrhldcu.umfpgwybvk_-:=0123456789ETAOINSRHLDCUMFPGWYBVKxjqzXJQZ";

/// Whether `needle` is a substring of some text `L0 A* L1 ... Ln` of the
/// format `pos` (a placeholder showing any text over `a`). `steps` counts
/// the work; `None` when it would pass [`BUDGET`].
pub(super) fn feasible(
    pos: &[Pos],
    needle: &[u8],
    a: &Alphabet,
    steps: &mut usize,
) -> Option<bool> {
    *steps += (pos.len() + 1) * needle.len();
    if *steps > BUDGET {
        return None;
    }
    // State i: the next position to read is i (pos.len(): the end). A
    // match may start anywhere.
    let mut live = vec![true; pos.len() + 1];
    let mut next = vec![false; pos.len() + 1];
    for &c in needle {
        next.fill(false);
        let mut any = false;
        for (i, p) in pos.iter().enumerate() {
            if !live[i] {
                continue;
            }
            match *p {
                Pos::Byte(b) if b == c => {
                    next[i + 1] = true;
                    any = true;
                }
                Pos::Slot if a[c as usize] => {
                    next[i] = true;
                    any = true;
                }
                _ => {}
            }
        }
        if !any {
            return Some(false);
        }
        // A placeholder may show nothing more: its successor is live too.
        for i in 0..pos.len() {
            if next[i] && pos[i] == Pos::Slot {
                next[i + 1] = true;
            }
        }
        std::mem::swap(&mut live, &mut next);
    }
    Some(true)
}

/// The kind of a record's arguments as its format shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgKinds {
    /// Every placeholder shows an integer.
    Ints,
    /// Every placeholder shows a number, not all integers.
    Nums,
    /// Some placeholder shows text (a string, bool or null): the bytes of
    /// that text.
    Text(Bytes),
    /// Some placeholder shows itself (no argument left).
    Missing,
}

/// The kinds of the first `slots` of `args` (reads each string once).
#[inline]
pub(super) fn arg_kinds<'a>(args: impl Iterator<Item = ValueRef<'a>>, slots: usize) -> ArgKinds {
    let mut tally = KindTally::default();
    for v in args.take(slots) {
        match v {
            ValueRef::I64(_) | ValueRef::U64(_) => tally.int(),
            ValueRef::F64(_) => tally.float(),
            ValueRef::Str(s) => tally.text(s.as_bytes()),
            ValueRef::Bool(true) => tally.text(b"true"),
            ValueRef::Bool(false) => tally.text(b"false"),
            ValueRef::Null => tally.text(b"null"),
        }
    }
    tally.kinds(slots)
}

/// What [`arg_kinds`] and its twin over encoded values
/// (`set_fields::raw_arg_kinds`) learn from the arguments, one at a time.
#[derive(Default)]
pub(super) struct KindTally {
    /// Arguments seen.
    n: usize,
    /// Some argument was a float.
    nums: bool,
    /// The bytes of the arguments shown as text, if any.
    text: Option<Bytes>,
}

impl KindTally {
    /// An integer argument.
    #[inline]
    pub(super) fn int(&mut self) {
        self.n += 1;
    }

    /// A float argument.
    #[inline]
    pub(super) fn float(&mut self) {
        self.n += 1;
        self.nums = true;
    }

    /// An argument shown as the text `t` (a string, bool or null).
    #[inline]
    pub(super) fn text(&mut self, t: &[u8]) {
        self.n += 1;
        let set = self.text.get_or_insert([0; 4]);
        for &b in t {
            add(set, b);
        }
    }

    /// The kinds of a format's `slots` placeholders, given the arguments
    /// seen.
    #[inline]
    pub(super) fn kinds(self, slots: usize) -> ArgKinds {
        match (self.n < slots, self.text, self.nums) {
            (true, ..) => ArgKinds::Missing,
            (false, Some(t), _) => ArgKinds::Text(t),
            (false, None, true) => ArgKinds::Nums,
            (false, None, false) => ArgKinds::Ints,
        }
    }
}

/// Whether `text` has every byte of `escapes` ([`Shape::escapes`] of a
/// needle). When it does not, a record whose other arguments are numbers
/// and whose text arguments' bytes are `text` cannot show the needle: the
/// missing byte is in no literal run, no number and no text argument.
#[inline]
pub(super) fn covers(text: &Bytes, escapes: &Bytes) -> bool {
    (0..4).all(|i| escapes[i] & !text[i] == 0)
}

/// Whether `guard` and `text` share no byte.
#[cfg(test)]
pub(super) fn disjoint(guard: &Bytes, text: &Bytes) -> bool {
    (0..4).all(|i| guard[i] & text[i] == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_straddling_literal_text_and_numbers_are_feasible() {
        let s = Shape::of("code {} after {} ms");
        let f = |n: &str, a: &Alphabet| feasible(&s.pos, n.as_bytes(), a, &mut 0).unwrap();
        assert!(f("code 12", &ints()));
        assert!(f("2 after 1", &ints()));
        assert!(f("12-3", &ints()), "inside one argument");
        assert!(!f("12.5 ms", &ints()));
        assert!(f("12.5 ms", &nums()));
        assert!(f("afte", &ints()), "inside a literal run");
        assert!(
            !f("code after", &ints()),
            "a placeholder shows text or nothing, not a space"
        );
        assert!(f("code after", &alphabet(b"after")));
        assert!(!f("timeout", &nums()));
        assert!(f("", &ints()));
    }

    #[test]
    fn the_budget_bounds_the_work() {
        let pos = vec![Pos::Slot; 1024];
        let mut steps = 0;
        let needle = vec![b'1'; 300];
        assert_eq!(feasible(&pos, &needle, &ints(), &mut steps), None);
        assert!(steps > BUDGET);
    }

    #[test]
    fn edges_come_from_the_first_and_last_runs() {
        let s = Shape::of("{{a}} {} b{}c");
        assert_eq!(s.first(), b"{a} ");
        assert_eq!(s.last(), b"c");
        assert_eq!(
            s.literals().collect::<Vec<_>>(),
            [&b"{a} "[..], b" b", b"c"]
        );
        assert_eq!(s.starts_with(b"{a"), Fate::Pass);
        assert_eq!(s.starts_with(b"{b"), Fate::Fail);
        assert_eq!(s.starts_with(b"{a} 1"), Fate::Depends);
        assert_eq!(s.ends_with(b"c"), Fate::Pass);
        assert_eq!(s.ends_with(b"1c"), Fate::Depends);
        assert_eq!(s.ends_with(b"d"), Fate::Fail);
        assert_eq!(s.eq(b"{a} 1 b2c"), Fate::Depends);
        assert_eq!(s.eq(b"{a} c"), Fate::Depends);
        assert_eq!(s.eq(b"{a}c"), Fate::Fail);
        let s = Shape::of("{}");
        assert_eq!((s.first(), s.last()), (&b""[..], &b""[..]));
        assert_eq!(s.starts_with(b""), Fate::Pass);
        assert_eq!(s.starts_with(b"x"), Fate::Depends);
    }
}
