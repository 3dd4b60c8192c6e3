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
pub(crate) fn values_count(b: &[u8], fixed: usize) -> Option<usize> {
    let mut rest = b;
    // The fixed values, of any type.
    for _ in 0..fixed {
        rest = skip_value(rest)?;
    }
    // Then (str key, value) pairs.
    let mut n = fixed;
    while let Some(&t) = rest.first() {
        if t != tag::STR {
            return None;
        }
        rest = skip_value(skip_value(rest)?)?;
        n += 2;
    }
    Some(n)
}

/// `b` after its first value, when that is well-formed (what
/// [`read_value`] accepts); `None` also when `b` is empty.
#[inline(always)]
fn skip_value(b: &[u8]) -> Option<&[u8]> {
    match b {
        [tag::NULL, rest @ ..] => Some(rest),
        [tag::BOOL, 0 | 1, rest @ ..] => Some(rest),
        [tag::I64 | tag::U64 | tag::F64, rest @ ..] => rest.get(8..),
        [tag::STR, l0, l1, l2, l3, rest @ ..] => {
            let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize;
            // A short string (the usual key or value) is checked as one
            // word when 8 bytes follow its start.
            if len < 8 {
                if let Some(w) = rest.get(..8) {
                    let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                    if w & ((1u64 << (len * 8)) - 1) & 0x8080_8080_8080_8080 == 0 {
                        return rest.get(len..);
                    }
                }
            }
            let (s, rest) = rest.split_at_checked(len)?;
            utf8(s).then_some(rest)
        }
        _ => None,
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
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
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
