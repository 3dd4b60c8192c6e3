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
//!
//! A scan that reads each batch once ([`Reader::stream_segment`], then
//! [`Reader::each_batch`]) reads the newest segment a chunk at a time into
//! a buffer of [`CHUNK`] bytes that it reuses (larger only for an entry
//! that does not fit), rather than the whole file into fresh memory:
//! zeroing and faulting in tens of MiB of pages cost more than reading
//! them. It yields exactly the batches [`Reader::batches`] yields for the
//! same bytes, at the same memory alignment (the buffer keeps each byte's
//! file offset modulo 16).

use super::segment::{segments, Segment, ENTRY_HEADER, MAGIC, TOPIC_PAD};
use distlog_core::wire::{ArchivedSender, BatchRef, Topic, WireError};
use rkyv::util::AlignedVec;
use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The size of the buffer [`Reader::each_batch`] streams a read segment
/// through: a few batches, small enough to stay in cache.
pub const CHUNK: usize = 512 * 1024;

/// The most bytes of an entry cut by a refill that [`stream_entries`]
/// moves to the buffer's front (cheaper than a read of its own); more are
/// completed in place.
const MOVE_MAX: usize = 4096;

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
    /// A segment to stream ([`Reader::stream_segment`]), not loaded.
    stream: Option<Stream>,
    /// The buffer a streamed segment goes through, reused.
    chunk: RefCell<AlignedVec>,
}

/// An open segment that [`Reader::each_batch`] reads a chunk at a time.
struct Stream {
    file: RefCell<std::fs::File>,
    /// The file's length when it was opened: nothing past it is read.
    want: usize,
    /// The error that ended the last read, for [`Reader::take_error`].
    error: Cell<Option<io::Error>>,
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

    /// Prepares `segment` for [`Reader::each_batch`]: a closed one is
    /// mapped (as [`Reader::load_segment`] does), the newest one is opened
    /// and will be read a chunk at a time, up to the length it has now.
    /// [`Reader::batches`] and [`Reader::torn`] see none of a streamed
    /// segment's bytes.
    pub fn stream_segment(&mut self, segment: &Segment) -> io::Result<()> {
        if !segment.is_newest() {
            return self.load(&segment.path, Access::Map);
        }
        self.map = None;
        self.len = 0;
        self.stream = None;
        let file = std::fs::File::open(&segment.path)?;
        let want = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "segment too large"))?;
        self.stream = Some(Stream {
            file: RefCell::new(file),
            want,
            error: Cell::new(None),
        });
        Ok(())
    }

    /// Calls `f` on what [`Reader::batches`] yields, in order, until it
    /// breaks; for a segment prepared with [`Reader::stream_segment`],
    /// reading it a chunk at a time from its start (each call reads it
    /// again).
    /// A read error ends the walk; [`Reader::take_error`] hands it over.
    pub fn each_batch(&self, f: impl FnMut(Result<StoredBatch<'_>, WireError>) -> ControlFlow<()>) {
        self.each_batch_where(|_, _| true, f)
    }

    /// [`Reader::each_batch`] without the batches whose topic and sender
    /// `keep` refuses: those are checked only up to their sender
    /// ([`distlog_core::wire::access_sender`]) and never handed to `f`, so
    /// damage past a refused batch's sender is not seen. A batch whose
    /// sender fails its check is handed to `f` as the error it is.
    pub fn each_batch_where(
        &self,
        mut keep: impl FnMut(Topic, &ArchivedSender) -> bool,
        mut f: impl FnMut(Result<StoredBatch<'_>, WireError>) -> ControlFlow<()>,
    ) {
        let mut entry = |payload: &[u8]| match kept_batch(payload, &mut keep) {
            Some(b) => f(b),
            None => ControlFlow::Continue(()),
        };
        match &self.stream {
            None => {
                for payload in Entries::new(self.bytes()) {
                    if entry(payload).is_break() {
                        return;
                    }
                }
            }
            Some(s) => {
                let mut buf = self.chunk.borrow_mut();
                let mut file = s.file.borrow_mut();
                let read = io::Seek::rewind(&mut *file)
                    .and_then(|()| stream_entries(&mut file, s.want, &mut buf, &mut entry));
                if let Err(e) = read {
                    s.error.set(Some(e));
                }
            }
        }
    }

    /// The read error that ended the last [`Reader::each_batch`] of a
    /// streamed segment, if one did.
    pub fn take_error(&self) -> Option<io::Error> {
        self.stream.as_ref().and_then(|s| s.error.take())
    }

    /// Replaces what the reader holds with the file at `path`, up to its
    /// current length.
    pub fn load(&mut self, path: &Path, access: Access) -> io::Result<()> {
        self.map = None;
        self.len = 0;
        self.stream = None;
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
        std::iter::from_fn(move || entries.next().map(stored_batch))
    }
}

/// The batch of one whole, checksummed entry's payload (at least
/// [`TOPIC_PAD`] bytes), validated.
fn stored_batch(payload: &[u8]) -> Result<StoredBatch<'_>, WireError> {
    let topic = Topic::parse(&payload[..3])?;
    let body = trim_body(&payload[TOPIC_PAD..]);
    distlog_core::wire::access_batch(body).map(|batch| StoredBatch { topic, batch })
}

