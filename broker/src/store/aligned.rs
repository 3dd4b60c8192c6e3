//! Aligned writes of whole blocks: the one primitive both the store
//! thread ([`super::direct`]) and its writing thread
//! ([`super::chunk_writer`]) use, with the sizes they share and the faults
//! the tests inject. It depends on neither of them.

use rkyv::util::AlignedVec;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The alignment of direct writes' offsets, lengths and memory: the
/// largest logical block size of common devices.
pub const ALIGN: usize = 4096;

/// The gather buffer's size, and the largest direct write: 1 MiB (64 KiB
/// writes cost as much CPU as buffered ones here; 1 MiB ones a sixth).
pub const CHUNK: usize = 1 << 20;

/// Writes `buf` (a multiple of [`ALIGN`] long, from an [`ALIGN`]-aligned
/// buffer) at `at`, directly; after a short direct write that ends off
/// the alignment, or once direct writes are refused (`refused`: before
/// this write), the rest through `plain`. Returns whether direct writes
/// are refused. `fault`: the one a test injects.
pub(crate) fn write_aligned(
    direct: &File,
    plain: &File,
    buf: &[u8],
    at: u64,
    mut refused: bool,
    fault: Option<Fault>,
) -> io::Result<bool> {
    debug_assert_eq!(buf.len() % ALIGN, 0);
    let n = buf.len();
    let mut done = 0;
    while done < n && !refused {
        let wrote = injected(fault, Fault::RefuseWrite)
            .and_then(|()| injected(fault, Fault::FailWrite))
            .and_then(|()| direct.write_at(&buf[done..], at + done as u64));
        match wrote {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            // A short direct write that ends off the alignment: the rest
            // goes through the page cache.
            Ok(k) if k % ALIGN != 0 => {
                done += k;
                break;
            }
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if refuses_direct(&e) => refused = true,
            Err(e) => return Err(e),
        }
    }
    if done < n {
        plain.write_all_at(&buf[done..], at + done as u64)?;
    }
    Ok(refused)
}

/// A zeroed [`CHUNK`]-byte buffer, [`ALIGN`]-aligned.
pub(crate) fn chunk_buffer() -> AlignedVec<ALIGN> {
    let mut b = AlignedVec::<ALIGN>::with_capacity(CHUNK);
    b.resize(CHUNK, 0);
    b
}

/// Whether an error is a file system's refusal of `O_DIRECT`.
pub(super) fn refuses_direct(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// The faults the tests inject (no file system on this machine refuses
/// `O_DIRECT`: tmpfs takes it since Linux 6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `O_DIRECT` refused when the file is opened.
    RefuseOpen,
    /// `O_DIRECT` refused at the first write.
    RefuseWrite,
    /// Direct writes fail (`EIO`).
    FailWrite,
}

#[cfg(test)]
thread_local! {
    /// The fault the tests inject on this thread, if any.
    pub(crate) static FAULT: std::cell::Cell<Option<Fault>> = const { std::cell::Cell::new(None) };
}

/// The fault the tests inject on this thread, if any (to hand to
/// [`write_aligned`] on another thread).
pub(crate) fn current_fault() -> Option<Fault> {
    #[cfg(test)]
    return FAULT.with(|f| f.get());
    #[cfg(not(test))]
    None
}

/// The error of fault `at` if it is the one injected (`fault`).
pub(super) fn injected(fault: Option<Fault>, at: Fault) -> io::Result<()> {
    if fault == Some(at) {
        let errno = match at {
            Fault::FailWrite => libc::EIO,
            Fault::RefuseOpen | Fault::RefuseWrite => libc::EINVAL,
        };
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(())
}
