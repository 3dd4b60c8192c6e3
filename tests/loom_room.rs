//! Loom model of the wait for ring room (src/pipeline/room.rs): a logging
//! thread blocked on a full ring sleeps until the sender, having released
//! space, wakes it.
//!
//! What it proves: loom's `Condvar::wait_timeout` never times out, so a
//! waiter that checked for room before the sender released it and then
//! missed the sender's wake-up would sleep forever, and loom reports that
//! as a deadlock (it does with `room_made`'s fence taken out). The model
//! passes only if, in every interleaving and every weak-memory outcome
//! loom can reach, the waiter either sees the room itself or is woken.
//!
//! Run with `RUSTFLAGS="--cfg distlog_loom" cargo test --release --test loom_room`
//! (scripts/test does, in its own target directory).
#![cfg(distlog_loom)]

#[allow(dead_code)]
#[path = "../src/pipeline/room.rs"]
mod room;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use room::RoomWait;
use std::time::Duration;

/// Runs `f` under loom with at most 3 preemptions per execution (0.4 s;
/// `LOOM_MAX_PREEMPTIONS=5` passes in 20 s; unbounded, the two-waiter
/// model runs for more than 15 minutes). A lost wake-up needs one
/// preemption between a waiter's check and its sleep, or between the
/// sender's release and its check.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// One waiter, one sender releasing room once.
#[test]
fn a_waiter_sees_the_room_or_is_woken() {
    model(|| {
        let wait = Arc::new(RoomWait::default());
        let room = Arc::new(AtomicBool::new(false));
        let sender = {
            let (wait, room) = (wait.clone(), room.clone());
            loom::thread::spawn(move || {
                room.store(true, Ordering::Release);
                wait.room_made();
            })
        };
        // As `wait_for_room` does: wait until there is room.
        while !wait.wait(|| room.load(Ordering::Acquire), Duration::from_secs(600)) {}
        sender.join().unwrap();
    });
}

/// Two waiters and a sender that makes room for each in turn: the second
/// release must not be lost behind the first wake-up.
#[test]
fn two_waiters_each_get_their_room() {
    model(|| {
        let wait = Arc::new(RoomWait::default());
        let room = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (wait, room) = (wait.clone(), room.clone());
                loom::thread::spawn(move || {
                    // Take one unit of room, waiting until there is one: a
                    // lost race for a unit retries on the value that won
                    // it, so only "no room seen" is a no.
                    let take = || {
                        let mut n = room.load(Ordering::Acquire);
                        while n > 0 {
                            match room.compare_exchange(
                                n,
                                n - 1,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            ) {
                                Ok(_) => return true,
                                Err(now) => n = now,
                            }
                        }
                        false
                    };
                    while !wait.wait(take, Duration::from_secs(600)) {}
                })
            })
            .collect();
        for _ in 0..2 {
            room.fetch_add(1, Ordering::Release);
            wait.room_made();
        }
        for w in waiters {
            w.join().unwrap();
        }
    });
}
