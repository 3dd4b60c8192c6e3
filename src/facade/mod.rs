//! The `log` facade: records from every crate that logs through `log`.
//!
//! A `log` call site has no static of its own that distlog could point at
//! (the `log` macros build a `Record` on the stack), but its location is
//! static: `file_static()`, `module_path_static()` and the line. The first
//! record from a location interns a [`Site`] (its target, module, file,
//! line, level and whether that is enabled) in a process-wide table
//! ([`sites`]); every later record finds it by the file's address and the
//! line, and writes a FACADE entry straight into the thread's ring
//! ([`direct`]): the site's address, the message, the key/values. Per
//! record that saves the directives check, copying three strings, and a
//! scratch buffer copied into the ring.
//!
//! The message is written as `fmt::Arguments` allows:
//!
//! - a plain literal (`log::info!("started")`): [`fmt::Arguments::as_str`]
//!   gives it as a `&'static str`, and the entry holds its address: no
//!   formatting, no copy;
//! - anything else is formatted by `core::fmt` straight into the ring
//!   slot. Capturing the arguments' typed values instead, as the native
//!   macros do, is not possible: `fmt::Arguments` exposes nothing but
//!   `as_str` and its `Display` on stable Rust.
//!
//! Key/values keep their type (`u64`, `i64`, `f64`, `bool`, `str`, through
//! one typed visit: a `u64` stays a `u64`); other values are formatted with
//! `Display`.
//!
//! Records whose location is not static (a hand-built `Record`), and those
//! of locations beyond the table's bound, take the [`dynamic`] path, as
//! every facade record did before: the metadata copied into each entry.
//!
//! [`fmt::Arguments::as_str`]: std::fmt::Arguments::as_str

mod direct;
mod dynamic;
mod sites;
mod typed;

pub(crate) use dynamic::{emit_parts, Parts};
#[cfg(feature = "tracing")]
pub(crate) use dynamic::{Body, Kvs};
pub(crate) use sites::Site;

use crate::pipeline::PIPELINE;
use crate::record::level;

/// The `log::Log` implementation installed by [`Builder::install`](crate::Builder::install).
pub(crate) struct Facade;

impl log::Log for Facade {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        PIPELINE.get().is_some_and(|p| {
            p.config
                .directives
                .enabled(metadata.target(), level::from_log(metadata.level()))
        })
    }

    fn log(&self, record: &log::Record<'_>) {
        // Frameless: the lookup's first slot inline, then a tail call to
        // the entry's writer, or to the rest of the lookup.
        match sites::find_first(record) {
            Ok(site) => {
                if site.enabled {
                    direct::emit(site, record);
                }
            }
            Err(first) => probing(self, record, first),
        }
    }

    fn flush(&self) {
        crate::flush();
    }
}

/// A record whose site [`sites::find_first`] did not find: the rest of the
/// probe sequence, interning, or the uncached path.
#[cold]
#[inline(never)]
fn probing(facade: &Facade, record: &log::Record<'_>, first: usize) {
    match sites::find_probing(record, first) {
        Some(site) => {
            if site.enabled {
                direct::emit(site, record);
            }
        }
        None => uncached(facade, record),
    }
}

/// A record without a cached site: checked and encoded with its metadata.
#[cold]
#[inline(never)]
fn uncached(facade: &Facade, record: &log::Record<'_>) {
    if log::Log::enabled(facade, record.metadata()) {
        dynamic::emit_record(record);
    }
}