/// [`stored_batch`], for a batch whose topic and sender `keep` accepts
/// (`None`: refused, checked no further).
#[inline]
fn kept_batch<'a>(
    payload: &'a [u8],
    keep: &mut impl FnMut(Topic, &ArchivedSender) -> bool,
) -> Option<Result<StoredBatch<'a>, WireError>> {
    let topic = match Topic::parse(&payload[..3]) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let body = trim_body(&payload[TOPIC_PAD..]);
    match distlog_core::wire::access_sender(body) {
        Ok(sender) if !keep(topic, sender) => return None,
        Ok(_) => {}
        Err(e) => return Some(Err(e)),
    }
    Some(distlog_core::wire::access_batch(body).map(|batch| StoredBatch { topic, batch }))
}

/// Reads a segment of `want` bytes from `file` (at its start) through
/// `buf` and calls `f` on each whole, checksummed entry's payload, as
/// [`Entries`] would on the whole file read at once, until `f` breaks.
///
/// `buf` holds the bytes from the next entry on, each at an index equal
/// to its file offset modulo 16 (so alignment is as in a whole-file
/// buffer). Reads fill [`CHUNK`] bytes from the buffer's front; an entry
/// they cut is completed in place, by a read of its rest (and the next
/// entry's header, so the next refill moves only those 8 bytes), rather
/// than moved to the front first, unless what it has read of it is at
/// most [`MOVE_MAX`] bytes or it is longer than a chunk. An entry is read
/// only when the file is long enough to hold it, so `buf` stays below
/// `min(2 * CHUNK, max(CHUNK, want)) + 16` bytes whatever the headers
/// claim.
fn stream_entries(
    file: &mut std::fs::File,
    want: usize,
    buf: &mut AlignedVec,
    mut f: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    // `buf[start..end]` holds the file's bytes from offset `off` on;
    // `read` is how many bytes of the file have been read.
    let (mut start, mut end, mut off, mut read) = (0usize, 0usize, 0usize, 0usize);
    // Makes `buf[start..start + n]` hold the file's bytes from `off`, or
    // returns false when the file (up to `want`) ends first.
    let mut fill = |buf: &mut AlignedVec,
                    start: &mut usize,
                    end: &mut usize,
                    off: usize,
                    read: &mut usize,
                    n: usize|
     -> io::Result<bool> {
        if *end - *start >= n {
            return Ok(true);
        }
        if off + n > want {
            return Ok(false);
        }
        let keep = *end - *start;
        // What may be read: up to `cap`, and no further than the file.
        let cap = if keep > MOVE_MAX && n <= CHUNK {
            // Complete the entry where it is, and read the next header.
            (*start + n + ENTRY_HEADER).min(*end + (want - *read))
        } else {
            // Move what is left to the front, at its offset modulo 16,
            // and read as much as fits in a chunk, at least up to `n`.
            let to = off % 16;
            buf.copy_within(*start..*end, to);
            #[cfg(test)]
            tally::moved(keep);
            (*start, *end) = (to, to + keep);
            CHUNK.max(to + n).min(*end + (want - *read))
        };
        if buf.len() < cap {
            buf.resize(cap, 0);
        }
        while *end < *start + n {
            match file.read(&mut buf[*end..cap]) {
                Ok(0) => return Ok(false),
                Ok(got) => {
                    *end += got;
                    *read += got;
                    #[cfg(test)]
                    tally::read_to(*read);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    };
    if !fill(buf, &mut start, &mut end, off, &mut read, MAGIC.len())?
        || buf[start..start + MAGIC.len()] != MAGIC
    {
        return Ok(());
    }
    start += MAGIC.len();
    off += MAGIC.len();
    loop {
        if !fill(buf, &mut start, &mut end, off, &mut read, ENTRY_HEADER)? {
            return Ok(());
        }
        let (len, crc) = entry_header(&buf[start..start + ENTRY_HEADER]);
        // `len` is at most u32::MAX: no overflow on 64-bit targets, and
        // `fill` refuses entries past `want`.
        let Some(total) = ENTRY_HEADER.checked_add(len) else {
            return Ok(());
        };
        if !fill(buf, &mut start, &mut end, off, &mut read, total)? {
            return Ok(());
        }
        let payload = &buf[start + ENTRY_HEADER..start + total];
        if !whole_entry(payload, crc) {
            return Ok(());
        }
        if f(payload).is_break() {
            return Ok(());
        }
        start += total;
        off += total;
    }
}

/// What [`stream_entries`] did on this thread, for the tests: the bytes
/// it moved to its buffer's front, where its reads ended.
#[cfg(test)]
mod tally {
    use std::cell::Cell;

    thread_local! {
        static MOVED: Cell<usize> = const { Cell::new(0) };
        static READS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    }

    pub(super) fn moved(n: usize) {
        MOVED.set(MOVED.get() + n);
    }

    pub(super) fn read_to(offset: usize) {
        let mut v = READS.take();
        v.push(offset);
        READS.set(v);
    }

    /// The bytes moved and the file offsets each read ended at, since
    /// the last call.
    pub(super) fn take() -> (usize, Vec<usize>) {
        (MOVED.replace(0), READS.take())
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
        let (len, crc) = entry_header(header);
        let start = self.pos + ENTRY_HEADER;
        let payload = self.bytes.get(start..start.checked_add(len)?)?;
        if !whole_entry(payload, crc) {
            return None;
        }
        self.pos = start + len;
        Some(payload)
    }
}

/// An entry header's payload length and checksum (`h`: [`ENTRY_HEADER`]
/// bytes).
fn entry_header(h: &[u8]) -> (usize, u32) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len, crc)
}

/// Whether `payload` is a whole entry's: room for its topic, and the
/// header's checksum.
fn whole_entry(payload: &[u8], crc: u32) -> bool {
    payload.len() >= TOPIC_PAD && crc32fast::hash(payload) == crc
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
    use crate::store::{test_dir, Writer};
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
        let dir = test_dir("reader");
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

    /// What a walk yields, comparable: each batch's record messages, or
    /// the reason it failed validation.
    fn walk(r: &Reader) -> Vec<Result<Vec<String>, &'static str>> {
        let mut out = Vec::new();
        r.each_batch(|b| {
            out.push(
                b.map(|b| b.batch.records().map(|r| r.message().to_owned()).collect())
                    .map_err(|e| e.reason()),
            );
            ControlFlow::Continue(())
        });
        out
    }

    /// A fresh directory for a test, the path of its one segment file and
    /// that file as the store's newest (open) segment, which is streamed.
    fn newest_segment(name: &str) -> (std::path::PathBuf, std::path::PathBuf, Segment) {
        let dir = test_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg-00000000000000000001-000000.dls");
        let newest = Segment {
            path: path.clone(),
            first_ns: 1,
            next_ns: None,
        };
        (dir, path, newest)
    }

    /// A segment streamed through the chunk buffer yields exactly what the
    /// whole file loaded yields, whatever its bytes: random entries (some
    /// longer than a chunk), cut anywhere, bytes flipped anywhere (lengths,
    /// checksums, payloads), lengths that are not multiples of 8 (which
    /// misalign what follows), and lengths past the end.
    #[test]
    fn streamed_segments_yield_what_loaded_ones_do() {
        let (dir, path, newest) = newest_segment("reader-stream");
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        let mut streamer = Reader::default();
        let mut longest = 0;
        for round in 0..120 {
            // A valid segment of a few entries.
            let mut bytes = MAGIC.to_vec();
            for _ in 0..1 + rnd(6) {
                let n = if rnd(8) == 0 {
                    2_000 + rnd(8_000)
                } else {
                    rnd(40)
                };
                let b = Batch {
                    records: (0..n)
                        .map(|i| Record {
                            seq: i as u64,
                            message: "x".repeat(rnd(300)),
                            ..Record::default()
                        })
                        .collect(),
                    ..Batch::default()
                };
                let body = encode_batch_to_vec(&b);
                let mut payload = b"TLR\0\0\0\0\0".to_vec();
                payload.extend_from_slice(&body);
                while payload.len() % 8 != 0 {
                    payload.push(0);
                }
                bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
                bytes.extend_from_slice(&payload);
            }
            // Then damage it (round 0 stays whole).
            for _ in 0..if round == 0 { 0 } else { rnd(4) } {
                match rnd(4) {
                    0 => bytes.truncate(rnd(bytes.len() + 1)),
                    1 if !bytes.is_empty() => {
                        let i = rnd(bytes.len());
                        bytes[i] ^= 1 << rnd(8);
                    }
                    // A header whose length is odd, or runs past the end,
                    // with a checksum that fits what is there.
                    _ => {
                        let len = if rnd(2) == 0 { 8 + rnd(60) } else { 1 << 20 };
                        let payload: Vec<u8> = (0..len.min(64)).map(|_| rnd(256) as u8).collect();
                        bytes.extend_from_slice(&(len as u32).to_le_bytes());
                        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
                        bytes.extend_from_slice(&payload);
                    }
                }
            }
            std::fs::write(&path, &bytes).unwrap();
            let loaded = walk(&Reader::open(&path).unwrap());
            streamer.stream_segment(&newest).unwrap();
            assert_eq!(walk(&streamer), loaded, "round {round}");
            // Each walk reads the segment again from its start.
            assert_eq!(walk(&streamer), loaded, "round {round}, again");
            assert!(streamer.take_error().is_none());
            // The buffer is reused: bounded by the longest file so far.
            longest = longest.max(bytes.len());
            assert!(streamer.chunk.borrow().len() <= CHUNK.max(longest) + 16);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A segment of entries of 20-300 KiB, so that most refills cut one:
    /// the cut entry is completed in place (at most [`MOVE_MAX`] bytes
    /// moved a refill, not half an entry), and streamed, the segment
    /// yields what it yields loaded, whole and with a byte flipped, a
    /// length changed or the file cut at and around each place a read
    /// ended.
    #[test]
    fn entries_cut_by_a_refill_are_completed_in_place() {
        let (dir, path, newest) = newest_segment("reader-split");
        let mut rng = fastrand::Rng::with_seed(17);
        let mut bytes = MAGIC.to_vec();
        let mut headers = Vec::new();
        while bytes.len() < 3 * CHUNK {
            let b = Batch {
                records: (0..rng.usize(150..2_000))
                    .map(|i| Record {
                        seq: i as u64,
                        message: "y".repeat(rng.usize(60..140)),
                        ..Record::default()
                    })
                    .collect(),
                ..Batch::default()
            };
            let mut payload = b"TLR\0\0\0\0\0".to_vec();
            payload.extend_from_slice(&encode_batch_to_vec(&b));
            headers.push(bytes.len());
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut streamer = Reader::default();
        streamer.stream_segment(&newest).unwrap();
        tally::take();
        let whole = walk(&streamer);
        let (moved, ends) = tally::take();
        assert_eq!(whole.len(), headers.len());
        assert!(whole.iter().all(|b| b.is_ok()));
        assert_eq!(whole, walk(&Reader::open(&path).unwrap()));
        // Each refill past the first moved at most `MOVE_MAX` bytes; most
        // completed an entry in place (their reads end 8 bytes into the
        // next entry, or at the file's end).
        let refills = ends.len() - 1;
        assert!(refills >= 4, "{ends:?}");
        assert!(moved <= refills * MOVE_MAX, "{moved} bytes in {refills}");
        let in_place = (ends.iter())
            .filter(|&&e| headers.contains(&(e - ENTRY_HEADER)) || e == bytes.len())
            .count();
        assert!(in_place * 3 >= refills, "{in_place} of {refills}");
        assert!(streamer.chunk.borrow().len() <= 2 * CHUNK + 16);
        // Damage at and around each read's end, and each entry's length.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for &e in &ends {
            for at in [e.saturating_sub(9), e - 1, e, e + 1, e + 7] {
                if at < bytes.len() {
                    let mut b = bytes.clone();
                    b[at] ^= 0x10;
                    cases.push(b);
                }
                cases.push(bytes[..at.min(bytes.len())].to_vec());
            }
        }
        for &h in headers.iter().step_by(3) {
            for len in [0u32, 7, CHUNK as u32 + 1, u32::MAX] {
                let mut b = bytes.clone();
                b[h..h + 4].copy_from_slice(&len.to_le_bytes());
                cases.push(b);
            }
        }
        for (i, b) in cases.iter().enumerate() {
            std::fs::write(&path, b).unwrap();
            streamer.stream_segment(&newest).unwrap();
            assert_eq!(
                walk(&streamer),
                walk(&Reader::open(&path).unwrap()),
                "case {i}"
            );
            assert!(streamer.take_error().is_none());
            assert!(streamer.chunk.borrow().len() <= 2 * CHUNK + 16);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The newest segment is read, not mapped: the writer truncating it
    /// under the reader (as it does after a failed write) is no SIGBUS,
    /// and the reader keeps what it read.
    #[test]
    fn the_newest_segment_is_read_so_truncating_it_under_the_reader_is_safe() {
        let dir = test_dir("reader-live");
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
