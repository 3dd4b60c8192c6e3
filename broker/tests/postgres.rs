//! The `postgres` processor against a real PostgreSQL (a throwaway cluster
//! in a temp dir): every record a real broker received is in the database
//! (counts equal to the embedded store's and to loadgen's `sent -
//! dropped`), `distlog query/tree --database` answer from it exactly as
//! from the store, and a database restart mid-stream loses nothing while
//! the buffer holds.

mod servers;
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{
    broker_counter, distlog_ok, free_port, processor_counts, stored, wait_for, Broker, TempDir,
};

/// `distlog query --count` plus `args` (a `--data-dir` or a `--database`).
fn count(args: &[&str]) -> u64 {
    let mut a = vec!["query", "--count"];
    a.extend_from_slice(args);
    distlog_ok(&a).trim().parse().unwrap()
}

/// Waits until `total` records are in the database, stops the broker
/// (asserting a clean exit and that the `db` processor wrote `total` and
/// dropped none), and asserts every record is there exactly once. Returns
/// the broker's stderr.
fn stop_with_each_record_once(pg: &servers::Postgres, broker: Broker, total: u64) -> String {
    wait_for(
        "every record in the database",
        Duration::from_secs(60),
        || pg.try_count("SELECT count(*) FROM distlog_log") >= total as i64,
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    let (written, dropped) = processor_counts(&stderr, "db");
    assert_eq!((written, dropped), (total, 0), "{stderr}");
    assert_eq!(
        pg.count("SELECT count(DISTINCT seq) FROM distlog_log") as u64,
        total
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM distlog_log") as u64,
        total,
        "no duplicates: {stderr}"
    );
    stderr
}

fn config(dir: &Path, url: &str, extra: &str) -> String {
    let path = dir.join("distlogd.yaml");
    std::fs::write(
        &path,
        format!(
            "metrics: {{interval: 0s}}\n\
             processors:\n  \
               store: {{type: store}}\n  \
               db: {{type: postgres, url: {url:?}, batch: 2000, retry: 100ms{extra}}}\n\
             default: [store, db]\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn loadgen_and_a_task_tree_land_in_postgres_and_read_back_like_the_store() {
    let pg = servers::Postgres::start("counts");
    let tmp = TempDir::new("pg-counts");
    let dir = tmp.path();
    let store = dir.join("store");
    let url = pg.url();
    let cfg = config(dir, &url, "");
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&ep, &store, &["--config", &cfg]);

    let mut lg = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["loadgen", "--endpoint", &ep, "--records", "200000"])
        .args(["--threads", "2", "--fields", "2", "--flush-timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    lg.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(lg.wait().unwrap().success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // loadgen's own count of what reached the broker (its `sent - dropped`
    // can be off by one; the broker's and the store's counts decide).
    let delivered = v["handed_over"]
        .as_u64()
        .unwrap_or_else(|| v["sent"].as_u64().unwrap() - v["dropped"].as_u64().unwrap());

    let root = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let (a, b) = (
        servers::sender("web-1", 11, 101),
        servers::sender("pay-1", 22, 202),
    );
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &ep);
    let mut tree_records = 0;
    for (body, n) in servers::tree_batches(root, &a, &b) {
        servers::send(&push, &body);
        tree_records += n;
    }
    drop(push);
    let total = delivered + tree_records;
    wait_for(
        "the broker to take every record",
        Duration::from_secs(60),
        || stored(&store, &[]) == total,
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(broker_counter(&stderr, "records"), total, "{stderr}");
    let (written, dropped) = processor_counts(&stderr, "db");
    assert_eq!((written, dropped), (total, 0), "{stderr}");

    // Counts equal: the database, the store, the senders.
    let st = store.to_str().unwrap();
    assert_eq!(
        pg.count("SELECT count(*) FROM distlog_log") as u64,
        total,
        "rows in distlog_log"
    );
    assert_eq!(count(&["--database", &url]), total);
    assert_eq!(count(&["--data-dir", st]), total);
    // Filters: translated to SQL (exact: count(*) in the database), partly
    // translated (the rest evaluated on the rebuilt records), not at all.
    for f in [
        "level >= error",
        "level >= error and not (pid == 7)",
        "field.i < 5000 or host == \"web-1\"",
        "message contains \"record 1\" and level <= info",
        "task under \"1b4e28ba-2fa1-11d2-883f-0016d3cca427/2\"",
        "not (level == info)",
    ] {
        let db = count(&["--database", &url, "--filter", f]);
        let fs = count(&["--data-dir", st, "--filter", f]);
        assert_eq!(db, fs, "filter {f}");
    }
    assert!(count(&["--database", &url, "--filter", "level >= error"]) > 0);
    let lines = distlog_ok([
        "query",
        "--database",
        &url,
        "--format",
        "jsonl",
        "--limit",
        "7",
    ]);
    assert_eq!(lines.lines().count(), 7);
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(
            v["hostname"].is_string() && v["levelname"].is_string(),
            "{l}"
        );
    }

    // The tree answers from the database exactly as from the store.
    let from_db = distlog_ok(["tree", root, "--database", &url]);
    let from_store = distlog_ok(["tree", root, "--data-dir", st]);
    assert_eq!(from_db, from_store);
    assert!(from_db.contains("charge card"), "{from_db}");
    assert!(from_db.contains("FAILED"), "{from_db}");
    assert!(
        from_db.contains("3 tasks: 2 succeeded, 1 failed"),
        "{from_db}"
    );
    let jsonl = distlog_ok(["tree", root, "--database", &url, "--format", "jsonl"]);
    assert_eq!(jsonl.lines().count(), 3, "{jsonl}");

    // The schema is versioned; the "task X and below" and "errors from
    // host Y" indexes are there.
    assert_eq!(
        pg.count("SELECT max(version)::bigint FROM distlog_schema"),
        3
    );
    // One processor wrote: one commit token.
    assert_eq!(pg.count("SELECT count(*) FROM distlog_commits"), 1);
    let indexes = pg.count(
        "SELECT count(*) FROM pg_indexes WHERE indexname IN \
         ('distlog_log_task_idx', 'distlog_log_errors_idx', 'distlog_log_time_idx')",
    );
    assert_eq!(indexes, 3);
}

#[test]
fn database_restart_mid_stream_loses_nothing_within_the_buffer() {
    let pg = servers::Postgres::start("restart");
    let tmp = TempDir::new("pg-restart");
    let dir = tmp.path();
    let store = dir.join("store");
    let url = pg.url();
    let cfg = config(dir, &url, ", buffer: 500000");
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&ep, &store, &["--config", &cfg]);

    const BATCHES: u64 = 80;
    const PER: u64 = 1000;
    let sender = std::thread::spawn({
        let ep = ep.clone();
        move || {
            let ctx = zmq::Context::new();
            let push = servers::push(&ctx, &ep);
            let s = servers::sender("edge-9", 9, 909);
            for i in 0..BATCHES {
                servers::send(&push, &servers::plain_batch(&s, i * PER, PER));
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
        }
    });
    // Let some land, then take the database away for a while mid-stream.
    wait_for("rows before the restart", Duration::from_secs(30), || {
        pg.try_count("SELECT count(*) FROM distlog_log") > 0
    });
    pg.stop();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    pg.start_again();
    sender.join().unwrap();
    let stderr = stop_with_each_record_once(&pg, broker, BATCHES * PER);
    assert!(
        stderr.contains("will retry") || stderr.contains("cannot connect"),
        "the outage was noticed: {stderr}"
    );
}

#[test]
fn a_database_that_is_down_at_start_is_waited_for_and_overflow_is_counted() {
    let pg = servers::Postgres::start("down");
    pg.stop();
    let tmp = TempDir::new("pg-down");
    let dir = tmp.path();
    let store = dir.join("store");
    let url = pg.url();
    // A buffer of 5000 records: the rest of 20000 sent while the database
    // is away must be dropped, and counted.
    let cfg = config(dir, &url, ", buffer: 5000");
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&ep, &store, &["--config", &cfg]);
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &ep);
    let s = servers::sender("edge-7", 7, 707);
    for i in 0..20 {
        servers::send(&push, &servers::plain_batch(&s, i * 1000, 1000));
    }
    wait_for("the store to have all", Duration::from_secs(30), || {
        stored(&store, &[]) == 20_000
    });
    pg.start_again();
    wait_for(
        "the buffered records in the database",
        Duration::from_secs(30),
        || pg.try_count("SELECT count(*) FROM distlog_log") > 0,
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    let (written, dropped) = processor_counts(&stderr, "db");
    let rows = pg.count("SELECT count(*) FROM distlog_log") as u64;
    assert_eq!(rows, written, "{stderr}");
    assert_eq!(written + dropped, 20_000, "{stderr}");
    assert!(dropped >= 15_000, "the buffer bound held: {stderr}");
}

/// A TCP proxy to the database on `target` that, once, forwards a COMMIT
/// that follows a COPY on the same connection and then cuts that
/// connection without passing the answer back: the database commits, the
/// client only sees its connection lost. Returns the proxy's port and a
/// flag set when it has cut.
fn commit_cutting_proxy(target: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let done = cut.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            // Set before the COMMIT goes on: nothing more reaches the client.
            let hold = Arc::new(AtomicBool::new(false));
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            let held = hold.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = from_server.read(&mut buf) {
                    if held.load(Ordering::SeqCst) || to_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let done = done.clone();
            std::thread::spawn(move || {
                let (mut from_client, mut to_server) = (client, server);
                let mut buf = [0u8; 65536];
                let mut after_copy = false;
                while let Ok(n @ 1..) = from_client.read(&mut buf) {
                    let chunk = &buf[..n];
                    after_copy |= memchr::memmem::find(chunk, b"COPY ").is_some();
                    let cut_here = after_copy
                        && !done.load(Ordering::SeqCst)
                        && memchr::memmem::find(chunk, b"COMMIT").is_some();
                    if cut_here {
                        hold.store(true, Ordering::SeqCst);
                    }
                    if to_server.write_all(chunk).is_err() {
                        break;
                    }
                    if cut_here {
                        // Let the database commit, then drop both sides.
                        std::thread::sleep(Duration::from_millis(500));
                        done.store(true, Ordering::SeqCst);
                        let _ = from_client.shutdown(Shutdown::Both);
                        let _ = to_server.shutdown(Shutdown::Both);
                        break;
                    }
                }
            });
        }
    });
    (port, cut)
}

#[test]
fn a_commit_whose_answer_was_lost_is_not_written_twice() {
    let pg = servers::Postgres::start("in-doubt");
    let tmp = TempDir::new("pg-in-doubt");
    let dir = tmp.path();
    let store = dir.join("store");
    let url = pg.url();
    let real_port: u16 = url
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let (proxy_port, cut) = commit_cutting_proxy(real_port);
    let proxied = url.replace(&format!("port={real_port}"), &format!("port={proxy_port}"));
    let cfg = config(dir, &proxied, "");
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(&ep, &store, &["--config", &cfg]);

    const BATCHES: u64 = 6;
    const PER: u64 = 1000;
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &ep);
    let s = servers::sender("edge-7", 7, 707);
    for i in 0..BATCHES {
        servers::send(&push, &servers::plain_batch(&s, i * PER, PER));
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = stop_with_each_record_once(&pg, broker, BATCHES * PER);
    assert!(
        cut.load(Ordering::SeqCst),
        "the proxy cut a commit's answer: {stderr}"
    );
}
