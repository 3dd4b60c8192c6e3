//! Loom models of the per-thread ring (src/ring.rs): one producer (the
//! logging thread) and one consumer (the sender) over a 64-byte ring, every
//! interleaving and every weak-memory outcome loom can reach.
//!
//! What they prove, beyond "no assertion failed": the ring announces every
//! buffer access to loom (see `Accesses` in src/ring.rs), so an entry read
//! before its `head` store is visible, or overwritten before the consumer's
//! `tail` store is, fails the model as a data race.
//!
//! The growth model adds the ring pool (src/ring_pool.rs): a ring read to
//! the end goes back to the pool and a producer writes it again, so a read
//! of its last life that the pool's lock did not order before the next
//! life's writes fails the model the same way.
//!
//! Run with `RUSTFLAGS="--cfg distlog_loom" cargo test --release --test loom_ring`
//! (scripts/test does, in its own target directory).
#![cfg(distlog_loom)]
// The included ring module uses unsafe code (the package
// denies it elsewhere); every block states its invariant.
#![allow(unsafe_code)]

#[allow(dead_code)]
#[path = "../src/ring.rs"]
mod ring;
#[allow(dead_code)]
#[path = "../src/ring_pool.rs"]
mod ring_pool;

use ring::{new_storage, Producer, Ring};
use ring_pool::RingPool;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Ring size: the smallest the ring allows, so a few entries wrap it.
const RING: usize = 64;

/// Writes entry `value` of `len` bytes: the length word, the value, and
/// every byte after it set to the value, so a torn entry shows.
fn write_entry(buf: &mut [u8], value: u64) {
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].fill(0);
    buf[8..16].copy_from_slice(&value.to_le_bytes());
    buf[16..].fill(value as u8);
}

/// Checks an entry is intact and returns its value.
fn read_entry(e: &[u8], len_of: impl Fn(u64) -> usize) -> u64 {
    let value = u64::from_le_bytes(e[8..16].try_into().unwrap());
    assert_eq!(e.len(), len_of(value), "entry {value}: wrong length");
    assert_eq!(
        u32::from_le_bytes(e[..4].try_into().unwrap()) as usize,
        e.len()
    );
    assert!(
        e[16..].iter().all(|&b| b == value as u8),
        "entry {value} torn"
    );
    value
}

/// Consumes until the producer is gone and the ring empty, `budget` bytes
/// a call; returns the values seen.
fn drain(ring: &Ring, budget: usize, len_of: impl Fn(u64) -> usize + Copy) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        ring.consume(budget, |e| seen.push(read_entry(e, len_of)));
        if ring.is_retired() {
            return seen;
        }
        loom::thread::yield_now();
    }
}

/// Runs `f` under loom with at most 5 preemptions per execution (about 4 s
/// for the three models; `LOOM_MAX_PREEMPTIONS=10` explores further in
/// about 35 s). Bugs in protocols like this one show within two or three.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(5);
    }
    builder.check(f);
}

/// A producer that waits when the ring is full: every entry arrives, once,
/// in order and intact, across the wrap (entries of 24, 32 and 24 bytes:
/// the third needs the 8 bytes left before the end as padding and the
/// start of the buffer, so the consumer must free space first), with the
/// consumer taking one entry per call.
#[test]
fn waiting_producer_delivers_everything_in_order_across_the_wrap() {
    const LENS: [usize; 3] = [24, 32, 24];
    let len_of = |v: u64| LENS[v as usize];
    model(move || {
        let ring = Arc::new(Ring::new(new_storage(RING), 1, ""));
        let mut producer = Producer::new(ring.clone());
        let t = loom::thread::spawn(move || {
            for (v, &len) in LENS.iter().enumerate() {
                let buf = loop {
                    // The reserve's own retry re-reads `tail`; loop as the
                    // blocking mode does, through `has_room`.
                    if producer.has_room(len) {
                        break producer.reserve(len).expect("has_room said it fits");
                    }
                    loom::thread::yield_now();
                };
                write_entry(buf, v as u64);
                producer.commit(len);
            }
            // Dropping the producer closes the ring, as a thread's exit does.
        });
        let seen = drain(&ring, 1, len_of);
        t.join().unwrap();
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(ring.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(ring.pending(), 0);
    });
}

/// A producer that drops when the ring is full (the default mode): what
/// arrives is in order and intact, nothing twice, and the drop count the
/// sender reads after retiring the ring accounts for every record missing.
/// Five 24-byte entries: two fill the ring, the rest wrap or drop depending
/// on the consumer's progress.
#[test]
fn dropping_producer_counts_every_record_that_did_not_arrive() {
    const N: u64 = 5;
    let len_of = |_| 24;
    model(move || {
        let ring = Arc::new(Ring::new(new_storage(RING), 1, ""));
        let mut producer = Producer::new(ring.clone());
        let t = loom::thread::spawn(move || {
            for v in 0..N {
                match producer.reserve(24) {
                    Some(buf) => {
                        write_entry(buf, v);
                        producer.commit(24);
                    }
                    None => producer.count_dropped(),
                }
            }
        });
        let seen = drain(&ring, usize::MAX, len_of);
        // The sender reads the count once the ring is retired (Relaxed, as
        // it does): `close`'s release store must order every increment
        // before that.
        let dropped = ring.dropped.load(Ordering::Relaxed);
        t.join().unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "out of order or twice: {seen:?}"
        );
        assert!(seen.len() >= 2, "an empty ring takes two entries: {seen:?}");
        assert_eq!(
            seen.len() as u64 + dropped,
            N,
            "seen {seen:?}, dropped {dropped}"
        );
    });
}

