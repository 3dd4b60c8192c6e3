//! A [`FilterSet`](super::FilterSet)'s message tests on deferred messages,
//! decided once per call site instead of rendering every message.
//!
//! Every record of a call site shares its format, and the set's message
//! tests (its `==` values, `starts_with` and `ends_with` tries, `contains`
//! automaton) mostly have the same answer on all of them: what the format
//! alone decides is `site_shape.rs`'s analysis (shared with the single
//! filter's per-site plans, `message_match.rs`), applied here to every
//! test of the set at once.
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
//! the needles' bytes) plus at most [`BUDGET`](site_shape::BUDGET) automaton steps, after
//! which the site is `Render` (the bytes of the needles outside the
//! literal runs are read only while they total at most [`MAX_NEEDLE_SCAN`];
//! more, `Render`). [`Sites`] holds [`SITES`] formats per thread
//! (seeded hash; a new format finding it full empties it).

use super::combine::TextIndex;
use super::site_shape::{self, add, Alphabet, Bytes, Fate, Shape};
#[cfg(test)]
use super::site_shape::{disjoint, ArgKinds};
use crate::bytes::bytes_eq;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// The longest format analysed (longer ones are rendered every time).
pub(super) const MAX_SITE_FORMAT: usize = 1024;
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
    let shape = Shape::of(format);
    if shape.slots == 0 {
        // The message is the format's literal text, whatever the record.
        let mut ids = Vec::new();
        constant(shape.literal_text(), &mut ids);
        let v = Verdict::Decided(ids.into());
        return Site {
            slots: 0,
            ints: v.clone(),
            nums: v,
            guard: Some([0; 4]),
        };
    }
    let ints = verdict(ix, &shape, &site_shape::ints());
    let num_bytes = site_shape::nums();
    let nums = verdict(ix, &shape, &num_bytes);
    let guard = match nums {
        Verdict::Decided(_) => text_guard(ix, &shape, &num_bytes),
        Verdict::Render => None,
    };
    Site {
        slots: shape.slots,
        ints,
        nums,
        guard,
    }
}

/// The `nums` verdict (decided) also holds for a record whose arguments
/// include text when every `contains` needle outside the literal runs has
/// a byte that neither the literal runs, nor a number, nor that text has:
/// it cannot match. Each such needle contributes one such byte
/// ([`Shape::guard_byte`]), and a record whose text has none of them
/// keeps the verdict. `None` when some needle has no such byte (its bytes
/// are all literal or number bytes: a text argument might complete it).
fn text_guard(ix: &TextIndex, shape: &Shape, a: &Alphabet) -> Option<Bytes> {
    let mut guard = [0; 4];
    let Some(n) = &ix.contains else {
        return Some(guard);
    };
    let mut read = 0usize;
    for needle in &n.needles {
        read += needle.len();
        if read > MAX_NEEDLE_SCAN {
            return None;
        }
        // Needles inside a literal run pass whatever the arguments; their
        // escape byte (if any) only makes the guard stricter.
        match shape.guard_byte(needle, a) {
            Some(b) => add(&mut guard, b),
            None if shape.in_literal(needle) => {}
            None => return None,
        }
    }
    Some(guard)
}

