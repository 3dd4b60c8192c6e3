//! Appending batches to segments.

use super::direct::{Gather, ALIGN};
use super::segment::{segments, ENTRY_HEADER, MAGIC, TOPIC_PAD};
use rkyv::util::AlignedVec;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When the writer forces data to disk (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every append.
    Always,
    /// When a write finds the last sync older than this, on [`Writer::tick`],
    /// on rotation and on [`Writer::sync`].
    Interval(Duration),
    /// Only on rotation and [`Writer::sync`].
    Never,
}

/// How a [`Writer`] rotates and syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rotate before a segment would exceed this many bytes.
    pub max_segment: u64,
    /// Rotate a non-empty segment this old (checked on append and tick).
    pub max_age: Duration,
    /// When to fsync.
    pub sync: SyncPolicy,
    /// `Some(bound)`: gather entries and write them with `O_DIRECT`
    /// (module `direct`), each waiting at most `bound` (checked on
    /// [`Writer::tick`]) before it is in the file; `None`: write each
    /// entry through the page cache as it is appended.
    pub direct: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_segment: 64 << 20,
            max_age: Duration::from_secs(3600),
            sync: SyncPolicy::Interval(Duration::from_secs(1)),
            direct: Some(DIRECT_WAIT),
        }
    }
}

/// How long a gathered entry waits at most before it is written, by
/// default: 2 ms.
pub const DIRECT_WAIT: Duration = Duration::from_millis(2);

/// Where entries go.
enum Sink {
    /// Written through the page cache as appended, at the file's cursor.
    Plain(File),
    /// Gathered for direct writes.
    Gather(Box<Gather>),
}

/// Appends batches to the newest segment, rotating by size and age.
///
/// Positions: [`Writer::append`] returns where its entry ends in the
/// writer's stream (every segment's bytes one after another, as written
/// since it was opened), and [`Writer::on_file`] says up to where entries
/// are in the file: an entry is written (readable, and acknowledged by the
/// store) once `on_file` reaches its end. Dropping a writer writes what it
/// gathered; [`Writer::sync`] also forces it to disk and reports errors.
pub struct Writer {
    dir: PathBuf,
    sink: Sink,
    path: PathBuf,
    /// The end of the last entry appended, in the current segment.
    written: u64,
    /// The stream position of the current segment's first byte.
    origin: u64,
    opts: Options,
    opened: Instant,
    last_sync: Instant,
    dirty: bool,
    n: u64,
    /// The gather buffer of the last segment, to reuse.
    spare: Option<AlignedVec<ALIGN>>,
}

impl Writer {
    /// Opens `dir` (created if missing, mode 0750) for appending, rotating
    /// at `max_segment` bytes, with the default age and sync policy.
    pub fn open(dir: &Path, max_segment: u64) -> io::Result<Writer> {
        Writer::open_with(
            dir,
            Options {
                max_segment,
                ..Options::default()
            },
        )
    }

