//! Many filters to one plan: every distinct test once, each answered the
//! cheapest way for all the filters that use it (see
//! [`FilterSet`](super::FilterSet) for the model).
//!
//! 1. **Lower** every filter with the single-filter compiler into one set
//!    of shared constant pools ([`lower_shared`]): strings and substring
//!    finders are interned, so the same comparison in two filters is the
//!    same [`Test`].
//! 2. **Number** the distinct tests: a filter becomes a [`Formula`] over
//!    test ids.
//! 3. **Index** the tests by how they are answered, one structure per field
//!    answering all of that field's tests at once:
//!    - byte fields (`level`, `kind`, `system`): a 256-row table, the row of
//!      the record's byte lists the tests that pass;
//!    - text fields, `==` / `in` / the exact half of `under`: a hash map from
//!      the value to the tests it passes (one probe);
//!    - `starts_with` / the `sep` half of `under`: a trie of the prefixes,
//!      walked once along the value; `ends_with`: a trie of the reversed
//!      suffixes;
//!    - `contains`: one Aho-Corasick automaton per field over all its
//!      needles, so the value is scanned once, behind Teddy over the
//!      needles (a few dozen) or over their distinct first bytes (many
//!      needles sharing a few prefixes: `code 1`, `code 2`, ...);
//!    - `field.<name> == <integer or string>`: per name, a hash map from the
//!      value to the tests;
//!    - everything else (orderings on text, numbers other than bytes,
//!      `key`, the other typed-field tests) is evaluated one by one by the
//!      VM's own test code.
//! 4. **Group** the tests by cost ([`Group`]): the cheap ones are answered
//!    for every record, the message, typed fields and the key only when a
//!    filter still undecided by the cheap ones needs them.

use super::compile::{lower_shared, Node, SharedPools};
use super::error::SetError;
use super::program::{mask, Const, FieldTest, NumField, Program, StrField, StrTest, Test};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use foldhash::fast::FixedState;
use std::collections::HashMap;

/// Longest total length of one field's `contains` needles (bytes): bounds
/// the automaton's size and build time.
pub(super) const MAX_NEEDLE_BYTES: usize = 1 << 20;
/// A field's needles are searched with Teddy (SIMD) when there are at most
/// this many...
pub(super) const PACKED_MAX_NEEDLES: usize = 64;
/// ... of at most this many bytes together (a candidate position is
/// verified against at most that many bytes); else with an automaton.
pub(super) const PACKED_MAX_BYTES: usize = 512;
/// Most filters in a set.
pub(super) const MAX_FILTERS: usize = 1 << 16;
/// Longest total source of a set's filters (bytes): bounds the tries, maps
/// and formulas built from them.
pub(super) const MAX_SET_SOURCE: usize = 16 << 20;

/// When a test is answered, cheapest first. A group's bit in a mask is
/// `1 << group`.
pub(super) type Group = u8;
/// Bytes, numbers, text fields other than the message: every record.
pub(super) const CHEAP: Group = 0;
/// The message (a deferred one decided by its call site, `set_sites.rs`,
/// or rendered once).
pub(super) const MESSAGE: Group = 1;
/// Typed fields (`field.<name>`): one pass over the record's fields.
pub(super) const FIELDS: Group = 2;
/// The key `"<n>@<task>"`.
pub(super) const KEY: Group = 3;
/// How many groups there are.
pub(super) const GROUPS: Group = 4;

/// A filter as a boolean formula over test ids.
#[derive(Debug, Clone)]
pub(super) enum Formula {
    Const(bool),
    Test(u32),
    Not(Box<Formula>),
    And(Vec<Formula>),
    Or(Vec<Formula>),
}

/// Test ids, as stored in the indexes.
pub(super) type Ids = Box<[u32]>;

/// The map type of the indexes: their keys are the operator's constants
/// and a record only probes them, so a fast unkeyed hash is safe.
pub(super) type Map<K, V> = HashMap<K, V, FixedState>;

