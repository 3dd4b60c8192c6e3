//! Evaluates a [`Plan`] on one record, by classes rather than tests.
//!
//! A field's *class* on a record is the set of that field's tests the
//! record passes ([`Classes`]); every filter's result is a function of the
//! classes. A stream has many values but few classes, and few combinations
//! of them, so:
//!
//! 1. **The cheap key.** Per byte field, its class is a table lookup
//!    (computed when the set is built); per text field other than the
//!    message, a value seen before is one hash and one compare in the
//!    field's [`ValueCache`], and only a new value walks the field's
//!    indexes; the cheap tests evaluated one by one give one more class.
//!    The record's *cheap key* is that short tuple of classes: its length
//!    is the number of fields tested, whatever the number of filters.
//! 2. **The cheap entry**, memoized per key: either every filter is
//!    decided (the matches, done), or the groups some undecided filter
//!    needs (message, typed fields, key) together with the matches when
//!    none of those groups' tests passes.
//! 3. **The expensive groups**, only those the entry names: the message is
//!    scanned once by its automaton (a deferred one is decided by its call
//!    site when the arguments allow, `set_sites.rs`), the typed fields
//!    probed once each, read still encoded (`set_fields.rs`). A
//!    record where none of their tests passes (the usual case) takes the
//!    entry's matches; otherwise the entry and the passing tests (a handful
//!    of ids) are the key of a second memo.
//!
//! When some filters have no cheap test and need every expensive group
//! between them (a rule that is only `message contains "x"`, another
//! only `field.user_id == 7`: usual from ten rules on), every record
//! evaluates every group whatever its cheap key, and step 2 decides
//! nothing: such a plan ([`Plan::one_probe`]) skips it and takes one memo
//! probe keyed by the cheap key and the passing expensive tests together.
//!
//! Only a key not seen before evaluates the filters' formulas (three-valued
//! over the cheap tests, then two-valued). Every table is bounded and
//! emptied when full ([`MAX_ENTRIES`], [`MAX_STORED`]), checked before a
//! record when the one before added to them.

use super::combine::{
    ByteIndex, Formula, Group, Plan, TextIndex, Trie, CHEAP, FIELDS, GROUPS, KEY, MESSAGE,
};
use super::set_batch::{site_wide, BatchSites, SiteEntry, NONE};
use super::set_cache::{Class, Classes, ValueCache};
use super::set_fields::{past_args, raw_verdict, split, walk_take, Args, Raw, RawFields};
use super::set_memo::Memo;
use super::set_sites::{analyze, Site, Sites, Verdict, MAX_SITE_FORMAT};
use super::vm::{num, text, PerRecord};
use super::RecordView;
use aho_corasick::Input;
use distlog_core::view::RecordRef;
use distlog_core::wire::tag;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// 2^127: an integral float in `-2^127..2^127` is exactly an `i128`.
const I128_END: f64 = 1.701_411_834_604_692_3e38;

/// Most memo entries (cheap and full together) per thread; the tables are
/// emptied when full.
const MAX_ENTRIES: usize = 4096;
/// Most test ids (and classes) stored in the tables together.
const MAX_STORED: usize = 1 << 20;

/// A memoized list of matches: a cheap entry's (its index) or a full
/// memo's ([`FULL`] and its index); it holds until the tables are emptied.
pub(super) type List = u32;
/// The bit of a full memo's [`List`].
const FULL: List = 1 << 31;

/// What a record's expensive groups learn for the next ones.
#[derive(Default)]
struct Walked {
    /// The deferred message was rendered (by the one-by-one tests).
    rendered: bool,
    /// The format arguments the message's verdict walked.
    args: Option<Args>,
}

/// What a cheap key decides.
struct Cheap {
    /// The groups to evaluate (bits); 0 when every filter is decided.
    need: u8,
    /// The matches: all of them when `need == 0`, else those when no test
    /// of the `need` groups passes.
    matches: Box<[u32]>,
}

/// Per-thread evaluation state of one set: buffers and memo tables (reset
/// when the thread evaluates another set).
pub(super) struct Scratch {
    /// The set these tables belong to.
    pub set_id: u64,
    /// Seeds the value caches' hash (records are untrusted).
    seed: RandomState,
    /// The record's cheap key.
    key: Vec<Class>,
    /// Passing test ids being collected.
    ids: Vec<u32>,
    /// A deferred message, rendered.
    msg: String,
    /// Deferred messages' call sites: the message tests' verdicts.
    sites: Sites,
    /// Per automaton pattern or typed-field name: the evaluation that saw
    /// it last.
    stamps: Vec<u32>,
    epoch: u32,
    /// Per test: passes (only filled while evaluating formulas).
    value: Vec<bool>,
    classes: Classes,
    /// Per text field of the plan (`Plan::texts`).
    values: Vec<ValueCache>,
    /// Cheap key to its entry in `entries`.
    cheap: Memo,
    entries: Vec<Cheap>,
    /// `[entry, passing expensive tests...]` to its matches in `fulls`.
    full: Memo,
    fulls: Vec<Box<[u32]>>,
    /// Ids stored by `entries` and `fulls`.
    stored: usize,
    /// Whether the batch's sites keep lists (`Plan::site_lists`).
    site_lists: bool,
    /// Passing expensive tests, while the cheap key is made.
    passing: Vec<u32>,
    /// The batch in hand's per-site work (`set_batch.rs`).
    pub batch: BatchSites,
    /// Records per list, for a [`Router`](super::Router).
    pub tally: Tally,
    /// An entry was added since the last check of the bounds.
    grew: bool,
}

