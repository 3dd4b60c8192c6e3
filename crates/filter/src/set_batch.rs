//! What a [`FilterSet`](super::FilterSet) works out once per (batch, call
//! site) instead of once per record, for a [`Matcher`](super::Matcher)
//! given the batch ([`FilterSet::matcher_in`](super::FilterSet::matcher_in)).
//!
//! A record's target, module, file and function are its call site's, its
//! host and program its batch's sender's: their classes are the same on
//! every record of one site of one batch. So are the site's format (its
//! entry in the call-site cache, `set_sites.rs`) and its field keys (the
//! typed-field slot each key names). A record is looked up here by
//! [`RecordRef::site_in`]: only the batch whose site table holds its very
//! site finds an entry, so nothing is carried from one batch to the next.
//!
//! When every text field the filters test is site-wide and no cheap test
//! runs one by one (`Plan::site_lists`), a record's cheap key is its
//! site's text classes and its byte fields' classes: an entry then also
//! keeps, per class of the byte fields ([`SiteLists`]), what that key
//! gave (the cheap entry, or the list of matches when the expensive
//! groups pass nothing), and a record of the site skips the key and its
//! memo probe.
//!
//! # Bounds
//!
//! At most [`BATCH_SITES`] sites per batch (records of sites past it take
//! the per-record path); an entry costs O(the site's text fields + its
//! keys) to fill, once per batch. The tables are emptied when a batch
//! starts and whenever the memo tables they point into are.

use super::combine::Plan;
use super::program::StrField;
use super::set_cache::Class;
use super::set_fields::{Args, Take};
use distlog_core::view::RecordRef;

/// Sites per batch with an entry.
pub(super) const BATCH_SITES: usize = 64;

/// No entry, no slot.
pub(super) const NONE: u32 = u32::MAX;

/// A site's entry.
#[derive(Clone, Copy)]
pub(super) struct SiteEntry {
    /// Its text classes' start in [`BatchSites::classes`] (one per
    /// `Plan::texts`, [`NONE`] for a field that varies per record).
    pub texts: u32,
    /// Its keys' slots' span in [`BatchSites::slots`].
    pub keys: (u32, u32),
    /// Its format's slot in the call-site cache, or [`NONE`].
    pub message: u32,
    /// The call-site cache's generation when `message` was found.
    pub sites_gen: u32,
    /// Its index in [`BatchSites`]' per-entry tables.
    pub index: u32,
}

/// Most bytes of a site's format arguments kept ([`ArgsMemo`]).
pub(super) const ARGS_KEPT: usize = 32;

/// The last format arguments a site's message verdict walked, when they
/// took at most [`ARGS_KEPT`] bytes: a record whose values start with the
/// same bytes has the same arguments, so the same verdict and walk.
#[derive(Clone, Copy)]
pub(super) struct ArgsMemo {
    /// `None`: nothing kept.
    pub walked: Option<(Take, Args)>,
    /// The kept bytes as little-endian words, zero past `walked.at`.
    pub words: [u64; ARGS_WORDS],
    /// Per word, the bits of the bytes kept (below `walked.at`).
    pub mask: [u64; ARGS_WORDS],
}

/// [`ARGS_KEPT`] in words.
const ARGS_WORDS: usize = ARGS_KEPT / 8;

