//! `store`: the embedded segment store (see [`crate::store`]).
//!
//! ```yaml
//! store: { type: store, segment_size: 64MiB, retain_age: 7d }
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Overflow, Processor, QueueConfig, Settings};
use crate::config::units;
use crate::store::{apply_retention, Options, Retention, SyncPolicy, Writer};
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `store` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the segments; default: the top-level `data_dir`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Rotate when a segment reaches this size (default 64 MiB, at least
    /// 4 KiB).
    #[serde(default = "default_segment_size", with = "units::size")]
    pub segment_size: u64,
    /// Rotate when a segment is this old (default 1h).
    #[serde(default = "default_segment_age", with = "units::duration")]
    pub segment_age: Duration,
    /// Delete segments older than this (default: keep).
    #[serde(default, with = "units::duration::option")]
    pub retain_age: Option<Duration>,
    /// Delete the oldest segments while the store is larger (default: keep).
    #[serde(default, with = "units::size::option")]
    pub retain_size: Option<u64>,
    /// When to fsync (default `interval`).
    #[serde(default = "default_fsync")]
    pub fsync: Fsync,
    /// The longest a write waits for `fsync` under `interval` (default 1s).
    #[serde(default = "default_fsync_interval", with = "units::duration")]
    pub fsync_interval: Duration,
    /// The queue (overflow default `block`: nothing the broker took is
    /// lost).
    #[serde(default)]
    pub queue: QueueConfig,
}

/// When the store forces its data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch: a machine crash loses nothing stored. Slow.
    Always,
    /// At most `fsync_interval` after a write, on rotation and at shutdown
    /// (the default).
    Interval,
    /// Only on rotation and at shutdown; the OS writes back the rest.
    Never,
}

fn default_segment_size() -> u64 {
    64 << 20
}
fn default_segment_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_fsync() -> Fsync {
    Fsync::Interval
}
fn default_fsync_interval() -> Duration {
    Duration::from_secs(1)
}

impl StoreConfig {
    /// The directory the segments go to: `dir`, or else `data_dir`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.to_owned())
    }
}

impl Settings for StoreConfig {
    fn default_overflow(&self) -> Overflow {
        Overflow::Block
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.segment_size < 4096 {
            return Err(Invalid::new("segment_size", "segment_size at least 4KiB"));
        }
        Ok(())
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Store::open(self, ctx)?))
    }
}

/// Appends every delivered batch, exactly as it arrived when whole.
pub struct Store {
    writer: Writer,
    retention: Retention,
}

impl Store {
    /// Opens the store's directory (recovering a torn tail) and starts a
    /// new segment.
    pub fn open(c: &StoreConfig, ctx: &Context<'_>) -> io::Result<Store> {
        let dir = c.dir_in(ctx.shared.data_dir);
        let sync = match c.fsync {
            Fsync::Always => SyncPolicy::Always,
            Fsync::Interval => SyncPolicy::Interval(c.fsync_interval),
            Fsync::Never => SyncPolicy::Never,
        };
        let writer = Writer::open_with(
            &dir,
            Options {
                max_segment: c.segment_size,
                max_age: c.segment_age,
                sync,
            },
        )?;
        Ok(Store {
            writer,
            retention: Retention {
                max_age: c.retain_age,
                max_bytes: c.retain_size,
            },
        })
    }
}

impl Processor for Store {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        for body in d.bodies() {
            self.writer.append(d.topic.bytes(), &body)?;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        self.writer.tick()?;
        apply_retention(self.writer.dir(), self.retention, self.writer.current())?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.sync()
    }
}
