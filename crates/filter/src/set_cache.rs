//! The per-thread memo tables of a [`FilterSet`](super::FilterSet)
//! evaluation (`set_vm.rs` says how they are used):
//!
//! - [`Classes`]: sets of passing test ids, interned. A field's *class* on
//!   a record is the set of its tests that the record passes; the filters'
//!   results depend on a record only through its fields' classes, and a
//!   stream has few of them (many values, few distinct answers).
//! - [`ValueCache`]: a text field's value to its class, so a value seen
//!   before costs one hash and one compare instead of the field's indexes
//!   (targets, hosts and thread names repeat).
//!
//! Both are bounded: the value cache is direct-mapped (a fixed number of
//! slots of a fixed size, allocated once), and [`Classes`] counts what it
//! stores so the owner can empty it when full.

use super::set_memo::Memo;
use crate::bytes::bytes_eq;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// A class: an index into [`Classes`]. Class 0 is the empty set.
pub(super) type Class = u32;

/// Interned sets of test ids.
pub(super) struct Classes {
    /// Sorted ids to their class. Seeded per thread: the keys come from
    /// untrusted records.
    map: Memo,
    /// Per class, its ids' span in `ids`.
    spans: Vec<(u32, u32)>,
    ids: Vec<u32>,
    /// A class was added since the owner last checked its bound.
    pub grew: bool,
}

impl Classes {
    /// No class but the empty one; `seed` seeds the ids' hash.
    pub fn new(seed: u64) -> Classes {
        let mut c = Classes {
            map: Memo::new(seed),
            spans: Vec::new(),
            ids: Vec::new(),
            grew: false,
        };
        c.clear();
        c
    }

    /// Forgets every class but the empty one.
    pub fn clear(&mut self) {
        self.map.clear();
        self.spans.clear();
        self.ids.clear();
        self.spans.push((0, 0));
    }

    /// The class of `ids` (sorted, no duplicates), added if new.
    #[inline]
    pub fn intern(&mut self, ids: &[u32]) -> Class {
        if ids.is_empty() {
            return 0;
        }
        if let Some(c) = self.map.get(ids) {
            return c;
        }
        let c = self.spans.len() as Class;
        self.spans.push((self.ids.len() as u32, ids.len() as u32));
        self.ids.extend_from_slice(ids);
        self.map.insert(ids, c);
        self.grew = true;
        c
    }

    /// The ids of class `c` (empty for a class not interned).
    #[inline]
    pub fn ids(&self, c: Class) -> &[u32] {
        let (at, len) = self.spans.get(c as usize).copied().unwrap_or((0, 0));
        self.ids
            .get(at as usize..(at + len) as usize)
            .unwrap_or_default()
    }

    /// Classes and ids stored (for the owner's bound).
    pub fn stored(&self) -> usize {
        self.spans.len() + 2 * self.ids.len()
    }
}

/// Slots of one [`ValueCache`].
const SLOTS: usize = 256;
/// The longest value a [`ValueCache`] keeps (longer ones are looked up in
/// the indexes every time).
pub(super) const MAX_VALUE: usize = 64;

#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    /// `u32::MAX` when empty.
    len: u32,
    class: Class,
}

const EMPTY: Slot = Slot {
    hash: 0,
    len: u32::MAX,
    class: 0,
};

/// A text field's values to their classes: direct-mapped, [`SLOTS`] slots
/// of at most [`MAX_VALUE`] bytes, allocated once. A value colliding with
/// another only evicts it (values are hashed with a per-thread seed, so a
/// stream cannot aim at a slot).
pub(super) struct ValueCache {
    slots: Box<[Slot]>,
    bytes: Box<[u8]>,
    /// The slot last found or filled, its value's length (`u32::MAX`:
    /// none) and class, kept here so [`last`](Self::last) reads no slot.
    last: usize,
    last_len: u32,
    last_class: Class,
}

impl ValueCache {
    pub fn new() -> ValueCache {
        ValueCache {
            slots: vec![EMPTY; SLOTS].into(),
            bytes: vec![0; SLOTS * MAX_VALUE].into(),
            last: 0,
            last_len: u32::MAX,
            last_class: 0,
        }
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.last_len = u32::MAX;
    }

    /// The hash that [`get`](Self::get) and [`put`](Self::put) take.
    #[inline]
    pub fn hash(seed: &RandomState, value: &[u8]) -> u64 {
        seed.hash_one(value)
    }

    #[inline]
    fn slot(hash: u64) -> usize {
        // The high bits: foldhash mixes them best.
        (hash >> 56) as usize % SLOTS
    }

    /// The class of `value` if it is the value last found or cached (no
    /// hash needed).
    #[inline]
    pub fn last(&self, value: &[u8]) -> Option<Class> {
        if self.last_len as usize != value.len() {
            return None;
        }
        let at = self.last * MAX_VALUE;
        bytes_eq(self.bytes.get(at..at + value.len())?, value).then_some(self.last_class)
    }

    /// The class of `value` (hashed to `hash`), if cached.
    #[inline(always)]
    pub fn get(&mut self, hash: u64, value: &[u8]) -> Option<Class> {
        let i = Self::slot(hash);
        let s = self.slots[i];
        if s.hash != hash || s.len as usize != value.len() {
            return None;
        }
        let at = i * MAX_VALUE;
        let hit = bytes_eq(self.bytes.get(at..at + value.len())?, value);
        if hit {
            self.last = i;
            self.last_len = s.len;
            self.last_class = s.class;
        }
        hit.then_some(s.class)
    }

    /// Caches `value`'s class (values longer than [`MAX_VALUE`] are not).
    #[inline]
    pub fn put(&mut self, hash: u64, value: &[u8], class: Class) {
        if value.len() > MAX_VALUE {
            return;
        }
        let i = Self::slot(hash);
        let at = i * MAX_VALUE;
        self.bytes[at..at + value.len()].copy_from_slice(value);
        self.slots[i] = Slot {
            hash,
            len: value.len() as u32,
            class,
        };
        self.last = i;
        self.last_len = value.len() as u32;
        self.last_class = class;
    }
}