    /// Opens `dir` (created if missing, mode 0750) for appending; after
    /// [`recover`], new batches go to a new segment.
    pub fn open_with(dir: &Path, opts: Options) -> io::Result<Writer> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create data dir {}: {e}", dir.display()),
                )
            })?;
        recover(dir)?;
        let opts = Options {
            max_segment: opts.max_segment.max(4096),
            ..opts
        };
        let (sink, path) = new_segment(dir, 0, opts.direct.is_some(), None)?;
        Ok(Writer {
            dir: dir.to_owned(),
            sink,
            path,
            written: MAGIC.len() as u64,
            origin: 0,
            opts,
            opened: Instant::now(),
            last_sync: Instant::now(),
            dirty: false,
            n: 0,
            spare: None,
        })
    }

    /// The segment being written.
    pub fn current(&self) -> &Path {
        &self.path
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether entries go to the file with `O_DIRECT` (false: through the
    /// page cache, by choice or because the file system refused it).
    pub fn is_direct(&self) -> bool {
        matches!(self.sink, Sink::Gather(_))
    }

    /// The stream position up to which entries are in the file.
    pub fn on_file(&self) -> u64 {
        self.origin
            + match &self.sink {
                Sink::Plain(_) => self.written,
                Sink::Gather(g) => g.whole(),
            }
    }

    /// The stream position after the last entry appended (and not dropped
    /// by a failed write).
    pub fn appended(&self) -> u64 {
        self.origin + self.written
    }

    /// When gathered entries must be written ([`Writer::tick`] does), if
    /// any wait.
    pub fn deadline(&self) -> Option<Instant> {
        match (&self.sink, self.opts.direct) {
            (Sink::Gather(g), Some(bound)) => g.oldest().map(|t| t + bound),
            _ => None,
        }
    }

    /// Appends one batch body under its topic; returns the stream position
    /// its entry ends at. Through the page cache, the body is not copied:
    /// the entry goes to the file as one vectored write of its header, the
    /// body and the padding. Gathered, it is copied into the buffer, and in
    /// the file by [`Writer::deadline`] at the latest.
    ///
    /// On an error the entry is not stored, nor, when gathered, those
    /// appended before it that were not yet in the file: [`Writer::appended`]
    /// falls back to [`Writer::on_file`].
    pub fn append(&mut self, topic: [u8; 3], body: &[u8]) -> io::Result<u64> {
        let payload_len = TOPIC_PAD + body.len();
        let padded = (payload_len + 7) & !7;
        let mut topic_pad = [0u8; TOPIC_PAD];
        topic_pad[..3].copy_from_slice(&topic);
        let padding = &[0u8; 8][..padded - payload_len];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&topic_pad);
        crc.update(body);
        crc.update(padding);
        let mut head = [0u8; ENTRY_HEADER + TOPIC_PAD];
        head[..4].copy_from_slice(&(padded as u32).to_le_bytes());
        head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        head[ENTRY_HEADER..].copy_from_slice(&topic_pad);
        let entry_len = (ENTRY_HEADER + padded) as u64;
        self.leave_poisoned()?;
        let non_empty = self.written > MAGIC.len() as u64;
        if non_empty
            && (self.written + entry_len > self.opts.max_segment
                || self.opened.elapsed() >= self.opts.max_age)
        {
            self.rotate()?;
        }
        let wrote = match &mut self.sink {
            Sink::Plain(file) => {
                let r = write_all_parts(file, [&head, body, padding]);
                if r.is_err() {
                    // A short write (disk full) leaves a torn entry: cut it
                    // so the segment stays readable, and report.
                    let _ = file.set_len(self.written);
                    let _ = file.seek(SeekFrom::Start(self.written));
                }
                r
            }
            Sink::Gather(g) => g.push([&head, body, padding]),
        };
        if let Err(e) = wrote {
            self.cut_back();
            return Err(e);
        }
        self.written += entry_len;
        self.dirty = true;
        self.fall_back_if_refused()?;
        match self.opts.sync {
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(self.appended())
    }

    /// Periodic upkeep: writes gathered entries whose bound has passed,
    /// rotates an old segment, syncs under the interval policy.
    pub fn tick(&mut self) -> io::Result<()> {
        if self.deadline().is_some_and(|d| Instant::now() >= d) {
            self.flush()?;
        }
        if self.written > MAGIC.len() as u64 && self.opened.elapsed() >= self.opts.max_age {
            self.rotate()?;
        }
        if let SyncPolicy::Interval(every) = self.opts.sync {
            if self.dirty && self.last_sync.elapsed() >= every {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered (without forcing it to disk).
    pub fn flush(&mut self) -> io::Result<()> {
        if let Sink::Gather(g) = &mut self.sink {
            if let Err(e) = g.flush() {
                self.cut_back();
                return Err(e);
            }
        }
        self.fall_back_if_refused()
    }

    /// Forces what was appended to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.last_sync = Instant::now();
        self.dirty = false;
        match &self.sink {
            Sink::Plain(f) => f.sync_data(),
            Sink::Gather(g) => g.sync_data(),
        }
    }

    /// After a failed gathered write: the file cut back to its last whole
    /// entry, and the entries after it dropped. If even the cut fails, the
    /// segment keeps a torn tail (which readers stop at) and the next
    /// append starts a new segment ([`Writer::leave_poisoned`]).
    fn cut_back(&mut self) {
        if let Sink::Gather(g) = &mut self.sink {
            self.written = g.cut_back().unwrap_or_else(|_| g.whole());
        }
    }

    /// Starts a new segment, without writing anything more to the current
    /// one, when a failed cut left its gather out of step with the file.
    fn leave_poisoned(&mut self) -> io::Result<()> {
        if !matches!(&self.sink, Sink::Gather(g) if g.poisoned()) {
            return Ok(());
        }
        self.n += 1;
        let (sink, path) = new_segment(&self.dir, self.n, true, None)?;
        self.sink = sink;
        self.path = path;
        self.opened = Instant::now();
        self.origin += self.written;
        self.written = MAGIC.len() as u64;
        Ok(())
    }

    /// Once a direct write was refused, writes go through the page cache.
    fn fall_back_if_refused(&mut self) -> io::Result<()> {
        let refused = matches!(&self.sink, Sink::Gather(g) if g.refused());
        if refused {
            self.flush_to_plain()?;
        }
        Ok(())
    }

    /// Turns a gathered sink into a plain one at the file's end.
    fn flush_to_plain(&mut self) -> io::Result<()> {
        let Sink::Gather(g) = &mut self.sink else {
            return Ok(());
        };
        g.flush()?;
        // The same open file (a duplicate descriptor); the gather's own
        // descriptors close with it.
        let mut file = g.plain().try_clone()?;
        file.seek(SeekFrom::Start(self.written))?;
        self.sink = Sink::Plain(file);
        self.opts.direct = None;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        self.n += 1;
        let direct = self.opts.direct.is_some();
        let (sink, path) = new_segment(&self.dir, self.n, direct, self.spare.take())?;
        if let Sink::Gather(g) = std::mem::replace(&mut self.sink, sink) {
            self.spare = Some(g.into_buf());
        }
        self.path = path;
        self.opened = Instant::now();
        self.origin += self.written;
        self.written = MAGIC.len() as u64;
        Ok(())
    }
}

impl Drop for Writer {
    /// Writes what is gathered, as a buffered writer would have already
    /// (an error is lost here: [`Writer::sync`] reports it).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Creates segment `n` of `dir` with its magic; gathered for direct
/// writes when `direct` and the file system takes them.
fn new_segment(
    dir: &Path,
    n: u64,
    direct: bool,
    buf: Option<AlignedVec<ALIGN>>,
) -> io::Result<(Sink, PathBuf)> {
    let ns = distlog_now_ns();
    let path = dir.join(format!("seg-{ns:020}-{n:06}.dls"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&MAGIC)?;
    if !direct {
        return Ok((Sink::Plain(file), path));
    }
    let sink = match Gather::open(&path, file, &MAGIC, buf)? {
        Ok(g) => Sink::Gather(Box::new(g)),
        Err(file) => Sink::Plain(file),
    };
    Ok((sink, path))
}

fn distlog_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Writes `parts` one after another: one `writev` in the common case, the
/// rest piece by piece after a short write.
fn write_all_parts<const N: usize>(file: &mut File, parts: [&[u8]; N]) -> io::Result<()> {
    let slices = parts.map(io::IoSlice::new);
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut done = loop {
        match file.write_vectored(&slices) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if done == total {
        return Ok(());
    }
    for part in parts {
        if done >= part.len() {
            done -= part.len();
            continue;
        }
        file.write_all(&part[done..])?;
        done = 0;
    }
    Ok(())
}

/// Truncates the newest segment of `dir` after its last good entry (a torn
/// tail from a crash). Returns the number of bytes cut.
pub fn recover(dir: &Path) -> io::Result<u64> {
    let Some(last) = segments(dir)?.pop() else {
        return Ok(0);
    };
    let bytes = std::fs::read(&last)?;
    let good = super::reader::valid_prefix(&bytes);
    let cut = (bytes.len() - good) as u64;
    if cut > 0 {
        OpenOptions::new()
            .write(true)
            .open(&last)?
            .set_len(good as u64)?;
    }
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::direct::{Fault, CHUNK, FAULT};
    use crate::store::test_dir;
    use crate::store::Reader;
    use std::os::unix::fs::PermissionsExt;

    fn opts(direct: bool, max_segment: u64) -> Options {
        Options {
            max_segment,
            sync: SyncPolicy::Never,
            direct: direct.then_some(Duration::from_secs(1)),
            ..Options::default()
        }
    }

    /// The bytes of each segment of `dir`, oldest first.
    fn contents(dir: &Path) -> Vec<Vec<u8>> {
        segments(dir)
            .unwrap()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Bodies of sizes that cross the gather buffer's edges: tiny ones,
    /// ones of a few KiB, and some larger than the whole buffer.
    fn bodies(n: usize) -> Vec<Vec<u8>> {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut rnd = |m: usize| rng.usize(..m.max(1));
        (0..n)
            .map(|i| {
                let len = match rnd(10) {
                    0 => CHUNK + rnd(CHUNK / 2),
                    1..=3 => 1 + rnd(3 * ALIGN),
                    _ => 1 + rnd(300),
                };
                (0..len).map(|j| (i * 31 + j) as u8).collect()
            })
            .collect()
    }

    /// Gathered, aligned direct writes with the tail rewritten in place
    /// give segments byte for byte equal to buffered writes of the same
    /// batches, whenever the flushes come (and across rotation); between
    /// flushes the file is a prefix of the buffered one and ends in whole
    /// entries up to `on_file`.
    #[test]
    fn gathered_direct_segments_equal_buffered_ones_byte_for_byte() {
        let (a, b) = (test_dir("gather-direct"), test_dir("gather-plain"));
        let mut direct = Writer::open_with(&a, opts(true, 3 << 20)).unwrap();
        let mut plain = Writer::open_with(&b, opts(false, 3 << 20)).unwrap();
        assert!(direct.is_direct(), "the temporary directory takes O_DIRECT");
        assert!(!plain.is_direct());
        for (i, body) in bodies(150).iter().enumerate() {
            let end = direct.append(*b"TLR", body).unwrap();
            assert_eq!(end, plain.append(*b"TLR", body).unwrap());
            assert!(direct.on_file() <= end);
            if i % 7 == 3 {
                direct.flush().unwrap();
                assert_eq!(direct.on_file(), end);
                assert_eq!(contents(&a), contents(&b), "after flush {i}");
            } else {
                let da = std::fs::read(direct.current()).unwrap();
                let db = std::fs::read(plain.current()).unwrap();
                assert!(db.starts_with(&da), "a prefix after {i}");
                // Readers see the entries up to `on_file`, whole.
                let valid = super::super::reader::valid_prefix(&da) as u64;
                assert_eq!(direct.origin + valid, direct.on_file(), "after {i}");
            }
            assert!(direct.is_direct());
        }
        direct.sync().unwrap();
        plain.sync().unwrap();
        let segs = contents(&a);
        assert!(segs.len() > 2, "rotated: {} segments", segs.len());
        assert_eq!(segs, contents(&b));
        for d in [a, b] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    /// Reading a segment while direct writes go on: each flush shows
    /// exactly the entries appended so far, never a torn one.
    #[test]
    fn readers_see_every_flushed_entry_and_no_torn_bytes() {
        let dir = test_dir("gather-read");
        let mut w = Writer::open_with(&dir, opts(true, 64 << 20)).unwrap();
        let body = encode_batch_to_vec(&distlog_core::wire::Batch::default());
        for n in 1..=200usize {
            w.append(*b"TLR", &body).unwrap();
            if n % 13 == 0 {
                w.flush().unwrap();
                let r = Reader::open(w.current()).unwrap();
                assert_eq!((r.batches().count(), r.torn()), (n, 0));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use distlog_core::wire::encode_batch_to_vec;

    /// A broker killed while it gathers (or in the middle of a direct
    /// write: the file ends inside an entry, or in a block of zeros the
    /// file system allocated) leaves a torn tail: readers stop at the last
    /// whole entry and the next open cuts the file there.
    #[test]
    fn a_torn_direct_tail_is_cut_at_open() {
        let dir = test_dir("gather-torn");
        let mut w = Writer::open_with(&dir, opts(true, 64 << 20)).unwrap();
        let small = encode_batch_to_vec(&distlog_core::wire::Batch::default());
        for _ in 0..10 {
            w.append(*b"TLR", &small).unwrap();
        }
        w.flush().unwrap();
        // An entry larger than the buffer: its front goes to the file with
        // the full buffer, its rest waits. Then the broker dies.
        let big = vec![7u8; CHUNK + 100];
        let end = w.append(*b"TLR", &big).unwrap();
        assert!(w.on_file() < end);
        let seg = w.current().to_owned();
        let whole = w.on_file();
        // Killed: nothing more is written (dropping would flush).
        std::mem::forget(w);
        let len = std::fs::metadata(&seg).unwrap().len();
        assert!(
            len > whole && len % ALIGN as u64 == 0,
            "ends inside the entry"
        );
        let r = Reader::open(&seg).unwrap();
        assert_eq!(r.batches().count(), 10);
        assert_eq!(r.torn() as u64, len - whole);
        assert_eq!(recover(&dir).unwrap(), len - whole);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), whole);
        // A block of zeros after the last entry (a direct write the crash
        // left unwritten): also a torn tail.
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&[0; ALIGN]);
        std::fs::write(&seg, &bytes).unwrap();
        assert_eq!(Reader::open(&seg).unwrap().batches().count(), 10);
        let w = Writer::open_with(&dir, opts(true, 64 << 20)).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), whole);
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Where `O_DIRECT` is refused (when the file is opened, or at the
    /// first write), the writer falls back to the page cache and writes
    /// the same bytes.
    #[test]
    fn refused_direct_io_falls_back_to_buffered_writes() {
        for at in [Fault::RefuseOpen, Fault::RefuseWrite] {
            let (a, b) = (test_dir("refused-direct"), test_dir("refused-plain"));
            FAULT.with(|f| f.set(Some(at)));
            let mut direct = Writer::open_with(&a, opts(true, 64 << 20)).unwrap();
            assert_eq!(direct.is_direct(), at == Fault::RefuseWrite);
            let mut plain = Writer::open_with(&b, opts(false, 64 << 20)).unwrap();
            for body in bodies(60) {
                direct.append(*b"TLR", &body).unwrap();
                plain.append(*b"TLR", &body).unwrap();
                // Once refused, every entry is in the file as appended.
                if !direct.is_direct() {
                    assert_eq!(direct.on_file(), direct.appended());
                }
            }
            assert!(!direct.is_direct(), "{at:?}");
            FAULT.with(|f| f.set(None));
            direct.sync().unwrap();
            assert_eq!(contents(&a), contents(&b), "{at:?}");
            for d in [a, b] {
                std::fs::remove_dir_all(d).unwrap();
            }
        }
    }

    /// A writer dropped without `sync` has written everything appended,
    /// as a buffered one has.
    #[test]
    fn dropping_a_writer_writes_what_it_gathered() {
        let dir = test_dir("gather-drop");
        let mut w = Writer::open_with(&dir, opts(true, 64 << 20)).unwrap();
        let small = encode_batch_to_vec(&distlog_core::wire::Batch::default());
        for _ in 0..3 {
            w.append(*b"TLR", &small).unwrap();
        }
        assert!(w.on_file() < w.appended());
        let seg = w.current().to_owned();
        drop(w);
        let r = Reader::open(&seg).unwrap();
        assert_eq!((r.batches().count(), r.torn()), (3, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A failed direct write (disk full, I/O error) cuts the segment back
    /// to its last whole entry: what was gathered after it is dropped
    /// (`appended` falls back to `on_file`), the file reads without a torn
    /// tail, and later appends go on after it.
    #[test]
    fn a_failed_direct_write_cuts_back_to_the_last_whole_entry() {
        let dir = test_dir("gather-fail");
        let mut w = Writer::open_with(&dir, opts(true, 64 << 20)).unwrap();
        let small = encode_batch_to_vec(&distlog_core::wire::Batch::default());
        for _ in 0..5 {
            w.append(*b"TLR", &small).unwrap();
        }
        w.flush().unwrap();
        let kept = w.on_file();
        // Three more wait in the buffer; then a large one fails to go out.
        for _ in 0..3 {
            w.append(*b"TLR", &small).unwrap();
        }
        assert!(w.appended() > kept);
        FAULT.with(|f| f.set(Some(Fault::FailWrite)));
        assert!(w.append(*b"TLR", &vec![1u8; CHUNK]).is_err());
        FAULT.with(|f| f.set(None));
        assert_eq!((w.appended(), w.on_file()), (kept, kept));
        let r = Reader::open(w.current()).unwrap();
        assert_eq!((r.batches().count(), r.torn()), (5, 0));
        // Appending goes on after the cut.
        for _ in 0..2 {
            w.append(*b"TLR", &small).unwrap();
        }
        w.flush().unwrap();
        assert!(w.is_direct());
        let r = Reader::open(w.current()).unwrap();
        assert_eq!((r.batches().count(), r.torn()), (7, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The sync policies hold with gathered writes: `always` leaves
    /// nothing waiting after an append.
    #[test]
    fn sync_always_writes_every_entry_at_once() {
        let dir = test_dir("gather-always");
        let mut w = Writer::open_with(
            &dir,
            Options {
                sync: SyncPolicy::Always,
                ..opts(true, 64 << 20)
            },
        )
        .unwrap();
        assert!(w.is_direct());
        for body in bodies(20) {
            let end = w.append(*b"TLR", &body).unwrap();
            assert_eq!(w.on_file(), end);
            assert_eq!(w.deadline(), None);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The README's claim: segments 0640, the directory 0750 (less under a
    /// stricter umask): never writable by the group, never readable by
    /// others.
    #[test]
    fn store_files_and_directory_are_closed_to_others() {
        let base = test_dir("modes");
        let dir = base.join("a/store");
        let mut w = Writer::open(&dir, 1 << 20).unwrap();
        w.append(*b"TLR", b"x").unwrap();
        w.sync().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir) & !0o750, 0, "dir mode {:o}", mode(&dir));
        assert_eq!(mode(&base.join("a")) & !0o750, 0);
        for seg in segments(&dir).unwrap() {
            assert_eq!(mode(&seg) & !0o640, 0, "segment mode {:o}", mode(&seg));
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
