//! A [`FilterSet`](super::FilterSet)'s message tests on deferred messages,
//! decided once per call site instead of rendering every message.
//!
//! A record from the native macros carries its message as a format and
//! typed arguments (`"query {} took {} ms"`, `[42, 12.5]`); every record of
//! a call site shares the format. The set's message tests (its `==` values,
//! `starts_with` and `ends_with` tries, `contains` automaton) mostly have
//! the same answer on all of them:
//!
//! - a needle inside a literal run of the format passes on every record;
//! - a needle that cannot overlap an argument's text fails on every record
//!   when it is in no literal run. The arguments of most call sites are
//!   numbers, whose text has few distinct bytes (`0-9`, `-`; for floats
//!   also `.`, `e`, `NaN`, `inf`), so whether a needle can overlap one is a
//!   question about the format and that alphabet alone: is the needle a
//!   substring of some text of the form `L0 A* L1 A* ... Ln` (the literal
//!   runs `Li` with any argument text over the alphabet `A` between
//!   them)? [`feasible`] answers it with a small automaton over the
//!   format's positions;
//! - a prefix test is decided by the first literal run (a prefix inside it
//!   passes, one that leaves it fails) unless a longer prefix continues
//!   past it into an argument, a suffix test by the last, and no `==` value
//!   can equal the message unless it starts with the first run and ends
//!   with the last.
//!
//! [`analyze`] works this out once per (set, format), for records whose
//! arguments are all integers and for those whose arguments are all
//! numbers: either the passing tests (a [`Verdict::Decided`] list, the
//! same for every such record) or [`Verdict::Render`] when some test
//! depends on the arguments' values. A string argument can hold any text,
//! but a record's strings are short and their bytes cheap to collect: the
//! numbers' verdict still holds when each `contains` needle outside the
//! literal runs has a byte (its rarest, kept in the site's guard) that is
//! neither in the literal runs, nor a number's, nor in the record's
//! strings. [`Sites`] keeps the verdicts per thread, keyed by the
//! format's text. A record with fewer arguments than its format's
//! placeholders, or whose verdict is `Render`, is rendered and scanned as
//! before: the result is the same either way (`set_tests.rs` checks it
//! against every filter alone, needles across literal text and arguments
//! included).
//!
//! # Bounds
//!
//! Formats come from untrusted records. Only formats of at most
//! [`MAX_SITE_FORMAT`] bytes are analysed; an analysis costs O(format +
//! the needles' bytes) plus at most [`BUDGET`] automaton steps, after
//! which the site is `Render` (the bytes of the needles outside the
//! literal runs are read only while they total at most [`MAX_NEEDLE_SCAN`];
//! more, `Render`). [`Sites`] holds [`SITES`] formats per thread
//! (direct-mapped, seeded hash: a new format evicts one).

use super::combine::TextIndex;
use crate::vm::bytes_eq;
use distlog_core::message::{for_each_part, FormatPart};
use distlog_core::record::ValueRef;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;
use std::ops::ControlFlow;

/// The longest format analysed (longer ones are rendered every time).
pub(super) const MAX_SITE_FORMAT: usize = 1024;
/// Most automaton steps (format positions x needle bytes) of one analysis.
pub(super) const BUDGET: usize = 1 << 18;
/// Most bytes of needles outside the literal runs read by one analysis.
pub(super) const MAX_NEEDLE_SCAN: usize = 1 << 16;
/// Most `==` values compared with the literal runs by one analysis.
const MAX_EQ_SCAN: usize = 4096;
/// Formats kept per thread and set.
pub(super) const SITES: usize = 64;

/// What a site's message tests are, for records whose arguments are all
/// of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// These tests pass (in no order), the others fail, whatever the
    /// arguments' values.
    Decided(Box<[u32]>),
    /// Some test depends on the arguments' values: render the message.
    Render,
}

/// One call site's verdicts.
#[derive(Debug)]
pub(super) struct Site {
    /// How many placeholders the format has.
    pub slots: usize,
    /// When every argument a placeholder shows is an integer.
    pub ints: Verdict,
    /// When every argument a placeholder shows is a number.
    pub nums: Verdict,
    /// When some argument is text (a string, a bool, null), `nums` still
    /// holds if the text has none of these bytes ([`text_guard`]); `None`:
    /// render.
    pub guard: Option<Bytes>,
}