/// Full and empty at the edges: an entry of exactly half the ring, then
/// one that fits only after the consumer frees the first, exactly at the
/// end of the buffer (no padding), then one at offset 0 again.
#[test]
fn half_ring_entries_fill_it_exactly() {
    const LENS: [usize; 3] = [32, 32, 32];
    let len_of = |v: u64| LENS[v as usize];
    model(move || {
        let ring = Arc::new(Ring::new(new_storage(RING), 1, ""));
        let mut producer = Producer::new(ring.clone());
        let t = loom::thread::spawn(move || {
            for (v, &len) in LENS.iter().enumerate() {
                while !producer.has_room(len) {
                    loom::thread::yield_now();
                }
                write_entry(producer.reserve(len).unwrap(), v as u64);
                producer.commit(len);
            }
        });
        let seen = drain(&ring, usize::MAX, len_of);
        t.join().unwrap();
        assert_eq!(seen, [0, 1, 2]);
    });
}

/// A producer that grows when its ring is full (`grow_when_full`), over a
/// pool of 64-byte rings where growth may hold two: six half-ring entries
/// fill the first ring, continue in the second, and then in the first
/// again once the consumer has read it to the end and recycled it (or are
/// dropped and counted when it has not yet). Every entry arrives once, in
/// order and intact, or is counted; the first four always arrive; and the
/// recycled ring's second life races with nothing of its first.
#[test]
fn growing_producer_continues_in_a_recycled_ring_in_order() {
    const N: u64 = 6;
    let len_of = |_| 32;
    model(move || {
        let pool = Arc::new(RingPool::new(RING, 4));
        pool.top_up(2);
        let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let t = {
            let pool = pool.clone();
            let done = done.clone();
            loom::thread::spawn(move || {
                let mut producer = Producer::new(pool.take_first(1, "t").unwrap());
                for v in 0..N {
                    // As `pipeline::local::wait_for_room` does when the
                    // reserve fails: continue in a spare if there is one.
                    if !producer.has_room(32) {
                        if let Some(next) = pool.take_after(producer.ring()) {
                            // Dropping the old producer closes the full ring.
                            producer = Producer::new(next);
                        }
                    }
                    match producer.reserve(32) {
                        Some(buf) => {
                            write_entry(buf, v);
                            producer.commit(32);
                        }
                        None => producer.count_dropped(),
                    }
                }
                drop(producer);
                done.store(true, Ordering::Release);
            })
        };
        // The sender's loop: adopt, read the rings that are ready (one entry
        // per ring per pass, as the sender's batch budget may leave a ring
        // part read and go on to the next), recycle the retired ones
        // nothing else holds.
        let mut rings: Vec<Arc<Ring>> = Vec::new();
        let mut seen = Vec::new();
        let mut dropped = 0;
        loop {
            let finished = done.load(Ordering::Acquire);
            pool.adopt(&mut rings);
            for ring in rings.clone() {
                if ring.ready() {
                    ring.consume(32, |e| seen.push(read_entry(e, len_of)));
                }
            }
            let mut i = 0;
            while i < rings.len() {
                if rings[i].is_retired() && Arc::strong_count(&rings[i]) == 1 {
                    match pool.recycle(rings.swap_remove(i)) {
                        Ok(d) => dropped += d,
                        Err(ring) => panic!(
                            "a retired ring nothing holds was refused: {}",
                            ring.thread_id
                        ),
                    }
                } else {
                    i += 1;
                }
            }
            if finished && rings.is_empty() {
                break;
            }
            loom::thread::yield_now();
        }
        t.join().unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "out of order or twice: {seen:?}"
        );
        assert_eq!(seen[..4], [0, 1, 2, 3], "two rings hold four: {seen:?}");
        assert_eq!(
            seen.len() as u64 + dropped,
            N,
            "seen {seen:?}, dropped {dropped}"
        );
    });
}