/// A trie of byte strings; a node lists the tests whose string ends there.
#[derive(Debug, Default)]
pub(super) struct Trie {
    /// Node 0 is the root (the empty string); empty when there is nothing.
    pub nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
pub(super) struct TrieNode {
    /// Sorted by byte.
    pub edges: Vec<(u8, u32)>,
    pub ids: Vec<u32>,
}

impl Trie {
    fn insert(&mut self, key: impl Iterator<Item = u8>, id: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for b in key {
            let next = self.nodes.len() as u32;
            let edges = &mut self.nodes[at].edges;
            at = match edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => edges[i].1 as usize,
                Err(i) => {
                    edges.insert(i, (b, next));
                    self.nodes.push(TrieNode::default());
                    next as usize
                }
            };
        }
        self.nodes[at].ids.push(id);
    }
}

/// Everything asked of one text field.
#[derive(Debug)]
pub(super) struct TextIndex {
    pub field: StrField,
    /// Value to the `==`, `in` and exact-`under` tests it passes.
    pub eq: Map<Box<[u8]>, Ids>,
    pub prefixes: Trie,
    /// Keyed by the reversed suffixes.
    pub suffixes: Trie,
    /// The automata over the `contains` needles, and each pattern's tests.
    pub contains: Option<Needles>,
}

/// A field's `contains` needles. Most values contain none: `any` says so
/// in one fast pass (or finds where the first could start). When a value
/// has a match, the other needles are found from there: by `any` again
/// from one byte past each match start when that finds them all (Teddy,
/// and no needle a prefix of another, so at most one needle starts at a
/// position), else by `all`, which reports every needle, overlapping ones
/// included.
#[derive(Debug)]
pub(super) struct Needles {
    pub any: AnyNeedle,
    pub all: AhoCorasick,
    /// `any` is Teddy and no needle is a prefix of another.
    pub restart: bool,
    /// Each pattern's tests.
    pub ids: Vec<Ids>,
    /// Each pattern's bytes.
    pub needles: Vec<Box<[u8]>>,
}

/// Finds the leftmost match of any needle.
#[derive(Debug)]
pub(super) enum AnyNeedle {
    /// Up to a few dozen short needles: Teddy, SIMD over 16 or 32 bytes at
    /// a time (aho-corasick's own choice of prefilter goes by the needles'
    /// first bytes, common letters in text).
    Packed(aho_corasick::packed::Searcher),
    /// More needles whose first few bytes take few distinct values (`code
    /// 1`, `code 2`, ... all start `code`): Teddy over those distinct
    /// prefixes. A match is only a candidate (where the first needle may
    /// start: no needle starts before it); its pattern index means
    /// nothing.
    Prefixes(aho_corasick::packed::Searcher),
    /// Else a leftmost automaton (with aho-corasick's prefilters).
    Automaton(AhoCorasick),
}

/// The longest prefix [`AnyNeedle::Prefixes`] searches for.
const PREFIX: usize = 4;

/// Teddy over `patterns` (at most [`PACKED_MAX_NEEDLES`] of at most
/// [`PACKED_MAX_BYTES`] bytes together, none empty), or `None`.
fn packed(patterns: &[&[u8]]) -> Option<aho_corasick::packed::Searcher> {
    let bytes: usize = patterns.iter().map(|p| p.len()).sum();
    if patterns.len() > PACKED_MAX_NEEDLES
        || bytes > PACKED_MAX_BYTES
        || patterns.iter().any(|p| p.is_empty())
    {
        return None;
    }
    aho_corasick::packed::Config::new()
        .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
        .builder()
        .extend(patterns)
        .build()
}

/// Teddy over the needles' distinct prefixes, the longest (at most
/// [`PREFIX`] bytes) that Teddy takes, or `None`.
fn prefixes(needles: &[Box<[u8]>]) -> Option<aho_corasick::packed::Searcher> {
    (1..=PREFIX).rev().find_map(|n| {
        let mut p: Vec<&[u8]> = needles.iter().map(|x| &x[..x.len().min(n)]).collect();
        p.sort_unstable();
        p.dedup();
        packed(&p)
    })
}

impl AnyNeedle {
    /// The leftmost match starting at `from` or later: where it starts,
    /// and which needle (the first given, of those starting there).
    #[inline]
    pub fn find(&self, s: &[u8], from: usize) -> Option<(usize, usize)> {
        let m = match self {
            AnyNeedle::Packed(p) | AnyNeedle::Prefixes(p) => p.find_in(
                s,
                aho_corasick::Span {
                    start: from,
                    end: s.len(),
                },
            )?,
            AnyNeedle::Automaton(a) => a.find(aho_corasick::Input::new(s).span(from..s.len()))?,
        };
        Some((m.start(), m.pattern().as_usize()))
    }
}