/// A set of bytes, 256 bits.
pub(super) type Bytes = [u64; 4];

#[inline(always)]
fn add(set: &mut Bytes, b: u8) {
    set[(b >> 6) as usize] |= 1 << (b & 63);
}

/// The bytes an argument's text may hold: a 256-bit set.
type Alphabet = [bool; 256];

fn alphabet(extra: &[u8]) -> Alphabet {
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

/// A format as positions: a literal byte, or a placeholder (any text over
/// the alphabet, empty included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    Byte(u8),
    Slot,
}

/// Whether `needle` is a substring of some text `L0 A* L1 ... Ln` of the
/// format `pos` (a placeholder showing any text over `a`). `steps` counts
/// the work; `None` when it would pass [`BUDGET`].
fn feasible(pos: &[Pos], needle: &[u8], a: &Alphabet, steps: &mut usize) -> Option<bool> {
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

/// The tests along the trie's path that `key` walks, and whether the walk
/// used all of `key` and could go further (a longer constant continues
/// past it).
fn walk_open(t: &super::combine::Trie, key: impl Iterator<Item = u8>, ids: &mut Vec<u32>) -> bool {
    let Some(mut node) = t.nodes.first() else {
        return false;
    };
    ids.extend_from_slice(&node.ids);
    for b in key {
        match node.edges.binary_search_by_key(&b, |e| e.0) {
            Ok(i) => node = &t.nodes[node.edges[i].1 as usize],
            Err(_) => return false,
        }
        ids.extend_from_slice(&node.ids);
    }
    !node.edges.is_empty()
}

/// The verdicts of `format`'s records on the message tests of `ix`
/// (module docs). `constant` runs every test of `ix` on a text (for a
/// format without placeholders, whose message is its literal text).
pub(super) fn analyze(
    ix: &TextIndex,
    format: &str,
    constant: impl FnOnce(&[u8], &mut Vec<u32>),
) -> Site {
    // The literal runs (adjacent ones joined) and the placeholders.
    let mut pos = Vec::with_capacity(format.len());
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut slots = 0;
    let _ = for_each_part::<()>(format, |p| {
        match p {
            FormatPart::Literal(s) if !s.is_empty() => {
                let at = pos.len();
                pos.extend(s.bytes().map(Pos::Byte));
                match runs.last_mut() {
                    Some((_, end)) if *end == at => *end = pos.len(),
                    _ => runs.push((at, pos.len())),
                }
            }
            FormatPart::Literal(_) => {}
            FormatPart::Placeholder(_) => {
                pos.push(Pos::Slot);
                slots += 1;
            }
        }
        ControlFlow::Continue(())
    });
    let text = |(a, b): (usize, usize)| -> Vec<u8> {
        pos[a..b]
            .iter()
            .map(|p| match p {
                Pos::Byte(b) => *b,
                Pos::Slot => 0,
            })
            .collect()
    };
    if slots == 0 {
        // The message is the format's literal text, whatever the record.
        let msg: Vec<u8> = runs.iter().flat_map(|&r| text(r)).collect();
        let mut ids = Vec::new();
        constant(&msg, &mut ids);
        let v = Verdict::Decided(ids.into());
        return Site {
            slots,
            ints: v.clone(),
            nums: v,
            guard: Some([0; 4]),
        };
    }
    let first = match pos.first() {
        Some(Pos::Byte(_)) => runs.first().map(|&r| text(r)).unwrap_or_default(),
        _ => Vec::new(),
    };
    let last = match pos.last() {
        Some(Pos::Byte(_)) => runs.last().map(|&r| text(r)).unwrap_or_default(),
        _ => Vec::new(),
    };
    let literals: Vec<Vec<u8>> = runs.iter().map(|&r| text(r)).collect();
    let ints = verdict(ix, &pos, &literals, &first, &last, &alphabet(b""));
    let num_bytes = alphabet(b".eE+NaNinf");
    let nums = verdict(ix, &pos, &literals, &first, &last, &num_bytes);
    let guard = match nums {
        Verdict::Decided(_) => text_guard(ix, &literals, &num_bytes),
        Verdict::Render => None,
    };
    Site {
        slots,
        ints,
        nums,
        guard,
    }
}

/// Bytes in order of how common they are in log text (a rough English
/// and path ranking); bytes not listed are rarer still.
const COMMON: &[u8] = b"e tao/insrhldcu.umfpgwybvk_-:=0123456789ETAOINSRHLDCUMFPGWYBVKxjqzXJQZ";

/// The `nums` verdict (decided) also holds for a record whose arguments
/// include text when every `contains` needle outside the literal runs has
/// a byte that neither the literal runs, nor a number, nor that text has:
/// it cannot match. Each such needle contributes one such byte (its
/// rarest), and a record whose text has none of them keeps the verdict.
/// `None` when some needle has no such byte (its bytes are all literal or
/// number bytes: a text argument might complete it).
fn text_guard(ix: &TextIndex, literals: &[Vec<u8>], a: &Alphabet) -> Option<Bytes> {
    let mut guard = [0; 4];
    let Some(n) = &ix.contains else {
        return Some(guard);
    };
    let mut known = *a;
    for lit in literals {
        for &b in lit {
            known[b as usize] = true;
        }
    }
    let rank = |b: u8| COMMON.iter().position(|&c| c == b).unwrap_or(COMMON.len());
    let mut read = 0usize;
    for needle in &n.needles {
        read += needle.len();
        if read > MAX_NEEDLE_SCAN {
            return None;
        }
        // Needles inside a literal run pass whatever the arguments; their
        // escape byte (if any) only makes the guard stricter.
        let rarest = needle
            .iter()
            .copied()
            .filter(|&b| !known[b as usize])
            .max_by_key(|&b| rank(b));
        match rarest {
            Some(b) => add(&mut guard, b),
            None if literals
                .iter()
                .any(|l| memchr::memmem::find(l, needle).is_some()) => {}
            None => return None,
        }
    }
    Some(guard)
}

/// The verdict for arguments whose text is over `a`.
fn verdict(
    ix: &TextIndex,
    pos: &[Pos],
    literals: &[Vec<u8>],
    first: &[u8],
    last: &[u8],
    a: &Alphabet,
) -> Verdict {
    let mut ids = Vec::new();
    // `==`: a value must start with the first run and end with the last.
    if ix.eq.len() > MAX_EQ_SCAN {
        return Verdict::Render;
    }
    let min = first.len() + last.len();
    if ix
        .eq
        .keys()
        .any(|k| k.len() >= min && k.starts_with(first) && k.ends_with(last))
    {
        return Verdict::Render;
    }
    if walk_open(&ix.prefixes, first.iter().copied(), &mut ids)
        || walk_open(&ix.suffixes, last.iter().rev().copied(), &mut ids)
    {
        return Verdict::Render;
    }
    let Some(n) = &ix.contains else {
        return Verdict::Decided(ids.into());
    };
    let mut inside = vec![false; n.needles.len()];
    for lit in literals {
        for m in n.all.find_overlapping_iter(&lit[..]) {
            inside[m.pattern().as_usize()] = true;
        }
    }
    let mut in_literals = [false; 256];
    for lit in literals {
        for &b in lit {
            in_literals[b as usize] = true;
        }
    }
    let (mut read, mut steps) = (0usize, 0usize);
    for (p, needle) in n.needles.iter().enumerate() {
        if inside[p] || needle.is_empty() {
            ids.extend_from_slice(&n.ids[p]);
            continue;
        }
        read += needle.len();
        if read > MAX_NEEDLE_SCAN {
            return Verdict::Render;
        }
        // A byte no literal run and no argument can show: no match.
        if needle
            .iter()
            .any(|&b| !in_literals[b as usize] && !a[b as usize])
        {
            continue;
        }
        match feasible(pos, needle, a, &mut steps) {
            Some(false) => {}
            Some(true) | None => return Verdict::Render,
        }
    }
    Verdict::Decided(ids.into())
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
    let (mut nums, mut text) = (false, None::<Bytes>);
    let mut n = 0;
    for v in args.take(slots) {
        n += 1;
        let t = match v {
            ValueRef::I64(_) | ValueRef::U64(_) => continue,
            ValueRef::F64(_) => {
                nums = true;
                continue;
            }
            ValueRef::Str(s) => s,
            ValueRef::Bool(true) => "true",
            ValueRef::Bool(false) => "false",
            ValueRef::Null => "null",
        };
        let set = text.get_or_insert([0; 4]);
        for &b in t.as_bytes() {
            add(set, b);
        }
    }
    match (n < slots, text, nums) {
        (true, ..) => ArgKinds::Missing,
        (false, Some(t), _) => ArgKinds::Text(t),
        (false, None, true) => ArgKinds::Nums,
        (false, None, false) => ArgKinds::Ints,
    }
}

/// The verdict of `site` for arguments of kind `kinds`.
#[inline]
pub(super) fn verdict_for(site: &Site, kinds: ArgKinds) -> &Verdict {
    const RENDER: &Verdict = &Verdict::Render;
    match kinds {
        ArgKinds::Ints => &site.ints,
        ArgKinds::Nums => &site.nums,
        ArgKinds::Text(t) => match site.guard {
            Some(g) if (0..4).all(|i| g[i] & t[i] == 0) => &site.nums,
            _ => RENDER,
        },
        ArgKinds::Missing => RENDER,
    }
}

struct Slot {
    hash: u64,
    format: Box<str>,
    site: Site,
}

/// Per thread and set: call sites' verdicts by format, direct-mapped
/// ([`SITES`] slots, seeded hash).
pub(super) struct Sites {
    slots: Vec<Option<Slot>>,
}

impl Sites {
    pub fn new() -> Sites {
        Sites {
            slots: (0..SITES).map(|_| None).collect(),
        }
    }

    /// The site of `format` (at most [`MAX_SITE_FORMAT`] bytes), analysed
    /// by `make` when not kept.
    #[inline]
    pub fn get(&mut self, seed: &RandomState, format: &str, make: impl FnOnce() -> Site) -> &Site {
        let hash = seed.hash_one(format.as_bytes());
        let i = (hash >> 58) as usize % SITES;
        let hit = matches!(&self.slots[i], Some(s) if s.hash == hash
            && bytes_eq(s.format.as_bytes(), format.as_bytes()));
        if !hit {
            self.slots[i] = Some(Slot {
                hash,
                format: format.into(),
                site: make(),
            });
        }
        match &self.slots[i] {
            Some(s) => &s.site,
            None => unreachable!("filled above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(format: &str) -> Vec<Pos> {
        let mut pos = Vec::new();
        let _ = for_each_part::<()>(format, |p| {
            match p {
                FormatPart::Literal(s) => pos.extend(s.bytes().map(Pos::Byte)),
                FormatPart::Placeholder(_) => pos.push(Pos::Slot),
            }
            ControlFlow::Continue(())
        });
        pos
    }

    #[test]
    fn needles_straddling_literal_text_and_numbers_are_feasible() {
        let pos = positions("code {} after {} ms");
        let ints = alphabet(b"");
        let nums = alphabet(b".eE+NaNinf");
        let f = |n: &str, a: &Alphabet| feasible(&pos, n.as_bytes(), a, &mut 0).unwrap();
        assert!(f("code 12", &ints));
        assert!(f("2 after 1", &ints));
        assert!(f("12-3", &ints), "inside one argument");
        assert!(!f("12.5 ms", &ints));
        assert!(f("12.5 ms", &nums));
        assert!(f("afte", &ints), "inside a literal run");
        assert!(
            !f("code after", &ints),
            "a placeholder shows text or nothing, not a space"
        );
        assert!(f("code after", &alphabet(b"after")));
        assert!(!f("timeout", &nums));
        assert!(f("", &ints));
    }

    #[test]
    fn the_budget_bounds_the_work() {
        let pos = vec![Pos::Slot; MAX_SITE_FORMAT];
        let mut steps = 0;
        let needle = vec![b'1'; 300];
        assert_eq!(feasible(&pos, &needle, &alphabet(b""), &mut steps), None);
        assert!(steps > BUDGET);
    }
}
