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
//! By default ([`Options::direct`], config `direct_io`) batches are
//! gathered into a 1 MiB aligned buffer and written with `O_DIRECT`, past
//! the page cache (module `direct`: the aligned part directly, the
//! unaligned tail through the page cache and rewritten in place by the
//! next direct write, so the file holds exactly the bytes above). A batch
//! waits there at most `direct_io_wait` (2 ms), and is counted as written
//! and acknowledged only once it is in the file ([`Writer::on_file`]); a
//! crash of the broker loses what waits, none of it acknowledged. With
//! `direct_io: false` (and where the file system refuses `O_DIRECT`) every
//! batch is written (one `write`) as the store processor takes it, so a
//! crash of the broker loses nothing the store took. Either way, what was
//! still queued in front of the store is lost; SIGTERM drains the queue
//! and writes what waits first. A crash
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
//! use distlog_core::wire::{encode_batch_to_vec, Batch};
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

pub(crate) mod direct;
mod reader;
mod retention;
mod segment;
mod writer;

pub use reader::{Access, Reader, StoredBatch};
pub use retention::{apply as apply_retention, Retention};
pub use segment::{segments, Segment, TIME_SLACK_NS};
pub use writer::{recover, Options, SyncPolicy, Writer, DIRECT_WAIT};

/// A fresh, empty directory path under the system's temporary one (ext4
/// here, which takes `O_DIRECT`), unique to this process and `name`.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("distlog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