impl Scratch {
    /// Empty state for the set `set_id` of plan `p`.
    pub fn new(set_id: u64, p: &Plan) -> Scratch {
        let seed = RandomState::default();
        let memo_seed = |i: u64| seed.hash_one(i);
        Scratch {
            set_id,
            cheap: Memo::new(memo_seed(1)),
            full: Memo::new(memo_seed(2)),
            classes: Classes::new(memo_seed(3)),
            seed,
            key: Vec::new(),
            ids: Vec::new(),
            msg: String::new(),
            sites: Sites::new(),
            stamps: vec![0; p.max_stamps],
            epoch: 0,
            value: vec![false; p.tests()],
            values: p.texts.iter().map(|_| ValueCache::new()).collect(),
            entries: Vec::new(),
            fulls: Vec::new(),
            stored: 0,
            site_lists: p.site_lists(),
            passing: Vec::new(),
            grew: false,
            batch: BatchSites::new(),
            tally: Tally::new(p.formulas.len()),
        }
    }

    /// Empties the tables when they hold more than their bounds (one
    /// record adds at most a few entries, each bounded by the tests).
    #[inline]
    fn bound(&mut self) {
        // The tables only grow where they set a flag: nothing to check on
        // a record that added nothing (the usual one).
        if !(self.grew || self.classes.grew) {
            return;
        }
        self.grew = false;
        self.classes.grew = false;
        if self.entries.len() + self.full.len() >= MAX_ENTRIES
            || self.stored + self.classes.stored() + self.cheap.stored() + self.full.stored()
                > MAX_STORED
        {
            // The counts of lists about to go, into their filters'.
            self.flush();
            self.classes.clear();
            self.values.iter_mut().for_each(ValueCache::clear);
            self.cheap.clear();
            self.entries.clear();
            self.full.clear();
            self.fulls.clear();
            self.stored = 0;
            // Its entries name classes just forgotten.
            self.batch.clear();
        }
    }
}

impl Scratch {
    /// The filters of `list`.
    #[inline(always)]
    pub fn list(&self, list: List) -> &[u32] {
        let i = (list & !FULL) as usize;
        let l = if list & FULL != 0 {
            self.fulls.get(i)
        } else {
            self.entries.get(i).map(|e| &e.matches)
        };
        l.map_or(&[], |l| l)
    }

    /// Counts a record of `list` and gives the union of `masks` over its
    /// filters, `None` when it has none (worked out once per list until
    /// the next [`flush`](Self::flush)).
    #[inline]
    pub fn tally(&mut self, list: List, masks: &[u64]) -> Option<u64> {
        // A list already counted since the flush (the usual record): one
        // look-up of its count.
        let c = self.tally.count(list);
        if c.0 != 0 {
            c.0 += 1;
            return Some(c.1);
        }
        self.tally_first(list, masks)
    }

    /// [`tally`](Self::tally) of the first record of `list` since the
    /// last flush, or of a list of no filters (never kept): its mask
    /// worked out and kept.
    #[inline]
    fn tally_first(&mut self, list: List, masks: &[u64]) -> Option<u64> {
        let l = self.list(list);
        if l.is_empty() {
            // Nothing to count or route: not kept.
            return None;
        }
        let mask = l
            .iter()
            .fold(0, |m, &f| m | masks.get(f as usize).copied().unwrap_or(0));
        self.tally.touched.push(list);
        *self.tally.count(list) = (1, mask);
        Some(mask)
    }

    /// Adds the counts of the lists tallied since the last flush to their
    /// filters' hits, and forgets them.
    pub fn flush(&mut self) {
        let mut touched = std::mem::take(&mut self.tally.touched);
        for &list in &touched {
            let i = (list & !FULL) as usize;
            let n = std::mem::take(&mut self.tally.count(list).0);
            let l = match list & FULL {
                0 => self.entries.get(i).map(|e| &e.matches[..]),
                _ => self.fulls.get(i).map(|f| &f[..]),
            };
            for &f in l.unwrap_or_default() {
                if let Some(h) = self.tally.hits.get_mut(f as usize) {
                    *h += n;
                }
            }
        }
        touched.clear();
        self.tally.touched = touched;
    }
}