/// The verdict for arguments whose text is over `a`.
fn verdict(ix: &TextIndex, shape: &Shape, a: &Alphabet) -> Verdict {
    let mut ids = Vec::new();
    // `==`: a value must start with the first run and end with the last.
    if ix.eq.len() > MAX_EQ_SCAN {
        return Verdict::Render;
    }
    if ix.eq.keys().any(|k| shape.eq(k) != Fate::Fail) {
        return Verdict::Render;
    }
    let (first, last) = (shape.first(), shape.last());
    if walk_open(&ix.prefixes, first.iter().copied(), &mut ids)
        || walk_open(&ix.suffixes, last.iter().rev().copied(), &mut ids)
    {
        return Verdict::Render;
    }
    let Some(n) = &ix.contains else {
        return Verdict::Decided(ids.into());
    };
    let mut inside = vec![false; n.needles.len()];
    for lit in shape.literals() {
        for m in n.all.find_overlapping_iter(lit) {
            inside[m.pattern().as_usize()] = true;
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
        match shape.outside_literals(needle, a, &mut steps) {
            Fate::Fail => {}
            Fate::Pass | Fate::Depends => return Verdict::Render,
        }
    }
    Verdict::Decided(ids.into())
}

/// The verdict of `site` for arguments of kind `kinds` (per record,
/// `set_fields::raw_verdict` reads it from the encoded arguments).
#[cfg(test)]
pub(super) fn verdict_for(site: &Site, kinds: ArgKinds) -> &Verdict {
    const RENDER: &Verdict = &Verdict::Render;
    match kinds {
        ArgKinds::Ints => &site.ints,
        ArgKinds::Nums => &site.nums,
        ArgKinds::Text(t) => match site.guard {
            Some(g) if disjoint(&g, &t) => &site.nums,
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

/// Slots of [`Sites`]' table: twice [`SITES`], so a probe usually ends at
/// its first slot.
const TABLE: usize = 2 * SITES;

/// Per thread and set: call sites' verdicts by format, an open-addressed
/// table (seeded hash, linear probing) of at most [`SITES`] formats,
/// emptied when a new format finds it full. Up to [`SITES`] formats, a
/// kept format is never analysed again (a direct-mapped table evicted one
/// of two formats sharing a slot on every switch between them, which
/// allocated in steady state).
pub(super) struct Sites {
    slots: Vec<Option<Slot>>,
    len: usize,
    /// The slot last found or filled: a run of one call site's records
    /// (the usual case) compares its format there, without a hash.
    last: usize,
    /// Bumped when the table is emptied: a slot index kept elsewhere
    /// (`set_batch.rs`) holds while it is unchanged.
    gen: u32,
}

impl Sites {
    pub fn new() -> Sites {
        Sites {
            slots: (0..TABLE).map(|_| None).collect(),
            len: 0,
            last: 0,
            gen: 0,
        }
    }

    /// The table's generation: slots found under one hold until it moves.
    #[inline(always)]
    pub fn gen(&self) -> u32 {
        self.gen
    }

    /// The site in slot `slot` (found under the current generation).
    #[inline(always)]
    pub fn at(&self, slot: u32) -> Option<&Site> {
        self.slots.get(slot as usize)?.as_ref().map(|s| &s.site)
    }

    /// [`get`](Self::get)'s slot: `format`'s, analysed by `make` when not
    /// kept.
    pub fn slot_of(
        &mut self,
        seed: &RandomState,
        format: &str,
        make: impl FnOnce() -> Site,
    ) -> u32 {
        self.get(seed, format, make);
        self.last as u32
    }

    /// The site of `format` (at most [`MAX_SITE_FORMAT`] bytes), analysed
    /// by `make` when not kept.
    #[inline]
    pub fn get(&mut self, seed: &RandomState, format: &str, make: impl FnOnce() -> Site) -> &Site {
        let same = |s: &Option<Slot>| {
            s.as_ref()
                .is_some_and(|s| bytes_eq(s.format.as_bytes(), format.as_bytes()))
        };
        if !self.slots.get(self.last).is_some_and(same) {
            self.last = self.find(seed, format, make);
        }
        match &self.slots[self.last] {
            Some(s) => &s.site,
            None => unreachable!("found or filled above"),
        }
    }

    /// The slot of `format`, analysed by `make` and kept when not kept.
    fn find(&mut self, seed: &RandomState, format: &str, make: impl FnOnce() -> Site) -> usize {
        let hash = seed.hash_one(format.as_bytes());
        let mut i = (hash >> 57) as usize % TABLE;
        loop {
            match &self.slots[i] {
                Some(s) if s.hash == hash && bytes_eq(s.format.as_bytes(), format.as_bytes()) => {
                    return i;
                }
                Some(_) => i = (i + 1) % TABLE,
                None => return self.insert(hash, format, make()),
            }
        }
    }

    /// Keeps `site` for `format` (not kept): the index of its slot.
    #[cold]
    fn insert(&mut self, hash: u64, format: &str, site: Site) -> usize {
        if self.len == SITES {
            self.slots.iter_mut().for_each(|s| *s = None);
            self.len = 0;
            self.gen = self.gen.wrapping_add(1);
        }
        let mut i = (hash >> 57) as usize % TABLE;
        while self.slots[i].is_some() {
            i = (i + 1) % TABLE;
        }
        self.slots[i] = Some(Slot {
            hash,
            format: format.into(),
            site,
        });
        self.len += 1;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(slots: usize) -> Site {
        Site {
            slots,
            ints: Verdict::Render,
            nums: Verdict::Render,
            guard: None,
        }
    }

    #[test]
    fn kept_formats_are_not_analysed_again_whatever_their_hashes() {
        // Any two formats may share a home slot under some seed; with up
        // to SITES formats, none is analysed twice.
        for round in 0..20 {
            let seed = RandomState::default();
            let mut sites = Sites::new();
            let formats: Vec<String> = (0..SITES).map(|i| format!("f{round} {i} {{}}")).collect();
            let mut made = 0;
            for pass in 0..3 {
                for (i, f) in formats.iter().enumerate() {
                    let got = sites.get(&seed, f, || {
                        made += 1;
                        site(i)
                    });
                    assert_eq!(got.slots, i, "pass {pass}");
                }
            }
            assert_eq!(made, SITES);
            // One more format empties the table: the others are analysed
            // again, and kept again.
            sites.get(&seed, "new {}", || site(0));
            let mut again = 0;
            for (i, f) in formats.iter().enumerate() {
                assert_eq!(
                    sites
                        .get(&seed, f, || {
                            again += 1;
                            site(i)
                        })
                        .slots,
                    i
                );
            }
            assert_eq!(again, SITES);
        }
    }
}
