//! Exactly once into PostgreSQL (schema version 3): a record the database
//! already has is skipped, not stored again, whichever broker writes it and
//! however many times it comes (a redelivery from the stream, a re-sent
//! batch). distlog clients' records are known by (instance, seq, host,
//! pid); Python clients' records, which have no sequence numbers, by
//! (host, pid, thread, time, message). The skipped ones are counted
//! (`distlogd_processor_repeated_records_total`). A version-2 database
//! that already holds copies is migrated to one row per record.

mod servers;
mod support;

use std::path::Path;
use std::time::Duration;
use support::{free_port, metric, metrics_text, processor_counts, wait_for, Broker, TempDir};

/// A broker writing everything to `url`; its metrics endpoint on
/// `metrics`.
fn config(dir: &Path, name: &str, url: &str, metrics: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "metrics: {{interval: 0s, listen: {metrics:?}}}\n\
             processors:\n  \
               db: {{type: postgres, url: {url:?}, batch: 2000, retry: 100ms}}\n\
             default: [db]\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// A Python client's JSON record (what the PyPI `ZmqHandler` sends).
fn python_record(message: &str, created: &str) -> Vec<u8> {
    format!(
        r#"{{"name": "shop.cart", "msg": "{message}", "args": null, "levelname": "INFO",
        "levelno": 20, "pathname": "/app/cart.py", "filename": "cart.py", "module": "cart",
        "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 41, "funcName": "add",
        "created": {created}, "msecs": 500.0, "relativeCreated": 1.0, "thread": 140001,
        "threadName": "MainThread", "processName": "MainProcess", "process": 4321,
        "message": "{message}", "asctime": null, "hostname": "shop-1", "context": null}}"#
    )
    .into_bytes()
}

fn send_python(push: &zmq::Socket, body: &[u8]) {
    push.send_multipart([&b"PLJ"[..], body], 0).unwrap();
}

fn repeated(metrics: &str) -> u64 {
    metric(
        &metrics_text(metrics),
        "distlogd_processor_repeated_records_total{processor=\"db\"}",
    )
}

#[test]
fn the_same_records_through_two_brokers_and_twice_are_stored_once() {
    let pg = servers::Postgres::start("exactly-once");
    let tmp = TempDir::new("pg-exactly-once");
    let dir = tmp.path();
    let url = pg.url();
    let (ma, mb) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let (ea, eb) = (
        format!("tcp://127.0.0.1:{}", free_port()),
        format!("tcp://127.0.0.1:{}", free_port()),
    );
    let a = Broker::start(
        &ea,
        &dir.join("a"),
        &["--config", &config(dir, "a", &url, &ma)],
    );
    let b = Broker::start(
        &eb,
        &dir.join("b"),
        &["--config", &config(dir, "b", &url, &mb)],
    );

    const PER: u64 = 1000;
    let s = servers::sender("web-1", 11, 101);
    let ctx = zmq::Context::new();
    let (pa, pb) = (servers::push(&ctx, &ea), servers::push(&ctx, &eb));
    // Batches 0-9 to A, 5-14 to B (5-9 through both), 0-2 to A again.
    for i in 0..10 {
        servers::send(&pa, &servers::plain_batch(&s, i * PER, PER));
    }
    for i in 5..15 {
        servers::send(&pb, &servers::plain_batch(&s, i * PER, PER));
    }
    for i in 0..3 {
        servers::send(&pa, &servers::plain_batch(&s, i * PER, PER));
    }
    // Python: one record through both brokers and twice through A; a
    // different message from the same thread at the same time is another
    // record.
    let p1 = python_record("added x", "1700000000.5");
    let p2 = python_record("added y", "1700000000.5");
    send_python(&pa, &p1);
    send_python(&pb, &p1);
    send_python(&pa, &p1);
    send_python(&pa, &p2);
    drop((pa, pb));
    let sent = 23 * PER + 4;
    let records = 15 * PER + 2;
    wait_for(
        "every copy seen and skipped",
        Duration::from_secs(60),
        || repeated(&ma) + repeated(&mb) == sent - records,
    );
    assert_eq!(pg.count("SELECT count(*) FROM distlog_log") as u64, records);
    assert_eq!(
        pg.count("SELECT count(DISTINCT seq) FROM distlog_log WHERE instance <> 0") as u64,
        15 * PER
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM distlog_log WHERE instance = 0"),
        2
    );
    let (sa, ea) = a.stop();
    assert!(sa.success(), "{ea}");
    let (sb, eb) = b.stop();
    assert!(sb.success(), "{eb}");
    // Each broker took every record it was sent and dropped none.
    assert_eq!(processor_counts(&ea, "db"), (13 * PER + 3, 0), "{ea}");
    assert_eq!(processor_counts(&eb, "db"), (10 * PER + 1, 0), "{eb}");
    assert_eq!(
        pg.count("SELECT max(version)::bigint FROM distlog_schema"),
        3
    );
}

