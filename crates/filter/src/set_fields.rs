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
//!
//! The same reading gives a deferred message's call-site verdict
//! ([`raw_verdict`], `set_sites.rs`): one pass over the format's
//! arguments, O(their bytes), a string's bytes only tested against the
//! site's guard.

use super::set_sites::{Site, Verdict};
use super::site_shape::has;
#[cfg(test)]
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

/// Payload bytes of the fixed-size tags, by tag (`NULL` to `F64`).
const FIXED: [u8; 5] = [0, 1, 8, 8, 8];
const _: () = assert!(
    tag::NULL == 0 && tag::BOOL == 1 && tag::I64 == 2 && tag::U64 == 3 && tag::F64 == 4,
    "FIXED is indexed by tag"
);

/// Splits the first value off `b` (what `read_value` accepts but for the
/// UTF-8 check), or `None`.
///
/// Two compares and a table rather than a `match` on the tag: a record's
/// values alternate tags, which the jump table a `match` compiles to
/// predicts badly.
#[inline]
pub(super) fn split(b: &[u8]) -> Option<(Raw<'_>, &[u8])> {
    let (&t, rest) = b.split_first()?;
    let (start, len): (usize, usize) = if t == tag::STR {
        (4, u32::from_le_bytes(*rest.first_chunk::<4>()?) as usize)
    } else {
        let len = *FIXED.get(usize::from(t))?;
        // A bool's byte is 0 or 1 (its payload is checked below).
        if (t == tag::BOOL) & rest.first().is_some_and(|&x| x > 1) {
            return None;
        }
        (0, usize::from(len))
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
        RawFields {
            values: past_args(r, None),
            keys: r.site_keys().iter(),
        }
    }

    /// The bound (key, value) pairs encoded in `values` (what follows the
    /// values of a record's site keys).
    #[inline]
    pub fn bound(values: &'a [u8]) -> RawFields<'a> {
        RawFields {
            values,
            keys: [].iter(),
        }
    }
}

/// How far a walk of a record's values got: its first `count` values end
/// `at` bytes into [`RecordRef::raw_values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Args {
    pub count: u32,
    pub at: usize,
}

/// `r`'s values past its format arguments (empty when those do not
/// parse); `walked`: how far an earlier walk of the same record's values
/// got (its first arguments not split again).
#[inline]
pub(super) fn past_args(r: RecordRef<'_>, walked: Option<Args>) -> &[u8] {
    let all = r.raw_values();
    let (mut values, done) = match walked {
        Some(w) if w.count <= r.arg_count() => match all.get(w.at..) {
            Some(rest) => (rest, w.count),
            None => return &[],
        },
        _ => (all, 0),
    };
    for _ in done..r.arg_count() {
        match split(values) {
            Some((_, rest)) => values = rest,
            None => return &[],
        }
    }
    values
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

/// The verdict of `site` for `r`'s arguments: what
/// [`verdict_for`](super::set_sites::verdict_for) gives for
/// [`raw_arg_kinds`], read in one pass without collecting the kinds: a
/// string is only searched for the site's guard bytes (its first one
/// decides `Render`), and the verdict is picked as the walk ends.
#[inline]
pub(super) fn raw_verdict<'s>(site: &'s Site, r: RecordRef<'_>) -> &'s Verdict {
    walk_verdict(site, r).0
}

/// Which of a site's verdicts a record's arguments take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    Render,
    Ints,
    Nums,
}

impl Take {
    /// The verdict of `site` it names.
    #[inline(always)]
    pub fn of(self, site: &Site) -> &Verdict {
        const RENDER: &Verdict = &Verdict::Render;
        match self {
            Take::Render => RENDER,
            Take::Ints => &site.ints,
            Take::Nums => &site.nums,
        }
    }
}

/// [`raw_verdict`], and how far its walk got when it split every one of
/// the site's arguments (for [`past_args`]).
#[inline(always)]
pub(super) fn walk_verdict<'s>(site: &'s Site, r: RecordRef<'_>) -> (&'s Verdict, Option<Args>) {
    let (take, walked) = walk_take(site, r);
    (take.of(site), walked)
}