/// Per memoized list, the records a [`Router`](super::Router) gave it and
/// the union of its filters' masks; per filter, the records flushed.
pub(super) struct Tally {
    entries: Vec<(u32, u64)>,
    fulls: Vec<(u32, u64)>,
    /// The lists counted since the last flush.
    touched: Vec<List>,
    /// Per filter.
    pub hits: Vec<u32>,
}

impl Tally {
    fn new(filters: usize) -> Tally {
        Tally {
            entries: Vec::new(),
            fulls: Vec::new(),
            touched: Vec::new(),
            hits: vec![0; filters],
        }
    }

    /// `list`'s count and mask.
    #[inline(always)]
    fn count(&mut self, list: List) -> &mut (u32, u64) {
        let i = (list & !FULL) as usize;
        let counts = if list & FULL != 0 {
            &mut self.fulls
        } else {
            &mut self.entries
        };
        if i >= counts.len() {
            // At most the memo's entries, once per thread.
            counts.resize(i + 1, (0, 0));
        }
        &mut counts[i]
    }
}

fn next_epoch(epoch: &mut u32, stamps: &mut [u32]) -> u32 {
    *epoch = epoch.wrapping_add(1);
    if *epoch == 0 {
        stamps.iter_mut().for_each(|s| *s = 0);
        *epoch = 1;
    }
    *epoch
}

/// Sorts and dedups a list of ids (the indexes often emit it in order).
#[inline]
fn canonical(ids: &mut [u32]) -> usize {
    if ids.windows(2).all(|w| w[0] < w[1]) {
        return ids.len();
    }
    ids.sort_unstable();
    let mut n = 0;
    for i in 0..ids.len() {
        if n == 0 || ids[i] != ids[n - 1] {
            ids[n] = ids[i];
            n += 1;
        }
    }
    n
}

/// The tests along the trie's path that `key` walks.
#[inline]
fn walk(t: &Trie, key: impl Iterator<Item = u8>, ids: &mut Vec<u32>) {
    let Some(mut node) = t.nodes.first() else {
        return;
    };
    ids.extend_from_slice(&node.ids);
    for b in key {
        match node.edges.binary_search_by_key(&b, |e| e.0) {
            Ok(i) => node = &t.nodes[node.edges[i].1 as usize],
            Err(_) => return,
        }
        ids.extend_from_slice(&node.ids);
    }
}

/// All the tests of one text field, on its value `s`.
fn text_tests(ix: &TextIndex, s: &[u8], ids: &mut Vec<u32>, stamps: &mut [u32], epoch: u32) {
    if !ix.eq.is_empty() {
        if let Some(found) = ix.eq.get(s) {
            ids.extend_from_slice(found);
        }
    }
    walk(&ix.prefixes, s.iter().copied(), ids);
    walk(&ix.suffixes, s.iter().rev().copied(), ids);
    if let Some(n) = &ix.contains {
        let Some((mut at, mut p)) = n.any.find(s, 0) else {
            return;
        };
        let patterns = &n.ids;
        let mut left = patterns.len();
        let mut add = |p: usize| {
            if stamps[p] != epoch {
                stamps[p] = epoch;
                ids.extend_from_slice(&patterns[p]);
                left -= 1;
            }
            left == 0
        };
        if n.restart {
            // At most one needle starts at `at`: the next is further on.
            while !add(p) {
                match n.any.find(s, at + 1) {
                    Some(next) => (at, p) = next,
                    None => return,
                }
            }
        } else {
            // No needle starts before `at`.
            for m in n.all.find_overlapping_iter(Input::new(s).span(at..s.len())) {
                if add(m.pattern().as_usize()) {
                    return;
                }
            }
        }
    }
}

/// The message tests of `ix` on `r`'s deferred message, decided by its
/// call site (`set_sites.rs`) without rendering it: adds the passing tests
/// to `ids` and returns `true`, or returns `false` when the message must
/// be rendered.
#[inline]
fn by_site(ix: &TextIndex, r: RecordRef<'_>, s: &mut Scratch, ids: &mut Vec<u32>) -> bool {
    let format = r.format();
    if format.len() > MAX_SITE_FORMAT {
        return false;
    }
    let site = s.sites.get(&s.seed, format, || analyze_site(ix, format));
    site_verdict(site, r, ids)
}

/// The call site of `format` for the message tests of `ix`.
fn analyze_site(ix: &TextIndex, format: &str) -> Site {
    analyze(ix, format, |text, ids| {
        let patterns = ix.contains.as_ref().map_or(0, |n| n.ids.len());
        text_tests(ix, text, ids, &mut vec![0; patterns], 1);
    })
}

