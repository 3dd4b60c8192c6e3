//! The `log` call sites seen so far, interned once each and found again by
//! address.
//!
//! Invariants, which the rest relies on:
//!
//! - A [`Site`] is created once, never changed and never freed (leaked: at
//!   most [`MAX_SITES`] of them, a few hundred bytes each), so a
//!   `&'static Site` in a ring entry stays valid for the sender, like a
//!   native `&'static Callsite`.
//! - A site's `module` and `file` are the record's `'static` strings, its
//!   `target` either the record's module path (the `log` macros' default,
//!   `'static`) or a copy the site owns. A record matches a site when its
//!   file (address and length), line, level and module (address and
//!   length) are the site's and its target is the site's, by address or
//!   by content; so a target built at run time that reuses an old address
//!   is still compared by content, and never takes another target's site.
//! - The table is written only under [`INTERN`] and only from null to a
//!   site (release); readers load a slot (acquire) and never wait.
//!
//! A lookup: hash the file's address and the line, then probe at most
//! [`PROBES`] slots (the first inline, the rest out of line). A miss interns the site (cold: a lock, two small
//! allocations) unless the table is at its bound, and then the record takes
//! the uncached path.

use crate::pipeline::PIPELINE;
use crate::record::level;
use parking_lot::Mutex;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Slots in the table (a power of two).
const SLOTS: usize = 4096;
/// Sites interned at most; the table stays at most half full, so probe
/// sequences stay short.
pub(crate) const MAX_SITES: usize = SLOTS / 2;
/// Slots probed for one lookup.
const PROBES: usize = 8;
/// The first guess of a site's entry size, before it has written one.
const FIRST_SIZE_HINT: u32 = 128;

/// One `log` call site: everything about its records that does not change
/// between calls.
#[derive(Debug)]
pub(crate) struct Site {
    pub target: &'static str,
    pub module: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// The record's level, on distlog's scale.
    pub level: u8,
    log_level: log::Level,
    /// Whether the directives let this site's records through (fixed: the
    /// pipeline's directives do not change once it is installed).
    pub enabled: bool,
    /// The largest entry this site has needed so far, without its task
    /// section: what a call reserves first ([`super::direct`]).
    pub size_hint: AtomicU32,
}

impl Site {
    #[inline(always)]
    fn matches(&self, r: &Key<'_>) -> bool {
        ptr::eq(self.file, r.file)
            && self.line == r.line
            && self.log_level == r.level
            && ptr::eq(self.module, r.module)
            && self.target_is(r.target)
    }

    /// Whether `target` is the site's: by address, else by content.
    #[inline(always)]
    fn target_is(&self, target: &str) -> bool {
        ptr::eq(self.target, target) || self.target == target
    }
}

/// What identifies a record's site.
struct Key<'a> {
    file: &'static str,
    module: &'static str,
    line: u32,
    level: log::Level,
    target: &'a str,
}

static TABLE: [AtomicPtr<Site>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// Held while interning; counts the sites interned.
static INTERN: Mutex<usize> = parking_lot::const_mutex(0);

#[inline(always)]
fn slot_of(file: &'static str, line: u32) -> usize {
    let h = (file.as_ptr() as usize as u64 ^ u64::from(line).rotate_left(32))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 52) as usize // the top 12 bits: SLOTS = 4096
}

/// The site of `record` when it is in the first slot of its probe
/// sequence and matches by address (the common case: a site that hashed
/// to a free slot), read from the record's fields where they lie; else
/// `Err(first)`, the probe sequence's first slot, for [`find_probing`]
/// (which also takes records whose location is not static).
///
/// No call is made here, so the caller needs no frame: a caller that
/// tail-calls both ways costs nothing but the compares.
#[inline(always)]
pub(crate) fn find_first(record: &log::Record<'_>) -> Result<&'static Site, usize> {
    let Some(file) = record.file_static() else {
        return Err(0);
    };
    let line = record.line().unwrap_or(0);
    let first = slot_of(file, line);
    let p = TABLE[first].load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: non-null slots hold sites leaked by `intern`, never freed
        // or changed, published by a release store that the load above
        // acquired.
        let site: &'static Site = unsafe { &*p };
        // The target by address only: one equal by content (a target
        // built at run time) goes the out-of-line way, which compares it
        // in full.
        if ptr::eq(site.file, file)
            && site.line == line
            && site.log_level == record.level()
            && record
                .module_path_static()
                .is_some_and(|m| ptr::eq(site.module, m))
            && ptr::eq(site.target, record.target())
        {
            return Ok(site);
        }
    }
    Err(first)
}

/// The site of `record`, interning it on first sight, past
/// [`find_first`]: the whole probe sequence from slot `first` (targets
/// compared by content), then interning. `None` when the record's location
/// is not static, when no pipeline is installed yet, or when the table is
/// at its bound: the caller takes the uncached path.
#[inline(always)]
pub(crate) fn find_probing(record: &log::Record<'_>, first: usize) -> Option<&'static Site> {
    let key = Key {
        file: record.file_static()?,
        module: record.module_path_static()?,
        line: record.line().unwrap_or(0),
        level: record.level(),
        target: record.target(),
    };
    for i in 0..PROBES {
        let p = TABLE[(first + i) % SLOTS].load(Ordering::Acquire);
        if p.is_null() {
            break;
        }
        // SAFETY: as in `find_first`.
        let site: &'static Site = unsafe { &*p };
        if site.matches(&key) {
            return Some(site);
        }
    }
    intern(&key, first)
}

#[cold]
#[inline(never)]
fn intern(key: &Key<'_>, first: usize) -> Option<&'static Site> {
    let directives = &PIPELINE.get()?.config.directives;
    let mut count = INTERN.lock();
    // Another thread may have interned it since our probe; else the first
    // free slot of the probe sequence.
    let mut free = None;
    for i in 0..PROBES {
        let slot = &TABLE[(first + i) % SLOTS];
        let p = slot.load(Ordering::Acquire);
        if p.is_null() {
            free = Some(slot);
            break;
        }
        // SAFETY: as in `find_first`.
        let site: &'static Site = unsafe { &*p };
        if site.matches(key) {
            return Some(site);
        }
    }
    let slot = free?;
    if *count >= MAX_SITES {
        return None;
    }
    let target: &'static str = if key.target == key.module {
        key.module
    } else {
        Box::leak(Box::from(key.target))
    };
    let lvl = level::from_log(key.level);
    let site: &'static Site = Box::leak(Box::new(Site {
        target,
        module: key.module,
        file: key.file,
        line: key.line,
        level: lvl,
        log_level: key.level,
        enabled: directives.enabled(target, lvl),
        size_hint: AtomicU32::new(FIRST_SIZE_HINT),
    }));
    slot.store(site as *const Site as *mut Site, Ordering::Release);
    *count += 1;
    Some(site)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_over_the_table() {
        let file: &'static str = "src/main.rs";
        let mut seen = std::collections::HashSet::new();
        for line in 0..1000 {
            seen.insert(slot_of(file, line));
        }
        assert!(
            seen.len() > 900,
            "{} distinct slots of 1000 lines",
            seen.len()
        );
        assert!(seen.iter().all(|&s| s < SLOTS));
    }
}
