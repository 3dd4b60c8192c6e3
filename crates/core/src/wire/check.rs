//! The archive check of [`access_batch`](super::access_batch): what rkyv's
//! `access` (bytecheck with its archive validator) checks of a
//! [`WireBatch`](super::WireBatch) archive, in one pass over byte offsets,
//! with no `unsafe` and no generic validator state.
//!
//! rkyv checks every object of the archive the same way, field by field in
//! declaration order, through a subtree range `[lo, hi)` (byte offsets in
//! the archive here):
//!
//! - the root lies at the end (`len - size_of::<ArchivedWireBatch>()`);
//! - an object reached through a relative pointer (a string's bytes, a
//!   vector's elements, even an empty one) must lie within `[lo, hi)`,
//!   aligned for its type; what *it* points to must lie in `[lo, start)`
//!   (before it), and once it is checked `lo` moves past its end. So
//!   claims never overlap, which [`access_batch`](super::access_batch)'s
//!   cost bound relies on;
//! - a string is inline (first byte's top bits not `10`: up to 8 bytes,
//!   ended by `0xff`) or out of line (length above 8, bytes elsewhere), and
//!   its bytes are UTF-8;
//! - every other field (integers, `u8`) is valid for any bits.
//!
//! The same rules written for this one type, so no per-field dispatch or
//! error building: `tests` checks that both agree on the fuzz corpora and
//! on many corrupted batches.

use super::batch::{ArchivedSite, ArchivedThread, ArchivedWireBatch, ArchivedWireRecord};
use super::frame::ArchivedSender;
use core::mem::{align_of, offset_of, size_of};
use rkyv::string::ArchivedString;

/// Whether `archive` (8-aligned, as [`access_batch`](super::access_batch)
/// requires) is a valid `WireBatch` archive by rkyv's rules.
pub(super) fn archive_ok(archive: &[u8]) -> bool {
    let root = archive.len().saturating_sub(size_of::<ArchivedWireBatch>());
    let mut w = Walk {
        b: archive,
        base: archive.as_ptr() as usize,
        lo: 0,
        hi: archive.len(),
    };
    w.object(
        root,
        size_of::<ArchivedWireBatch>(),
        align_of::<ArchivedWireBatch>(),
        |w| w.batch(root),
    )
}

/// The subtree range and the bytes.
struct Walk<'a> {
    b: &'a [u8],
    /// The archive's address, for alignment.
    base: usize,
    lo: usize,
    hi: usize,
}

/// Offsets of a string's and a vector's parts.
const VEC_LEN: usize = 4;
const STRING_SIZE: usize = size_of::<ArchivedString>();

