//! Many filters evaluated together: [`FilterSet`] (its docs give the
//! model and the bounds).

use super::combine::{self, Plan, MAX_FILTERS, MAX_SET_SOURCE};
use super::error::SetError;
use super::set_vm::Scratch;
use super::{Filter, RecordView};
use distlog_core::wire::ArchivedWireBatch;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Many filters compiled together; tells which of them a record passes.
/// Cheap to clone (shared), `Send` and `Sync`. Each filter's result is
/// exactly [`Filter::matches`] of that filter alone.
///
/// ```
/// use distlog_filter::FilterSet;
///
/// let set = FilterSet::new(&[
///     r#"level >= warn and target starts_with "db::""#,
///     r#"level >= warn and message contains "timeout""#,
///     r#"target == "http::server""#,
/// ])?;
/// assert_eq!(set.len(), 3);
/// assert_eq!(set.tests(), 4, "`level >= warn` is one test for both filters");
/// # Ok::<(), distlog_filter::SetError>(())
/// ```
///
/// # Model
///
/// Evaluating n filters one by one costs n programs per record. A broker
/// with hundreds of rules spends most of that on the same questions asked
/// again (`level >= warn` in forty rules) or on questions with one answer
/// among many (`target == "a"`, `target == "b"`, ... : at most one passes).
/// A set asks each question once, and asks a field all its questions at
/// once:
///
/// 1. Every filter is lowered with the single-filter compiler; the
///    comparisons become *tests*, deduplicated across filters, and each
///    filter a boolean formula over test ids.
/// 2. The tests are indexed per field (`combine.rs`): a 256-row table for
///    each byte field (`level`, `kind`, `system`: one lookup answers every
///    level test of every filter), a hash map of the `==`/`in` values of a
///    text field (one probe), a trie of its `starts_with`/`under` prefixes
///    and one of its `ends_with` suffixes (one walk each), one Aho-Corasick
///    automaton over its `contains` needles (one scan), a hash map per
///    typed field name of its `==` values. Other tests (orderings on text,
///    `pid`, `time`, `key`, other typed-field tests) run one by one.
/// 3. Per record (`set_vm.rs`), by *classes*: a field's class on a record
///    is the set of its tests that pass, and every filter's result is a
///    function of the classes. The byte fields' classes are table lookups;
///    a text field's value seen before is one hash and one compare in a
///    per-thread value cache (only a new value walks the indexes). That
///    short tuple of classes, the record's cheap key, is memoized per
///    thread: either every filter is decided, or the entry names the
///    groups still needed (the message, scanned once, or for a deferred
///    one decided by its call site's format without rendering it,
///    `set_sites.rs`; the typed fields, one pass over the still-encoded
///    values, `set_fields.rs`; the key) and the matches when none of
///    their tests passes,
///    the usual case; otherwise the passing tests of those groups (a
///    handful) key a second memo.
///
/// So a record costs a lookup per field tested and one or two probes of
/// small keys, whatever the number of filters, plus the expensive groups
/// only when needed; the formulas run only for a key not seen before.
///
/// # Bounds
///
/// Filters come from the operator's config; records are untrusted. At most
/// 65,536 filters of at most 16 MiB of source together, and per field at
/// most 1 MiB of `contains` needles: [`FilterSet::new`] refuses more, with
/// the reason. One record then costs at most:
///
/// - O(size of its text fields x (1 + the distinct lengths of the needles
///   of the field)) for the automata (an overlapping scan reports at most
///   one match per needle length at each position; each needle's tests are
///   added once), plus the prefix and suffix walks (O(longest constant));
///   a field with at most 64 needles of at most 512 bytes together, or
///   whose needles' distinct prefixes (of at most 4 bytes) are, is
///   searched with Teddy first, whose candidate positions cost at most
///   those 512 bytes of compares each;
/// - O(its typed fields) hash probes, and the one-by-one tests, each
///   bounded as in a single filter;
/// - a deferred message of a format not in the thread's 64-format cache:
///   O(format + the needles' bytes) plus at most 2^18 automaton steps to
///   analyse it (formats of at most 1 KiB; longer ones are rendered), then
///   O(its string arguments) per record; a message rendered costs as its
///   text above;
/// - O(fields tested + passing tests of the expensive groups) for the
///   memo keys;
/// - on a key not in the memo, O(total size of the formulas).
///
/// A stream crafted for new keys thus costs at most as much as evaluating
/// every filter alone, plus the indexes. The memo tables keep at most
/// 4,096 entries and 1 Mi test ids per thread, and are emptied when full;
/// each text field's value cache has 256 slots of at most 64 bytes, the
/// call-site cache 64 formats of at most 1 KiB.
#[derive(Clone)]
pub struct FilterSet {
    inner: Arc<SetInner>,
}

