//! Evaluates a [`Plan`] on one record: the passing tests of the cheap
//! group, then, only if a filter is still undecided, of the groups it
//! needs; the filters' results are looked up by the set of passing tests.
//!
//! The set of passing tests (sorted test ids) is the record's *signature*:
//! every filter's result is a function of it. Records of one stream have
//! few distinct signatures, so the matches are memoized per signature in a
//! bounded cache ([`Scratch`]); only a signature not seen before evaluates
//! the formulas. Two caches, one per stage:
//!
//! - the cheap signature to "these filters match" when the cheap tests
//!   decide every filter, or to "evaluate these groups" when not;
//! - the full signature (cheap plus the groups evaluated) to the matches.

use super::combine::{Formula, Group, Plan, TextIndex, Trie, CHEAP, FIELDS, GROUPS, MESSAGE};
use super::program::StrField;
use super::vm::{num, text};
use super::RecordView;
use distlog_core::record::ValueRef;
use foldhash::quality::RandomState;
use std::collections::HashMap;

/// 2^127: an integral float in `-2^127..2^127` is exactly an `i128`.
const I128_END: f64 = 1.701_411_834_604_692_3e38;

/// Most signatures cached per stage; the caches are emptied when full.
const MAX_ENTRIES: usize = 4096;
/// Most test ids stored in the caches' keys and values together.
const MAX_STORED: usize = 1 << 20;

/// What one stage's cache answers.
enum Entry {
    /// Every filter is decided: these match.
    Decided(Box<[u32]>),
    /// Evaluate these groups (bits), then look up the full signature.
    Need(u8),
}

/// Per-thread evaluation state: buffers and the signature caches of one
/// set (reset when the thread evaluates another set).
pub(super) struct Scratch {
    /// The set these caches belong to.
    pub set_id: u64,
    /// The passing test ids of the record being evaluated.
    sig: Vec<u32>,
    /// A deferred message, rendered.
    msg: String,
    /// Per automaton pattern or typed-field name: the evaluation that saw
    /// it last.
    stamps: Vec<u32>,
    epoch: u32,
    /// Per test: passes (only filled while evaluating formulas).
    value: Vec<bool>,
    cheap: HashMap<Box<[u32]>, Entry, RandomState>,
    full: HashMap<Box<[u32]>, Box<[u32]>, RandomState>,
    stored: usize,
}

impl Scratch {
    /// Empty state for the set `set_id` of plan `p`.
    pub fn new(set_id: u64, p: &Plan) -> Scratch {
        Scratch {
            set_id,
            sig: Vec::new(),
            msg: String::new(),
            stamps: vec![0; p.max_stamps],
            epoch: 0,
            value: vec![false; p.tests()],
            cheap: HashMap::default(),
            full: HashMap::default(),
            stored: 0,
        }
    }

    fn next_epoch(&mut self) -> u32 {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.epoch = 1;
        }
        self.epoch
    }

    /// Room for an entry of `words` test ids, emptying the caches when full.
    fn make_room(&mut self, words: usize) {
        if self.cheap.len() + self.full.len() >= MAX_ENTRIES || self.stored + words > MAX_STORED {
            self.cheap.clear();
            self.full.clear();
            self.stored = 0;
        }
        self.stored += words;
    }
}

/// Sorts and dedups a signature (the indexes often emit it in order).
#[inline]
fn canonical(sig: &mut Vec<u32>) {
    if !sig.windows(2).all(|w| w[0] < w[1]) {
        sig.sort_unstable();
        sig.dedup();
    }
}

/// The tests along the trie's path that `key` walks.
#[inline]
fn walk(t: &Trie, key: impl Iterator<Item = u8>, sig: &mut Vec<u32>) {
    let Some(mut node) = t.nodes.first() else {
        return;
    };
    sig.extend_from_slice(&node.ids);
    for b in key {
        match node.edges.binary_search_by_key(&b, |e| e.0) {
            Ok(i) => node = &t.nodes[node.edges[i].1 as usize],
            Err(_) => return,
        }
        sig.extend_from_slice(&node.ids);
    }
}

