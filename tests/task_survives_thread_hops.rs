//! A task carried into futures keeps its context when every poll of the
//! future runs on another thread: two threads pass eight futures back and
//! forth after each `.await`, so each job's steps alternate threads by
//! construction (tokio's scheduler, in task_survives_await.rs, hops only
//! when it chooses to). Every record gets its own task's path and
//! consecutive counters, whichever thread logged it.
mod common;

use common::Receiver;
use distlog::task::InTask;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

const JOBS: usize = 8;
const STEPS: u64 = 20;

/// Pending on its first poll, ready on the next: one `.await` point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

async fn job(i: usize) {
    for step in 0..STEPS {
        distlog::info!(job = i, step = step; "step");
        YieldOnce(false).await;
    }
}

/// The executor below polls every pending future again at once.
struct NoWake;
impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

type Job = (usize, Pin<Box<dyn Future<Output = ()> + Send>>);

/// Polls each job it receives once, then hands a pending job to the other
/// thread and reports a finished one; ends at `None`.
fn poller(
    rx: mpsc::Receiver<Option<Job>>,
    other: mpsc::Sender<Option<Job>>,
    done: mpsc::Sender<usize>,
) {
    let waker = Waker::from(Arc::new(NoWake));
    let mut cx = Context::from_waker(&waker);
    while let Ok(Some((i, mut fut))) = rx.recv() {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(()) => done.send(i).unwrap(),
            // The other thread ends only at `None`, sent once every job
            // is done, so it is still there for this unfinished one.
            Poll::Pending => other.send(Some((i, fut))).unwrap(),
        }
    }
}

#[test]
fn tasks_keep_their_context_when_every_poll_is_on_another_thread() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .block_when_full(true)
        .install()
        .unwrap();
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let a = std::thread::spawn({
        let (b_tx, done_tx) = (b_tx.clone(), done_tx.clone());
        move || poller(a_rx, b_tx, done_tx)
    });
    let b = std::thread::spawn({
        let a_tx = a_tx.clone();
        move || poller(b_rx, a_tx, done_tx)
    });
    let mut tasks = vec![];
    for i in 0..JOBS {
        let t = distlog::task("job", &[("job_no", &(i as u64))]);
        a_tx.send(Some((i, Box::pin(job(i).in_task(&t))))).unwrap();
        tasks.push(t);
    }
    for _ in 0..JOBS {
        done_rx.recv().unwrap();
    }
    a_tx.send(None).unwrap();
    b_tx.send(None).unwrap();
    a.join().unwrap();
    b.join().unwrap();
    let paths: Vec<String> = tasks.iter().map(|t| t.path().to_owned()).collect();
    drop(tasks);
    common::end_marker();
    let batches = receiver.collect_until_end(Duration::from_secs(30));
    for (job, threads) in common::job_steps(&batches, &paths, STEPS)
        .iter()
        .enumerate()
    {
        // Each step ran on the other thread than the step before.
        for (step, w) in threads.windows(2).enumerate() {
            assert_ne!(
                w[0],
                w[1],
                "job {job}: steps {step} and {} on one thread",
                step + 1
            );
        }
    }
}
