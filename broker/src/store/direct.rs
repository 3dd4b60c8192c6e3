//! Gathered `O_DIRECT` writes of a segment: the store's write path that
//! bypasses the page cache.
//!
//! # Why
//!
//! Through the page cache, a third of the broker's CPU went to ext4's
//! buffered write path (block reservation, buffer heads, the copy into
//! freshly faulted page-cache folios; PERFORMANCE.md, issue 17). A direct
//! write of a large aligned buffer skips all of it: the device reads the
//! buffer in place.
//!
//! # How
//!
//! Direct writes want offsets and lengths that are multiples of the
//! device's block ([`ALIGN`], 4 KiB) from memory aligned the same way.
//! Entries are copied into one [`CHUNK`]-byte buffer, aligned to [`ALIGN`],
//! which holds the segment's bytes from `base` (a multiple of [`ALIGN`]):
//!
//! - a full buffer is written whole with one direct write, and gathering
//!   goes on from its start at `base + CHUNK`;
//! - [`Gather::flush`] (the writer calls it when the oldest byte gathered
//!   has waited its bound, on sync and on rotation) writes the aligned part
//!   directly and the unaligned tail (under [`ALIGN`] bytes) through the
//!   page cache, with `pwrite` on a second, ordinary descriptor; the tail
//!   stays in the buffer, moved to its start, and the next direct write
//!   rewrites its block in place, with the same bytes and more after them.
//!
//! So the file holds exactly the bytes a buffered writer would have
//! written, never padding, and grows only by whole entries or the front of
//! one: readers (which stop at a truncated entry) and torn-tail recovery
//! see the segment format unchanged. What readers cannot see yet is what
//! is still gathered: at most the writer's bound old.
//!
//! [`Gather::whole`] is the end of the last entry wholly in the file: the
//! store acknowledges and counts a batch as written only once this passes
//! its end. A failed write cuts the file back to it
//! ([`Gather::cut_back`]), dropping what was gathered after it.
//!
//! # Where direct I/O is refused
//!
//! Some filesystems refuse `O_DIRECT` with `EINVAL`, when the file is
//! opened or at the first write. [`Gather::open`] then hands the ordinary
//! descriptor back, and a refused write sets [`Gather::refused`] after
//! writing the data through the ordinary descriptor: the writer then falls
//! back to buffered writes.
//!
//! The buffer is `rkyv`'s [`AlignedVec`] with a 4 KiB alignment (already a
//! dependency, and the store's reader uses it): no `unsafe` here.

use rkyv::util::AlignedVec;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

/// The alignment of direct writes' offsets, lengths and memory: the
/// largest logical block size of common devices.
pub const ALIGN: usize = 4096;

/// The gather buffer's size, and the largest direct write: 1 MiB (64 KiB
/// writes cost as much CPU as buffered ones here; 1 MiB ones a sixth).
pub const CHUNK: usize = 1 << 20;

/// A segment written with gathered direct writes (see the module docs).
pub struct Gather {
    /// Opened with `O_DIRECT`: the aligned writes.
    direct: File,
    /// Opened without: the unaligned tails, cutting back, and the fallback.
    plain: File,
    /// [`CHUNK`] bytes, [`ALIGN`]-aligned: the file's bytes from `base`.
    buf: AlignedVec<ALIGN>,
    /// How many bytes of `buf` hold data.
    len: usize,
    /// The file offset of `buf[0]`, a multiple of [`ALIGN`].
    base: u64,
    /// The file's bytes before this offset are written.
    on_file: u64,
    /// The ends of gathered entries not wholly in the file, in order.
    ends: VecDeque<u64>,
    /// The end of the last entry wholly in the file.
    whole: u64,
    /// When the oldest byte not yet in the file was gathered.
    oldest: Option<Instant>,
    /// A direct write was refused: the data went through `plain`, and the
    /// writer should fall back to buffered writes.
    refused: bool,
    /// A failed cut left the buffer out of step with the file.
    poisoned: bool,
}

