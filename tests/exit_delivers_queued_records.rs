//! A short-lived program loses nothing: records logged just before it ends
//! arrive, whether main returns, calls `std::process::exit`, or panics.
mod common;

use common::{app_records, Receiver};
use std::process::{Command, Stdio};
use std::time::Duration;

const N: u64 = 5_000;

/// The child: runs only when the parent test sets DISTLOG_TEST_CHILD.
#[test]
fn child() {
    let Ok(endpoint) = std::env::var("DISTLOG_TEST_CHILD") else {
        return;
    };
    let mode = std::env::var("DISTLOG_TEST_MODE").unwrap();
    let guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    for i in 0..N {
        distlog::info!(i = i; "last words {}", i);
    }
    log::info!(target: "facade", mode = mode.as_str(); "facade record");
    match mode.as_str() {
        "guard" => drop(guard),
        "exit" => {
            std::mem::forget(guard);
            std::process::exit(0) // the exit hook flushes
        }
        "panic" => panic!("boom {}", 42),
        _ => unreachable!(),
    }
}

fn run_child(mode: &str) -> Vec<common::Received> {
    let receiver = Receiver::tcp();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("DISTLOG_TEST_CHILD", &receiver.endpoint)
        .env("DISTLOG_TEST_MODE", mode)
        // The child's own harness output (a failed test, for the panic)
        // must not read as this run's result.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.success(), mode != "panic", "child exit status");
    receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false)
}

fn assert_all_arrived(batches: &[common::Received], mode: &str) {
    let records: Vec<_> = app_records(batches).collect();
    let natives = records
        .iter()
        .filter(|r| r.format == "last words {}")
        .count();
    assert_eq!(natives as u64, N, "{mode}: every native record arrived");
    let facade = records
        .iter()
        .find(|r| r.target == "facade")
        .expect("facade record arrived");
    assert_eq!(facade.message, "facade record");
    assert_eq!(facade.fields[0].key, "mode");
    assert_eq!(
        facade.fields[0].value,
        distlog_core::record::Value::Str(mode.into())
    );
}

#[test]
fn records_arrive_when_the_guard_drops() {
    assert_all_arrived(&run_child("guard"), "guard");
}

#[test]
fn records_arrive_on_process_exit() {
    assert_all_arrived(&run_child("exit"), "exit");
}

#[test]
fn a_panic_is_recorded_and_flushed() {
    let batches = run_child("panic");
    assert_all_arrived(&batches, "panic");
    let panic = app_records(&batches)
        .find(|r| r.target == "panic")
        .expect("panic record arrived");
    assert_eq!(panic.level, distlog_core::record::level::CRITICAL);
    assert_eq!(panic.message, "panic: boom 42");
    assert!(panic.error.contains("boom 42") && panic.error.contains(".rs:"));
    assert!(panic.file.ends_with("exit_delivers_queued_records.rs"));
}
