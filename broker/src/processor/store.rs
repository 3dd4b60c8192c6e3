//! `store`: the embedded segment store (see [`crate::store`]).

use super::{Context, Delivery, Processor};
use crate::config::{Fsync, StoreConfig};
use crate::store::{apply_retention, Options, Retention, SyncPolicy, Writer};
use std::io;

/// Appends every delivered batch, exactly as it arrived when whole.
pub struct Store {
    writer: Writer,
    retention: Retention,
}

impl Store {
    /// Opens the store's directory (recovering a torn tail) and starts a
    /// new segment.
    pub fn open(c: &StoreConfig, ctx: &Context<'_>) -> io::Result<Store> {
        let dir = ctx.config.store_dir(c);
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