impl Gather {
    /// Gathers writes to `path`, whose first bytes `head` (under
    /// [`ALIGN`]: the segment's magic) `plain` has written. `Err(plain)`
    /// when the file system refuses `O_DIRECT` (the caller keeps writing
    /// `plain`); `buf` is a buffer to reuse (from the previous segment).
    pub fn open(
        path: &Path,
        plain: File,
        head: &[u8],
        buf: Option<AlignedVec<ALIGN>>,
    ) -> io::Result<Result<Gather, File>> {
        debug_assert!(head.len() < ALIGN);
        let opened = injected(Fault::RefuseOpen).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
        });
        let direct = match opened {
            Ok(f) => f,
            Err(e) if refuses_direct(&e) => return Ok(Err(plain)),
            Err(e) => return Err(e),
        };
        let mut buf = buf.unwrap_or_else(|| {
            let mut b = AlignedVec::<ALIGN>::with_capacity(CHUNK);
            b.resize(CHUNK, 0);
            b
        });
        buf[..head.len()].copy_from_slice(head);
        Ok(Ok(Gather {
            direct,
            plain,
            buf,
            len: head.len(),
            base: 0,
            on_file: head.len() as u64,
            ends: VecDeque::new(),
            whole: head.len() as u64,
            oldest: None,
            refused: false,
            poisoned: false,
        }))
    }

    /// Appends one entry, given in parts; when the buffer fills, writes it
    /// whole (so the file may end inside this entry).
    pub fn push<const N: usize>(&mut self, parts: [&[u8]; N]) -> io::Result<()> {
        self.healthy()?;
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        let mut wrote = false;
        for mut part in parts {
            while !part.is_empty() {
                let n = part.len().min(CHUNK - self.len);
                self.buf[self.len..self.len + n].copy_from_slice(&part[..n]);
                self.len += n;
                part = &part[n..];
                if self.len == CHUNK {
                    self.write_out(CHUNK)?;
                    self.base += CHUNK as u64;
                    self.len = 0;
                    wrote = true;
                }
            }
        }
        // After a full buffer went out, only this entry's rest waits.
        if wrote {
            self.oldest = (self.len > 0).then(Instant::now);
        }
        self.ends.push_back(self.end());
        self.settle();
        Ok(())
    }

    /// Writes everything gathered: the aligned part directly, the tail
    /// through the page cache (kept in the buffer, to be rewritten in
    /// place by the next direct write).
    pub fn flush(&mut self) -> io::Result<()> {
        self.healthy()?;
        if self.on_file < self.end() {
            let aligned = self.len & !(ALIGN - 1);
            self.write_out(aligned)?;
            let from = (self.on_file - self.base) as usize;
            self.plain
                .write_all_at(&self.buf[from..self.len], self.on_file)?;
            self.on_file = self.end();
            self.buf.copy_within(aligned..self.len, 0);
            self.base += aligned as u64;
            self.len -= aligned;
        }
        self.oldest = None;
        self.settle();
        Ok(())
    }

    /// The file offset after everything gathered.
    pub fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    /// The end of the last entry wholly in the file.
    pub fn whole(&self) -> u64 {
        self.whole
    }

    /// When the oldest byte not yet in the file was gathered (`None`:
    /// everything is in the file).
    pub fn oldest(&self) -> Option<Instant> {
        self.oldest
    }

    /// Whether a direct write was refused (the data went through the page
    /// cache instead): the writer should fall back to buffered writes.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// After a failed write: cuts the file back to the end of the last
    /// entry wholly in it and gathers on from there (what was gathered
    /// after it is dropped). Returns that end. If the cut or the read of
    /// the bytes before it fails, the gather is poisoned: it writes
    /// nothing more (its buffer no longer matches the file), and the
    /// writer moves on to a new segment ([`Gather::poisoned`]).
    pub fn cut_back(&mut self) -> io::Result<u64> {
        let keep = self.whole;
        self.ends.clear();
        self.oldest = None;
        self.poisoned = true;
        let base = keep & !(ALIGN as u64 - 1);
        let len = (keep - base) as usize;
        self.plain.set_len(keep)?;
        self.plain.read_exact_at(&mut self.buf[..len], base)?;
        (self.base, self.len, self.on_file) = (base, len, keep);
        self.poisoned = false;
        Ok(keep)
    }

    /// Whether a failed [`Gather::cut_back`] left the buffer out of step
    /// with the file: nothing more may be written through this gather.
    pub fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// The ordinary descriptor.
    pub fn plain(&self) -> &File {
        &self.plain
    }

    /// Forces the file's data to disk (both descriptors' writes).
    pub fn sync_data(&self) -> io::Result<()> {
        self.plain.sync_data()
    }

    /// The buffer, to reuse for the next segment (closing the file).
    pub fn into_buf(self) -> AlignedVec<ALIGN> {
        self.buf
    }

    /// Writes `buf[..n]` (`n` a multiple of [`ALIGN`]) at `base`, unless
    /// it is in the file already: directly, or through the page cache once
    /// direct writes are refused.
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        debug_assert_eq!(n % ALIGN, 0);
        let end = self.base + n as u64;
        if n == 0 || self.on_file >= end {
            return Ok(());
        }
        let mut done = 0;
        while done < n && !self.refused {
            let wrote = injected(Fault::RefuseWrite)
                .and_then(|()| injected(Fault::FailWrite))
                .and_then(|()| {
                    self.direct
                        .write_at(&self.buf[done..n], self.base + done as u64)
                });
            match wrote {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // A short direct write that ends off the alignment: the
                // rest goes through the page cache.
                Ok(k) if k % ALIGN != 0 => {
                    done += k;
                    break;
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if refuses_direct(&e) => self.refused = true,
                Err(e) => return Err(e),
            }
        }
        if done < n {
            self.plain
                .write_all_at(&self.buf[done..n], self.base + done as u64)?;
        }
        self.on_file = self.on_file.max(end);
        Ok(())
    }

    /// An error once poisoned.
    fn healthy(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(
                "segment abandoned: a failed write could not be cut back",
            ));
        }
        Ok(())
    }

    /// Moves `whole` past the entries now wholly in the file.
    fn settle(&mut self) {
        while self.ends.front().is_some_and(|&e| e <= self.on_file) {
            self.whole = self.ends.pop_front().unwrap_or(self.whole);
        }
    }
}

/// Whether an error is a file system's refusal of `O_DIRECT`.
fn refuses_direct(e: &io::Error) -> bool {
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

/// The error of an injected fault `at`, if a test injects it.
fn injected(at: Fault) -> io::Result<()> {
    #[cfg(test)]
    if FAULT.with(|f| f.get()) == Some(at) {
        let errno = match at {
            Fault::FailWrite => libc::EIO,
            Fault::RefuseOpen | Fault::RefuseWrite => libc::EINVAL,
        };
        return Err(io::Error::from_raw_os_error(errno));
    }
    let _ = at;
    Ok(())
}