/// [`by_site`] once the site is found.
#[inline(always)]
fn site_verdict(site: &Site, r: RecordRef<'_>, ids: &mut Vec<u32>) -> bool {
    match raw_verdict(site, r) {
        Verdict::Decided(passing) => {
            ids.extend_from_slice(passing);
            true
        }
        Verdict::Render => false,
    }
}

impl Plan {
    /// [`Plan::one_probe`]: the expensive groups of the filters, when
    /// filters without cheap tests need all of them; else 0.
    pub(super) fn groups_always_needed(&self) -> u8 {
        let cheap = 1 << CHEAP;
        let mut expensive = 0;
        let mut always = 0;
        for (f, &groups) in self.formulas.iter().zip(&self.filter_groups) {
            expensive |= groups & !cheap;
            // No cheap test: the values below are never read.
            if groups & cheap == 0 && self.eval(f, cheap, &[]).is_none() {
                always |= groups;
            }
        }
        if always == expensive {
            expensive
        } else {
            0
        }
    }

    /// Calls `f` once with the indexes of the filters `v` passes,
    /// ascending. `site`: the record's site index in the batch whose
    /// entries `s.batch` holds (`set_batch.rs`), when known.
    #[inline]
    pub(super) fn matching(
        &self,
        v: &RecordView<'_>,
        s: &mut Scratch,
        site: Option<usize>,
        f: &mut impl FnMut(&[u32]),
    ) {
        let list = self.find(v, s, site);
        f(s.list(list));
    }

    /// The memoized list of the filters `v` passes ([`matching`](Self::matching)).
    #[inline]
    pub(super) fn find(&self, v: &RecordView<'_>, s: &mut Scratch, site: Option<usize>) -> List {
        s.bound();
        let Some(i) = site else {
            return self.find_at(v, s, None, None);
        };
        let at = match s.batch.get(i) {
            Some(e) => Some(*e),
            None => self.site_entry(i, v, s),
        };
        // The site's lists (`set_batch.rs`), when its records' cheap key
        // is its classes and the byte fields'.
        let memo = at
            .filter(|_| s.site_lists)
            .map(|a| (a.index, self.byte_key(v)));
        self.find_at(v, s, at, memo)
    }

    /// [`find`](Self::find) with the record's site entry `at`; `memo`:
    /// that entry's index and the record's packed byte classes, when the
    /// site's lists hold for it.
    #[inline(always)]
    fn find_at(
        &self,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        memo: Option<(u32, u32)>,
    ) -> List {
        if self.one_probe != 0 {
            return self.find_one_probe(v, s, at, memo);
        }
        let kept = memo.and_then(|(entry, k)| s.batch.list(entry, k));
        let e = match kept {
            Some(e) => e,
            None => {
                let key = self.taken_cheap_key(v, s, at);
                let e = match s.cheap.get(&key) {
                    Some(e) => e,
                    None => self.new_entry(&key, s),
                };
                s.key = key;
                if let Some((entry, k)) = memo {
                    // The same key on every record of the site and classes.
                    s.batch.put(entry, k, e);
                }
                e
            }
        };
        let need = s.entries.get(e as usize).map_or(0, |c| c.need);
        if need == 0 {
            return e;
        }

        let mut ids = std::mem::take(&mut s.ids);
        ids.clear();
        ids.push(e);
        self.groups(need, v, s, at, &mut ids);
        let list = if ids.len() == 1 {
            e
        } else {
            let n = 1 + canonical(&mut ids[1..]);
            ids.truncate(n);
            match s.full.get(&ids) {
                Some(m) => FULL | m,
                None => {
                    if kept.is_some() {
                        // `s.key` is another record's: this one's.
                        s.key = self.taken_cheap_key(v, s, at);
                    }
                    let mut all = self.cheap_ids(&s.key, &s.classes);
                    all.extend_from_slice(&ids[1..]);
                    // Every filter the unevaluated groups could still
                    // change was decided by the cheap tests.
                    let m = self
                        .decide(&all, (1 << CHEAP) | need, &mut s.value)
                        .unwrap_or_default();
                    remember_full(s, &ids, m)
                }
            }
        };
        s.ids = ids;
        list
    }

    /// The classes of `v`'s byte fields packed, a byte each (`site_lists`).
    #[inline(always)]
    fn byte_key(&self, v: &RecordView<'_>) -> u32 {
        self.bytes.iter().fold(0, |k, b| k << 8 | byte_class(b, v))
    }