/// A row of `distlog_log` by plain SQL (as a version-2 broker wrote it).
fn insert_row(c: &mut postgres::Client, instance: i64, seq: i64, message: &str) {
    c.execute(
        "INSERT INTO distlog_log (system, time, time_ns, level, target, message, fields, task, \
         task_n, error, host, pid, program, instance, start_ns, seq, thread_id, thread_name, \
         module, file, line, func) VALUES ('P', to_timestamp(1700000000), 1700000000000000000, \
         20, 't', $3, NULL, '', 0, '', 'web-1', 11, 'app', $1, 0, $2, 7, 'main', 'm', 'f', 1, 'fn')",
        &[&instance, &seq, &message],
    )
    .unwrap();
}

#[test]
fn a_version_2_database_with_copies_is_migrated_to_one_row_per_record() {
    let pg = servers::Postgres::start("migrate-v3");
    let tmp = TempDir::new("pg-migrate-v3");
    let dir = tmp.path();
    let url = pg.url();
    // A version-2 schema holding copies: seq 0 and 1 of instance 101 twice
    // and three times, a Python record (instance 0) twice.
    let mut c = pg.client();
    let migrations = distlogd::pg::migrations();
    c.batch_execute("CREATE TABLE distlog_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())")
        .unwrap();
    for (i, sql) in migrations.iter().take(2).enumerate() {
        c.batch_execute(sql).unwrap();
        c.execute(
            "INSERT INTO distlog_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .unwrap();
    }
    for (instance, seq, n) in [(101, 0, 2), (101, 1, 3), (101, 2, 1), (0, 0, 2)] {
        for _ in 0..n {
            insert_row(&mut c, instance, seq, "m");
        }
    }
    assert_eq!(pg.count("SELECT count(*) FROM distlog_log"), 8);

    // A broker migrates it when it connects, then skips what is there.
    let m = format!("127.0.0.1:{}", free_port());
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let broker = Broker::start(
        &ep,
        &dir.join("store"),
        &["--config", &config(dir, "b", &url, &m)],
    );
    wait_for("the migration", Duration::from_secs(30), || {
        pg.try_count("SELECT coalesce(max(version), 0)::bigint FROM distlog_schema") == 3
    });
    assert_eq!(pg.count("SELECT count(*) FROM distlog_log"), 4);
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &ep);
    let s = servers::sender("web-1", 11, 101);
    servers::send(&push, &servers::plain_batch(&s, 0, 10));
    drop(push);
    wait_for("the batch written", Duration::from_secs(30), || {
        pg.try_count("SELECT count(*) FROM distlog_log") == 11
    });
    wait_for("the copies counted", Duration::from_secs(30), || {
        repeated(&m) == 3
    });
    let (s, err) = broker.stop();
    assert!(s.success(), "{err}");
    assert_eq!(pg.count("SELECT count(*) FROM distlog_log"), 11);
}
