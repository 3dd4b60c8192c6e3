//! The thread that writes a segment's full gather chunks while the store
//! thread gathers the next one: double buffering.
//!
//! # Why
//!
//! A 1 MiB direct write blocks for as long as the device takes it (1.1-1.4
//! ms here, PERFORMANCE.md): written in the store thread, the device idles
//! while the store copies the next chunk, and the store stops taking
//! batches while the device writes. Handed to this thread, the two
//! overlap; the store waits only when the next chunk is full before the
//! last one is written.
//!
//! # Bounds
//!
//! The store hands a chunk over only once the one before is written (one
//! write in flight): a segment gathers into two [`super::direct::CHUNK`]
//! buffers (2 MiB). Chunks are written in order, so a chunk's entries are
//! in the file once its completion is taken ([`ChunkWriter::done`]).

use super::direct::{write_aligned, Fault, ALIGN};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use rkyv::util::AlignedVec;
use std::fs::File;
use std::io;
use std::thread::JoinHandle;

/// A chunk to write: its bytes, where they go, and the fault a test
/// injects into its write.
struct Job {
    buf: AlignedVec<ALIGN>,
    at: u64,
    fault: Option<Fault>,
}

/// A chunk written (or not): its buffer back, to gather into again.
pub struct Done {
    /// The buffer, to reuse.
    pub buf: AlignedVec<ALIGN>,
    /// The file offset after the chunk.
    pub end: u64,
    /// `Ok(true)`: direct writes were refused and the chunk went through
    /// the page cache; `Err`: it is not (wholly) in the file.
    pub result: io::Result<bool>,
}

/// Writes full chunks on its own thread, one at a time, in order.
pub struct ChunkWriter {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
}

impl ChunkWriter {
    /// Starts the thread writing to `direct` (and, where direct writes
    /// fall short or are refused, to `plain`): duplicates of the
    /// segment's descriptors.
    pub fn spawn(direct: File, plain: File) -> io::Result<ChunkWriter> {
        let (jobs, rx) = bounded::<Job>(1);
        let (tx, done) = bounded::<Done>(2);
        let thread = std::thread::Builder::new()
            .name("store-write".into())
            .spawn(move || {
                for job in rx {
                    let end = job.at + job.buf.len() as u64;
                    let result = write_aligned(&direct, &plain, &job.buf, job.at, false, job.fault);
                    if tx
                        .send(Done {
                            buf: job.buf,
                            end,
                            result,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            })?;
        Ok(ChunkWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: 0,
        })
    }

    /// How many chunks are handed over and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands `buf` (whole, a multiple of [`ALIGN`] long) over to be
    /// written at `at`. Blocks while a chunk already waits for the thread.
    /// An error if the thread is gone (it stops only when this is dropped,
    /// so only if it panicked): the chunk is not written.
    pub fn send(
        &mut self,
        buf: AlignedVec<ALIGN>,
        at: u64,
        fault: Option<Fault>,
    ) -> io::Result<()> {
        let job = Job { buf, at, fault };
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => {
                self.in_flight += 1;
                Ok(())
            }
            _ => Err(io::Error::other("the store's writing thread stopped")),
        }
    }

    /// The oldest chunk handed over, once written; `wait`: blocks until it
    /// is. `None` when none is in flight (or, without `wait`, none is
    /// written yet).
    pub fn done(&mut self, wait: bool) -> Option<Done> {
        if self.in_flight == 0 {
            return None;
        }
        let d = if wait {
            self.done.recv().map_err(|_| ())
        } else {
            match self.done.try_recv() {
                Ok(d) => Ok(d),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => Err(()),
            }
        };
        self.in_flight -= 1;
        // The thread is gone (it panicked): what it held is not written.
        Some(d.unwrap_or_else(|()| Done {
            buf: super::direct::chunk_buffer(),
            end: 0,
            result: Err(io::Error::other("the store's writing thread stopped")),
        }))
    }
}

impl Drop for ChunkWriter {
    /// Lets the thread finish what it was handed, and waits for it.
    fn drop(&mut self) {
        self.jobs = None;
        while self.done.recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