    /// Whether a site's lists (`set_batch.rs`) hold: the cheap key of a
    /// record with a site entry is its site's text classes and its byte
    /// fields' classes, at most three of at most 256 classes each (packed
    /// by [`byte_key`](Self::byte_key) below [`NONE`]).
    pub(super) fn site_lists(&self) -> bool {
        self.texts.iter().all(|ix| site_wide(ix.field))
            && self.single[CHEAP as usize].is_empty()
            && self.bytes.len() <= 3
            && self.bytes.iter().all(|b| b.classes.len() <= 256)
    }

    /// [`matching`](Self::matching) when every record evaluates the
    /// groups of [`Plan::one_probe`]: one memo probe with the cheap key
    /// and the passing expensive tests together (the cheap key has the
    /// same length on every record, so the two parts cannot be confused).
    /// With `memo`, a record whose expensive groups pass nothing takes
    /// its site's list for its byte classes, when kept, without its cheap
    /// key.
    #[inline(always)]
    fn find_one_probe(
        &self,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        memo: Option<(u32, u32)>,
    ) -> List {
        let need = self.one_probe;
        let mut key = std::mem::take(&mut s.key);
        key.clear();
        let cheap = if let Some(list) = memo.and_then(|(entry, k)| s.batch.list(entry, k)) {
            self.groups(need, v, s, at, &mut key);
            if key.is_empty() {
                s.key = key;
                return list;
            }
            // Some expensive test passes: the cheap key, then those.
            let mut passing = std::mem::take(&mut s.passing);
            passing.clear();
            passing.append(&mut key);
            self.cheap_key(v, s, at, &mut key);
            let cheap = key.len();
            key.extend_from_slice(&passing);
            s.passing = passing;
            cheap
        } else {
            self.cheap_key(v, s, at, &mut key);
            let cheap = key.len();
            self.groups(need, v, s, at, &mut key);
            cheap
        };
        let n = cheap + canonical(&mut key[cheap..]);
        key.truncate(n);
        let list = match s.full.get(&key) {
            Some(m) => FULL | m,
            None => {
                let mut all = self.cheap_ids(&key[..cheap], &s.classes);
                all.extend_from_slice(&key[cheap..]);
                // Every filter's groups are known: decided.
                let m = self.decide(&all, (1 << CHEAP) | need, &mut s.value);
                debug_assert!(m.is_ok(), "one_probe names every expensive group");
                remember_full(s, &key, m.unwrap_or_default())
            }
        };
        if let Some((entry, k)) = memo.filter(|_| key.len() == cheap) {
            // Nothing expensive passed: the list of every such record of
            // the site and classes.
            s.batch.put(entry, k, list);
        }
        s.key = key;
        list
    }

    /// [`cheap_key`](Self::cheap_key) into the scratch key's buffer,
    /// taken out of `s` (the key is built while `s` is borrowed): the
    /// caller puts it back.
    #[inline(always)]
    fn taken_cheap_key(
        &self,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
    ) -> Vec<Class> {
        let mut key = std::mem::take(&mut s.key);
        key.clear();
        self.cheap_key(v, s, at, &mut key);
        key
    }

    /// The record's cheap key: the class of each byte field, of each text
    /// field but the message, and of the cheap tests run one by one.
    #[inline]
    fn cheap_key(
        &self,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        key: &mut Vec<Class>,
    ) {
        for b in &self.bytes {
            key.push(byte_class(b, v));
        }
        let site = at.map_or(&[][..], |a| {
            s.batch.classes.get(a.texts as usize..).unwrap_or_default()
        });
        for (i, (ix, cache)) in self.texts.iter().zip(&mut s.values).enumerate() {
            if let Some(&c) = site.get(i).filter(|&&c| c != NONE) {
                // The site's (`set_batch.rs`).
                key.push(c);
                continue;
            }
            let t = text(v, ix.field).as_bytes();
            if let Some(c) = cache.last(t) {
                // The same value as the previous record's (a batch's
                // host, a run of one call site's target): no hash.
                key.push(c);
                continue;
            }
            let h = ValueCache::hash(&s.seed, t);
            let c = match cache.get(h, t) {
                Some(c) => c,
                None => {
                    s.ids.clear();
                    let e = next_epoch(&mut s.epoch, &mut s.stamps);
                    text_tests(ix, t, &mut s.ids, &mut s.stamps, e);
                    let n = canonical(&mut s.ids);
                    let c = s.classes.intern(&s.ids[..n]);
                    cache.put(h, t, c);
                    c
                }
            };
            key.push(c);
        }
        let singles = &self.single[CHEAP as usize];
        if !singles.is_empty() {
            s.ids.clear();
            let mut rendered = false;
            for (id, test) in singles {
                if self.prog.test(test, v, &mut rendered, &mut PerRecord) {
                    s.ids.push(*id);
                }
            }
            // In id order already.
            key.push(s.classes.intern(&s.ids));
        }
    }

