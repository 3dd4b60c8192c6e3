//! Reading the store: which segments a time range needs, and a parallel
//! scan that hands results back in stored order.
//!
//! Segment files are named `seg-<first ns>-<n>.dls`, `<first ns>` being when
//! the broker opened the segment; a segment holds what arrived between its
//! own first ns and the next segment's. A record's time is its sender's
//! clock when it was logged, which is normally a little before it arrived,
//! so a segment is skipped (never opened) only when its whole arrival span
//! lies more than [`SLACK_NS`] outside the asked range; the records of the
//! segments that are read are then checked one by one.

use crate::CliError;
use crossbeam_channel::bounded;
use distlog::filter::{Filter, RecordView};
use distlog::view::RecordRef;
use distlog::wire::ArchivedSender;
use distlog::wire::{Topic, WireError};
use distlogd::store::StoredBatch;
use parking_lot::{Condvar, Mutex};
use rkyv::util::AlignedVec;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How far a record's time may lie before its arrival (client buffering,
/// clock skew between hosts) and still be found by a time-bounded query:
/// five minutes.
pub const SLACK_NS: u64 = 300 * 1_000_000_000;

/// A segment file and the span of arrival times it covers.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// When the broker opened it (from the name); 0 when the name has none.
    pub first_ns: u64,
    /// When the next segment was opened: this one ends before. `None` for
    /// the newest one.
    pub next_ns: Option<u64>,
}

/// The first-ns of a segment's file name.
fn first_ns(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("seg-")?;
    rest.split('-').next()?.parse().ok()
}