struct SetInner {
    /// Tells this set's per-thread caches from another's.
    id: u64,
    sources: Vec<Box<str>>,
    plan: Plan,
}

/// Set ids: never reused in a process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

impl FilterSet {
    /// Compiles `sources` together. Errors name the filter (its index) and
    /// the position in it, or the bound exceeded ([`SetError`]).
    pub fn new<S: AsRef<str>>(sources: &[S]) -> Result<FilterSet, SetError> {
        if sources.len() > MAX_FILTERS {
            return Err(SetError::TooLarge(format!(
                "{} filters; a set holds at most {MAX_FILTERS}",
                sources.len()
            )));
        }
        let total: usize = sources.iter().map(|s| s.as_ref().len()).sum();
        if total > MAX_SET_SOURCE {
            return Err(SetError::TooLarge(format!(
                "the filters' sources add up to {total} bytes; a set takes at most \
                 {MAX_SET_SOURCE}"
            )));
        }
        let srcs: Vec<&str> = sources.iter().map(AsRef::as_ref).collect();
        let plan = combine::plan(&srcs)?;
        Ok(FilterSet {
            inner: Arc::new(SetInner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                sources: srcs.into_iter().map(Into::into).collect(),
                plan,
            }),
        })
    }

    /// The set of these compiled filters' sources.
    pub fn from_filters(filters: &[Filter]) -> Result<FilterSet, SetError> {
        let sources: Vec<&str> = filters.iter().map(Filter::source).collect();
        FilterSet::new(&sources)
    }

    /// How many filters.
    pub fn len(&self) -> usize {
        self.inner.sources.len()
    }

    /// Whether the set has no filter.
    pub fn is_empty(&self) -> bool {
        self.inner.sources.is_empty()
    }

    /// Filter `i`'s source. Panics if `i >= len()`.
    pub fn source(&self, i: usize) -> &str {
        &self.inner.sources[i]
    }

    /// How many distinct tests the filters have together (a test shared by
    /// several filters counts once).
    pub fn tests(&self) -> usize {
        self.inner.plan.tests()
    }

    /// Whether a record takes one memo probe (`Plan::one_probe`).
    #[cfg(test)]
    pub(crate) fn one_probe(&self) -> bool {
        self.inner.plan.one_probe != 0
    }

    /// Whether a batch's sites keep lists (`Plan::site_lists`).
    #[cfg(test)]
    pub(crate) fn site_lists(&self) -> bool {
        self.inner.plan.site_lists()
    }

    /// Clears `out`, then pushes the index of every filter that `view`
    /// passes, ascending. Allocates nothing once the thread's memo tables
    /// know the record's classes (see [`FilterSet`]).
    pub fn matching(&self, view: &RecordView<'_>, out: &mut Vec<u32>) {
        out.clear();
        // One copy of the memoized list, not a push per match (few
        // matches, the usual case with few filters: pushes, no memcpy).
        self.with_matches(view, |m| match m {
            [] => {}
            [a] => out.push(*a),
            _ => out.extend_from_slice(m),
        });
    }

    /// Calls `f` with the index of every filter that `view` passes,
    /// ascending: [`matching`](Self::matching) without the vector.
    pub fn for_each_matching(&self, view: &RecordView<'_>, mut f: impl FnMut(u32)) {
        self.with_matches(view, |m| m.iter().for_each(|&i| f(i)));
    }

    /// Calls `f` once with the indexes of the filters `view` passes,
    /// ascending, as one slice (the thread's memoized list: no copy and
    /// no call per match, for callers that look at every match).
    ///
    /// ```
    /// use distlog_core::record::{level, Record};
    /// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
    /// use distlog_filter::{FilterSet, RecordView};
    ///
    /// let set = FilterSet::new(&["level >= warn", "level >= error", "level == info"])?;
    /// let batch = Batch {
    ///     records: vec![Record { level: level::ERROR, ..Record::default() }],
    ///     ..Batch::default()
    /// };
    /// let body = encode_batch_to_vec(&batch);
    /// let b = access_batch(&body).unwrap();
    /// let rec = b.records().next().unwrap();
    /// let mut seen = Vec::new();
    /// set.with_matches(&RecordView::new(b'P', b.sender(), rec), |m| seen.extend_from_slice(m));
    /// assert_eq!(seen, [0, 1]);
    /// # Ok::<(), distlog_filter::SetError>(())
    /// ```
    pub fn with_matches(&self, view: &RecordView<'_>, mut f: impl FnMut(&[u32])) {
        let inner = &*self.inner;
        let done = SCRATCH.try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                // Re-entered (from `f`): no memo tables.
                return false;
            };
            let s = match &mut *slot {
                Some(s) if s.set_id == inner.id => s,
                other => other.insert(Scratch::new(inner.id, &inner.plan)),
            };
            inner.plan.matching(view, s, None, &mut f);
            true
        });
        if done != Ok(true) {
            let mut s = Scratch::new(inner.id, &inner.plan);
            inner.plan.matching(view, &mut s, None, &mut f);
        }
    }
}

