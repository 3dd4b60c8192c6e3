//! Checking a received body before anything reads it: the prefix, the
//! archive (what `rkyv::access` checks, by `check.rs`), every record's indexes and values, and the cost
//! bounds of [`crate::limits`].

use super::batch::{ArchivedSite, ArchivedWireBatch};
use super::check::{check_archive, sender_of};
use super::frame::{archive_of, ArchivedSender, ErrorKind, WireError};
use super::values::{Shape, SHAPE_WINDOW};
use crate::limits;

/// A validated batch: what [`access_batch`] and
/// [`OwnedBatch::get`](super::OwnedBatch::get) return. Read it through the
/// accessors of [`crate::view`] (`records()`, `sender()`, ...), which join
/// each record with its call site and thread.
pub type BatchRef<'a> = &'a ArchivedWireBatch;

/// Checks the prefix, validates the archive, every record's indexes and
/// values, and the cost bounds of [`crate::limits`] (expanded size, name
/// lengths, fields per record, task depth), and returns the batch.
/// `body` must start at an 8-byte aligned address (a buffer from
/// [`rkyv::util::AlignedVec`], or see [`OwnedBatch`](super::OwnedBatch));
/// a misaligned body is rejected as invalid rather than read.
///
/// Two passes over the records (the archive check, then these), no
/// allocation. A record's own strings
/// (task, message, error, values) are bytes of the body that no other
/// record claims (the archive check rejects overlapping claims), so together they
/// are at most the body's size and are not summed; what is summed per
/// record is what it shares: its site's strings (those of the first
/// [`SITE_CACHE`] sites summed once into an array on the stack), and the
/// sender's names and the longest thread name, an upper bound on its
/// thread's.
pub fn access_batch(body: &[u8]) -> Result<BatchRef<'_>, WireError> {
    // The archive check first, then the record checks: fused into one
    // pass they measured slower (callgrind, 265 against 240 instructions
    // a record of `distlog loadgen`'s), the loop holding too much at once.
    let archive = archive_of(body)?;
    let batch = check_archive(archive).ok_or(WireError::new(ErrorKind::Invalid))?;
    debug_assert!(
        rkyv::access::<ArchivedWireBatch, rkyv::rancor::Failure>(archive)
            .is_ok_and(|b| std::ptr::eq(b, batch)),
        "check_archive accepted an archive rkyv refuses"
    );
    let mut thread_name = 0;
    for t in batch.threads.iter() {
        thread_name = thread_name.max(t.name.len());
    }
    if thread_name > limits::MAX_NAME {
        return Err(WireError::new(ErrorKind::NameTooLong));
    }
    let per_record = sender_cost(&batch.sender)? + thread_name as u64;
    let mut cached = [0u64; SITE_CACHE];
    for (c, s) in cached.iter_mut().zip(batch.sites.iter()) {
        *c = site_cost(s);
    }
    // The records' own bytes are within the body: the shared ones get
    // the rest of the budget.
    let budget = limits::budget(body.len()) - body.len() as u64;
    let mut shared = 0u64;
    let first = batch.first_seq.to_native();
    // One shape per call site, for the first few sites (records of
    // several sites interleave).
    let mut shapes: [Shape; 4] = Default::default();
    for (i, r) in batch.records.iter().enumerate() {
        if r.seq.to_native() != first.wrapping_add(i as u64) {
            return Err(WireError::new(ErrorKind::SequenceMismatch));
        }
        let ix = r.site.to_native() as usize;
        if ix >= batch.sites.len() {
            return Err(WireError::new(ErrorKind::BadSite));
        }
        if r.thread.to_native() as usize >= batch.threads.len() {
            return Err(WireError::new(ErrorKind::BadThread));
        }
        let values: &[u8] = &r.values;
        let shape = &mut shapes[ix % 4];
        // A hit is a record of the same site, so of the same leading
        // count, shaped as one that passed every check below.
        if shape.hit(ix, values, window(body, values)).is_none() {
            let site = &batch.sites[ix];
            let fixed = site.args.to_native() as usize + site.keys.len();
            let Some(n) = shape.count_in_full(ix, values, fixed) else {
                return Err(WireError::new(ErrorKind::BadValues));
            };
            // Arguments and site keys, then the bound (key, value) pairs.
            if fixed + (n - fixed) / 2 > limits::MAX_FIELDS {
                return Err(WireError::new(ErrorKind::TooManyFields));
            }
        }
        if !limits::task_ok(&r.task) {
            return Err(WireError::new(ErrorKind::TaskTooDeep));
        }
        shared += per_record
            + match cached.get(ix) {
                Some(&c) => c,
                None => site_cost(&batch.sites[ix]),
            };
    }
    // Checked once: the loop itself is linear in the body (each record is
    // in it, and a site's strings are summed per record only past the
    // cache, where its keys are also values the record carries).
    if shared > budget {
        return Err(WireError::new(ErrorKind::TooExpanded));
    }
    Ok(batch)
}

