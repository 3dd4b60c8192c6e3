//! The zero-allocation claim in the default mode (a full ring continues in
//! a spare one while the bound allows, else drops and counts; not
//! `block_when_full`), and on the paths the other
//! zero-allocation tests do not take: a `log` facade call inside a task,
//! and a future carrying a task across `.await` (polled by hand, so no
//! executor allocates on its behalf).
mod common;

use common::counting_alloc::{allocs_in, Counting};
use distlog::task::InTask;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A waker that does nothing (the test polls by hand).
struct Noop;

impl std::task::Wake for Noop {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// Pending once, then ready: one `.await` point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// 2 native + 1 facade record before the await, 1 facade after.
async fn step(i: u64) {
    distlog::info!(i = i; "before await {}", i);
    log::info!(i = i; "facade before await {}", i);
    YieldOnce(false).await;
    log::info!("facade after await {}", i);
}

/// One cycle: plain calls, a facade call inside a task, and a future in a
/// task polled across its await. 7 records (the subtask's start and end
/// included).
fn cycle(i: u64, task: &distlog::task::Task, waker: &Waker) {
    distlog::info!(n = i; "plain {}", i);
    {
        let _t = distlog::to("facade in a task", &[]);
        log::info!(n = i; "facade inside a task {}", i);
    }
    let mut fut = pin!(step(i).in_task(task));
    let mut cx = Context::from_waker(waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert!(fut.as_mut().poll(&mut cx).is_ready());
}

#[test]
fn default_drop_mode_tasks_and_awaits_do_not_allocate() {
    let receiver = common::Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(60)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .panic_hook(false)
        .install()
        .unwrap();
    let task = distlog::task("awaiting", &[]);
    let waker = Waker::from(std::sync::Arc::new(Noop));
    const WARM: u64 = 5_000;
    const N: u64 = 5_000;
    // Warm-up: ring, call sites, task frames, and the scratch buffer grown
    // to the longest record (the same numbers as below: a message one
    // digit longer than any before grows it once, amortized).
    for i in 0..WARM {
        cycle(i, &task, &waker);
    }
    let allocs = allocs_in(|| {
        for i in 0..N {
            cycle(i, &task, &waker);
        }
    });

    assert_eq!(allocs, 0, "allocations in {N} cycles in drop mode");
    drop(task);
    common::end_marker();
    let batches = drain.join().unwrap();
    let received = common::app_records(&batches).count() as u64;
    let dropped = distlog::stats().dropped;
    // 7 per cycle, the root task's start and end.
    assert_eq!(
        received + dropped,
        (WARM + N) * 7 + 2,
        "received + dropped == logged"
    );
}
