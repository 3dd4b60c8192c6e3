//! Reading segments back, zero-copy after validation.
//!
//! A [`Reader`] holds one segment's bytes, either memory-mapped (read-only,
//! pre-faulted with `MAP_POPULATE`, so nothing is copied out of the page
//! cache) or read into an aligned buffer that it reuses from segment to
//! segment. Entries are checked as they are read: a bad checksum or a
//! truncated entry ends the segment (a torn tail, or the entry the broker
//! is writing right now), and every batch is validated before it is read.
//!
//! Only closed segments are mapped ([`Access::Map`]): the newest one, which
//! the broker may still be writing, is read ([`Access::Read`]). A writer
//! truncates its live segment (`set_len` after a failed write, torn-tail
//! recovery at start), and touching a mapped page past a truncated end is
//! SIGBUS; closed segments are never written again (a retention delete
//! unlinks the file, which keeps a mapping valid). This assumes the broker
//! is the only writer: a data directory must be one you trust, since
//! anyone who can truncate a closed segment while it is mapped can crash
//! the reader.

use super::segment::{segments, Segment, ENTRY_HEADER, MAGIC, TOPIC_PAD};
use distlog_core::wire::{BatchRef, Topic, WireError};
use rkyv::util::AlignedVec;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How a [`Reader`] brings a segment's bytes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read them into the reader's buffer, up to the length the file has
    /// when it is opened: safe whatever a writer does to the file later.
    Read,
    /// Map the file (falling back to [`Access::Read`] where mapping
    /// fails). Only for closed segments: see the module docs.
    Map,
}

/// One segment's bytes, aligned, whose entries are checked as they are
/// read. `Reader::default()` is empty; [`Reader::load`] fills it, reusing
/// its buffer.
#[derive(Default)]
pub struct Reader {
    buf: AlignedVec,
    map: Option<Map>,
    len: usize,
}

/// A stored batch: its topic and the validated, zero-copy batch.
pub struct StoredBatch<'a> {
    /// The topic it arrived under.
    pub topic: Topic,
    /// The batch.
    pub batch: BatchRef<'a>,
}

impl Reader {
    /// Reads the segment at `path` (never maps it: safe for any segment,
    /// the one being written included).
    pub fn open(path: &Path) -> io::Result<Reader> {
        let mut r = Reader::default();
        r.load(path, Access::Read)?;
        Ok(r)
    }

    /// Every segment of a data directory, oldest first, read.
    pub fn open_dir(dir: &Path) -> io::Result<Vec<(PathBuf, Reader)>> {
        segments(dir)?
            .into_iter()
            .map(|p| Reader::open(&p).map(|r| (p, r)))
            .collect()
    }

    /// Loads `segment`, the cheapest safe way: mapped when it is closed,
    /// read when it is the newest (which the broker may truncate).
    pub fn load_segment(&mut self, segment: &Segment) -> io::Result<()> {
        let access = if segment.is_newest() {
            Access::Read
        } else {
            Access::Map
        };
        self.load(&segment.path, access)
    }

    /// Replaces what the reader holds with the file at `path`, up to its
    /// current length.
    pub fn load(&mut self, path: &Path, access: Access) -> io::Result<()> {
        self.map = None;
        self.len = 0;
        let mut file = std::fs::File::open(path)?;
        let want = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "segment too large"))?;
        if access == Access::Map {
            if let Some(map) = Map::new(&file, want) {
                self.len = want;
                self.map = Some(map);
                return Ok(());
            }
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        // A live segment may be growing: read what is there, up to the
        // length seen.
        let mut len = 0;
        while len < want {
            match file.read(&mut self.buf[len..want]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.len = len;
        Ok(())
    }

    /// Whether the bytes are mapped (rather than read).
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf[..self.len],
        }
    }

    /// Bytes after the last good entry (a torn tail), 0 when clean.
    pub fn torn(&self) -> usize {
        self.bytes().len() - valid_prefix(self.bytes())
    }

    /// The batches, in order, up to the first entry that is truncated or
    /// fails its checksum. An entry whose batch fails validation is an
    /// error item (it passed its checksum, so it was stored so).
    pub fn batches(&self) -> impl Iterator<Item = Result<StoredBatch<'_>, WireError>> {
        let mut entries = Entries::new(self.bytes());
        std::iter::from_fn(move || {
            let payload = entries.next()?;
            let topic = match Topic::parse(&payload[..3]) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            let body = trim_body(&payload[TOPIC_PAD..]);
            Some(distlog_core::wire::access_batch(body).map(|batch| StoredBatch { topic, batch }))
        })
    }
}