/// Every segment of `dir`, oldest first, with its span.
pub fn list(dir: &Path) -> Result<Vec<Segment>, CliError> {
    crate::check_dir(dir)?;
    let paths = distlogd::store::segments(dir)
        .map_err(|e| CliError(format!("cannot list {}: {e}", dir.display())))?;
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

/// The segments that may hold records timed in `[since, until)`.
pub fn select(segments: Vec<Segment>, since: u64, until: u64) -> Vec<Segment> {
    segments
        .into_iter()
        .filter(|s| {
            let ends_before = s
                .next_ns
                .is_some_and(|next| next.saturating_add(SLACK_NS) < since);
            let starts_after = s.first_ns > until.saturating_add(SLACK_NS);
            !ends_before && !starts_after
        })
        .collect()
}

/// The segment file format (see `distlogd::store`): magic, then entries of
/// `u32 LE length, u32 LE crc32, payload` where the payload is the 3-byte
/// topic, 5 zero bytes and the batch body, padded to a multiple of 8.
const MAGIC: [u8; 8] = *b"DLSEG\0\0\x01";
const ENTRY_HEADER: usize = 8;
const TOPIC_PAD: usize = 8;

/// One segment's bytes: memory-mapped (read-only, pre-faulted with
/// `MAP_POPULATE`, so nothing is copied out of the page cache), or, where
/// mapping fails, read into a buffer that a worker reuses from segment to
/// segment. Entries are checked as they are read: a bad checksum or a
/// truncated entry ends the segment (a torn tail, or the entry the broker
/// is writing right now), and every batch is validated before it is read.
///
/// Only closed segments are mapped: the newest one, which the broker may
/// still be writing, is read into the buffer. A writer truncates its live
/// segment (`set_len` after a failed write, torn-tail recovery at start),
/// and touching a mapped page past a truncated end is SIGBUS; closed
/// segments are never written again (a retention delete unlinks the file,
/// which keeps a mapping valid). This assumes the broker is the only
/// writer: `--data-dir` must be a directory you trust, since anyone who can
/// truncate a closed segment while it is mapped can crash the reader.
#[derive(Default)]
pub struct Loaded {
    buf: AlignedVec,
    map: Option<Map>,
    len: usize,
}

/// A read-only private mapping of a whole file.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by one `Loaded`; the bytes
// can be shared between threads like any `&[u8]`.
unsafe impl Send for Map {}
// SAFETY: as for `Send`: shared access only reads the immutable mapping.
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
        // SAFETY: `ptr` maps `len` readable bytes until `drop` (see the
        // soundness note on `Loaded`). The mapping is page-aligned, so
        // 8-aligned entries in the file are 8-aligned here.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

impl Loaded {
    /// Maps (or, when `live` or where mapping fails, reads) the file at
    /// `path`, up to its current length. `live`: the newest segment, which
    /// the broker may be writing, and may truncate.
    pub fn load(&mut self, path: &Path, live: bool) -> std::io::Result<()> {
        self.map = None;
        let mut file = std::fs::File::open(path)?;
        let want = file.metadata()?.len() as usize;
        if let Some(map) = (!live).then(|| Map::new(&file, want)).flatten() {
            self.len = want;
            self.map = Some(map);
            return Ok(());
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        // The newest segment may be growing: read what is there, up to
        // the length seen.
        let mut len = 0;
        while len < want {
            match file.read(&mut self.buf[len..want]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.len = len;
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf[..self.len],
        }
    }

    /// The stored batches, in order; a batch that fails validation is an
    /// error item (it passed its checksum, so it was stored so).
    pub fn batches(&self) -> impl Iterator<Item = Result<StoredBatch<'_>, WireError>> {
        let bytes = self.bytes();
        let mut pos = if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] == MAGIC {
            MAGIC.len()
        } else {
            bytes.len()
        };
        std::iter::from_fn(move || {
            let header = bytes.get(pos..pos + ENTRY_HEADER)?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let start = pos + ENTRY_HEADER;
            let payload = bytes.get(start..start.checked_add(len)?)?;
            if len < TOPIC_PAD || crc32fast::hash(payload) != crc {
                return None;
            }
            pos = start + len;
            let topic = match Topic::parse(&payload[..3]) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            let body = &payload[TOPIC_PAD..];
            // The body's own length field says where its padding starts.
            let body = match body.get(4..8) {
                Some(l) => {
                    let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    &body[..(8 + n).min(body.len())]
                }
                None => body,
            };
            Some(distlog::wire::access_batch(body).map(|batch| StoredBatch { topic, batch }))
        })
    }
}

/// Calls `f` for every record of `reader` timed in `[since, until)` that
/// passes `filter`, in stored order, until `f` returns false. Returns the
/// number of stored batches that failed validation (skipped).
pub fn records(
    reader: &Loaded,
    since: u64,
    until: u64,
    filter: &Filter,
    mut f: impl FnMut(u8, &ArchivedSender, RecordRef<'_>) -> bool,
) -> u64 {
    let always = filter.is_always();
    let timed = since > 0 || until < u64::MAX;
    let mut invalid = 0;
    for b in reader.batches() {
        let Ok(b) = b else {
            invalid += 1;
            continue;
        };
        let system = b.topic.system;
        let sender = b.batch.sender();
        for r in b.batch.records() {
            if timed {
                let t = r.time_ns();
                if t < since || t >= until {
                    continue;
                }
            }
            if !always && !filter.matches(&RecordView::new(system, sender, r)) {
                continue;
            }
            if !f(system, sender, r) {
                return invalid;
            }
        }
    }
    invalid
}

/// How many threads to scan with: the machine's cores, at most `segments`.
pub fn threads(requested: Option<usize>, segments: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    requested.unwrap_or(cores).clamp(1, segments.max(1))
}

/// Runs `work` on every segment, on `threads` threads, and hands the
/// results to `sink` in segment order (so output keeps stored order),
/// until `sink` returns false. Workers run at most a few segments ahead of
/// the sink, so memory stays bounded. A segment that vanished since it was
/// listed (retention) is skipped.
pub fn scan<T, W, S>(
    segments: &[Segment],
    threads: usize,
    work: W,
    mut sink: S,
) -> Result<(), CliError>
where
    T: Send,
    W: Fn(&Loaded) -> T + Sync,
    S: FnMut(T) -> Result<bool, CliError>,
{
    let n = segments.len();
    let window = threads + 1;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let emitted = Mutex::new(0usize);
    let moved = Condvar::new();
    let (tx, rx) = bounded::<(usize, Result<Option<T>, CliError>)>(threads * 2);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, emitted, moved, work) = (&next, &stop, &emitted, &moved, &work);
            scope.spawn(move || {
                let mut loaded = Loaded::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    {
                        let mut e = emitted.lock();
                        while i >= *e + window && !stop.load(Ordering::Relaxed) {
                            moved.wait(&mut e);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = &segments[i].path;
                    let live = segments[i].next_ns.is_none();
                    let result = match loaded.load(path, live) {
                        Ok(()) => Ok(Some(work(&loaded))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(CliError(format!("cannot read {}: {e}", path.display()))),
                    };
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0usize;
        let mut outcome = Ok(());
        'recv: while want < n {
            let Ok((i, r)) = rx.recv() else { break };
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                want += 1;
                *emitted.lock() = want;
                moved.notify_all();
                let go_on = match r {
                    Ok(Some(t)) => sink(t),
                    Ok(None) => Ok(true),
                    Err(e) => Err(e),
                };
                match go_on {
                    Ok(true) => {}
                    Ok(false) => break 'recv,
                    Err(e) => {
                        outcome = Err(e);
                        break 'recv;
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        {
            let _e = emitted.lock();
            moved.notify_all();
        }
        drop(rx);
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(first: u64, next: Option<u64>) -> Segment {
        Segment {
            path: PathBuf::from(format!("seg-{first:020}-000000.dls")),
            first_ns: first,
            next_ns: next,
        }
    }

    #[test]
    fn loaded_segments_check_entries_and_stop_at_a_torn_tail() {
        use distlog::record::Record;
        use distlog::wire::{encode_batch_to_vec, Batch};
        let dir = std::env::temp_dir().join(format!("distlog-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = distlogd::store::Writer::open(&dir, 1 << 20).unwrap();
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
        let path = distlogd::store::segments(&dir).unwrap().pop().unwrap();
        let mut seg = Loaded::default();
        seg.load(&path, false).unwrap();
        let mut msgs = Vec::new();
        let bad = records(&seg, 0, u64::MAX, &Filter::always(), |_, _, r| {
            msgs.push(r.message().to_owned());
            true
        });
        assert_eq!((bad, msgs.len()), (0, 6));
        assert_eq!(msgs[5], "m5");
        // A torn tail, then a flipped byte in the second entry: reading
        // stops before each.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[64, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        seg.load(&path, false).unwrap();
        assert_eq!(seg.batches().count(), 3);
        // The live segment is read, not mapped: the writer truncating it
        // under the reader (as it does after a failed write) is no SIGBUS.
        seg.load(&path, true).unwrap();
        assert!(seg.map.is_none());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(seg.batches().count(), 3);
        std::fs::write(&path, &bytes).unwrap();
        let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        bytes[8 + 8 + first_len + 8 + 20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        seg.load(&path, false).unwrap();
        assert_eq!(seg.batches().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_and_selection() {
        assert_eq!(
            first_ns(Path::new("/d/seg-00000000000000000042-000007.dls")),
            Some(42)
        );
        assert_eq!(first_ns(Path::new("/d/other")), None);
        let s = 1_000 * SLACK_NS;
        let segs = vec![seg(0, Some(s)), seg(s, Some(2 * s)), seg(2 * s, None)];
        let firsts = |v: Vec<Segment>| v.iter().map(|s| s.first_ns).collect::<Vec<_>>();
        assert_eq!(firsts(select(segs.clone(), 0, u64::MAX)), [0, s, 2 * s]);
        // Only the newest can hold records after 3s.
        assert_eq!(firsts(select(segs.clone(), 3 * s, u64::MAX)), [2 * s]);
        // Records near a boundary may sit in the segment before or after it.
        assert_eq!(
            firsts(select(segs.clone(), s + 1, 2 * s - 1)),
            [0, s, 2 * s]
        );
        let slack = 2 * SLACK_NS;
        assert_eq!(firsts(select(segs.clone(), s + slack, 2 * s - slack)), [s]);
        assert_eq!(firsts(select(segs.clone(), 0, s / 2)), [0]);
        assert_eq!(firsts(select(segs, 0, s - 1)), [0, s]);
    }
}
