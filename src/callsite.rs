//! Call-site metadata of the native macros, captured once in a static.
//!
//! Each `distlog::info!` (etc.) expands to a `static` [`Callsite`] holding
//! everything that never changes between calls: level, target, module, file,
//! line, format string and field names. The log call stores only a pointer to
//! it; the sender reads the rest. Whether a call site is enabled is cached in
//! the call site itself, so a disabled level costs one load and a branch.
//!
//! Call sites register themselves (a lock-free push onto an intrusive list)
//! the first time they run; when the level directives change, every
//! registered call site's cached interest is recomputed.

use crate::directives::Directives;
use parking_lot::RwLock;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const DISABLED: u8 = 1;
const ENABLED: u8 = 2;
/// Another thread is adding the call site to the list; until it stores the
/// interest, callers compute it themselves (never read as disabled: that
/// silently lost the first records of a call site hit by several threads
/// at once).
const REGISTERING: u8 = 3;

/// Static metadata of one native-macro call site. Built by the macros.
#[derive(Debug)]
pub struct Callsite {
    /// Numeric level (Python scale).
    pub level: u8,
    /// Record kind (`L` or `P`).
    pub kind: u8,
    /// Target (defaults to the module path).
    pub target: &'static str,
    /// Module path.
    pub module: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// The format string, rendered by readers with the typed arguments.
    pub format: &'static str,
    /// Number of format arguments.
    pub args: u8,
    /// Names of the key/value fields, in order.
    pub fields: &'static [&'static str],
    interest: AtomicU8,
    next: AtomicPtr<Callsite>,
}

static HEAD: AtomicPtr<Callsite> = AtomicPtr::new(ptr::null_mut());
static DIRECTIVES: RwLock<Option<Directives>> = RwLock::new(None);

impl Callsite {
    /// A call site; used by the macros.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        level: u8,
        kind: u8,
        target: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
        format: &'static str,
        args: u8,
        fields: &'static [&'static str],
    ) -> Callsite {
        Callsite {
            level,
            kind,
            target,
            module,
            file,
            line,
            format,
            args,
            fields,
            interest: AtomicU8::new(UNKNOWN),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Whether records from this call site are wanted now.
    #[inline(always)]
    pub fn is_enabled(&'static self) -> bool {
        match self.interest.load(Ordering::Relaxed) {
            ENABLED => true,
            DISABLED => false,
            _ => self.register(),
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&'static self) -> bool {
        // Push once; a losing racer only computes the interest.
        if self
            .interest
            .compare_exchange(UNKNOWN, REGISTERING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let me = self as *const Callsite as *mut Callsite;
            let mut head = HEAD.load(Ordering::Acquire);
            loop {
                self.next.store(head, Ordering::Relaxed);
                match HEAD.compare_exchange_weak(head, me, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(h) => head = h,
                }
            }
        }
        let directives = DIRECTIVES.read();
        self.recompute(directives.as_ref())
    }

    fn recompute(&self, directives: Option<&Directives>) -> bool {
        let on = directives.is_some_and(|d| d.enabled(self.target, self.level));
        self.interest
            .store(if on { ENABLED } else { DISABLED }, Ordering::Relaxed);
        on
    }
}

/// Installs new directives and recomputes every registered call site.
/// `None` disables every call site (no pipeline).
pub(crate) fn set_directives(directives: Option<Directives>) {
    let mut slot = DIRECTIVES.write();
    *slot = directives;
    let mut cur = HEAD.load(Ordering::Acquire);
    while !cur.is_null() {
        // SAFETY: only `&'static Callsite`s are ever pushed onto the list,
        // and they are never removed, so every pointer on it is valid for
        // the life of the program.
        let cs = unsafe { &*cur };
        cs.recompute(slot.as_ref());
        cur = cs.next.load(Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::level;

    static A: Callsite = Callsite::new(level::INFO, b'L', "a", "a", "f", 1, "x", 0, &[]);
    static B: Callsite = Callsite::new(level::DEBUG, b'L', "b::c", "b", "f", 2, "y", 0, &[]);

    #[test]
    fn interest_follows_directives() {
        set_directives(None);
        assert!(!A.is_enabled());
        set_directives(Some(Directives::parse("info,b=debug").unwrap()));
        assert!(A.is_enabled());
        assert!(B.is_enabled());
        // A call site another thread is registering (it won the race and
        // has not stored the interest yet) is not read as disabled: this
        // caller computes the interest itself.
        C.interest.store(REGISTERING, Ordering::Relaxed);
        assert!(C.is_enabled());
        assert!(C.is_enabled());
        set_directives(Some(Directives::parse("warn").unwrap()));
        assert!(!A.is_enabled());
        assert!(!B.is_enabled());
        C.interest.store(REGISTERING, Ordering::Relaxed);
        assert!(!C.is_enabled());
    }

    // Registered only by hand above, so `set_directives` never sees it.
    static C: Callsite = Callsite::new(level::INFO, b'L', "c", "c", "f", 3, "z", 0, &[]);
}
