//! The embedded store: append-only segment files of batches, exactly as
//! they arrived, so readers access them zero-copy.
//!
//! # Format
//!
//! A data directory holds segment files `seg-<first ns, 20 digits>-<n>.dls`.
//! Each starts with the 8 bytes `DLSEG\0\0\x01` and holds entries:
//!
//! ```text
//! u32 LE  length L of the payload
//! u32 LE  crc32 (IEEE) of the payload
//! payload: 3-byte topic, 5 zero bytes, the batch body (its own 8-byte
//!          prefix and rkyv archive), zero padding to a multiple of 8
//! ```
//!
//! so every batch body starts 8-byte aligned in the file. A reader stops at
//! the first entry that is truncated or fails its checksum: a torn tail
//! after a crash. At start the broker truncates the newest segment to its
//! last good entry ([`recover`]).
//!
//! [`Reader`] is the one reader of this format (the broker, the `distlog`
//! CLI and the tests use it): it maps closed segments and reads the newest
//! one, which the writer may still truncate ([`Reader::load_segment`]).
//!
//! # Durability (fsync policy)
//!
//! Every batch is written (one `write`) as the store processor takes it,
//! so a crash of the broker loses nothing the store took (what was still
//! queued in front of it is lost; SIGTERM drains the queue first). A crash
//! of the machine loses what was written since the last `fsync`, and the
//! policy ([`SyncPolicy`], config `fsync`) decides when that is:
//! `always` after every batch; `interval` (the default) at most
//! `fsync_interval` (1 s) after a write, on rotation and at shutdown;
//! `never` only on rotation and at shutdown.
//!
//! Segments rotate by size (64 MiB) and age (1 h); retention deletes the
//! oldest segments by age and total size ([`Retention`]), never the one
//! being written. A failed write (disk full) is cut back so the segment
//! stays readable, and reported; the batch counts as dropped by the store.
//!
//! ```
//! use distlog::wire::{encode_batch_to_vec, Batch};
//! use distlogd::store::{Reader, Writer};
//!
//! let dir = std::env::temp_dir().join(format!("distlogd-doc-{}", std::process::id()));
//! let mut w = Writer::open(&dir, 64 << 20)?;
//! let body = encode_batch_to_vec(&Batch::default());
//! w.append(*b"PLR", &body)?;
//! w.sync()?;
//! let stored: usize = Reader::open_dir(&dir)?
//!     .iter()
//!     .map(|(_, r)| r.batches().filter(|b| b.is_ok()).count())
//!     .sum();
//! assert_eq!(stored, 1);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod reader;
mod retention;
mod writer;

pub use reader::{Access, Reader, StoredBatch};
pub use retention::{apply as apply_retention, Retention};
pub use writer::{recover, Options, SyncPolicy, Writer};

pub(crate) const MAGIC: [u8; 8] = *b"DLSEG\0\0\x01";
pub(crate) const ENTRY_HEADER: usize = 8;
pub(crate) const TOPIC_PAD: usize = 8;

/// How far a record's time may lie before its arrival (client buffering,
/// clock skew between hosts) and still be found by a time-bounded read
/// ([`Segment::may_hold`]): five minutes.
pub const TIME_SLACK_NS: u64 = 300 * 1_000_000_000;

/// A segment file and the span of arrival times it covers.
///
/// A segment is named for when the broker opened it and holds what arrived
/// between then and when the next one was opened. A record's time is its
/// sender's clock when it was logged, normally a little before it arrived,
/// so [`Segment::may_hold`] allows [`TIME_SLACK_NS`] around the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The file.
    pub path: std::path::PathBuf,
    /// When the broker opened it (from the name); 0 when the name has none.
    pub first_ns: u64,
    /// When the next segment was opened: this one ends before. `None` for
    /// the newest one.
    pub next_ns: Option<u64>,
}

impl Segment {
    /// Every segment of `dir`, oldest first, with its span.
    pub fn list(dir: &std::path::Path) -> std::io::Result<Vec<Segment>> {
        let paths = segments(dir)?;
        let firsts: Vec<Option<u64>> = paths.iter().map(|p| first_ns(p)).collect();
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| Segment {
                path,
                first_ns: firsts[i].unwrap_or(0),
                next_ns: firsts.get(i + 1).copied().flatten(),
            })
            .collect())
    }

    /// Whether this is the newest segment, the one the broker may still be
    /// writing (and truncating).
    pub fn is_newest(&self) -> bool {
        self.next_ns.is_none()
    }

    /// Whether the segment may hold records timed in `[since, until)`:
    /// false only when its whole arrival span lies more than
    /// [`TIME_SLACK_NS`] outside the range.
    pub fn may_hold(&self, since: u64, until: u64) -> bool {
        let ends_before = self
            .next_ns
            .is_some_and(|next| next.saturating_add(TIME_SLACK_NS) < since);
        let starts_after = self.first_ns > until.saturating_add(TIME_SLACK_NS);
        !ends_before && !starts_after
    }
}

/// The first ns of a segment's file name (`seg-<first ns>-<n>.dls`).
fn first_ns(path: &std::path::Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("seg-")?;
    rest.split('-').next()?.parse().ok()
}

/// Lists the segment files of `dir`, oldest first.
pub fn segments(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".dls"))
        })
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn seg(first: u64, next: Option<u64>) -> Segment {
        Segment {
            path: PathBuf::from(format!("seg-{first:020}-000000.dls")),
            first_ns: first,
            next_ns: next,
        }
    }

    #[test]
    fn names_and_time_spans() {
        assert_eq!(
            first_ns(Path::new("/d/seg-00000000000000000042-000007.dls")),
            Some(42)
        );
        assert_eq!(first_ns(Path::new("/d/other")), None);
        let s = 1_000 * TIME_SLACK_NS;
        let segs = [seg(0, Some(s)), seg(s, Some(2 * s)), seg(2 * s, None)];
        let firsts = |since, until| {
            segs.iter()
                .filter(|g| g.may_hold(since, until))
                .map(|g| g.first_ns)
                .collect::<Vec<_>>()
        };
        assert_eq!(firsts(0, u64::MAX), [0, s, 2 * s]);
        // Only the newest can hold records after 3s.
        assert_eq!(firsts(3 * s, u64::MAX), [2 * s]);
        // Records near a boundary may sit in the segment before or after it.
        assert_eq!(firsts(s + 1, 2 * s - 1), [0, s, 2 * s]);
        let slack = 2 * TIME_SLACK_NS;
        assert_eq!(firsts(s + slack, 2 * s - slack), [s]);
        assert_eq!(firsts(0, s / 2), [0]);
        assert_eq!(firsts(0, s - 1), [0, s]);
    }
}