/// The `==` tests on one typed field, by the value they accept.
#[derive(Debug, Default)]
pub(super) struct FieldEq {
    /// Integers, and the integral floats they equal.
    pub ints: Map<i128, Ids>,
    /// A 256-bit filter of `ints`' keys ([`int_bit`]): most values are
    /// none of them, and one bit says so without hashing.
    pub int_bits: [u64; 4],
    /// Strings, by their bytes.
    pub strs: Map<Box<[u8]>, Ids>,
    /// A 256-bit filter of `strs`' keys by length and last byte
    /// ([`str_bit`]): a value of another length or ending says it is none
    /// of them without hashing its bytes.
    pub str_bits: [u64; 4],
}

/// The bit of `s` in [`FieldEq::str_bits`]: of its length and last byte.
#[inline(always)]
pub(super) fn str_bit(s: &[u8]) -> usize {
    let last = s.last().map_or(0, |&b| u64::from(b));
    let x = (s.len() as u64) ^ (last << 32);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// The bit of `x` in [`FieldEq::int_bits`].
#[inline(always)]
pub(super) fn int_bit(x: i128) -> usize {
    let folded = (x as u64) ^ ((x >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

impl FieldEq {
    /// The tests an integer passes.
    #[inline]
    pub fn int(&self, x: i128) -> Option<&Ids> {
        let b = int_bit(x);
        if self.int_bits[b >> 6] >> (b & 63) & 1 == 0 {
            return None;
        }
        self.ints.get(&x)
    }

    /// The tests a string passes.
    #[inline]
    pub fn str(&self, s: &[u8]) -> Option<&Ids> {
        let b = str_bit(s);
        if self.str_bits[b >> 6] >> (b & 63) & 1 == 0 {
            return None;
        }
        self.strs.get(s)
    }
}

/// Everything asked of one byte field (`level`, `kind`, `system`): its
/// 256 values fall into a few *classes*, the distinct sets of its tests
/// that pass.
#[derive(Debug)]
pub(super) struct ByteIndex {
    pub field: NumField,
    /// Per value, its class.
    pub class: Box<[u32]>,
    /// Per class, the tests that pass; class 0 is the empty set.
    pub classes: Vec<Ids>,
}

impl ByteIndex {
    /// Groups the 256 rows of passing tests into classes.
    fn new(field: NumField, rows: Vec<Vec<u32>>) -> ByteIndex {
        let mut at: Map<Vec<u32>, u32> = Map::default();
        at.insert(Vec::new(), 0);
        let mut classes: Vec<Ids> = vec![Box::new([])];
        let class = rows
            .into_iter()
            .map(|row| {
                let next = classes.len() as u32;
                *at.entry(row).or_insert_with_key(|row| {
                    classes.push(row[..].into());
                    next
                })
            })
            .collect();
        ByteIndex {
            field,
            class,
            classes,
        }
    }
}

/// Everything asked of typed fields: per name, `==` by hash.
#[derive(Debug, Default)]
pub(super) struct FieldIndex {
    /// Field name (its bytes) to its slot in `eq`.
    pub names: Map<Box<[u8]>, u32>,
    /// The same as a list, searched instead of the map when short.
    pub list: Vec<(Box<[u8]>, u32)>,
    pub eq: Vec<FieldEq>,
}

/// Up to this many names, a record's field names are compared with the
/// list rather than hashed.
const FEW_NAMES: usize = 8;

impl FieldIndex {
    /// The slot of the field named `name`.
    #[inline]
    pub fn slot(&self, name: &[u8]) -> Option<u32> {
        if self.list.len() <= FEW_NAMES {
            self.list
                .iter()
                .find(|(n, _)| crate::bytes::bytes_eq(n, name))
                .map(|(_, slot)| *slot)
        } else {
            self.names.get(name).copied()
        }
    }
}

/// The compiled set.
#[derive(Debug)]
pub(super) struct Plan {
    /// The shared pools, for the tests evaluated one by one.
    pub prog: Program,
    pub formulas: Vec<Formula>,
    /// Per filter, the groups its tests are in (bit `1 << group`).
    pub filter_groups: Vec<u8>,
    /// Per test id, its group.
    pub test_group: Vec<Group>,
    /// Per byte field, its values' classes.
    pub bytes: Vec<ByteIndex>,
    /// The text fields other than the message (group [`CHEAP`]).
    pub texts: Vec<TextIndex>,
    /// The message's (group [`MESSAGE`]).
    pub message: Option<TextIndex>,
    /// Group [`FIELDS`].
    pub fields: FieldIndex,
    /// Tests evaluated one by one, per group.
    pub single: [Vec<(u32, Test)>; GROUPS as usize],
    /// Most patterns of one automaton, and typed-field names (scratch
    /// sizes).
    pub max_stamps: usize,
    /// The expensive groups every record evaluates, when some filter
    /// without cheap tests needs each expensive group of the set (then
    /// the cheap key cannot spare any group, and a record takes one memo
    /// probe instead of two, `set_vm.rs`); 0 otherwise.
    pub one_probe: u8,
    /// No test of an expensive group runs one by one (`single` holds
    /// only cheap ones).
    pub no_singles: bool,
}

impl Plan {
    /// How many distinct tests the filters have.
    pub fn tests(&self) -> usize {
        self.test_group.len()
    }
}

/// What the indexes are built from.
#[derive(Default)]
struct Builder {
    ids: Map<Test, u32>,
    tests: Vec<Test>,
}

impl Builder {
    fn formula(&mut self, n: &Node) -> Formula {
        match n {
            Node::Const(b) => Formula::Const(*b),
            Node::Leaf(t) => {
                let next = self.tests.len() as u32;
                let id = *self.ids.entry(*t).or_insert(next);
                if id == next {
                    self.tests.push(*t);
                }
                Formula::Test(id)
            }
            Node::Not(x) => Formula::Not(Box::new(self.formula(x))),
            Node::And(xs) => Formula::And(xs.iter().map(|x| self.formula(x)).collect()),
            Node::Or(xs) => Formula::Or(xs.iter().map(|x| self.formula(x)).collect()),
        }
    }
}

fn groups_of(f: &Formula, test_group: &[Group]) -> u8 {
    match f {
        Formula::Const(_) => 0,
        Formula::Test(id) => 1 << test_group[*id as usize],
        Formula::Not(x) => groups_of(x, test_group),
        Formula::And(xs) | Formula::Or(xs) => {
            xs.iter().fold(0, |m, x| m | groups_of(x, test_group))
        }
    }
}

/// Text tests of one field, before the indexes are built.
struct TextParts {
    eq: Map<Box<[u8]>, Vec<u32>>,
    prefixes: Trie,
    suffixes: Trie,
    needles: Vec<Box<[u8]>>,
    needle_ids: Vec<Vec<u32>>,
    needle_at: Map<Box<[u8]>, usize>,
}

impl TextParts {
    fn new() -> TextParts {
        TextParts {
            eq: Map::default(),
            prefixes: Trie::default(),
            suffixes: Trie::default(),
            needles: Vec::new(),
            needle_ids: Vec::new(),
            needle_at: Map::default(),
        }
    }

    fn build(self, field: StrField) -> Result<TextIndex, SetError> {
        let bytes: usize = self.needles.iter().map(|n| n.len()).sum();
        if bytes > MAX_NEEDLE_BYTES {
            return Err(SetError::TooLarge(format!(
                "the `contains` needles on `{}` add up to {bytes} bytes; at most \
                 {MAX_NEEDLE_BYTES}: split the rules over several brokers or use fewer, \
                 shorter needles",
                field_name(field)
            )));
        }
        let contains = if self.needles.is_empty() {
            None
        } else {
            let build = |kind| {
                AhoCorasickBuilder::new()
                    .match_kind(kind)
                    .build(&self.needles)
                    .map_err(|e| {
                        SetError::TooLarge(format!(
                            "the `contains` needles on `{}` do not fit one automaton: {e}",
                            field_name(field)
                        ))
                    })
            };
            // Teddy verifies a candidate against the needles of its
            // buckets: bounded by their total size, kept small.
            let all: Vec<&[u8]> = self.needles.iter().map(|n| &n[..]).collect();
            let any = match packed(&all) {
                Some(p) => AnyNeedle::Packed(p),
                None => match prefixes(&self.needles) {
                    Some(p) => AnyNeedle::Prefixes(p),
                    None => AnyNeedle::Automaton(build(MatchKind::LeftmostFirst)?),
                },
            };
            let mut sorted: Vec<&[u8]> = self.needles.iter().map(|n| &n[..]).collect();
            sorted.sort_unstable();
            // A needle that prefixes another sorts right before one it
            // prefixes.
            let prefix_free = sorted.windows(2).all(|w| !w[1].starts_with(w[0]));
            Some(Needles {
                restart: prefix_free && matches!(any, AnyNeedle::Packed(_)),
                any,
                all: build(MatchKind::Standard)?,
                ids: self.needle_ids.into_iter().map(Into::into).collect(),
                needles: self.needles,
            })
        };
        Ok(TextIndex {
            field,
            eq: self.eq.into_iter().map(|(k, v)| (k, v.into())).collect(),
            prefixes: self.prefixes,
            suffixes: self.suffixes,
            contains,
        })
    }
}

fn field_name(f: StrField) -> String {
    format!("{f:?}").to_ascii_lowercase()
}

/// Builds the plan of `sources` (already checked for count and size).
pub(super) fn plan(sources: &[&str]) -> Result<Plan, SetError> {
    let mut pools = SharedPools::default();
    let mut b = Builder::default();
    let mut formulas = Vec::with_capacity(sources.len());
    for (i, src) in sources.iter().enumerate() {
        let lowered = super::parser::parse(src).and_then(|e| lower_shared(src, &e, &mut pools));
        let node = lowered.map_err(|error| SetError::Filter { index: i, error })?;
        formulas.push(b.formula(&node));
    }
    let prog = pools.prog;

    let mut test_group = Vec::with_capacity(b.tests.len());
    let mut bytes: Vec<(NumField, Vec<Vec<u32>>)> = Vec::new();
    let mut texts: Vec<(StrField, TextParts)> = Vec::new();
    let mut fields = FieldIndex::default();
    let mut field_eq: Vec<FieldEqParts> = Vec::new();
    let mut single: [Vec<(u32, Test)>; GROUPS as usize] = Default::default();
    for (id, test) in b.tests.iter().enumerate() {
        let id = id as u32;
        let group = match *test {
            Test::Range { field, lo, hi } if field.max() == u64::from(u8::MAX) => {
                let rows = byte_rows(&mut bytes, field);
                for v in lo..=hi.min(255) {
                    rows[v as usize].push(id);
                }
                CHEAP
            }
            Test::ByteIn { field, set } => {
                let bits = prog.byte_sets[set as usize];
                let rows = byte_rows(&mut bytes, field);
                for v in 0..256usize {
                    if bits[v >> 6] >> (v & 63) & 1 == 1 {
                        rows[v].push(id);
                    }
                }
                CHEAP
            }
            Test::Range { .. } | Test::NumIn { .. } => {
                single[CHEAP as usize].push((id, *test));
                CHEAP
            }
            Test::Str { field, test: st } => {
                let group = if field == StrField::Message {
                    MESSAGE
                } else {
                    CHEAP
                };
                let parts = match texts.iter().position(|(f, _)| *f == field) {
                    Some(i) => &mut texts[i].1,
                    None => {
                        texts.push((field, TextParts::new()));
                        &mut texts.last_mut().expect("just pushed").1
                    }
                };
                let s = |i: u32| prog.strs[i as usize].as_bytes();
                match st {
                    StrTest::Eq(i) => parts.eq.entry(s(i).into()).or_default().push(id),
                    StrTest::In(set) => {
                        for v in &prog.str_sets[set as usize] {
                            parts.eq.entry(v.as_bytes().into()).or_default().push(id);
                        }
                    }
                    StrTest::StartsWith(i) => parts.prefixes.insert(s(i).iter().copied(), id),
                    StrTest::EndsWith(i) => parts.suffixes.insert(s(i).iter().rev().copied(), id),
                    StrTest::Under(i, sep) => {
                        parts.eq.entry(s(i).into()).or_default().push(id);
                        let key = s(i).iter().chain(sep.as_str().as_bytes()).copied();
                        parts.prefixes.insert(key, id);
                    }
                    StrTest::Contains(i) => {
                        let needle: Box<[u8]> = prog.finders[i as usize].needle().into();
                        let next = parts.needles.len();
                        let at = *parts.needle_at.entry(needle.clone()).or_insert(next);
                        if at == next {
                            parts.needles.push(needle);
                            parts.needle_ids.push(Vec::new());
                        }
                        parts.needle_ids[at].push(id);
                    }
                    StrTest::Cmp(..) => single[group as usize].push((id, *test)),
                }
                group
            }
            Test::Key(_) => {
                single[KEY as usize].push((id, *test));
                KEY
            }
            Test::Field {
                name,
                test: FieldTest::Cmp(m, v),
            } if m == mask::EQ => match &prog.values[v as usize] {
                Const::Int(n) => {
                    (field_eq_slot(&mut fields, &mut field_eq, &prog.strs[name as usize]).0)
                        .entry(*n)
                        .or_default()
                        .push(id);
                    FIELDS
                }
                Const::Str(s) => {
                    (field_eq_slot(&mut fields, &mut field_eq, &prog.strs[name as usize]).1)
                        .entry(s.clone())
                        .or_default()
                        .push(id);
                    FIELDS
                }
                _ => {
                    single[FIELDS as usize].push((id, *test));
                    FIELDS
                }
            },
            Test::Field { .. } => {
                single[FIELDS as usize].push((id, *test));
                FIELDS
            }
        };
        test_group.push(group);
    }

    fields.list = fields.names.iter().map(|(n, &i)| (n.clone(), i)).collect();
    fields.eq = field_eq
        .into_iter()
        .map(|(ints, strs)| FieldEq {
            int_bits: ints.keys().fold([0; 4], |mut bits, &x| {
                let b = int_bit(x);
                bits[b >> 6] |= 1 << (b & 63);
                bits
            }),
            ints: ints.into_iter().map(|(k, v)| (k, v.into())).collect(),
            str_bits: strs.keys().fold([0; 4], |mut bits, s| {
                let b = str_bit(s.as_bytes());
                bits[b >> 6] |= 1 << (b & 63);
                bits
            }),
            strs: strs
                .into_iter()
                .map(|(k, v)| (k.into_boxed_bytes(), v.into()))
                .collect(),
        })
        .collect();
    let mut message = None;
    let mut text_indexes = Vec::new();
    for (field, parts) in texts {
        let index = parts.build(field)?;
        if field == StrField::Message {
            message = Some(index);
        } else {
            text_indexes.push(index);
        }
    }
    let max_patterns = text_indexes
        .iter()
        .chain(&message)
        .filter_map(|t| t.contains.as_ref().map(|c| c.ids.len()))
        .max()
        .unwrap_or(0);
    let filter_groups = formulas.iter().map(|f| groups_of(f, &test_group)).collect();
    let mut plan = Plan {
        prog,
        formulas,
        filter_groups,
        test_group,
        bytes: bytes
            .into_iter()
            .map(|(f, rows)| ByteIndex::new(f, rows))
            .collect(),
        texts: text_indexes,
        message,
        max_stamps: max_patterns.max(fields.eq.len()),
        fields,
        single,
        one_probe: 0,
        no_singles: false,
    };
    plan.one_probe = plan.groups_always_needed();
    plan.no_singles = plan.single[CHEAP as usize + 1..].iter().all(Vec::is_empty);
    Ok(plan)
}

fn byte_rows(bytes: &mut Vec<(NumField, Vec<Vec<u32>>)>, field: NumField) -> &mut Vec<Vec<u32>> {
    let i = match bytes.iter().position(|(f, _)| *f == field) {
        Some(i) => i,
        None => {
            bytes.push((field, vec![Vec::new(); 256]));
            bytes.len() - 1
        }
    };
    &mut bytes[i].1
}

/// The `==` maps (integers, strings) of typed field `name`.
type FieldEqParts = (Map<i128, Vec<u32>>, Map<Box<str>, Vec<u32>>);

fn field_eq_slot<'m>(
    fields: &mut FieldIndex,
    eq: &'m mut Vec<FieldEqParts>,
    name: &str,
) -> &'m mut FieldEqParts {
    let next = eq.len() as u32;
    let slot = *fields.names.entry(name.as_bytes().into()).or_insert(next);
    if slot == next {
        eq.push(Default::default());
    }
    &mut eq[slot as usize]
}