impl FilterSet {
    /// A matcher holding this thread's memo tables of the set for as long
    /// as it lives (they go back to the thread when it is dropped): for a
    /// caller that evaluates a batch of records, it takes the tables once
    /// instead of once per record.
    ///
    /// ```
    /// use distlog_core::record::{level, Record};
    /// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
    /// use distlog_filter::{FilterSet, RecordView};
    ///
    /// let set = FilterSet::new(&["level >= warn", "level == info"])?;
    /// let batch = Batch {
    ///     records: [level::ERROR, level::INFO, level::DEBUG]
    ///         .into_iter()
    ///         .zip(0..)
    ///         .map(|(level, seq)| Record { seq, level, ..Record::default() })
    ///         .collect(),
    ///     ..Batch::default()
    /// };
    /// let body = encode_batch_to_vec(&batch);
    /// let b = access_batch(&body).unwrap();
    /// let mut matcher = set.matcher();
    /// let mut seen = Vec::new();
    /// for r in b.records() {
    ///     matcher.with_matches(&RecordView::new(b'P', b.sender(), r), |m| seen.push(m.to_vec()));
    /// }
    /// assert_eq!(seen, [vec![0], vec![1], vec![]]);
    /// # Ok::<(), distlog_filter::SetError>(())
    /// ```
    pub fn matcher(&self) -> Matcher<'_> {
        let inner = &*self.inner;
        // The thread's tables when they are this set's and not held by
        // another matcher; else fresh ones (kept for the thread on drop).
        let kept = SCRATCH
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .ok()
                    .and_then(|mut slot| slot.take())
                    .filter(|s| s.set_id == inner.id)
            })
            .ok()
            .flatten();
        Matcher {
            inner,
            scratch: Some(kept.unwrap_or_else(|| Scratch::new(inner.id, &inner.plan))),
            batch: None,
        }
    }

    /// [`matcher`](Self::matcher) for the records of `batch`: what their
    /// call sites and sender have in common (the classes of their targets
    /// and hosts, their format's verdicts, which typed fields their keys
    /// name) is worked out once per site of the batch instead of per
    /// record. The results are [`with_matches`](Self::with_matches)'
    /// whatever the record; records of other batches take the per-record
    /// path.
    ///
    /// ```
    /// use distlog_core::record::{level, Record};
    /// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
    /// use distlog_filter::{FilterSet, RecordView};
    ///
    /// let set = FilterSet::new(&[r#"target == "db""#, "level >= warn"])?;
    /// let batch = Batch {
    ///     records: [("db", level::INFO), ("http", level::ERROR)]
    ///         .into_iter()
    ///         .zip(0..)
    ///         .map(|((target, level), seq)| Record {
    ///             seq,
    ///             target: target.into(),
    ///             level,
    ///             ..Record::default()
    ///         })
    ///         .collect(),
    ///     ..Batch::default()
    /// };
    /// let body = encode_batch_to_vec(&batch);
    /// let b = access_batch(&body).unwrap();
    /// let mut matcher = set.matcher_in(b);
    /// let mut seen = Vec::new();
    /// for r in b.records() {
    ///     matcher.with_matches(&RecordView::new(b'P', b.sender(), r), |m| seen.push(m.to_vec()));
    /// }
    /// assert_eq!(seen, [vec![0], vec![1]]);
    /// # Ok::<(), distlog_filter::SetError>(())
    /// ```
    pub fn matcher_in<'a>(&'a self, batch: &'a ArchivedWireBatch) -> Matcher<'a> {
        let mut m = self.matcher();
        if let Some(s) = &mut m.scratch {
            // Another batch's entries (`set_batch.rs`) name other sites.
            s.batch.clear();
        }
        m.batch = Some(batch);
        m
    }
}