impl Walk<'_> {
    /// The u32 at `at`, which lies in an object already claimed.
    #[inline(always)]
    fn u32_at(&self, at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.b[at..at + 4]);
        u32::from_le_bytes(w)
    }

    /// Where the relative pointer at `at` (an `i32` from `base`) points,
    /// if within the archive's address space at all.
    #[inline(always)]
    fn target(&self, base: usize, at: usize) -> Option<usize> {
        let off = self.u32_at(at) as i32 as isize;
        base.checked_add_signed(off)
    }

    /// Claims `[start, start + size)` aligned to `align` within the range,
    /// checks what it points to with `inner` (in the range before it), and
    /// moves the range past it.
    #[inline(always)]
    fn object(
        &mut self,
        start: usize,
        size: usize,
        align: usize,
        inner: impl FnOnce(&mut Self) -> bool,
    ) -> bool {
        let Some(end) = start.checked_add(size) else {
            return false;
        };
        if start < self.lo || end > self.hi || (self.base + start) % align != 0 {
            return false;
        }
        let hi = self.hi;
        self.hi = start;
        if !inner(self) {
            return false;
        }
        self.lo = end;
        self.hi = hi;
        true
    }

    /// The string whose 8-byte representation is at `at`.
    #[inline(always)]
    fn string(&mut self, at: usize) -> bool {
        let repr = &self.b[at..at + STRING_SIZE];
        if repr[0] & 0xc0 != 0x80 {
            let len = repr.iter().position(|&x| x == 0xff).unwrap_or(STRING_SIZE);
            return std::str::from_utf8(&repr[..len]).is_ok();
        }
        let raw = self.u32_at(at);
        let len = ((raw & 0x3f) | ((raw & !0xff) >> 2)) as usize;
        if len <= STRING_SIZE {
            return false;
        }
        let Some(start) = self.target(at, at + 4) else {
            return false;
        };
        self.object(start, len, 1, |w| {
            std::str::from_utf8(&w.b[start..start + len]).is_ok()
        })
    }

    /// The vector at `at` of `T` (`size`, `align`), each element checked by
    /// `each` at its offset.
    #[inline(always)]
    fn vec<T>(&mut self, at: usize, mut each: impl FnMut(&mut Self, usize) -> bool) -> bool {
        let Some(start) = self.target(at, at) else {
            return false;
        };
        let n = self.u32_at(at + VEC_LEN) as usize;
        let size = size_of::<T>();
        let Some(bytes) = n.checked_mul(size) else {
            return false;
        };
        self.object(start, bytes, align_of::<T>(), |w| {
            (0..n).all(|i| each(w, start + i * size))
        })
    }

    fn batch(&mut self, at: usize) -> bool {
        self.sender(at + offset_of!(ArchivedWireBatch, sender))
            && self.vec::<ArchivedSite>(at + offset_of!(ArchivedWireBatch, sites), Self::site)
            && self.vec::<ArchivedThread>(at + offset_of!(ArchivedWireBatch, threads), |w, t| {
                w.string(t + offset_of!(ArchivedThread, name))
            })
            && self.vec::<ArchivedWireRecord>(
                at + offset_of!(ArchivedWireBatch, records),
                Self::record,
            )
    }

    fn sender(&mut self, at: usize) -> bool {
        self.string(at + offset_of!(ArchivedSender, host))
            && self.string(at + offset_of!(ArchivedSender, program))
    }

    fn site(&mut self, at: usize) -> bool {
        self.string(at + offset_of!(ArchivedSite, target))
            && self.string(at + offset_of!(ArchivedSite, module))
            && self.string(at + offset_of!(ArchivedSite, file))
            && self.string(at + offset_of!(ArchivedSite, func))
            && self.string(at + offset_of!(ArchivedSite, format))
            && self.vec::<ArchivedString>(at + offset_of!(ArchivedSite, keys), Self::string)
    }

    #[inline(always)]
    fn record(&mut self, at: usize) -> bool {
        self.string(at + offset_of!(ArchivedWireRecord, task))
            && self.string(at + offset_of!(ArchivedWireRecord, message))
            && self.string(at + offset_of!(ArchivedWireRecord, error))
            && self.vec::<u8>(at + offset_of!(ArchivedWireRecord, values), |_, _| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::wire::{
        encode_batch_to_vec, tag, Batch, Sender, Site, Thread, WireBatch, WireRecord,
    };
    use rkyv::rancor;
    use rkyv::util::AlignedVec;

    /// What rkyv's own validator says of `archive`.
    fn rkyv_ok(archive: &[u8]) -> bool {
        rkyv::access::<ArchivedWireBatch, rancor::Failure>(archive).is_ok()
    }

    fn aligned(bytes: &[u8]) -> AlignedVec<16> {
        let mut v = AlignedVec::<16>::new();
        v.extend_from_slice(bytes);
        v
    }

    /// Both validators on `archive`, at an aligned and a misaligned address.
    fn agree(archive: &[u8]) -> bool {
        let a = aligned(archive);
        let ours = archive_ok(&a);
        assert_eq!(ours, rkyv_ok(&a), "aligned, {} bytes", archive.len());
        let mut shifted = AlignedVec::<16>::new();
        shifted.extend_from_slice(&[0; 4]);
        shifted.extend_from_slice(archive);
        assert_eq!(
            archive_ok(&shifted[4..]),
            rkyv_ok(&shifted[4..]),
            "misaligned"
        );
        ours
    }

    fn rich() -> WireBatch {
        WireBatch {
            sender: Sender {
                host: "web-1.example.com".into(),
                pid: 7,
                program: "p".into(),
                start_ns: 1,
                instance: 9,
            },
            first_seq: 3,
            dropped: 1,
            sites: vec![
                Site {
                    target: "http".into(),
                    module: "app::http::server".into(),
                    file: "src/http/server.rs".into(),
                    func: "serve_one_request".into(),
                    line: 12,
                    format: "served {} in {} µs".into(),
                    args: 2,
                    keys: vec!["route".into(), "a-longer-key-name".into(), String::new()],
                },
                Site::default(),
            ],
            threads: vec![
                Thread {
                    id: 1,
                    name: "main".into(),
                },
                Thread {
                    id: 2,
                    name: "worker-thread-7".into(),
                },
            ],
            records: (0..5)
                .map(|i| WireRecord {
                    time_ns: i,
                    seq: 3 + i,
                    site: (i % 2) as u32,
                    thread: (i % 2) as u32,
                    task: if i == 2 {
                        "root/1/2/3/4".into()
                    } else {
                        String::new()
                    },
                    message: "é".repeat(i as usize * 5),
                    error: if i == 4 {
                        "an error that is long".into()
                    } else {
                        String::new()
                    },
                    values: {
                        let mut v = vec![tag::STR, 3, 0, 0, 0];
                        v.extend_from_slice(b"abc");
                        v.truncate(i as usize * 2);
                        v
                    },
                    ..WireRecord::default()
                })
                .collect(),
        }
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn agrees_with_rkyv_on_valid_batches() {
        let small = encode_batch_to_vec(&Batch {
            records: vec![Record {
                message: "hello".into(),
                ..Record::default()
            }],
            ..Batch::default()
        });
        for body in [rich().to_body(), WireBatch::default().to_body(), small] {
            assert!(agree(&body[8..]));
        }
        // Every truncation and extension of the archive.
        let body = rich().to_body();
        let archive = &body[8..];
        for n in 0..archive.len() {
            agree(&archive[..n]);
        }
        let mut longer = archive.to_vec();
        longer.extend_from_slice(&[0; 24]);
        for n in archive.len()..longer.len() {
            agree(&longer[..n]);
        }
    }

    #[test]
    fn agrees_with_rkyv_on_corrupted_batches() {
        let body = rich().to_body();
        let archive = &body[8..];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut rejected) = (0, 0);
        // Every byte set to a few telling values, then random corruptions
        // of one to four bytes.
        for i in 0..archive.len() {
            for v in [
                0x00,
                0x01,
                0x08,
                0x7f,
                0x80,
                0x88,
                0xc3,
                0xff,
                archive[i] ^ 0x04,
            ] {
                let mut a = archive.to_vec();
                a[i] = v;
                if agree(&a) {
                    accepted += 1
                } else {
                    rejected += 1
                }
            }
        }
        for _ in 0..20_000 {
            let mut a = archive.to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % a.len();
                a[i] = rng.next() as u8;
            }
            if agree(&a) {
                accepted += 1
            } else {
                rejected += 1
            }
        }
        // Both kinds were exercised.
        assert!(
            accepted > 1000 && rejected > 1000,
            "{accepted} / {rejected}"
        );
    }

    #[test]
    fn agrees_with_rkyv_on_the_fuzz_corpora() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let mut n = 0;
        for corpus in ["batch_decode", "expansion_bound"] {
            for entry in std::fs::read_dir(root.join(corpus)).expect("fuzz corpus") {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                // The fuzz targets take a body; some entries are raw bytes.
                agree(&data);
                if data.len() >= 8 {
                    agree(&data[8..]);
                }
                n += 1;
            }
        }
        assert!(n >= 10, "{n} corpus entries");
    }
}
