//! [`Memo`]: the map behind a [`FilterSet`](super::FilterSet)'s memo
//! tables, from short lists of ids (a record's classes, or an entry and a
//! few passing tests) to a `u32`.
//!
//! Its keys are a handful of small integers, probed once or twice per
//! record: a general hash map would hash them as a byte string and compare
//! them with a `memcmp` call, which costs more than the rest of the lookup.
//! Here a key is hashed one word at a time (a folded multiply per word,
//! seeded per thread) and compared inline; the table is open-addressed
//! (linear probing, at most half full), its keys stored end to end in one
//! vector.

/// A slot: the key's hash, where its words are, and the value.
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    at: u32,
    /// `u32::MAX` when the slot is empty.
    len: u32,
    value: u32,
}

const EMPTY: Slot = Slot {
    hash: 0,
    at: 0,
    len: u32::MAX,
    value: 0,
};

/// Multiplier of the word hash (the fractional part of pi).
const MUL: u64 = 0x243f_6a88_85a3_08d3;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let full = u128::from(a).wrapping_mul(u128::from(b));
    (full as u64) ^ ((full >> 64) as u64)
}

/// Short id lists to `u32` values; see the module docs.
pub(super) struct Memo {
    seed: u64,
    /// A power of two, at least twice `len`.
    slots: Vec<Slot>,
    keys: Vec<u32>,
    len: usize,
}

impl Memo {
    /// An empty table whose hash is seeded with `seed`.
    pub fn new(seed: u64) -> Memo {
        Memo {
            seed,
            slots: vec![EMPTY; 64],
            keys: Vec::new(),
            len: 0,
        }
    }

    #[inline(always)]
    fn hash(&self, key: &[u32]) -> u64 {
        let mut h = self.seed ^ key.len() as u64;
        // Two ids per multiply.
        let mut pairs = key.chunks_exact(2);
        for p in &mut pairs {
            h = fold(h ^ (u64::from(p[0]) | u64::from(p[1]) << 32), MUL);
        }
        if let [x] = pairs.remainder() {
            h = fold(h ^ u64::from(*x), MUL);
        }
        h
    }

    #[inline(always)]
    fn start(&self, hash: u64) -> usize {
        // The high bits of a folded multiply are its best mixed.
        (hash >> 32) as usize & (self.slots.len() - 1)
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &[u32]) -> Option<u32> {
        let h = self.hash(key);
        let mask = self.slots.len() - 1;
        let mut i = self.start(h);
        loop {
            let s = self.slots[i];
            if s.len == u32::MAX {
                return None;
            }
            if s.hash == h && s.len as usize == key.len() {
                let at = s.at as usize;
                let stored = &self.keys[at..at + key.len()];
                if stored.iter().zip(key).all(|(a, b)| a == b) {
                    return Some(s.value);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Sets `key`'s value (`key` must not be in the table).
    pub fn insert(&mut self, key: &[u32], value: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = self.hash(key);
        let at = self.keys.len() as u32;
        self.keys.extend_from_slice(key);
        self.place(Slot {
            hash: h,
            at,
            len: key.len() as u32,
            value,
        });
        self.len += 1;
    }

    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.start(slot.hash);
        while self.slots[i].len != u32::MAX {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    #[cold]
    fn grow(&mut self) {
        let bigger = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        for s in old {
            if s.len != u32::MAX {
                self.place(s);
            }
        }
    }

    /// Empties the table (keeping its memory).
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.keys.clear();
        self.len = 0;
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Ids stored in the keys.
    pub fn stored(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn memo_finds_what_was_inserted_and_nothing_else() {
        let mut m = Memo::new(7);
        let key = |i: u32| -> Vec<u32> { (0..i % 5).map(|j| i.wrapping_mul(31) ^ j).collect() };
        for i in 0..5000u32 {
            if m.get(&key(i)).is_none() {
                m.insert(&key(i), i);
            }
        }
        for i in 0..5000u32 {
            let got = m.get(&key(i)).unwrap();
            assert_eq!(key(got), key(i));
        }
        assert_eq!(m.get(&[1, 2, 3, 4, 5, 6]), None);
        m.clear();
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(&key(3)), None);
    }
}
