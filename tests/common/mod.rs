//! A test broker stand-in: a PULL socket that decodes every batch.
#![allow(dead_code)]

pub mod counting_alloc;
pub mod delivery;
pub mod ports;

use distlog_core::record::Record;
use distlog_core::wire::{OwnedBatch, Sender, Topic};
use std::time::{Duration, Instant};

/// One received batch, decoded to owned records.
pub struct Received {
    pub topic: Topic,
    pub sender: Sender,
    pub first_seq: u64,
    pub dropped: u64,
    pub records: Vec<Record>,
    /// The sizes of the batch's call-site and thread tables.
    pub sites: usize,
    pub threads: usize,
}

pub struct Receiver {
    _ctx: zmq::Context,
    socket: zmq::Socket,
    pub endpoint: String,
}

impl Receiver {
    /// Binds on a free loopback tcp port.
    pub fn tcp() -> Receiver {
        Self::bind("tcp://127.0.0.1:*")
    }

    /// Binds on a fresh ipc path.
    pub fn ipc() -> Receiver {
        let dir = std::env::temp_dir().join(format!("distlog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self::bind(&format!("ipc://{}/sock", dir.display()))
    }

    pub fn bind(endpoint: &str) -> Receiver {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::PULL).unwrap();
        socket.set_rcvhwm(100_000).unwrap();
        socket.bind(endpoint).unwrap();
        let endpoint = socket.get_last_endpoint().unwrap().unwrap();
        Receiver {
            _ctx: ctx,
            socket,
            endpoint,
        }
    }

    /// Receives one batch, or None after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Received> {
        self.socket
            .set_rcvtimeo(timeout.as_millis() as i32)
            .unwrap();
        let frames = self.socket.recv_multipart(0).ok()?;
        assert_eq!(frames.len(), 2, "a message has two frames");
        let topic = Topic::parse(&frames[0]).expect("valid topic");
        let batch = OwnedBatch::from_body(&frames[1]).expect("valid batch");
        let view = batch.get();
        let owned = view.to_batch();
        let (sites, threads) = (view.sites.len(), view.threads.len());
        Some(Received {
            topic,
            sender: owned.sender,
            first_seq: owned.first_seq,
            dropped: owned.dropped,
            records: owned.records,
            sites,
            threads,
        })
    }

    /// Receives until `done` says so or nothing arrives for `quiet`.
    pub fn collect_until(
        &self,
        quiet: Duration,
        deadline: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < deadline {
            match self.recv(quiet) {
                Some(r) => {
                    out.push(r);
                    if done(&out) {
                        break;
                    }
                }
                None => break,
            }
        }
        out
    }
}

/// Value of an integer field.
pub fn field_u64(r: &Record, key: &str) -> Option<u64> {
    r.fields
        .iter()
        .find(|f| f.key == key)
        .and_then(|f| match f.value {
            distlog_core::record::Value::U64(u) => Some(u),
            distlog_core::record::Value::I64(i) => u64::try_from(i).ok(),
            _ => None,
        })
}

/// Target of the record [`end_marker`] logs.
pub const END_TARGET: &str = "distlog-test-end";

/// Flushes everything the test logged, then logs a marker record and
/// flushes again: one sender socket keeps message order, so a receiver
/// that stops at the marker ([`Receiver::collect_until_end`]) has every
/// record logged before it, however slow the machine.
pub fn end_marker() {
    assert!(distlog::flush(), "flush before the end marker");
    distlog::info!(target: END_TARGET, "end of test");
    assert!(distlog::flush(), "flush of the end marker");
}

impl Receiver {
    /// Collects until the [`end_marker`] record arrives (or `deadline`).
    pub fn collect_until_end(&self, deadline: Duration) -> Vec<Received> {
        self.collect_until(deadline, deadline, |got| {
            got.last()
                .is_some_and(|b| b.records.iter().any(|r| r.target == END_TARGET))
        })
    }
}

/// Records not emitted by distlog itself (its drop warnings) or by the
/// test harness (the end marker).
pub fn app_records(batches: &[Received]) -> impl Iterator<Item = &Record> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .filter(|r| r.target != "distlog" && r.target != END_TARGET)
}

/// The `"step"` records of the task tests' jobs (fields `job` and `step`,
/// job `i` in its own task `paths[i]`, bound with `job_no`): asserts each
/// record is in its job's task with the bound field, and each job logged
/// steps `0..steps` once each with task counters 2..=steps+1 in step order
/// (counter 1 is the task's start record). Returns each job's thread ids
/// in step order.
pub fn job_steps(batches: &[Received], paths: &[String], steps: u64) -> Vec<Vec<u64>> {
    let mut per_job: Vec<Vec<(u64, u32, u64)>> = vec![Vec::new(); paths.len()];
    for r in app_records(batches).filter(|r| r.format == "step") {
        let step = field_u64(r, "step").unwrap();
        let job = field_u64(r, "job").unwrap() as usize;
        assert_eq!(r.task, paths[job], "record of job {job} in the wrong task");
        assert_eq!(field_u64(r, "job_no"), Some(job as u64), "bound field");
        per_job[job].push((step, r.task_n, r.thread_id));
    }
    per_job
        .into_iter()
        .enumerate()
        .map(|(job, mut recs)| {
            recs.sort();
            let counters: Vec<(u64, u32)> = recs.iter().map(|&(s, n, _)| (s, n)).collect();
            let want: Vec<(u64, u32)> = (0..steps).map(|s| (s, s as u32 + 2)).collect();
            assert_eq!(counters, want, "job {job}: (step, task counter)");
            recs.into_iter().map(|(_, _, thread)| thread).collect()
        })
        .collect()
}
