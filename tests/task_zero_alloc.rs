//! Entering and leaving tasks allocates nothing in steady state: nested
//! subtasks with and without bound fields, success and failure messages,
//! `bind`, root tasks, imported tasks and `Task::enter`, with every record
//! delivered with the right keys.
mod common;

use common::counting_alloc::{allocs_in, Counting};

use distlog_core::record::Value;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One cycle: nested subtasks, two levels deep, the inner one with bound
/// fields, a bind, a record, a success message; a failed one; an entered
/// handle. 9 records.
fn nested_cycle(i: u64) {
    let outer = distlog::to("outer step", &[]);
    {
        let inner = distlog::to("inner step", &[("user", &42u64), ("peer", &"10.0.0.7")]);
        inner.bind("attempt", i % 7);
        distlog::info!(rows = i; "query {} done", i);
        inner.success("found it");
    }
    {
        let plain = distlog::to("plain step", &[]);
        let _again = plain.enter();
        drop(_again);
        plain.fail("disk full");
    }
    {
        let _dropped = distlog::to("dropped step", &[("k", &1u8)]);
    }
    outer.success("outer done");
}

/// A root task with a subtask, and an imported one: 6 records.
fn root_cycle(foreign: &str) {
    let root = distlog::task("root", &[("service", &"api")]);
    {
        let _sub = distlog::to("sub", &[]);
    }
    drop(root);
    let imported = distlog::import_task(foreign, "imported", &[]);
    imported.success("imported done");
}

#[test]
fn entering_and_leaving_tasks_does_not_allocate() {
    let receiver = common::Receiver::tcp();
    let endpoint = receiver.endpoint.clone();
    let drain = std::thread::spawn(move || receiver.collect_until_end(Duration::from_secs(120)));
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .panic_hook(false)
        .install()
        .unwrap();

    let root = distlog::task("bench root", &[("tenant", &"acme")]);
    let root_path = root.path().to_owned();
    let foreign = root.foreign_id(); // the id string itself may allocate
    const WARM: u64 = 1_000;
    const N: u64 = 20_000;
    for i in 0..WARM {
        nested_cycle(i); // warm-up: ring, task frame pool, buffers
        root_cycle(&foreign);
    }
    let nested = allocs_in(|| {
        for i in 0..N {
            nested_cycle(i);
        }
    });
    let roots = allocs_in(|| {
        for _ in 0..N {
            root_cycle(&foreign);
        }
    });
    assert_eq!(nested, 0, "allocations in {N} nested enter/leave cycles");
    assert_eq!(roots, 0, "allocations in {N} root/import cycles");
    drop(root);
    common::end_marker();

    let batches = drain.join().unwrap();
    let recs: Vec<&distlog_core::record::Record> = common::app_records(&batches).collect();
    let cycles = WARM + N;
    assert_eq!(
        recs.len() as u64,
        2 + cycles * 9 + cycles * 6,
        "every record arrived"
    );
    // The last nested cycle's records carry the keys the original clients
    // would give them (subtask numbers keep counting across cycles; the
    // foreign id took the root's first).
    let last = recs
        .iter()
        .rposition(|r| r.rendered_message() == "outer done")
        .unwrap();
    let outer = format!("{root_path}/{}", 1 + cycles);
    let window: Vec<(String, String)> = recs[last - 8..=last]
        .iter()
        .map(|r| (r.key().unwrap(), r.rendered_message()))
        .collect();
    let s = |k: String, m: &str| (k, m.to_owned());
    assert_eq!(
        window,
        [
            s(format!("1@{outer}"), "outer step"),
            s(format!("1@{outer}/1"), "inner step"),
            s(format!("2@{outer}/1"), &format!("query {} done", N - 1)),
            s(format!("3@{outer}/1"), "found it"),
            s(format!("1@{outer}/2"), "plain step"),
            s(format!("2@{outer}/2"), "FAILED plain step"),
            s(format!("1@{outer}/3"), "dropped step"),
            s(format!("2@{outer}/3"), "dropped step"),
            s(format!("2@{outer}"), "outer done"),
        ]
    );
    let inner_end = recs[last - 5];
    let field = |k: &str| {
        inner_end
            .fields
            .iter()
            .find(|f| f.key == k)
            .map(|f| &f.value)
    };
    assert_eq!(field("user"), Some(&Value::U64(42)));
    assert_eq!(field("peer"), Some(&Value::Str("10.0.0.7".into())));
    assert_eq!(field("attempt"), Some(&Value::U64((N - 1) % 7)));
    assert_eq!(recs[last - 3].error, "disk full");
}
