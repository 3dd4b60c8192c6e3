//! A record's typed fields as a [`FilterSet`](super::FilterSet) reads them:
//! still encoded, so only the fields some filter names are decoded.
//!
//! [`RecordRef::fields`] decodes every value (a string's UTF-8 checked
//! again) to hand out a [`ValueRef`](distlog_core::record::ValueRef); the
//! set compares a handful of named fields and skips the rest, so it walks
//! [`RecordRef::raw_values`] by tag and length instead: format arguments
//! skipped, keys compared as bytes, a value read only under a name a
//! filter tests, a string compared as bytes. The walk yields exactly the
//! (key, value) pairs of [`RecordRef::fields`], in order, on any record of
//! a validated batch (validation checked every value, so no UTF-8 check is
//! repeated); on malformed bytes it stops where `fields` stops, except
//! that it does not check UTF-8. It reads each byte at most once.

use super::site_shape::{ArgKinds, KindTally};
use distlog_core::view::RecordRef;
use distlog_core::wire::tag;

/// One encoded value: its tag and payload (the 8 bytes of a number, a
/// string's bytes, a bool's byte, nothing for null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Raw<'a> {
    pub tag: u8,
    pub payload: &'a [u8],
}

/// Splits the first value off `b` (what `read_value` accepts but for the
/// UTF-8 check), or `None`.
#[inline]
fn split(b: &[u8]) -> Option<(Raw<'_>, &[u8])> {
    let (&t, rest) = b.split_first()?;
    let (start, len): (usize, usize) = match t {
        tag::NULL => (0, 0),
        tag::BOOL => {
            if *rest.first()? > 1 {
                return None;
            }
            (0, 1)
        }
        tag::I64 | tag::U64 | tag::F64 => (0, 8),
        tag::STR => (
            4,
            u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize,
        ),
        _ => return None,
    };
    let end = start.checked_add(len)?;
    let payload = rest.get(start..end)?;
    Some((Raw { tag: t, payload }, &rest[end..]))
}

/// The record's (key, value) pairs, as [`RecordRef::fields`] yields them,
/// still encoded.
pub(super) struct RawFields<'a> {
    values: &'a [u8],
    keys: std::slice::Iter<'a, rkyv::string::ArchivedString>,
}

impl<'a> RawFields<'a> {
    /// The fields of `r`: its format arguments skipped.
    #[inline]
    pub fn new(r: RecordRef<'a>) -> RawFields<'a> {
        let mut values = r.raw_values();
        for _ in 0..r.arg_count() {
            match split(values) {
                Some((_, rest)) => values = rest,
                None => {
                    values = &[];
                    break;
                }
            }
        }
        RawFields {
            values,
            keys: r.site_keys().iter(),
        }
    }
}

impl<'a> Iterator for RawFields<'a> {
    type Item = (&'a [u8], Raw<'a>);

    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], Raw<'a>)> {
        let key = match self.keys.next() {
            Some(k) => k.as_str().as_bytes(),
            None => {
                // Past the call site's keys: bound (key, value) pairs.
                let (k, rest) = split(self.values)?;
                if k.tag != tag::STR {
                    return None;
                }
                self.values = rest;
                k.payload
            }
        };
        let (v, rest) = split(self.values)?;
        self.values = rest;
        Some((key, v))
    }
}

/// The kinds of `r`'s first `slots` format arguments, as
/// [`arg_kinds`](super::site_shape::arg_kinds) gives them from
/// [`RecordRef::args`], read still encoded: a string's bytes collected
/// without decoding it (its UTF-8 is not checked again: validation did,
/// and only which bytes it has matters here).
#[inline]
pub(super) fn raw_arg_kinds(r: RecordRef<'_>, slots: usize) -> ArgKinds {
    let mut values = r.raw_values();
    let mut tally = KindTally::default();
    for _ in 0..(r.arg_count() as usize).min(slots) {
        let Some((v, rest)) = split(values) else {
            break;
        };
        values = rest;
        match v.tag {
            tag::I64 | tag::U64 => tally.int(),
            tag::F64 => tally.float(),
            tag::STR => tally.text(v.payload),
            tag::BOOL if v.payload == [1] => tally.text(b"true"),
            tag::BOOL => tally.text(b"false"),
            _ => tally.text(b"null"), // tag::NULL: `split` knows no other tag
        }
    }
    tally.kinds(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Rng;
    use distlog_core::record::{Field, Record, Value, ValueRef};
    use distlog_core::wire::{access_batch, encode_batch_to_vec, put_value, Batch};

    /// A raw value encoded again.
    fn encode(r: Raw<'_>) -> Vec<u8> {
        let mut b = vec![r.tag];
        if r.tag == tag::STR {
            b.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
        }
        b.extend_from_slice(r.payload);
        b
    }

    #[test]
    fn raw_fields_are_the_decoded_fields() {
        let mut rng = Rng(0x00f1_e1d5);
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::I64(-3),
            Value::U64(u64::MAX),
            Value::F64(1.5),
            Value::Str("héllo".into()),
            Value::Str(String::new()),
        ];
        let records: Vec<Record> = (0..200)
            .map(|i| Record {
                seq: i,
                format: rng.pick(&["", "{} and {}", "{}"]).into(),
                args: (0..rng.below(3))
                    .map(|_| values[rng.below(values.len())].clone())
                    .collect(),
                fields: (0..rng.below(5))
                    .map(|_| Field {
                        key: rng.pick(&["a", "user_id", "", "é"]).into(),
                        value: values[rng.below(values.len())].clone(),
                    })
                    .collect(),
                ..Record::default()
            })
            .collect();
        let body = encode_batch_to_vec(&Batch {
            records,
            ..Batch::default()
        });
        let b = access_batch(&body).unwrap();
        for r in b.records() {
            let raw: Vec<(Vec<u8>, Vec<u8>)> = RawFields::new(r)
                .map(|(k, v)| (k.to_vec(), encode(v)))
                .collect();
            let want: Vec<(Vec<u8>, Vec<u8>)> = r
                .fields()
                .map(|(k, v)| {
                    let mut b = Vec::new();
                    put_value(&mut b, v);
                    (k.as_bytes().to_vec(), b)
                })
                .collect();
            assert_eq!(raw, want);
            for slots in 0..4 {
                assert_eq!(
                    raw_arg_kinds(r, slots),
                    crate::site_shape::arg_kinds(r.args(), slots),
                    "{slots} slots of {:?}",
                    r.to_record()
                );
            }
        }
    }

    #[test]
    fn malformed_values_stop_the_walk_without_panicking() {
        let mut good = Vec::new();
        put_value(&mut good, ValueRef::Str("key"));
        put_value(&mut good, ValueRef::U64(7));
        // Every truncation: the walk ends at the cut value.
        for cut in 0..good.len() {
            let mut v = &good[..cut];
            let mut n = 0;
            while let Some((_, rest)) = split(v) {
                v = rest;
                n += 1;
            }
            assert!(n <= 1 && (n == 0 || cut >= 8), "{cut}: {n}");
        }
        // A length past the end, a bool byte past 1, an unknown tag.
        assert!(split(&[tag::STR, 0xff, 0xff, 0xff, 0xff, b'a']).is_none());
        assert!(split(&[tag::BOOL, 2]).is_none());
        assert!(split(&[200]).is_none());
    }
}