/// The payloads of a segment's whole, checksummed entries, in order.
struct Entries<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Entries<'a> {
    fn new(bytes: &'a [u8]) -> Entries<'a> {
        let pos = if bytes.get(..MAGIC.len()) == Some(&MAGIC[..]) {
            MAGIC.len()
        } else {
            bytes.len()
        };
        Entries { bytes, pos }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let header = self
            .bytes
            .get(self.pos..self.pos.checked_add(ENTRY_HEADER)?)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let start = self.pos + ENTRY_HEADER;
        let payload = self.bytes.get(start..start.checked_add(len)?)?;
        if len < TOPIC_PAD || crc32fast::hash(payload) != crc {
            return None;
        }
        self.pos = start + len;
        Some(payload)
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

/// Length of the longest prefix of the magic and whole, checksummed
/// entries (0 without the magic).
pub(crate) fn valid_prefix(bytes: &[u8]) -> usize {
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return 0;
    }
    let mut entries = Entries::new(bytes);
    while entries.next().is_some() {}
    entries.pos
}

/// A read-only private mapping of a whole file.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by one `Reader`; its bytes
// can be shared between threads like any `&[u8]`.
unsafe impl Send for Map {}
// SAFETY: as above: nothing writes through the pointer.
unsafe impl Sync for Map {}

impl Map {
    fn new(file: &std::fs::File, len: usize) -> Option<Map> {
        use std::os::fd::AsRawFd;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh read-only private mapping of `len` bytes of an
        // open file; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Map { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`, and only
        // closed segments are mapped, which no writer truncates (module
        // docs). The mapping is page-aligned, so 8-aligned entries in the
        // file are 8-aligned here.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Writer;
    use distlog_core::record::Record;
    use distlog_core::wire::{encode_batch_to_vec, Batch};

    /// Three batches of two records in a fresh store; the segment's path.
    fn store(dir: &Path) -> PathBuf {
        let _ = std::fs::remove_dir_all(dir);
        let mut w = Writer::open(dir, 1 << 20).unwrap();
        for i in 0..3u64 {
            let b = Batch {
                first_seq: i * 2,
                records: (0..2)
                    .map(|j| Record {
                        seq: i * 2 + j,
                        message: format!("m{}", i * 2 + j),
                        ..Record::default()
                    })
                    .collect(),
                ..Batch::default()
            };
            w.append(*b"TLR", &encode_batch_to_vec(&b)).unwrap();
        }
        w.sync().unwrap();
        drop(w);
        segments(dir).unwrap().pop().unwrap()
    }

    fn messages(r: &Reader) -> Vec<String> {
        r.batches()
            .flat_map(|b| {
                let b = b.unwrap().batch;
                (0..b.len())
                    .filter_map(|i| b.record(i).map(|r| r.message().to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn entries_are_checked_and_reading_stops_at_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("distlog-reader-{}", std::process::id()));
        let path = store(&dir);
        for access in [Access::Map, Access::Read] {
            let mut r = Reader::default();
            r.load(&path, access).unwrap();
            assert_eq!(r.is_mapped(), access == Access::Map);
            assert_eq!(messages(&r), ["m0", "m1", "m2", "m3", "m4", "m5"]);
            assert_eq!(r.torn(), 0);
        }
        // A torn tail, then a flipped byte in the second entry: reading
        // stops before each.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[64, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Reader::default();
        r.load(&path, Access::Map).unwrap();
        assert_eq!((r.batches().count(), r.torn()), (3, 7));
        let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        bytes[8 + 8 + first_len + 8 + 20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        r.load(&path, Access::Map).unwrap();
        assert_eq!(r.batches().count(), 1);
        assert_eq!(Reader::open(&path).unwrap().batches().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The newest segment is read, not mapped: the writer truncating it
    /// under the reader (as it does after a failed write) is no SIGBUS,
    /// and the reader keeps what it read.
    #[test]
    fn the_newest_segment_is_read_so_truncating_it_under_the_reader_is_safe() {
        let dir = std::env::temp_dir().join(format!("distlog-reader-live-{}", std::process::id()));
        let path = store(&dir);
        let segs = Segment::list(&dir).unwrap();
        assert_eq!(segs.len(), 1);
        assert!(segs[0].is_newest());
        let mut r = Reader::default();
        r.load_segment(&segs[0]).unwrap();
        assert!(!r.is_mapped());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(messages(&r).len(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