/// The sender of a batch body, after checking only the prefix, the
/// archive's root position and the sender's strings: for a reader that
/// skips whole batches on their sender (`distlog query` with a filter on
/// `host`, `process`, `pid` or `system`) without checking their records.
/// A body that fails here fails [`access_batch`] with the same error; one
/// that passes may still fail it.
pub fn access_sender(body: &[u8]) -> Result<&ArchivedSender, WireError> {
    sender_of(archive_of(body)?).ok_or(WireError::new(ErrorKind::Invalid))
}

/// `values` (bytes of `body`) followed by the rest of [`SHAPE_WINDOW`]
/// bytes of `body`, when `body` holds that many from there: what a shape
/// reads as whole words. Usually it does (rkyv writes the records' array
/// and the root after every record's values).
#[inline(always)]
fn window<'a>(body: &'a [u8], values: &[u8]) -> Option<&'a [u8; SHAPE_WINDOW]> {
    let at = (values.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    body.get(at..)?.first_chunk()
}

/// How many sites' string sizes [`access_batch`] keeps on the stack.
const SITE_CACHE: usize = 64;

/// Checks the sender's names against [`limits::MAX_NAME`] and returns
/// their bytes, which every record of the batch refers to.
#[inline]
fn sender_cost(s: &ArchivedSender) -> Result<u64, WireError> {
    let (host, program) = (s.host.len(), s.program.len());
    if host > limits::MAX_NAME || program > limits::MAX_NAME {
        return Err(WireError::new(ErrorKind::NameTooLong));
    }
    Ok((host + program) as u64)
}

