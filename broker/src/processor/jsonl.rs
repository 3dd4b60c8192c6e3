//! `jsonl`: one JSON object per line, with the Python LogRecord field
//! names (see `distlog_filter::render::json_record`), rotated by size:
//! `file.jsonl` is written, `file.jsonl.1` is the newest rotated file,
//! `file.jsonl.<keep>` the oldest kept.
//!
//! The path comes from the config only; nothing in a record can change
//! where the processor writes.
//!
//! ```yaml
//! errors: { type: jsonl, path: /var/log/distlog/errors.jsonl, rotate_size: 100MiB, keep: 5 }
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Processor, QueueConfig, Settings};
use crate::config::units;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The `jsonl` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The file written to; rotated files get `.1`, `.2`, ... (newest
    /// first). It must name a file.
    pub path: PathBuf,
    /// Rotate at this size (default 100 MiB).
    #[serde(default = "default_rotate_size", with = "units::size")]
    pub rotate_size: u64,
    /// Rotated files kept (default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_rotate_size() -> u64 {
    100 << 20
}
fn default_keep() -> u32 {
    5
}

impl Settings for JsonlConfig {
    fn check(&self) -> Result<(), Invalid> {
        if self.path.file_name().is_none() {
            return Err(Invalid::new("path", "path must name a file"));
        }
        Ok(())
    }

    fn build(&self, _: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Jsonl::open(self)?))
    }
}

/// Writes JSON lines.
pub struct Jsonl {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    rotate_size: u64,
    keep: u32,
    line: String,
}

fn open(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let len = f.metadata()?.len();
    Ok((BufWriter::with_capacity(256 * 1024, f), len))
}

impl Jsonl {
    /// Opens (appends to) the file.
    pub fn open(c: &JsonlConfig) -> io::Result<Jsonl> {
        let (out, written) = open(&c.path)?;
        Ok(Jsonl {
            path: c.path.clone(),
            out,
            written,
            rotate_size: c.rotate_size.max(1),
            keep: c.keep,
            line: String::new(),
        })
    }

    fn rotated(&self, i: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{i}"));
        p.into()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.rotated(self.keep));
            for i in (1..self.keep).rev() {
                let from = self.rotated(i);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(i + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let (out, written) = open(&self.path)?;
        self.out = out;
        self.written = written;
        Ok(())
    }
}

impl Processor for Jsonl {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let b = d.batch.get();
        for r in d.records() {
            self.line.clear();
            distlog_filter::render::json_record(d.topic.system, b.sender(), r, &mut self.line);
            self.line.push('\n');
            if self.written > 0 && self.written + self.line.len() as u64 > self.rotate_size {
                self.rotate()?;
            }
            self.out.write_all(self.line.as_bytes())?;
            self.written += self.line.len() as u64;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}