    /// Makes the entry of site `site` of the batch in hand (`set_batch.rs`)
    /// from its record `v`; `None` past the sites kept.
    #[cold]
    #[inline(never)]
    fn site_entry(&self, site: usize, v: &RecordView<'_>, s: &mut Scratch) -> Option<SiteEntry> {
        let mut classes = std::mem::take(&mut s.batch.pending);
        classes.clear();
        for (i, ix) in self.texts.iter().enumerate() {
            classes.push(if site_wide(ix.field) {
                self.text_class(i, text(v, ix.field).as_bytes(), s)
            } else {
                NONE
            });
        }
        let format = v.record.format();
        let message = match &self.message {
            Some(ix) if !format.is_empty() && format.len() <= MAX_SITE_FORMAT => (
                s.sites
                    .slot_of(&s.seed, format, || analyze_site(ix, format)),
                s.sites.gen(),
            ),
            _ => (NONE, 0),
        };
        let e = next_epoch(&mut s.epoch, &mut s.stamps);
        let entry = s
            .batch
            .make(self, site, v.record, &classes, message, (&mut s.stamps, e))
            .copied();
        s.batch.pending = classes;
        entry
    }

    /// The class of text field `i` (`Plan::texts`) of value `t`, by the
    /// field's value cache.
    fn text_class(&self, i: usize, t: &[u8], s: &mut Scratch) -> Class {
        let (Some(ix), Some(cache)) = (self.texts.get(i), s.values.get_mut(i)) else {
            return 0;
        };
        if let Some(c) = cache.last(t) {
            return c;
        }
        let h = ValueCache::hash(&s.seed, t);
        if let Some(c) = cache.get(h, t) {
            return c;
        }
        s.ids.clear();
        let e = next_epoch(&mut s.epoch, &mut s.stamps);
        text_tests(ix, t, &mut s.ids, &mut s.stamps, e);
        let n = canonical(&mut s.ids);
        let c = s.classes.intern(&s.ids[..n]);
        cache.put(h, t, c);
        c
    }

    /// The passing cheap tests of `key`.
    fn cheap_ids(&self, key: &[Class], classes: &Classes) -> Vec<u32> {
        let mut all = Vec::new();
        for (i, &c) in key.iter().enumerate() {
            match self.bytes.get(i) {
                Some(b) => all.extend_from_slice(b.classes.get(c as usize).map_or(&[][..], |x| x)),
                None => all.extend_from_slice(classes.ids(c)),
            }
        }
        all
    }

    /// Decides a cheap key not seen before and memoizes it.
    #[cold]
    fn new_entry(&self, key: &[Class], s: &mut Scratch) -> u32 {
        let all = self.cheap_ids(key, &s.classes);
        let entry = match self.decide(&all, 1 << CHEAP, &mut s.value) {
            Ok(matches) => Cheap { need: 0, matches },
            Err(need) => Cheap {
                need,
                // With no test of `need` passing, every filter is decided.
                matches: self
                    .decide(&all, (1 << CHEAP) | need, &mut s.value)
                    .unwrap_or_default(),
            },
        };
        let e = s.entries.len() as u32;
        s.stored += entry.matches.len();
        s.entries.push(entry);
        s.cheap.insert(key, e);
        s.grew = true;
        e
    }

    /// Adds the passing tests of the expensive groups in `need` to `ids`:
    /// on a record of a site with an entry, by [`site_groups`](Self::site_groups)
    /// when it can; else by [`any_groups`](Self::any_groups).
    #[inline(always)]
    fn groups(
        &self,
        need: u8,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        ids: &mut Vec<u32>,
    ) {
        if let Some(a) = at {
            if self.site_groups(need, v.record, s, a, ids) {
                return;
            }
        }
        self.any_groups(need, v, s, at, ids);
    }

    /// [`groups`](Self::groups) on a record of a site with an entry, when
    /// no test of the groups runs one by one and the site's message
    /// verdict is decided by the argument bytes it kept (`set_batch.rs`):
    /// what [`any_groups`](Self::any_groups) does on such a record, in a
    /// small function of its own (the usual record: few registers to
    /// spill). `false`, with nothing added, when it does not apply.
    #[inline(never)]
    fn site_groups(
        &self,
        need: u8,
        r: RecordRef<'_>,
        s: &mut Scratch,
        a: SiteEntry,
        ids: &mut Vec<u32>,
    ) -> bool {
        if !self.no_singles {
            return false;
        }
        let mut walked = None;
        if need & (1 << MESSAGE) != 0 && self.message.is_some() {
            if a.message == NONE || a.sites_gen != s.sites.gen() {
                return false;
            }
            let Some(site) = s.sites.at(a.message) else {
                return false;
            };
            let Some((take, args)) = s.batch.same_args(a.index, r.raw_values()) else {
                return false;
            };
            let Verdict::Decided(passing) = take.of(site) else {
                return false;
            };
            if !passing.is_empty() {
                ids.extend_from_slice(passing);
            }
            walked = Some(args);
        }
        if need & (1 << FIELDS) != 0 && !self.fields.eq.is_empty() {
            self.site_fields(a, r, walked, s, ids);
        }
        true
    }

