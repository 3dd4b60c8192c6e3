//! Reading segments back, zero-copy after validation.

use super::{segments, ENTRY_HEADER, MAGIC, TOPIC_PAD};
use distlog::wire::{BatchRef, Topic, WireError};
use rkyv::util::AlignedVec;
use std::io;
use std::path::{Path, PathBuf};

/// One segment's bytes, aligned, with the entries that passed their
/// checksums.
pub struct Reader {
    bytes: AlignedVec,
    end: usize,
    /// Bytes after the last good entry (a torn tail), 0 when clean.
    pub torn: usize,
}

/// A stored batch: its topic and the validated, zero-copy batch.
pub struct StoredBatch<'a> {
    /// The topic it arrived under.
    pub topic: Topic,
    /// The batch.
    pub batch: BatchRef<'a>,
}

impl Reader {
    /// Reads the segment at `path`.
    pub fn open(path: &Path) -> io::Result<Reader> {
        let raw = std::fs::read(path)?;
        let mut bytes = AlignedVec::with_capacity(raw.len());
        bytes.extend_from_slice(&raw);
        let end = valid_prefix(&bytes);
        Ok(Reader {
            torn: bytes.len() - end,
            bytes,
            end,
        })
    }

    /// Every segment of a data directory, oldest first.
    pub fn open_dir(dir: &Path) -> io::Result<Vec<(PathBuf, Reader)>> {
        segments(dir)?
            .into_iter()
            .map(|p| Reader::open(&p).map(|r| (p, r)))
            .collect()
    }

    /// The batches, in order. An entry whose batch fails validation is
    /// returned as an error (it passed its checksum, so it was stored so).
    pub fn batches(&self) -> impl Iterator<Item = Result<StoredBatch<'_>, WireError>> {
        let mut pos = if self.end >= MAGIC.len() {
            MAGIC.len()
        } else {
            self.end
        };
        std::iter::from_fn(move || {
            if pos + ENTRY_HEADER > self.end {
                return None;
            }
            let len = u32::from_le_bytes(self.bytes[pos..pos + 4].try_into().ok()?) as usize;
            let payload = &self.bytes[pos + ENTRY_HEADER..pos + ENTRY_HEADER + len];
            pos += ENTRY_HEADER + len;
            let topic = match Topic::parse(&payload[..3]) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            let body = trim_body(&payload[TOPIC_PAD..]);
            Some(distlog::wire::access_batch(body).map(|batch| StoredBatch { topic, batch }))
        })
    }
}

/// A body may be followed by up to 7 padding bytes; its own length field
/// says where it ends.
fn trim_body(b: &[u8]) -> &[u8] {
    if b.len() < 8 {
        return b;
    }
    let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    &b[..(8 + len).min(b.len())]
}

/// Length of the longest prefix of whole, checksummed entries.
pub(crate) fn valid_prefix(bytes: &[u8]) -> usize {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return 0;
    }
    let mut pos = MAGIC.len();
    while pos + ENTRY_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or([0; 4])) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or([0; 4]));
        let Some(end) = (pos + ENTRY_HEADER).checked_add(len) else {
            break;
        };
        if len < TOPIC_PAD
            || end > bytes.len()
            || crc32fast::hash(&bytes[pos + ENTRY_HEADER..end]) != crc
        {
            break;
        }
        pos = end;
    }
    pos
}