/// [`walk_verdict`], naming the verdict: a function of the bytes of the
/// site's arguments alone (and of the site).
#[inline(always)]
pub(super) fn walk_take(site: &Site, r: RecordRef<'_>) -> (Take, Option<Args>) {
    if (r.arg_count() as usize) < site.slots {
        return (Take::Render, None);
    }
    let all = r.raw_values();
    let mut values = all;
    // Some argument is a float; some is shown as text.
    let (mut nums, mut text) = (false, false);
    let mut render = false;
    for _ in 0..site.slots {
        let Some((v, rest)) = split(values) else {
            return (Take::Render, None);
        };
        values = rest;
        if render {
            // Decided; the arguments still split for the typed fields.
            continue;
        }
        let shown: &[u8] = match v.tag {
            tag::I64 | tag::U64 => continue,
            tag::F64 => {
                nums = true;
                continue;
            }
            tag::STR => v.payload,
            tag::BOOL if v.payload == [1] => b"true",
            tag::BOOL => b"false",
            _ => b"null", // tag::NULL: `split` knows no other tag
        };
        match &site.guard {
            Some(guard) if !shown.iter().any(|&b| has(guard, b)) => text = true,
            _ => render = true,
        }
    }
    let walked = Some(Args {
        count: site.slots as u32,
        at: all.len() - values.len(),
    });
    let take = if render {
        Take::Render
    } else if nums || text {
        Take::Nums
    } else {
        Take::Ints
    };
    (take, walked)
}

/// The kinds of `r`'s first `slots` format arguments, as
/// [`arg_kinds`](super::site_shape::arg_kinds) gives them from
/// [`RecordRef::args`], read still encoded: a string's bytes collected
/// without decoding it (its UTF-8 is not checked again: validation did,
/// and only which bytes it has matters here).
#[cfg(test)]
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
    use crate::set_sites::verdict_for;
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

    /// Guards: none (text renders), empty, and each holding one byte of
    /// the test's strings and bools (`h` of "héllo", `é`'s first byte,
    /// `t` of "true").
    fn guards() -> [Option<crate::site_shape::Bytes>; 5] {
        let one = |b: u8| {
            let mut g = [0; 4];
            crate::site_shape::add(&mut g, b);
            Some(g)
        };
        [None, Some([0; 4]), one(b'h'), one(0xc3), one(b't')]
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
                let kinds = raw_arg_kinds(r, slots);
                assert_eq!(
                    kinds,
                    crate::site_shape::arg_kinds(r.args(), slots),
                    "{slots} slots of {:?}",
                    r.to_record()
                );
                // The one-pass verdict is the verdict of the kinds, for
                // guards that catch the strings' bytes or not.
                for guard in guards() {
                    let site = Site {
                        slots,
                        ints: Verdict::Decided(vec![1].into()),
                        nums: Verdict::Decided(vec![2].into()),
                        guard,
                    };
                    assert_eq!(
                        raw_verdict(&site, r),
                        verdict_for(&site, kinds),
                        "{slots} slots, guard {guard:?} of {:?}",
                        r.to_record()
                    );
                    // Its walk, continued, ends where the fields start.
                    assert_eq!(
                        past_args(r, walk_verdict(&site, r).1),
                        past_args(r, None),
                        "{slots} slots, guard {guard:?} of {:?}",
                        r.to_record()
                    );
                }
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

    #[test]
    fn split_takes_what_read_value_takes_on_every_tag() {
        // Every tag byte, then short tails of bytes that are valid and
        // invalid bools, small string lengths and ASCII (so UTF-8, which
        // `split` does not check, never decides): the same value length
        // accepted, the same tag, or both refuse.
        let alphabet = [0u8, 1, 2, 3, 5, 0xff, b'a'];
        let mut rng = fastrand::Rng::with_seed(17);
        for t in 0..=255u8 {
            for round in 0..400 {
                let len = round % 14;
                let mut b = vec![t];
                b.extend((0..len).map(|_| alphabet[rng.usize(..alphabet.len())]));
                let got = split(&b).map(|(raw, rest)| (raw.tag, rest.len()));
                let want = distlog_core::wire::read_value(&b).map(|(_, rest)| (t, rest.len()));
                assert_eq!(got, want, "{b:?}");
            }
        }
    }
}