/// The bytes of a site's strings: what each record referring to it adds
/// to the batch's expanded size.
#[inline]
fn site_cost(s: &ArchivedSite) -> u64 {
    let keys: usize = s.keys.iter().map(|k| k.len()).sum();
    (s.target.len() + s.module.len() + s.file.len() + s.func.len() + s.format.len() + keys) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{tag, Sender, Site, Thread, WireBatch, WireRecord};
    use rkyv::util::AlignedVec;

    fn values(s: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.push(tag::U64);
        v.extend_from_slice(&s.to_le_bytes());
        v.push(tag::STR);
        v.extend_from_slice(&5u32.to_le_bytes());
        v.extend_from_slice(b"value");
        v.push(tag::BOOL);
        v.push(1);
        v
    }

    fn sample(n: u64) -> WireBatch {
        WireBatch {
            sender: Sender {
                host: "web-1".into(),
                pid: 7,
                program: "p".into(),
                start_ns: 1,
                instance: 9,
            },
            first_seq: 100,
            dropped: 0,
            sites: vec![Site {
                target: "http".into(),
                module: "app::http".into(),
                file: "src/http.rs".into(),
                line: 12,
                format: "served {}".into(),
                args: 1,
                keys: vec!["route".into(), "ok".into()],
                ..Site::default()
            }],
            threads: vec![Thread {
                id: 42,
                name: "worker-1".into(),
            }],
            records: (0..n)
                .map(|i| WireRecord {
                    time_ns: 1_700_000_000_000_000_000 + i,
                    seq: 100 + i,
                    level: 20,
                    kind: b'L',
                    values: values(i),
                    ..WireRecord::default()
                })
                .collect(),
        }
    }

    fn encode(b: &WireBatch) -> AlignedVec {
        b.to_body()
    }

    #[test]
    fn round_trips_and_checks_indexes_and_values() {
        let body = encode(&sample(3));
        let b = access_batch(&body).unwrap();
        assert_eq!(b.records.len(), 3);
        assert_eq!(
            b.sites[b.records[2].site.to_native() as usize].target,
            "http"
        );
        assert_eq!(&b.records[1].values[..], &values(1)[..]);
    }

    #[test]
    fn bound_fields_come_in_key_value_pairs() {
        let mut b = sample(1);
        let mut v = values(0);
        v.push(tag::STR);
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(b"user");
        v.push(tag::I64);
        v.extend_from_slice(&(-3i64).to_le_bytes());
        b.records[0].values = v.clone();
        assert!(access_batch(&encode(&b)).is_ok());
        // A key without its value.
        v.push(tag::STR);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.push(b'k');
        b.records[0].values = v;
        assert_eq!(
            access_batch(&encode(&b)).unwrap_err().reason(),
            "bad_values"
        );
    }

    #[test]
    fn rejects_bad_prefix_and_archive_bytes() {
        let bytes = encode(&sample(2));
        let reason = |b: &[u8]| {
            let mut v = AlignedVec::<16>::new();
            v.extend_from_slice(b);
            access_batch(&v).unwrap_err().reason()
        };
        assert_eq!(reason(&bytes[..5]), "truncated");
        let mut bad = bytes.to_vec();
        bad[0] = b'X';
        assert_eq!(reason(&bad), "bad_magic");
        // Any other version, the retired version 1 included.
        for version in [0, 1, 3, 9] {
            let mut bad = bytes.to_vec();
            bad[3] = version;
            assert_eq!(reason(&bad), "bad_version");
        }
        assert_eq!(reason(&bytes[..bytes.len() - 1]), "bad_length");
        // Corrupt the root's relative pointers: validation must catch it.
        let mut bad = bytes.to_vec();
        let n = bad.len();
        for b in &mut bad[n - 16..] {
            *b = 0xff;
        }
        assert_eq!(reason(&bad), "invalid");
    }

    #[test]
    fn rejects_bad_indexes_values_and_sequences_by_reason() {
        type Spoil = fn(&mut WireBatch);
        let cases: [(&str, Spoil); 8] = [
            ("bad_site", |b| b.records[1].site = 1),
            ("bad_thread", |b| b.records[0].thread = 3),
            ("bad_values", |b| b.records[0].values.push(9)),
            ("bad_values", |b| b.records[0].values.truncate(5)),
            ("bad_values", |b| {
                // A string whose length runs past the end.
                b.records[0].values = vec![tag::STR, 0xff, 0xff, 0xff, 0x7f, b'a'];
            }),
            ("bad_values", |b| {
                // Invalid UTF-8 in the second (str) value.
                let v = &mut b.records[0].values;
                v[14] = 0xff;
            }),
            ("bad_values", |b| b.records[0].values.truncate(9)),
            ("sequence_mismatch", |b| b.records[1].seq = 7),
        ];
        for (want, spoil) in cases {
            let mut b = sample(2);
            spoil(&mut b);
            let err = access_batch(&encode(&b)).unwrap_err();
            assert_eq!(err.reason(), want, "{err}");
        }
    }

    #[test]
    fn rejects_batches_over_the_cost_bounds_by_reason() {
        // Many records pointing at one long site target: small on the
        // wire, large for every reader that renders the records.
        let mut b = sample(2000);
        b.sites[0].target = "t".repeat(64 * 1024);
        let body = encode(&b);
        let err = access_batch(&body).unwrap_err();
        assert_eq!(err.reason(), "too_expanded", "{err}");
        // The same site with few records is fine.
        let mut b = sample(4);
        b.sites[0].target = "t".repeat(64 * 1024);
        assert!(access_batch(&encode(&b)).is_ok());

        type Spoil = fn(&mut WireBatch);
        let cases: [(&str, Spoil); 6] = [
            ("name_too_long", |b| b.sender.host = "h".repeat(256)),
            ("name_too_long", |b| b.sender.program = "p".repeat(256)),
            ("name_too_long", |b| b.threads[0].name = "n".repeat(256)),
            ("too_many_fields", |b| {
                b.sites[0].keys = (0..limits::MAX_FIELDS).map(|i| i.to_string()).collect();
                for r in &mut b.records {
                    r.values = vec![tag::NULL; limits::MAX_FIELDS + 1];
                }
            }),
            ("task_too_deep", |b| {
                b.records[1].task = format!("root{}", "/1".repeat(limits::MAX_TASK_DEPTH + 1))
            }),
            ("task_too_deep", |b| {
                b.records[0].task = "x".repeat(limits::MAX_TASK_LEN + 1)
            }),
        ];
        for (want, spoil) in cases {
            let mut b = sample(2);
            spoil(&mut b);
            let err = access_batch(&encode(&b)).unwrap_err();
            assert_eq!(err.reason(), want, "{err}");
        }
        // At the caps, accepted.
        let mut b = sample(2);
        b.sender.host = "h".repeat(limits::MAX_NAME);
        b.records[0].task = format!("root{}", "/1".repeat(limits::MAX_TASK_DEPTH));
        assert!(access_batch(&encode(&b)).is_ok());
    }
}