/// The first [`ARGS_KEPT`] bytes of `b` as little-endian words.
#[inline(always)]
fn words(b: &[u8; ARGS_KEPT]) -> [u64; ARGS_WORDS] {
    std::array::from_fn(|i| {
        let mut w = [0; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    })
}

/// Byte-field classes (packed) kept per site.
pub(super) const SITE_LISTS: usize = 8;

/// Per site, per packed class of the record's byte fields (a few bits a
/// field: `Plan::byte_key`), direct-mapped: `(key, value)`, key [`NONE`]
/// when empty. The value is what the cheap key of such a record gave
/// (`Plan::find`).
pub(super) type SiteLists = [(u32, u32); SITE_LISTS];

/// The slot of packed byte classes `k` in a [`SiteLists`].
#[inline(always)]
fn list_slot(k: u32) -> usize {
    (k.wrapping_mul(0x9e37_79b9) >> 29) as usize % SITE_LISTS
}

/// The entries of the batch in hand.
pub(super) struct BatchSites {
    /// Per site index, its entry in `entries`, or [`NONE`].
    at: [u32; BATCH_SITES],
    entries: Vec<SiteEntry>,
    /// Per entry (same index), its [`SiteLists`].
    lists: Vec<SiteLists>,
    /// Per entry (same index), its last arguments walked.
    args: Vec<ArgsMemo>,
    /// Every entry's text classes.
    pub classes: Vec<Class>,
    /// Every entry's keys' typed-field slots, [`NONE`] for a key no filter
    /// names or named by an earlier key of the site (the first field of a
    /// name is the one compared).
    pub slots: Vec<u32>,
    /// A site's classes being made.
    pub pending: Vec<Class>,
}

impl BatchSites {
    pub fn new() -> BatchSites {
        BatchSites {
            at: [NONE; BATCH_SITES],
            entries: Vec::new(),
            lists: Vec::new(),
            args: Vec::new(),
            classes: Vec::new(),
            slots: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Forgets every entry (a new batch, or the tables they point into
    /// were emptied).
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.at = [NONE; BATCH_SITES];
            self.entries.clear();
            self.lists.clear();
            self.args.clear();
            self.classes.clear();
            self.slots.clear();
        }
    }

    /// The entry of site `site` of the batch, if made.
    #[inline(always)]
    pub fn get(&self, site: usize) -> Option<&SiteEntry> {
        let e = *self.at.get(site)?;
        self.entries.get(e as usize)
    }

    /// What the records of packed byte classes `k` of the site of entry
    /// `index` ([`SiteEntry::index`]) gave, if kept.
    #[inline(always)]
    pub fn list(&self, index: u32, k: u32) -> Option<u32> {
        let (key, value) = *self.lists.get(index as usize)?.get(list_slot(k))?;
        (key == k).then_some(value)
    }

    /// Keeps `value` for the records of packed byte classes `k` of the
    /// site of entry `index` (in place of another key of the same slot).
    #[inline]
    pub fn put(&mut self, index: u32, k: u32, value: u32) {
        if let Some(slot) = self
            .lists
            .get_mut(index as usize)
            .and_then(|l| l.get_mut(list_slot(k)))
        {
            *slot = (k, value);
        }
    }

    /// The verdict and walk kept for entry `index` when `values` (a
    /// record's) start with the arguments' bytes it kept.
    #[inline(always)]
    pub fn same_args(&self, index: u32, values: &[u8]) -> Option<(Take, Args)> {
        let m = self.args.get(index as usize)?;
        let (take, walked) = m.walked?;
        let same = match values.first_chunk::<ARGS_KEPT>() {
            // Four word compares under the mask, no `memcmp` call.
            Some(b) => {
                let diff = words(b)
                    .iter()
                    .zip(&m.words)
                    .zip(&m.mask)
                    .fold(0, |d, ((got, kept), mask)| d | ((got ^ kept) & mask));
                diff == 0
            }
            // Shorter than the words: padded.
            None => {
                let mut b = [0; ARGS_KEPT];
                let n = values.len().min(walked.at);
                b[..n].copy_from_slice(&values[..n]);
                n == walked.at && words(&b) == m.words
            }
        };
        same.then_some((take, walked))
    }

    /// Keeps the arguments `values[..walked.at]` of entry `index` and
    /// their verdict, when short enough.
    #[inline]
    pub fn keep_args(&mut self, index: u32, values: &[u8], take: Take, walked: Args) {
        let (Some(m), Some(b)) = (self.args.get_mut(index as usize), values.get(..walked.at))
        else {
            return;
        };
        let mut bytes = [0; ARGS_KEPT];
        let mut mask = [0; ARGS_KEPT];
        if let (Some(dst), Some(ones)) = (bytes.get_mut(..b.len()), mask.get_mut(..b.len())) {
            dst.copy_from_slice(b);
            ones.fill(0xff);
            m.words = words(&bytes);
            m.mask = words(&mask);
            m.walked = Some((take, walked));
        }
    }

    /// Makes site `site`'s entry (none yet) from its record `r`: `classes`
    /// are its text fields' (`Plan::texts`, [`NONE`] for those not
    /// [`site_wide`]), `message` the format's slot
    /// in the call-site cache and its generation; `stamps` (per typed-field
    /// slot, none at `epoch`) tell a key's name seen before on the site.
    /// `None` past [`BATCH_SITES`].
    #[cold]
    pub fn make(
        &mut self,
        plan: &Plan,
        site: usize,
        r: RecordRef<'_>,
        classes: &[Class],
        message: (u32, u32),
        (stamps, epoch): (&mut [u32], u32),
    ) -> Option<&SiteEntry> {
        if site >= BATCH_SITES {
            return None;
        }
        let texts = self.classes.len() as u32;
        self.classes.extend_from_slice(classes);
        let start = self.slots.len();
        if !plan.fields.eq.is_empty() {
            for k in r.site_keys() {
                let slot = plan.fields.slot(k.as_bytes()).unwrap_or(NONE);
                let seen = slot != NONE
                    && stamps
                        .get_mut(slot as usize)
                        .map_or(true, |s| std::mem::replace(s, epoch) == epoch);
                self.slots.push(if seen { NONE } else { slot });
            }
        }
        let keys = (start as u32, (self.slots.len() - start) as u32);
        self.at[site] = self.entries.len() as u32;
        self.lists.push([(NONE, 0); SITE_LISTS]);
        self.args.push(ArgsMemo {
            walked: None,
            words: [0; ARGS_WORDS],
            mask: [0; ARGS_WORDS],
        });
        self.entries.push(SiteEntry {
            texts,
            keys,
            message: message.0,
            sites_gen: message.1,
            index: self.at[site],
        });
        self.entries.last()
    }
}

/// Whether `field` is the same on every record of one call site of one
/// batch (the site's, or the sender's).
pub(super) fn site_wide(field: StrField) -> bool {
    matches!(
        field,
        StrField::Target
            | StrField::Host
            | StrField::Process
            | StrField::File
            | StrField::Module
            | StrField::Func
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with one entry and nothing kept.
    fn one_entry() -> BatchSites {
        let mut b = BatchSites::new();
        b.args.push(ArgsMemo {
            walked: None,
            words: [0; ARGS_WORDS],
            mask: [0; ARGS_WORDS],
        });
        b
    }

    #[test]
    fn kept_arguments_match_exactly_their_bytes_whatever_the_length() {
        let mut rng = fastrand::Rng::with_seed(17);
        for at in 0..=ARGS_KEPT + 2 {
            for len in [at, at + 1, 31, 32, 33, 48] {
                if len < at {
                    continue;
                }
                let values: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                let walked = Args { count: 2, at };
                let mut b = one_entry();
                b.keep_args(0, &values, Take::Nums, walked);
                if at > ARGS_KEPT {
                    // Too long: nothing kept.
                    assert_eq!(b.same_args(0, &values), None, "at {at}");
                    continue;
                }
                assert_eq!(b.same_args(0, &values), Some((Take::Nums, walked)));
                for pos in 0..len {
                    let mut other = values.clone();
                    other[pos] ^= 1 << (pos % 8);
                    let got = b.same_args(0, &other);
                    if pos < at {
                        assert_eq!(got, None, "at {at} len {len} byte {pos}");
                    } else {
                        // Past the arguments: the typed fields, not compared.
                        assert_eq!(got, Some((Take::Nums, walked)), "at {at} byte {pos}");
                    }
                }
                // Shorter than the arguments kept, same bytes as far as
                // they go; and longer ones, whatever follows.
                if at > 0 {
                    assert_eq!(b.same_args(0, &values[..at - 1]), None, "at {at}");
                }
                let mut longer = values[..at].to_vec();
                longer.extend_from_slice(&[0xff; 40]);
                assert_eq!(
                    b.same_args(0, &longer),
                    Some((Take::Nums, walked)),
                    "at {at}"
                );
                // Zeros where the kept bytes are not zero differ (the
                // padding is not mistaken for bytes).
                if values[..at].iter().any(|&x| x != 0) {
                    assert_eq!(b.same_args(0, &vec![0; len]), None, "at {at}");
                    assert_eq!(b.same_args(0, &[0; 48]), None, "at {at}");
                }
            }
        }
    }
}
