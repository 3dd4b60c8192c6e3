//! A task carried into futures survives `.await` points on tokio's
//! multi-threaded runtime, whichever worker polls it: every record gets the
//! right path and consecutive counters.
mod common;

use common::Receiver;
use distlog::task::InTask;
use std::time::Duration;

const JOBS: usize = 8;
const STEPS: u64 = 20;

async fn job(i: usize) {
    for step in 0..STEPS {
        distlog::info!(job = i, step = step; "step");
        tokio::task::yield_now().await;
        if step % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[test]
fn tasks_keep_their_context_across_await_and_threads() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .block_when_full(true)
        .install()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut paths = vec![];
    rt.block_on(async {
        let mut handles = vec![];
        for i in 0..JOBS {
            let t = distlog::task("job", &[("job_no", &(i as u64))]);
            paths.push(t.path().to_owned());
            handles.push(tokio::spawn(job(i).in_task(&t)));
            // The guard ends the task once the job is done.
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(t);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    common::end_marker();
    let batches = receiver.collect_until_end(Duration::from_secs(30));
    let threads: std::collections::HashSet<u64> = common::job_steps(&batches, &paths, STEPS)
        .into_iter()
        .flatten()
        .collect();
    // Which worker threads ran the jobs is the scheduler's choice (on a
    // loaded machine one worker can run them all); hops on every poll are
    // forced in task_survives_thread_hops.rs.
    eprintln!("the runtime ran the jobs on {} threads", threads.len());
}
