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
//! # Durability (fsync policy)
//!
//! Every batch is written (one `write`) before the next message is taken,
//! so a crash of the broker loses nothing it stored; a crash of the
//! machine loses at most what was written since the last `fsync`, which
//! happens at least once a second, on rotation, and at shutdown.
//! Segments rotate at 64 MiB (configurable).
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
mod writer;

pub use reader::{Reader, StoredBatch};
pub use writer::{recover, Writer};

pub(crate) const MAGIC: [u8; 8] = *b"DLSEG\0\0\x01";
pub(crate) const ENTRY_HEADER: usize = 8;
pub(crate) const TOPIC_PAD: usize = 8;

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
