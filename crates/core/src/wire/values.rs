//! The values encoding: a record's format arguments and fields as one
//! byte string ([`super::WireRecord::values`]), the same bytes the client's
//! rings hold.
//!
//! Per value, a tag byte, then
//!
//! | tag | value | bytes after the tag |
//! |---|---|---|
//! | 0 | null | none |
//! | 1 | bool | 1 (0 or 1) |
//! | 2 | i64 | 8, little-endian |
//! | 3 | u64 | 8, little-endian |
//! | 4 | f64 | 8, little-endian IEEE 754 bits |
//! | 5 | str | u32 little-endian length, then that many UTF-8 bytes |
//!
//! A record's values are its site's `args` format arguments, then one value
//! per key of the site's `keys`, then any number of bound fields, each a
//! str value (the key) followed by its value.

use crate::record::ValueRef;

/// Value tags of the values encoding.
pub mod tag {
    /// No value.
    pub const NULL: u8 = 0;
    /// A bool: one byte, 0 or 1.
    pub const BOOL: u8 = 1;
    /// An i64, 8 bytes.
    pub const I64: u8 = 2;
    /// A u64, 8 bytes.
    pub const U64: u8 = 3;
    /// An f64, 8 bytes.
    pub const F64: u8 = 4;
    /// A string: u32 length, then UTF-8 bytes.
    pub const STR: u8 = 5;
}