/// A [`FilterSet`] with this thread's memo tables taken out
/// ([`FilterSet::matcher`]); dropping it gives them back.
pub struct Matcher<'a> {
    inner: &'a SetInner,
    /// Always `Some` until dropped.
    scratch: Option<Scratch>,
    /// The batch whose per-site entries the scratch keeps.
    batch: Option<&'a ArchivedWireBatch>,
}

impl Matcher<'_> {
    /// [`FilterSet::with_matches`], with the tables this matcher holds.
    #[inline]
    pub fn with_matches(&mut self, view: &RecordView<'_>, mut f: impl FnMut(&[u32])) {
        if let Some(s) = &mut self.scratch {
            let site = self.batch.and_then(|b| view.record.site_in(b));
            self.inner.plan.matching(view, s, site, &mut f);
        }
    }
}

impl FilterSet {
    /// A [`matcher_in`](Self::matcher_in) `batch` for a caller that wants,
    /// per record, the union of `masks` over the filters it passes (filter
    /// `i`'s mask is `masks[i]`, 0 past the end) and, per filter, how many
    /// records passed it: [`Router::route`] works the union out once per
    /// distinct list of matches and counts records per list, so a record
    /// costs no work per match; [`Router::add_hits`] adds the counts up.
    ///
    /// ```
    /// use distlog_core::record::{level, Record};
    /// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
    /// use distlog_filter::{FilterSet, RecordView};
    ///
    /// let set = FilterSet::new(&["level >= warn", "level >= error", "level == info"])?;
    /// let batch = Batch {
    ///     records: [level::ERROR, level::INFO, level::DEBUG, level::WARN]
    ///         .into_iter()
    ///         .zip(0..)
    ///         .map(|(level, seq)| Record { seq, level, ..Record::default() })
    ///         .collect(),
    ///     ..Batch::default()
    /// };
    /// let body = encode_batch_to_vec(&batch);
    /// let b = access_batch(&body).unwrap();
    /// let mut router = set.router(b, &[0b01, 0b10, 0b100]);
    /// let routes: Vec<Option<u64>> = b
    ///     .records()
    ///     .map(|r| router.route(&RecordView::new(b'P', b.sender(), r)))
    ///     .collect();
    /// assert_eq!(routes, [Some(0b11), Some(0b100), None, Some(0b01)]);
    /// let mut hits = [0; 3];
    /// router.add_hits(&mut hits);
    /// assert_eq!(hits, [2, 1, 1]);
    /// # Ok::<(), distlog_filter::SetError>(())
    /// ```
    pub fn router<'a>(&'a self, batch: &'a ArchivedWireBatch, masks: &'a [u64]) -> Router<'a> {
        Router {
            matcher: self.matcher_in(batch),
            masks,
        }
    }
}

/// A batch's records routed by a [`FilterSet`] ([`FilterSet::router`]).
pub struct Router<'a> {
    matcher: Matcher<'a>,
    masks: &'a [u64],
}

impl Router<'_> {
    /// The union of the masks of the filters `view` passes, `None` when it
    /// passes none; the record is counted for each of them.
    #[inline]
    pub fn route(&mut self, view: &RecordView<'_>) -> Option<u64> {
        let m = &mut self.matcher;
        let s = m.scratch.as_mut()?;
        let site = m.batch.and_then(|b| view.record.site_in(b));
        let list = m.inner.plan.find(view, s, site);
        s.tally(list, self.masks)
    }

    /// Adds to `hits[i]` the records routed so far that passed filter `i`
    /// (`hits` shorter than the set: the rest are dropped), and starts the
    /// counts again.
    pub fn add_hits(&mut self, hits: &mut [u32]) {
        let Some(s) = &mut self.matcher.scratch else {
            return;
        };
        s.flush();
        for (h, &n) in hits.iter_mut().zip(&s.tally.hits) {
            *h += n;
        }
        s.tally.hits.fill(0);
    }
}

impl Drop for Router<'_> {
    fn drop(&mut self) {
        // Counts not taken are not carried to the thread's next router.
        self.add_hits(&mut []);
    }
}

impl fmt::Debug for Router<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Drop for Matcher<'_> {
    fn drop(&mut self) {
        let Some(s) = self.scratch.take() else {
            return;
        };
        // Back to the thread (unless it is being torn down, or another
        // holder's evaluation has the cell: then they are dropped).
        let _ = SCRATCH.try_with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                *slot = Some(s);
            }
        });
    }
}

impl fmt::Debug for Matcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher").finish_non_exhaustive()
    }
}

impl fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterSet")
            .field("filters", &self.len())
            .field("tests", &self.tests())
            .finish()
    }
}
