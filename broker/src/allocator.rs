//! The process's memory allocator: received message buffers are reused,
//! not faulted in afresh after every burst.

/// Freed memory glibc's allocator keeps mapped at the top of each of its
/// arenas before it hands any back to the kernel (`M_TRIM_THRESHOLD`).
pub const KEEP_FREED: usize = 256 << 20;

/// Room glibc leaves when it trims an arena (`M_TOP_PAD`; also what it
/// adds when it grows one, address space only until touched).
pub const TOP_PAD: usize = 256 << 20;

/// Allocations at least this large get their own mapping
/// (`M_MMAP_THRESHOLD`): glibc's own upper bound for its sliding
/// threshold, fixed, because setting the other two stops it sliding.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Makes the process's allocator keep the memory it frees, up to
/// [`KEEP_FREED`] per arena, instead of handing it back to the kernel.
///
/// Why: ZeroMQ's I/O thread receives every message into a fresh
/// allocation of its size (64 KiB for a full client batch), and the
/// workers and the store free it later. With glibc's defaults (trim
/// above 128 KiB), whenever the queues drain the freed top of the I/O
/// thread's arena goes back to the kernel (`madvise`, in the freeing
/// thread), and the next messages take every page as a fresh one: a page
/// fault and a page cleared per 4 KiB received. In the steady state of
/// `benches/peers/rsyslog.sh` that is 3-40 k faults per 6 M records in
/// the I/O thread and, kept, 0-9 k; on a quiet machine the broker's CPU
/// per record fell to 0.84-0.85 of the default's in two 6 M-record runs
/// (0.70, 1.05 and 1.08 in three 3 M-record ones, whose ~0.4 s rounds
/// weigh each round's start more). 64 MiB kept did not keep the faults
/// away at 6 M. PERFORMANCE.md, Broker vs rsyslog, 2026-12-07.
///
/// The cost: after a burst the process stays at about its peak
/// resident memory instead of falling back (`benches/peers/e2e.sh`, 4 M
/// records, two runs each: 37-58 MiB at the end against 17 MiB, peaks
/// 37-58 against 74 MiB in the one default run that reported); the peak
/// itself is what the broker's bounded queues allow (README "Bounded,
/// but large by default"), and each arena keeps at most [`KEEP_FREED`]
/// of it. Process-wide, so the `distlogd` binary calls it once at start,
/// before any thread allocates; a library user of [`crate::Broker`]
/// decides for their own process. Does nothing off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (param, value) in [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, KEEP_FREED),
        (libc::M_TOP_PAD, TOP_PAD),
    ] {
        // SAFETY: `mallopt` only sets one of the allocator's tunables,
        // under its own locks (safe from any thread at any time); the
        // parameters are glibc's constants and the values fit `c_int`. A
        // refusal (0) leaves glibc's default, which is only slower.
        unsafe {
            libc::mallopt(param, value as libc::c_int);
        }
    }
}