/// Appends one value in the values encoding.
pub fn put_value(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push(tag::NULL),
        ValueRef::Bool(b) => out.extend_from_slice(&[tag::BOOL, u8::from(b)]),
        ValueRef::I64(i) => {
            out.push(tag::I64);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::U64(u) => {
            out.push(tag::U64);
            out.extend_from_slice(&u.to_le_bytes());
        }
        ValueRef::F64(f) => {
            out.push(tag::F64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Str(s) => {
            out.push(tag::STR);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Splits the first value off `b`: the value and the rest, or `None` when
/// it is malformed. Validation and the readers of a validated batch
/// ([`crate::view::RecordRef`]) both use it, so what validation accepts
/// is exactly what readers can read.
#[inline]
pub fn read_value(b: &[u8]) -> Option<(ValueRef<'_>, &[u8])> {
    let (&t, rest) = b.split_first()?;
    let fixed = |rest: &[u8]| -> Option<(u64, usize)> {
        Some((u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8))
    };
    let (v, used) = match t {
        tag::NULL => (ValueRef::Null, 0),
        tag::BOOL => match rest.first()? {
            0 => (ValueRef::Bool(false), 1),
            1 => (ValueRef::Bool(true), 1),
            _ => return None,
        },
        tag::I64 => fixed(rest).map(|(u, n)| (ValueRef::I64(u as i64), n))?,
        tag::U64 => fixed(rest).map(|(u, n)| (ValueRef::U64(u), n))?,
        tag::F64 => fixed(rest).map(|(u, n)| (ValueRef::F64(f64::from_bits(u)), n))?,
        tag::STR => {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let s = rest.get(4..4usize.checked_add(n)?)?;
            (ValueRef::Str(std::str::from_utf8(s).ok()?), 4 + n)
        }
        _ => return None,
    };
    Some((v, &rest[used..]))
}

/// How many values `b` holds, when it is `fixed` well-formed values
/// followed by (str key, value) pairs; `None` when it is not.
///
/// Accepts exactly what a walk with [`read_value`] accepts (the tests
/// compare the two on random and damaged bytes), without building the
/// values: validation runs it on every record of every batch.
#[inline]
pub(crate) fn values_count(b: &[u8], fixed: usize) -> Option<usize> {
    let mut i = 0;
    // The fixed values, of any type.
    for _ in 0..fixed {
        i = skip_value(b, i)?;
    }
    // Then (str key, value) pairs.
    let mut n = fixed;
    while let Some(&t) = b.get(i) {
        if t != tag::STR {
            return None;
        }
        i = skip_value(b, skip_value(b, i)?)?;
        n += 2;
    }
    Some(n)
}

/// Where the value at `b[i..]` ends, when it is well-formed (what
/// [`read_value`] accepts); `None` also when `i` is at the end.
#[inline(always)]
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        tag::NULL => Some(i + 1),
        tag::BOOL => (*b.get(i + 1)? <= 1).then_some(i + 2),
        tag::I64 | tag::U64 | tag::F64 => (b.len() - i > 8).then_some(i + 9),
        tag::STR => {
            let len = u32::from_le_bytes(b.get(i + 1..i + 5)?.try_into().expect("4 bytes"));
            let (start, end) = (i + 5, i + 5 + len as usize);
            if end > b.len() {
                return None;
            }
            // A short string (the usual key or value) is checked as the
            // word that ends where it ends: the tag and length before it
            // make that word start within `b`.
            if len <= 8 && end >= 8 {
                let w = u64::from_le_bytes(b[end - 8..end].try_into().expect("8 bytes"));
                let keep = u64::MAX.checked_shl(64 - 8 * len).unwrap_or(0);
                if w & keep & 0x8080_8080_8080_8080 == 0 {
                    return Some(end);
                }
            }
            utf8(&b[start..end]).then_some(end)
        }
        _ => None,
    }
}

/// The longest values a [`Shape`] holds, in 8-byte words.
const SHAPE_WORDS: usize = 8;

/// How many bytes [`Shape::hit`] reads from the start of a record's
/// values when they are followed by enough bytes of the archive: every
/// word a shape can check, so no loop bound or tail depends on the length.
pub(crate) const SHAPE_WINDOW: usize = 8 * SHAPE_WORDS;

/// The structure of one record's values that passed [`values_count`]:
/// where its tags, string lengths and bool bytes are and what they hold,
/// and where its string bytes are. A record of the same call site whose
/// values have the same length and the same bytes at those places, and
/// ASCII in the string bytes, walks exactly as that record did: same
/// count, valid (fixed-size numbers accept any bytes). [`Shape::hit`]
/// checks that a word at a time; records of one call site usually share
/// their shape (the same types, the same string lengths).
pub(crate) struct Shape {
    /// The call site, its count of leading values and the values'
    /// length the shape is for (`site` `usize::MAX`: none yet).
    site: usize,
    lead: usize,
    len: usize,
    /// Misses since the last hit: a shape is learnt again only at the
    /// 1st, 2nd, 4th, 8th... miss in a row, so records that never share
    /// a shape cost one compare each, not a shape each.
    misses: u32,
    /// How many values.
    n: usize,
    /// Word by word, the bits a record must have as the shape's record
    /// has them: its structural bytes (0xff) and its string bytes' high
    /// bits (0x80); zero past `len`.
    mask: [u64; SHAPE_WORDS],
    /// Those bits' values (a string byte's high bit: 0).
    want: [u64; SHAPE_WORDS],
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            site: usize::MAX,
            lead: 0,
            len: 0,
            misses: 0,
            n: 0,
            mask: [0; SHAPE_WORDS],
            want: [0; SHAPE_WORDS],
        }
    }
}

impl Shape {
    /// [`values_count`] of `b`, for records of call site `site` with
    /// `fixed` leading values: through the shape when `b` has it, else in
    /// full (and `b` becomes the shape). [`Shape::hit`] without the
    /// leading count's compare, then [`Shape::count_in_full`], is what
    /// validation runs; this keys the shape on both, for the tests.
    #[cfg(test)]
    fn count(&mut self, site: usize, b: &[u8], fixed: usize) -> Option<usize> {
        if site == self.site && fixed == self.lead && b.len() == self.len && self.matches(b) {
            self.misses = 0;
            return Some(self.n);
        }
        self.count_in_full(site, b, fixed)
    }

    /// The count of values of `b` when it has the shape, for call site
    /// `site`, whose leading count must be the one the shape was learnt
    /// with (one set of shapes per batch, whose sites' counts are fixed):
    /// `None` says only that the shape does not apply (then
    /// [`Shape::count_in_full`]). `window`, when given, is `b` followed by
    /// any bytes up to [`SHAPE_WINDOW`]: read as whole words, without a
    /// tail.
    #[inline(always)]
    pub(crate) fn hit(
        &mut self,
        site: usize,
        b: &[u8],
        window: Option<&[u8; SHAPE_WINDOW]>,
    ) -> Option<usize> {
        if site != self.site || b.len() != self.len {
            return None;
        }
        // No values (a plain message) match a shape of none at once.
        let ok = b.is_empty()
            || match window {
                Some(w) => self.matches_window(w),
                None => self.matches(b),
            };
        if !ok {
            return None;
        }
        self.misses = 0;
        Some(self.n)
    }

    /// [`values_count`] of `b` in full, and `b` becomes the shape at the
    /// 1st, 2nd, 4th... miss in a row (see [`Shape::misses`]).
    #[inline]
    pub(crate) fn count_in_full(&mut self, site: usize, b: &[u8], fixed: usize) -> Option<usize> {
        let n = values_count(b, fixed)?;
        self.misses = self.misses.saturating_add(1);
        if self.misses.is_power_of_two() {
            self.learn(site, fixed, b, n);
        }
        Some(n)
    }

    /// Whether `b` (of the shape's length) has the shape's structural
    /// bytes and ASCII string bytes.
    #[inline(always)]
    fn matches(&self, b: &[u8]) -> bool {
        let mut bad = 0u64;
        let mut words = b.chunks_exact(8);
        for (i, w) in (&mut words).enumerate() {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            bad |= (w & self.mask[i]) ^ self.want[i];
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let i = b.len() / 8;
            // The last bytes as a word, zero above them: shifted down out
            // of the 8 bytes that end `b` when it has 8 (a copy of a
            // variable length was a `memcpy` call per record).
            let w = match b.len().checked_sub(8) {
                Some(at) => {
                    let w = u64::from_le_bytes(b[at..].try_into().expect("8 bytes"));
                    w >> (8 * (8 - rest.len()))
                }
                None => rest.iter().rev().fold(0, |w, &x| w << 8 | u64::from(x)),
            };
            bad |= (w & self.mask[i]) ^ self.want[i];
        }
        bad == 0
    }

    /// [`Shape::matches`] of the shape's length of `w`: every word, the
    /// bytes past the length masked off (the mask is zero there).
    #[inline(always)]
    fn matches_window(&self, w: &[u8; SHAPE_WINDOW]) -> bool {
        let mut bad = 0u64;
        for i in 0..SHAPE_WORDS {
            let x = u64::from_le_bytes(w[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            bad |= (x & self.mask[i]) ^ self.want[i];
        }
        bad == 0
    }

    /// Makes `b`, which [`values_count`] accepted with `n` values, the
    /// shape (when it fits; otherwise there is none).
    #[cold]
    fn learn(&mut self, site: usize, lead: usize, b: &[u8], n: usize) {
        self.site = usize::MAX;
        if b.len() > 8 * SHAPE_WORDS {
            return;
        }
        let mut bytes = [0u8; 8 * SHAPE_WORDS];
        let mut fixed = [0u8; 8 * SHAPE_WORDS];
        let mut text = [0u8; 8 * SHAPE_WORDS];
        bytes[..b.len()].copy_from_slice(b);
        let mut i = 0;
        while i < b.len() {
            fixed[i] = 0xff;
            match b[i] {
                tag::NULL => i += 1,
                tag::BOOL => {
                    fixed[i + 1] = 0xff;
                    i += 2;
                }
                tag::STR => {
                    let len = u32::from_le_bytes(b[i + 1..i + 5].try_into().expect("4 bytes"));
                    fixed[i + 1..i + 5].fill(0xff);
                    let start = i + 5;
                    i = start + len as usize;
                    if b[start..i].iter().any(|&c| c >= 0x80) {
                        // Not ASCII: no record would match.
                        return;
                    }
                    text[start..i].fill(0x80);
                }
                // I64, U64, F64: values_count accepted `b`, so no other tag.
                _ => i += 9,
            }
        }
        let word = |a: &[u8; 8 * SHAPE_WORDS], w: usize| {
            u64::from_le_bytes(a[w * 8..w * 8 + 8].try_into().expect("8 bytes"))
        };
        for w in 0..SHAPE_WORDS {
            let fixed = word(&fixed, w);
            self.mask[w] = fixed | word(&text, w);
            self.want[w] = word(&bytes, w) & fixed;
        }
        (self.site, self.lead, self.len, self.n) = (site, lead, b.len(), n);
    }
}

/// Whether `s` is UTF-8: a word at a time while it is ASCII (short
/// strings, the usual field values, never reach `from_utf8`).
#[inline]
pub(crate) fn utf8(s: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if w & HIGH != 0 {
            return std::str::from_utf8(s).is_ok();
        }
    }
    if words.remainder().iter().all(|&c| c < 0x80) {
        return true;
    }
    std::str::from_utf8(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A u64, a str and a bool.
    fn three(s: u64) -> Vec<u8> {
        let mut v = Vec::new();
        put_value(&mut v, ValueRef::U64(s));
        put_value(&mut v, ValueRef::Str("value"));
        put_value(&mut v, ValueRef::Bool(true));
        v
    }

    #[test]
    fn every_value_reads_back() {
        let all = [
            ValueRef::Null,
            ValueRef::Bool(false),
            ValueRef::I64(-3),
            ValueRef::U64(u64::MAX),
            ValueRef::F64(1.5),
            ValueRef::Str("héllo"),
        ];
        let mut b = Vec::new();
        for v in all {
            put_value(&mut b, v);
        }
        let mut rest = &b[..];
        for want in all {
            let (v, r) = read_value(rest).unwrap();
            assert_eq!(v, want);
            rest = r;
        }
        assert!(rest.is_empty());
    }

    /// The walk [`values_count`] replaced, with [`read_value`]: the
    /// oracle it must agree with.
    fn values_count_by_read_value(mut b: &[u8], fixed: usize) -> Option<usize> {
        let mut n = 0usize;
        while !b.is_empty() {
            let (v, rest) = read_value(b)?;
            if n >= fixed && (n - fixed) % 2 == 0 && !matches!(v, ValueRef::Str(_)) {
                return None;
            }
            b = rest;
            n += 1;
        }
        (n >= fixed && (n - fixed) % 2 == 0).then_some(n)
    }

    #[test]
    fn values_count_agrees_with_a_read_value_walk() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        let strs = [
            "",
            "k",
            "value",
            "héllo wörld",
            "🦀🦀🦀🦀",
            "0123456789abcdefg",
        ];
        for _ in 0..50_000 {
            let mut b = Vec::new();
            for _ in 0..rnd(7) {
                let v = match rnd(6) {
                    0 => ValueRef::Null,
                    1 => ValueRef::Bool(rnd(2) == 1),
                    2 => ValueRef::I64(-(rnd(1000) as i64)),
                    3 => ValueRef::U64(rnd(1 << 20) as u64),
                    4 => ValueRef::F64(1.5),
                    _ => ValueRef::Str(strs[rnd(strs.len())]),
                };
                put_value(&mut b, v);
            }
            // Damage: flipped bits (tags, lengths, UTF-8), cuts, junk.
            for _ in 0..rnd(3) {
                match rnd(3) {
                    0 if !b.is_empty() => {
                        let i = rnd(b.len());
                        b[i] ^= 1 << rnd(8);
                    }
                    1 => b.truncate(rnd(b.len() + 1)),
                    _ => b.push(rnd(256) as u8),
                }
            }
            for fixed in 0..4 {
                assert_eq!(
                    values_count(&b, fixed),
                    values_count_by_read_value(&b, fixed),
                    "{b:?} fixed {fixed}"
                );
            }
        }
    }

    /// A shape matches the very record it was learnt from, whatever its
    /// length (its last word whole, partial, or all of it under 8 bytes),
    /// and no record that differs from it in one structural or string
    /// byte of that last word (one that differs in a number's does).
    #[test]
    fn a_shape_matches_its_own_record_and_not_a_changed_tail() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..5_000 {
            let (mut b, mut fixed) = (Vec::new(), 0);
            while b.is_empty() || rng.usize(..4) != 0 {
                fixed += 1;
                let v = match rng.usize(..5) {
                    0 => ValueRef::Null,
                    1 => ValueRef::Bool(rng.bool()),
                    2 => ValueRef::I64(rng.i64(..)),
                    3 => ValueRef::U64(rng.u64(..)),
                    _ => ValueRef::Str(&"abcdefghijk"[..rng.usize(..12)]),
                };
                put_value(&mut b, v);
            }
            if b.len() > 8 * SHAPE_WORDS {
                continue;
            }
            // All of them leading values: a valid record, learnt.
            let mut shape = Shape::default();
            assert_eq!(shape.count(0, &b, fixed), Some(fixed));
            assert_eq!(shape.len, b.len());
            assert!(shape.matches(&b), "{b:?}");
            let i = b.len() / 8;
            for at in i * 8..b.len() {
                let mut c = b.clone();
                c[at] ^= 0x80;
                // A structural byte or a string's: no match; a number's
                // byte: any.
                let checked = shape.mask[i] >> (8 * (at % 8)) & 0xff != 0;
                assert_eq!(shape.matches(&c), !checked, "{b:?} changed at {at}");
            }
        }
    }

    /// A shape gives what a full walk gives, on records that share it,
    /// nearly share it (a tag, a length, a bool, a string byte changed)
    /// or do not.
    #[test]
    fn shapes_count_what_values_count_counts() {
        let mut rng = fastrand::Rng::with_seed(0x1234_5678_9abc_def1);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        let strs = ["", "k", "value", "héllo", "0123456789abcdefg", "12345678"];
        let mut shape = Shape::default();
        let mut hits = 0;
        let mut site = 0;
        for _ in 0..20_000 {
            let mut b = Vec::new();
            // Runs of records of one site, as batches hold them.
            if rnd(8) == 0 {
                site = rnd(3);
            }
            for j in 0..2 + site {
                let v = match (j + site) % 6 {
                    0 => ValueRef::Null,
                    1 => ValueRef::Bool(rnd(8) == 0),
                    2 => ValueRef::I64(-(rnd(1000) as i64)),
                    3 => ValueRef::U64(rnd(1 << 20) as u64),
                    4 => ValueRef::F64(1.5),
                    _ => ValueRef::Str(
                        strs[if rnd(4) == 0 {
                            rnd(strs.len())
                        } else {
                            site + 1
                        }],
                    ),
                };
                put_value(&mut b, v);
            }
            if rnd(5) == 0 && !b.is_empty() {
                let i = rnd(b.len());
                b[i] = [0, 1, 2, 5, 6, 0x80, 0xff, b'a'][rnd(8)];
            }
            // A site has one count of leading values; sometimes another
            // site reuses the index with another count.
            let fixed = if rnd(10) == 0 { rnd(4) } else { site };
            if shape.site == site
                && shape.lead == fixed
                && shape.len == b.len()
                && shape.matches(&b)
            {
                hits += 1;
            }
            let got = shape.count(site, &b, fixed);
            assert_eq!(got, values_count(&b, fixed), "{b:?} fixed {fixed}");
        }
        assert!(hits > 100, "{hits}");
    }

    /// [`Shape::hit`] through a window (the values followed by other
    /// bytes) and without one counts what [`values_count`] counts whenever
    /// it answers, on records that share the shape, nearly share it or
    /// do not, with junk after them.
    #[test]
    fn shape_hits_through_a_window_agree_with_values_count() {
        let mut rng = fastrand::Rng::with_seed(0x0dd_ba11);
        let strs = ["", "k", "value", "héllo", "12345678"];
        let mut shape = Shape::default();
        let (mut hits, mut windows) = (0, 0);
        for round in 0..30_000 {
            let mut b = Vec::new();
            let fixed = 1 + round % 3;
            for j in 0..fixed {
                let v = match (j + rng.usize(..2)) % 4 {
                    0 => ValueRef::U64(rng.u64(..)),
                    1 => ValueRef::Bool(rng.bool()),
                    2 => ValueRef::Null,
                    _ => ValueRef::Str(strs[rng.usize(..strs.len())]),
                };
                put_value(&mut b, v);
            }
            if rng.usize(..4) == 0 && !b.is_empty() {
                let i = rng.usize(..b.len());
                b[i] = [0, 1, 2, 5, 6, 0x80, 0xff, b'a'][rng.usize(..8)];
            }
            let site = fixed;
            // The values, then the rest of an archive (any bytes).
            let mut all = b.clone();
            all.extend((0..rng.usize(..80)).map(|_| rng.u8(..)));
            let window = all.get(..SHAPE_WINDOW).map(|w| w.try_into().unwrap());
            windows += usize::from(window.is_some());
            let want = values_count(&b, fixed);
            let got = match shape.hit(site, &b, window) {
                Some(n) => {
                    hits += 1;
                    Some(n)
                }
                None => shape.count_in_full(site, &b, fixed),
            };
            assert_eq!(got, want, "{b:?} fixed {fixed}");
        }
        assert!(hits > 1_000 && windows > 1_000, "{hits} {windows}");
    }

    /// A record too long for a shape forgets the one before: a later
    /// record of that site with empty values is counted in full (and
    /// refused when the site has leading values), not taken for the old
    /// shape's record (the old `len` 0 once meant "none").
    #[test]
    fn a_shape_left_unlearnt_matches_nothing() {
        let short = three(1);
        let mut long = three(2);
        put_value(&mut long, ValueRef::Str(&"x".repeat(80)));
        put_value(&mut long, ValueRef::Null);
        let mut shape = Shape::default();
        assert_eq!(shape.count(7, &short, 3), Some(3));
        for _ in 0..4 {
            assert_eq!(shape.count(7, &long, 3), Some(5));
        }
        assert_eq!(shape.count(7, &[], 3), None);
        assert_eq!(shape.hit(7, &[], None), None);
        assert_eq!(shape.count_in_full(7, &[], 3), None);
        // Nothing learnt yet: no site matches, not even 0 with no values.
        assert_eq!(Shape::default().hit(0, &[], None), None);
    }

    #[test]
    fn a_value_walk_never_reads_out_of_bounds() {
        // Every prefix of a well-formed string either parses or is rejected.
        let v = three(5);
        for cut in 0..=v.len() {
            let _ = values_count(&v[..cut], 3);
            let _ = values_count(&v[..cut], 0);
        }
        assert_eq!(values_count(&v, 3), Some(3));
        assert_eq!(values_count(&v, 4), None);
        assert_eq!(values_count(&v[..v.len() - 1], 3), None);
        // Past the fixed values, pairs led by a str key.
        assert_eq!(values_count(&v, 1), Some(3));
        assert_eq!(values_count(&v, 0), None);
        assert_eq!(read_value(&[9]), None);
        assert_eq!(read_value(&[tag::BOOL, 2]), None);
    }
}
