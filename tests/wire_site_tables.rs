//! The sender writes each call site and thread once
//! per batch, however many records use it, and every record reads back
//! intact through the tables (native macro call sites, `log` facade records
//! with key/values, task records with bound fields).
mod common;

use common::{app_records, end_marker, Receiver};
use distlog_core::record::Value;
use std::time::Duration;

const N: u64 = 200;

#[test]
fn sites_and_threads_are_written_once_per_batch() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .block_when_full(true)
        // The sender sleeps until the flush below and then drains the ring
        // in one pass: one batch holds everything, so the table sizes are
        // exact.
        .batch_records(10_000)
        .buffer_per_thread(1 << 20)
        .idle_wait(Duration::from_secs(30))
        .install()
        .unwrap();
    for i in 0..N {
        distlog::info!(i = i; "native a {}", i);
        distlog::warn!(i = i, even = i % 2 == 0; "native b");
        log::info!(target: "facade", i = i; "facade {}", i);
    }
    let task = distlog::task("job", &[]);
    task.bind("user", "ann");
    distlog::info!(step = 1u8; "inside");
    drop(task);
    end_marker();

    let batches = receiver.collect_until_end(Duration::from_secs(60));
    let records: Vec<_> = app_records(&batches).collect();
    // Each batch's site table holds each call site its records use once
    // (the sender usually sends all of this as one batch; it may cut it
    // when it wakes early), and its thread table the one logging thread.
    let mut sites = 0;
    for b in &batches {
        assert_eq!(b.threads, 1, "one logging thread, written once");
        let distinct: std::collections::HashSet<_> = b
            .records
            .iter()
            .map(|r| {
                let keys: Vec<_> = r.fields.iter().map(|f| f.key.clone()).collect();
                (
                    r.target.clone(),
                    r.file.clone(),
                    r.line,
                    r.format.clone(),
                    keys,
                )
            })
            .collect();
        assert_eq!(b.sites, distinct.len(), "one site per call site");
        sites += b.sites;
    }
    assert!(
        sites * 4 < records.len(),
        "{sites} sites for {} records",
        records.len()
    );

    let of = |pred: &dyn Fn(&distlog_core::record::Record) -> bool| {
        records
            .iter()
            .filter(|r| pred(r))
            .copied()
            .collect::<Vec<_>>()
    };
    let a = of(&|r| r.format == "native a {}");
    let b = of(&|r| r.message.is_empty() && r.format == "native b");
    let facade = of(&|r| r.target == "facade");
    assert_eq!(
        (a.len(), b.len(), facade.len()),
        (N as usize, N as usize, N as usize)
    );
    for (i, ((a, b), f)) in a.iter().zip(&b).zip(&facade).enumerate() {
        let i = i as u64;
        assert_eq!(a.rendered_message(), format!("native a {i}"));
        assert_eq!(a.fields[0].value, Value::U64(i));
        assert_eq!(b.fields[1].key, "even");
        assert_eq!(b.fields[1].value, Value::Bool(i % 2 == 0));
        assert_eq!(f.message, format!("facade {i}"));
        assert_eq!(f.fields[0].key, "i");
        assert!(a.line > 0 && b.line > a.line && f.line > b.line);
        assert!(a.file.ends_with("wire_site_tables.rs"));
    }
    let inside = records
        .iter()
        .find(|r| r.message == "inside" || r.format == "inside")
        .expect("the record inside the task");
    let keys: Vec<_> = inside.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["step", "user"], "own field, then the bound one");
    assert_eq!(inside.fields[1].value, Value::Str("ann".into()));
    assert!(!inside.task.is_empty());
}
