//! Stress: pooled task frames and recycled bound-field blobs under threads.
//!
//! Owner threads run many short subtasks, each with its owner bound, and
//! rebind a field while visitor threads hold handles to the same tasks,
//! enter them, log and bind too, and drop the handles at arbitrary later
//! times (so some frames end while still held elsewhere and must not be
//! reused, others go back to the pool). If a frame or a bound-field blob
//! were reused while reachable, records would show another task's owner,
//! a torn bound set, or duplicate or missing counters.
mod common;

use common::{app_records, Receiver};
use distlog_core::record::{Record, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const OWNERS: u64 = 3;
const ROUNDS: u64 = 3_000;
const READERS: usize = 2;

fn field<'a>(r: &'a Record, key: &str) -> Option<&'a Value> {
    r.fields.iter().find(|f| f.key == key).map(|f| &f.value)
}

#[test]
fn pooled_frames_are_never_shared_between_live_tasks() {
    let receiver = Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(120)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();

    let (tx, rx) = mpsc::channel::<(u64, distlog::Task)>();
    let visitor = std::thread::spawn(move || {
        let mut held: VecDeque<(u64, distlog::Task)> = VecDeque::new();
        let mut visits = 0u64;
        for (i, (owner, task)) in rx.into_iter().enumerate() {
            {
                let _in = task.enter();
                distlog::info!(visitor_owner = owner; "visit");
                visits += 1;
            }
            if i % 3 == 0 {
                task.bind("visited", i as u64);
            }
            held.push_back((owner, task));
            // Keep a few handles for a while: their tasks end meanwhile.
            while held.len() > (i % 7) {
                let (owner, task) = held.pop_front().unwrap();
                let _in = task.enter();
                distlog::info!(visitor_owner = owner; "late visit");
                visits += 1;
            }
        }
        visits
    });

    // Results come back over a channel so that a dead pipeline (a torn entry
    // stops the sender in debug builds, and producers block) fails the test
    // at a deadline instead of hanging it.
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    for owner in 0..OWNERS {
        let tx = tx.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let root = distlog::task("owner root", &[("owner", &owner)]);
            let mut records = 2u64; // the root's start and end
            for i in 0..ROUNDS {
                let t = distlog::to("work", &[("owner", &owner), ("pad", &"xxxxxxxx")]);
                records += 2;
                if i % 2 == 0 {
                    tx.send((owner, (*t).clone())).unwrap();
                }
                for g in 0..3u64 {
                    t.bind("gen", g);
                    distlog::info!(own = owner; "step {}", g);
                    records += 1;
                }
                {
                    let _nested = distlog::to("nested", &[]);
                    records += 2;
                }
                if i % 5 == 0 {
                    t.fail("odd one");
                }
            }
            drop(root);
            done_tx.send(records).unwrap();
        });
    }
    // A rebinder: short subtasks, each rebound three times while reader
    // threads keep logging inside whichever one is current.
    let slot: Arc<Mutex<Option<distlog::Task>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = slot.lock().unwrap().clone();
                    if let Some(t) = t {
                        let _in = t.enter();
                        distlog::info!(visitor_owner = OWNERS; "read");
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    {
        let (slot, stop, done_tx) = (slot.clone(), stop.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let root = distlog::task("owner root", &[("owner", &OWNERS)]);
            let mut records = 2u64;
            for _ in 0..ROUNDS {
                let t = distlog::to("rebind", &[("owner", &OWNERS), ("pad", &"xxxxxxxx")]);
                *slot.lock().unwrap() = Some((*t).clone());
                for g in 0..3u64 {
                    t.bind("gen", g);
                    std::thread::yield_now();
                }
                *slot.lock().unwrap() = None;
                drop(t);
                records += 2;
            }
            drop(root);
            stop.store(true, Ordering::Relaxed);
            done_tx.send(records).unwrap();
        });
    }
    drop(tx);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut owned = 0;
    for _ in 0..=OWNERS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        owned += done_rx
            .recv_timeout(left)
            .expect("owner threads stuck: is the sender alive?");
    }
    let visits =
        visitor.join().unwrap() + readers.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
    common::end_marker();

    let batches = drain.join().unwrap();
    let recs: Vec<&Record> = app_records(&batches).collect();
    if recs.len() as u64 != owned + visits {
        // Say where they went: the client's own count of records handed to
        // ZeroMQ (the end marker included) and of drops, and what arrived
        // by message.
        let mut by_message: HashMap<String, u64> = HashMap::new();
        for r in &recs {
            *by_message.entry(r.rendered_message()).or_default() += 1;
        }
        panic!(
            "every record arrived: got {} of {} (owned {owned}, visits {visits}); \
             client stats {:?}; by message {by_message:?}",
            recs.len(),
            owned + visits,
            distlog::stats()
        );
    }

    // Roots map to their owners.
    let mut root_owner: HashMap<&str, u64> = HashMap::new();
    for r in &recs {
        if r.rendered_message() == "owner root" && r.task_n == 1 {
            match field(r, "owner") {
                Some(Value::U64(o)) => root_owner.insert(r.task.as_str(), *o),
                other => panic!("root without owner: {other:?}"),
            };
        }
    }
    assert_eq!(root_owner.len() as u64, OWNERS + 1);

    let mut counters: HashMap<&str, Vec<u32>> = HashMap::new();
    for r in &recs {
        assert!(!r.task.is_empty(), "every record is in a task: {r:?}");
        counters.entry(r.task.as_str()).or_default().push(r.task_n);
        let root = r.task.split('/').next().unwrap();
        let owner = root_owner[root];
        // The task's own bound owner (the subtask's; nested ones have none).
        let depth = r.task.matches('/').count();
        if depth <= 1 {
            assert_eq!(
                field(r, "owner"),
                Some(&Value::U64(owner)),
                "owner bound on {r:?}"
            );
        } else {
            assert_eq!(field(r, "owner"), None, "nested has no bound owner: {r:?}");
        }
        for key in ["visitor_owner", "own"] {
            if let Some(v) = field(r, key) {
                assert_eq!(v, &Value::U64(owner), "{key} on {r:?}");
            }
        }
        if depth == 1 {
            assert_eq!(field(r, "pad"), Some(&Value::Str("xxxxxxxx".into())));
            // A bound set is never torn: `bind` appends, so a step's record
            // carries exactly the `gen` values bound before it, in order.
            let gens: Vec<&Value> = r
                .fields
                .iter()
                .filter(|f| f.key == "gen")
                .map(|f| &f.value)
                .collect();
            let msg = r.rendered_message();
            if let Some(step) = msg.strip_prefix("step ") {
                let step: u64 = step.parse().unwrap();
                let want: Vec<Value> = (0..=step).map(Value::U64).collect();
                assert_eq!(gens, want.iter().collect::<Vec<_>>(), "gens on {r:?}");
            } else {
                let want: Vec<Value> = (0..gens.len() as u64).map(Value::U64).collect();
                assert_eq!(gens, want.iter().collect::<Vec<_>>(), "gens on {r:?}");
            }
        }
    }
    for (path, mut ns) in counters {
        ns.sort_unstable();
        let want: Vec<u32> = (1..=ns.len() as u32).collect();
        assert_eq!(ns, want, "counters of {path}");
    }
}
