//! A tree continued in a second real process arrives with the right paths:
//! the parent hands `foreign_id()` to a child process, which imports it.
mod common;

use common::{app_records, Receiver};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The child: runs only when the parent sets DISTLOG_TEST_TASK.
#[test]
fn child() {
    let (Ok(endpoint), Ok(id)) = (
        std::env::var("DISTLOG_TEST_CHILD"),
        std::env::var("DISTLOG_TEST_TASK"),
    ) else {
        return;
    };
    let _guard = distlog::builder().endpoint(endpoint).install().unwrap();
    let remote = distlog::import_task(&id, "charge card", &[("service", &"billing")]);
    distlog::info!("calling the bank");
    {
        let _sub = distlog::to("bank call", &[]);
    }
    remote.success("charged");
}

#[test]
fn a_tree_continues_in_a_child_process() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .install()
        .unwrap();
    let root = distlog::task("checkout", &[]);
    let id = root.foreign_id();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--test-threads=1"])
        .env("DISTLOG_TEST_CHILD", &receiver.endpoint)
        .env("DISTLOG_TEST_TASK", &id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    root.success("checked out");
    assert!(distlog::flush());

    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false);
    let p = id.rsplit_once('/').unwrap().0.to_owned();
    let mut parent = vec![];
    let mut child = vec![];
    for b in &batches {
        let keys = b
            .records
            .iter()
            .filter(|r| r.target != "distlog")
            .map(|r| (r.key().unwrap(), r.rendered_message()));
        if b.sender.pid == std::process::id() {
            parent.extend(keys);
        } else {
            assert_ne!(b.sender.instance, 0);
            child.extend(keys);
        }
    }
    let s = |k: String, m: &str| (k, m.to_owned());
    assert_eq!(
        parent,
        [
            s(format!("1@{p}"), "checkout"),
            s(format!("2@{p}"), "checked out")
        ]
    );
    assert_eq!(
        child,
        [
            s(format!("1@{p}/1"), "charge card"),
            s(format!("2@{p}/1"), "calling the bank"),
            s(format!("1@{p}/1/1"), "bank call"),
            s(format!("2@{p}/1/1"), "bank call"),
            s(format!("3@{p}/1"), "charged"),
        ]
    );
    assert_eq!(app_records(&batches).count(), 7);
}
