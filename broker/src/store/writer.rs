//! Appending batches to segments.

use super::{segments, ENTRY_HEADER, MAGIC, TOPIC_PAD};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Appends batches to the newest segment, rotating by size.
pub struct Writer {
    dir: PathBuf,
    file: File,
    written: u64,
    max_segment: u64,
    last_sync: Instant,
    entry: Vec<u8>,
    n: u64,
}

impl Writer {
    /// Opens `dir` (created if missing, mode 0750) for appending; after
    /// [`recover`], new batches go to a new segment.
    pub fn open(dir: &Path, max_segment: u64) -> io::Result<Writer> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create data dir {}: {e}", dir.display()),
                )
            })?;
        recover(dir)?;
        let (file, n) = new_segment(dir, 0)?;
        Ok(Writer {
            dir: dir.to_owned(),
            file,
            written: MAGIC.len() as u64,
            max_segment: max_segment.max(4096),
            last_sync: Instant::now(),
            entry: Vec::new(),
            n,
        })
    }

    /// Appends one batch body under its topic.
    pub fn append(&mut self, topic: [u8; 3], body: &[u8]) -> io::Result<()> {
        let payload_len = TOPIC_PAD + body.len();
        let padded = (payload_len + 7) & !7;
        self.entry.clear();
        self.entry.extend_from_slice(&(padded as u32).to_le_bytes());
        self.entry.extend_from_slice(&[0; 4]);
        self.entry.extend_from_slice(&topic);
        self.entry.extend_from_slice(&[0; 5]);
        self.entry.extend_from_slice(body);
        self.entry.resize(ENTRY_HEADER + padded, 0);
        let crc = crc32fast::hash(&self.entry[ENTRY_HEADER..]);
        self.entry[4..8].copy_from_slice(&crc.to_le_bytes());
        if self.written + self.entry.len() as u64 > self.max_segment {
            self.rotate()?;
        }
        self.file.write_all(&self.entry)?;
        self.written += self.entry.len() as u64;
        if self.last_sync.elapsed() >= Duration::from_secs(1) {
            self.sync()?;
        }
        Ok(())
    }

    /// Forces what was written to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.last_sync = Instant::now();
        self.file.sync_data()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let (file, n) = new_segment(&self.dir, self.n + 1)?;
        self.file = file;
        self.n = n;
        self.written = MAGIC.len() as u64;
        Ok(())
    }
}

fn new_segment(dir: &Path, n: u64) -> io::Result<(File, u64)> {
    let ns = distlog_now_ns();
    let path = dir.join(format!("seg-{ns:020}-{n:06}.dls"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&MAGIC)?;
    Ok((file, n))
}

fn distlog_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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