    /// [`groups`](Self::groups) on any record: one call for all of them,
    /// each group's code inlined for its constant `g` (no dispatch; the
    /// message's walk kept for the typed fields in `walked`).
    #[inline(never)]
    fn any_groups(
        &self,
        need: u8,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        ids: &mut Vec<u32>,
    ) {
        let mut walked = Walked::default();
        if need & (1 << MESSAGE) != 0 {
            self.group(MESSAGE, v, s, at, ids, &mut walked);
        }
        if need & (1 << FIELDS) != 0 {
            self.group(FIELDS, v, s, at, ids, &mut walked);
        }
        if need & (1 << KEY) != 0 {
            self.group(KEY, v, s, at, ids, &mut walked);
        }
        const _: () = assert!(KEY + 1 == GROUPS, "every expensive group is run above");
    }

    /// Adds the passing tests of expensive group `g` to `ids`.
    #[inline(always)]
    fn group(
        &self,
        g: Group,
        v: &RecordView<'_>,
        s: &mut Scratch,
        at: Option<SiteEntry>,
        ids: &mut Vec<u32>,
        walked: &mut Walked,
    ) {
        match g {
            MESSAGE => {
                if let Some(ix) = &self.message {
                    let r = v.record;
                    let site = at
                        .filter(|a| a.message != NONE && a.sites_gen == s.sites.gen())
                        .and_then(|a| s.sites.at(a.message));
                    if let Some(site) = site {
                        // The site's format found once for the batch; the
                        // arguments walked, for the typed fields.
                        // The arguments' bytes the same as the site's
                        // last record's: their verdict and walk.
                        let values = r.raw_values();
                        let index = at.map_or(NONE, |a| a.index);
                        let (take, args) = match s.batch.same_args(index, values) {
                            Some((take, args)) => (take, Some(args)),
                            None => {
                                let (take, args) = walk_take(site, r);
                                if let Some(a) = args {
                                    s.batch.keep_args(index, values, take, a);
                                }
                                (take, args)
                            }
                        };
                        walked.args = args;
                        if let Verdict::Decided(passing) = take.of(site) {
                            ids.extend_from_slice(passing);
                        } else {
                            self.render_message(ix, r, s, ids);
                        }
                    } else if r.format().is_empty() {
                        let e = next_epoch(&mut s.epoch, &mut s.stamps);
                        text_tests(ix, r.message().as_bytes(), ids, &mut s.stamps, e);
                    } else if !by_site(ix, r, s, ids) {
                        self.render_message(ix, r, s, ids);
                    }
                }
            }
            FIELDS if !self.fields.eq.is_empty() => match at {
                Some(a) => self.site_fields(a, v.record, walked.args, s, ids),
                None => {
                    let e = next_epoch(&mut s.epoch, &mut s.stamps);
                    self.bound_fields(RawFields::new(v.record), s, e, ids);
                }
            },
            _ => {}
        }
        for (id, test) in &self.single[g as usize] {
            if self
                .prog
                .test(test, v, &mut walked.rendered, &mut PerRecord)
            {
                ids.push(*id);
            }
        }
    }

    /// The message tests of `ix` on `r`'s deferred message, rendered.
    fn render_message(
        &self,
        ix: &TextIndex,
        r: RecordRef<'_>,
        s: &mut Scratch,
        ids: &mut Vec<u32>,
    ) {
        let e = next_epoch(&mut s.epoch, &mut s.stamps);
        s.msg.clear();
        r.write_message(&mut s.msg);
        text_tests(ix, s.msg.as_bytes(), ids, &mut s.stamps, e);
        if s.msg.capacity() > 64 * 1024 {
            s.msg = String::new();
        }
    }

    /// The typed-field tests on `r`'s fields by its site's key slots
    /// (`set_batch.rs`): a key's value probed without its name looked up,
    /// then any bound pairs as [`bound_fields`](Self::bound_fields) does.
    #[inline]
    fn site_fields(
        &self,
        a: SiteEntry,
        r: RecordRef<'_>,
        args: Option<Args>,
        s: &mut Scratch,
        ids: &mut Vec<u32>,
    ) {
        let mut values = past_args(r, args);
        let (at, n) = (a.keys.0 as usize, a.keys.1 as usize);
        let slots = s.batch.slots.get(at..at + n).unwrap_or_default();
        for &slot in slots {
            let Some((val, rest)) = split(values) else {
                // Where `RawFields` stops.
                return;
            };
            values = rest;
            if let Some(found) = self.field_eq(slot, val) {
                ids.extend_from_slice(found);
            }
        }
        if values.is_empty() {
            return;
        }
        // Bound pairs: a name the site's keys have is not compared again.
        let e = next_epoch(&mut s.epoch, &mut s.stamps);
        for &slot in s.batch.slots.get(at..at + n).unwrap_or_default() {
            if let Some(st) = s.stamps.get_mut(slot as usize) {
                *st = e;
            }
        }
        self.bound_fields(RawFields::bound(values), s, e, ids);
    }