/// All the tests of one text field, on its value `s`.
fn text_tests(ix: &TextIndex, s: &[u8], sig: &mut Vec<u32>, stamps: &mut [u32], epoch: u32) {
    if let Some(ids) = ix.eq.get(s) {
        sig.extend_from_slice(ids);
    }
    walk(&ix.prefixes, s.iter().copied(), sig);
    walk(&ix.suffixes, s.iter().rev().copied(), sig);
    if let Some(n) = &ix.contains {
        if !n.any.is_match(s) {
            return;
        }
        let ids = &n.ids;
        let mut left = ids.len();
        for m in n.all.find_overlapping_iter(s) {
            let p = m.pattern().as_usize();
            if stamps[p] != epoch {
                stamps[p] = epoch;
                sig.extend_from_slice(&ids[p]);
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
    }
}

impl Plan {
    /// Pushes onto `out` the index of every filter `v` passes, ascending.
    pub(super) fn matching(&self, v: &RecordView<'_>, s: &mut Scratch, out: &mut Vec<u32>) {
        let mut rendered = false;
        let mut sig = std::mem::take(&mut s.sig);
        sig.clear();
        self.group(CHEAP, v, s, &mut sig, &mut rendered);
        canonical(&mut sig);
        let need = match s.cheap.get(&sig[..]) {
            Some(Entry::Decided(m)) => {
                out.extend_from_slice(m);
                s.sig = sig;
                return;
            }
            Some(Entry::Need(need)) => *need,
            None => {
                let entry = match self.decide(&sig, 1 << CHEAP, &mut s.value) {
                    Ok(m) => {
                        out.extend_from_slice(&m);
                        Entry::Decided(m)
                    }
                    Err(need) => Entry::Need(need),
                };
                let words = sig.len()
                    + if let Entry::Decided(m) = &entry {
                        m.len()
                    } else {
                        0
                    };
                s.make_room(words);
                let need = match &entry {
                    Entry::Decided(_) => None,
                    Entry::Need(n) => Some(*n),
                };
                s.cheap.insert(sig[..].into(), entry);
                match need {
                    Some(n) => n,
                    None => {
                        s.sig = sig;
                        return;
                    }
                }
            }
        };
        for g in 1..GROUPS {
            if need & (1 << g) != 0 {
                self.group(g, v, s, &mut sig, &mut rendered);
            }
        }
        canonical(&mut sig);
        match s.full.get(&sig[..]) {
            Some(m) => out.extend_from_slice(m),
            None => {
                let known = (1 << CHEAP) | need;
                // Every filter the unevaluated groups could still change
                // was decided by the cheap ones.
                let m = self
                    .decide(&sig, known, &mut s.value)
                    .unwrap_or_else(|_| Box::new([]));
                out.extend_from_slice(&m);
                s.make_room(sig.len() + m.len());
                s.full.insert(sig[..].into(), m);
            }
        }
        s.sig = sig;
    }

    /// Adds the passing tests of group `g` to `sig`.
    fn group(
        &self,
        g: Group,
        v: &RecordView<'_>,
        s: &mut Scratch,
        sig: &mut Vec<u32>,
        rendered: &mut bool,
    ) {
        match g {
            CHEAP => {
                for (field, rows) in &self.bytes {
                    let x = num(v, *field);
                    if let Some(ids) = rows.get(x as usize) {
                        sig.extend_from_slice(ids);
                    }
                }
                for ix in &self.texts {
                    let e = s.next_epoch();
                    text_tests(ix, text(v, ix.field).as_bytes(), sig, &mut s.stamps, e);
                }
            }
            MESSAGE => {
                if let Some(ix) = &self.message {
                    let e = s.next_epoch();
                    let r = v.record;
                    if r.format().is_empty() {
                        text_tests(ix, r.message().as_bytes(), sig, &mut s.stamps, e);
                    } else {
                        s.msg.clear();
                        r.write_message(&mut s.msg);
                        text_tests(ix, s.msg.as_bytes(), sig, &mut s.stamps, e);
                        if s.msg.capacity() > 64 * 1024 {
                            s.msg = String::new();
                        }
                    }
                    debug_assert_eq!(ix.field, StrField::Message);
                }
            }
            FIELDS if !self.fields.eq.is_empty() => {
                let e = s.next_epoch();
                for (k, val) in v.record.fields() {
                    let Some(&slot) = self.fields.names.get(k) else {
                        continue;
                    };
                    // The first field of a name is the one compared.
                    if std::mem::replace(&mut s.stamps[slot as usize], e) == e {
                        continue;
                    }
                    let eq = &self.fields.eq[slot as usize];
                    let ids = match val {
                        ValueRef::I64(x) => eq.ints.get(&i128::from(x)),
                        ValueRef::U64(x) => eq.ints.get(&i128::from(x)),
                        ValueRef::F64(x)
                            if x.fract() == 0.0 && (-I128_END..I128_END).contains(&x) =>
                        {
                            eq.ints.get(&(x as i128))
                        }
                        ValueRef::Str(t) => eq.strs.get(t),
                        _ => None,
                    };
                    if let Some(ids) = ids {
                        sig.extend_from_slice(ids);
                    }
                }
            }
            _ => {}
        }
        for (id, test) in &self.single[g as usize] {
            if self.prog.test(test, v, rendered) {
                sig.push(*id);
            }
        }
    }

    /// The filters that match given the passing tests `sig` of the groups
    /// in `known`; `Err(groups)` when some filter needs more groups.
    fn decide(&self, sig: &[u32], known: u8, value: &mut [bool]) -> Result<Box<[u32]>, u8> {
        for &id in sig {
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
        for &id in sig {
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
