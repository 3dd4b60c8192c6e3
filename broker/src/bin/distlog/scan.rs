//! The parallel scan of a store: segments read on several threads, the
//! results handed back in stored order.
//!
//! Each worker keeps one [`Reader`] and opens segment after segment with it
//! ([`Reader::stream_segment`]: closed segments mapped, the newest read a
//! chunk at a time as `work` walks it).

use crate::CliError;
use crossbeam_channel::bounded;
use distlogd::store::{Reader, Segment};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many threads to scan with: the machine's cores, at most `segments`.
pub fn threads(requested: Option<usize>, segments: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    requested.unwrap_or(cores).clamp(1, segments.max(1))
}

/// Runs `work` on every segment, on `threads` threads, and hands the
/// results to `sink` in segment order (so output keeps stored order),
/// until `sink` returns false. Workers run at most a few segments ahead of
/// the sink, so memory stays bounded. A segment that vanished since it was
/// listed (retention) is skipped.
pub fn scan<T, W, S>(
    segments: &[Segment],
    threads: usize,
    work: W,
    mut sink: S,
) -> Result<(), CliError>
where
    T: Send,
    W: Fn(&Reader) -> T + Sync,
    S: FnMut(T) -> Result<bool, CliError>,
{
    let n = segments.len();
    let window = threads + 1;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let emitted = Mutex::new(0usize);
    let moved = Condvar::new();
    let (tx, rx) = bounded::<(usize, Result<Option<T>, CliError>)>(threads * 2);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, emitted, moved, work) = (&next, &stop, &emitted, &moved, &work);
            scope.spawn(move || {
                let mut reader = Reader::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    {
                        let mut e = emitted.lock();
                        while i >= *e + window && !stop.load(Ordering::Relaxed) {
                            moved.wait(&mut e);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = &segments[i].path;
                    let cannot = |e| CliError(format!("cannot read {}: {e}", path.display()));
                    let result = match reader.stream_segment(&segments[i]) {
                        Ok(()) => {
                            let t = work(&reader);
                            match reader.take_error() {
                                None => Ok(Some(t)),
                                Some(e) => Err(cannot(e)),
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(cannot(e)),
                    };
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0usize;
        let mut outcome = Ok(());
        'recv: while want < n {
            let Ok((i, r)) = rx.recv() else { break };
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                want += 1;
                *emitted.lock() = want;
                moved.notify_all();
                let go_on = match r {
                    Ok(Some(t)) => sink(t),
                    Ok(None) => Ok(true),
                    Err(e) => Err(e),
                };
                match go_on {
                    Ok(true) => {}
                    Ok(false) => break 'recv,
                    Err(e) => {
                        outcome = Err(e);
                        break 'recv;
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        {
            let _e = emitted.lock();
            moved.notify_all();
        }
        drop(rx);
        outcome
    })
}