    /// The typed-field tests on `fields` (names stamped `e` in `s.stamps`
    /// already seen).
    #[inline]
    fn bound_fields(&self, fields: RawFields<'_>, s: &mut Scratch, e: u32, ids: &mut Vec<u32>) {
        for (k, val) in fields {
            let Some(slot) = self.fields.slot(k) else {
                continue;
            };
            // The first field of a name is the one compared.
            if std::mem::replace(&mut s.stamps[slot as usize], e) == e {
                continue;
            }
            if let Some(found) = self.field_eq(slot, val) {
                ids.extend_from_slice(found);
            }
        }
    }

    /// The `==` tests typed-field slot `slot` passes with value `val`
    /// (none for [`NONE`]).
    #[inline(always)]
    fn field_eq(&self, slot: u32, val: Raw<'_>) -> Option<&[u32]> {
        let eq = self.fields.eq.get(slot as usize)?;
        let word = || {
            val.payload
                .first_chunk::<8>()
                .map_or(0, |w| u64::from_le_bytes(*w))
        };
        // Compares on different values rather than a `match` (a jump
        // table, which alternating tags mispredict): `tag | 1` is `U64`
        // for both integers.
        let found = if val.tag == tag::STR {
            eq.str(val.payload)
        } else if val.tag | 1 == tag::U64 {
            let w = word();
            eq.int(if val.tag == tag::I64 {
                i128::from(w as i64)
            } else {
                i128::from(w)
            })
        } else if val.tag == tag::F64 {
            let x = f64::from_bits(word());
            if x.fract() == 0.0 && (-I128_END..I128_END).contains(&x) {
                eq.int(x as i128)
            } else {
                None
            }
        } else {
            None
        };
        const _: () = assert!(tag::I64 | 1 == tag::U64 && tag::F64 | 1 != tag::U64);
        found.map(|f| &f[..])
    }

    /// The filters that match given the passing tests `ids` of the groups
    /// in `known`; `Err(groups)` when some filter needs more groups.
    fn decide(&self, ids: &[u32], known: u8, value: &mut [bool]) -> Result<Box<[u32]>, u8> {
        for &id in ids {
            value[id as usize] = true;
        }
        let mut matched = Vec::new();
        let mut need = 0u8;
        for (i, f) in self.formulas.iter().enumerate() {
            match self.eval(f, known, value) {
                Some(true) => matched.push(i as u32),
                Some(false) => {}
                None => need |= self.filter_groups[i] & !known,
            }
        }
        for &id in ids {
            value[id as usize] = false;
        }
        if need == 0 {
            Ok(matched.into())
        } else {
            Err(need)
        }
    }

    /// Kleene's three-valued evaluation: `None` when the result depends on
    /// a test outside `known`.
    fn eval(&self, f: &Formula, known: u8, value: &[bool]) -> Option<bool> {
        match f {
            Formula::Const(b) => Some(*b),
            Formula::Test(id) => {
                let g = self.test_group[*id as usize];
                (known & (1 << g) != 0).then(|| value[*id as usize])
            }
            Formula::Not(x) => self.eval(x, known, value).map(|b| !b),
            Formula::And(xs) | Formula::Or(xs) => {
                let is_and = matches!(f, Formula::And(_));
                let mut unknown = false;
                for x in xs {
                    match self.eval(x, known, value) {
                        Some(b) if b != is_and => return Some(b),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                (!unknown).then_some(is_and)
            }
        }
    }
}

/// The class of `v`'s value of the byte field `b` (0, the class of no
/// passing test, for a value the index has no row for).
#[inline(always)]
fn byte_class(b: &ByteIndex, v: &RecordView<'_>) -> Class {
    b.class.get(num(v, b.field) as usize).copied().unwrap_or(0)
}

/// Keeps a record's matches `m`, decided on a full-memo miss, under `key`
/// in the full memo: their [`List`].
#[cold]
fn remember_full(s: &mut Scratch, key: &[u32], m: Box<[u32]>) -> List {
    let at = s.fulls.len() as u32;
    s.stored += m.len();
    s.full.insert(key, at);
    s.fulls.push(m);
    s.grew = true;
    FULL | at
}
