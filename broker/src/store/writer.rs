//! Appending batches to segments.

use super::segment::{segments, ENTRY_HEADER, MAGIC, TOPIC_PAD};
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_segment: 64 << 20,
            max_age: Duration::from_secs(3600),
            sync: SyncPolicy::Interval(Duration::from_secs(1)),
        }
    }
}

/// Appends batches to the newest segment, rotating by size and age.
pub struct Writer {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    written: u64,
    opts: Options,
    opened: Instant,
    last_sync: Instant,
    dirty: bool,
    n: u64,
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
        let (file, path) = new_segment(dir, 0)?;
        Ok(Writer {
            dir: dir.to_owned(),
            file,
            path,
            written: MAGIC.len() as u64,
            opts: Options {
                max_segment: opts.max_segment.max(4096),
                ..opts
            },
            opened: Instant::now(),
            last_sync: Instant::now(),
            dirty: false,
            n: 0,
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

    /// Appends one batch body under its topic. The body is not copied: the
    /// entry goes to the file as one vectored write of its header, the body
    /// and the padding.
    pub fn append(&mut self, topic: [u8; 3], body: &[u8]) -> io::Result<()> {
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
        let non_empty = self.written > MAGIC.len() as u64;
        if non_empty
            && (self.written + entry_len > self.opts.max_segment
                || self.opened.elapsed() >= self.opts.max_age)
        {
            self.rotate()?;
        }
        if let Err(e) = write_all_parts(&mut self.file, [&head, body, padding]) {
            // A short write (disk full) leaves a torn entry: cut it so the
            // segment stays readable, and report.
            let _ = self.file.set_len(self.written);
            let _ = self.file.seek(SeekFrom::Start(self.written));
            return Err(e);
        }
        self.written += entry_len;
        self.dirty = true;
        match self.opts.sync {
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(())
    }

    /// Periodic upkeep: rotates an old segment, syncs under the interval
    /// policy.
    pub fn tick(&mut self) -> io::Result<()> {
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

    /// Forces what was written to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.last_sync = Instant::now();
        self.dirty = false;
        self.file.sync_data()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        self.n += 1;
        let (file, path) = new_segment(&self.dir, self.n)?;
        self.file = file;
        self.path = path;
        self.opened = Instant::now();
        self.written = MAGIC.len() as u64;
        Ok(())
    }
}

fn new_segment(dir: &Path, n: u64) -> io::Result<(File, PathBuf)> {
    let ns = distlog_now_ns();
    let path = dir.join(format!("seg-{ns:020}-{n:06}.dls"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&MAGIC)?;
    Ok((file, path))
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
    use std::os::unix::fs::PermissionsExt;

    /// The README's claim: segments 0640, the directory 0750 (less under a
    /// stricter umask): never writable by the group, never readable by
    /// others.
    #[test]
    fn store_files_and_directory_are_closed_to_others() {
        let base = std::env::temp_dir().join(format!("distlog-modes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
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
