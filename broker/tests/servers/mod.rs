//! Throwaway PostgreSQL and nats-server instances for integration tests:
//! each in its own temp dir, on a free loopback port, stopped and removed
//! on drop. A missing server binary fails the test with what to install.
//! Also hand-made batches (a sender identity, plain records, a task tree
//! over two services) and a ZeroMQ PUSH socket to send them to a broker.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (CI),
//! `initdb`, `pg_ctl` and the server run as the `postgres` user (created
//! by Debian's package) through `runuser`, in a directory it owns.
//!
//! Needs `mod support;` next to `mod servers;` in the test crate.
#![allow(dead_code)]

use crate::support::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A PostgreSQL binary: on PATH, or in Debian's versioned directory.
fn pg_bin(name: &str) -> PathBuf {
    if let Some(p) = which(name) {
        return p;
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "{name} not found: this test needs PostgreSQL's server binaries \
             (scripts/provision installs it; Debian: apt-get install -y postgresql)"
        )
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A command run as the `postgres` user when we are root.
fn pg_command(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL cluster in a temp dir.
pub struct Postgres {
    dir: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// `initdb` (trust auth, user `distlog`) and start on a free port.
    pub fn start(tag: &str) -> Postgres {
        let initdb = pg_bin("initdb");
        let dir = std::env::temp_dir().join(format!("distlog-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        if is_root() {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres"]).arg(&dir);
            run(
                c,
                "chown the cluster dir to postgres (is the postgres user there?)",
            );
        }
        let mut c = pg_command(&initdb);
        c.args([
            "-A",
            "trust",
            "-U",
            "distlog",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(dir.join("data"));
        run(c, "initdb");
        let pg = Postgres {
            dir,
            port: free_port(),
        };
        pg.up();
        pg
    }

    fn ctl(&self, args: &[&str]) -> Command {
        let mut c = pg_command(&pg_bin("pg_ctl"));
        c.arg("-D").arg(self.dir.join("data")).args(args);
        c
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let mut c = self.ctl(&["-w", "-t", "60", "-o", &opts, "-l"]);
        c.arg(&log).arg("start");
        // pg_ctl's server keeps stdout/stderr open: do not capture them.
        let status = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(
            status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m fast` (connections are cut, as in a restart).
    pub fn stop(&self) {
        run(self.ctl(&["-w", "-m", "fast", "stop"]), "pg_ctl stop");
    }

    /// Starts it again after [`stop`](Self::stop), on the same port.
    pub fn start_again(&self) {
        self.up();
    }

    /// The connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=distlog dbname=postgres",
            self.port
        )
    }

    /// A connected client.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to test postgres")
    }

    /// `SELECT <sql>` returning one bigint.
    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }

    /// Like [`count`](Self::count), -1 when the query fails (server down,
    /// table not created yet).
    pub fn try_count(&self, sql: &str) -> i64 {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .and_then(|mut c| c.query_one(sql, &[]))
            .map(|r| r.get(0))
            .unwrap_or(-1)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .ctl(&["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A nats-server with JetStream, in a temp dir.
pub struct Nats {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Nats {
    /// `nats-server -js -sd DIR -p PORT` on loopback.
    pub fn start(tag: &str) -> Nats {
        let dir = std::env::temp_dir().join(format!("distlog-nats-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = Nats {
            dir,
            port: free_port(),
            child: None,
        };
        n.up();
        n
    }

    fn up(&mut self) {
        let bin = which("nats-server").unwrap_or_else(|| {
            panic!(
                "nats-server not found: this test needs it \
                 (scripts/provision installs it; Debian: apt-get install -y nats-server)"
            )
        });
        let log = std::fs::File::create(self.dir.join("log")).unwrap();
        let child = Command::new(bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.join("js"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again on the same port and store dir.
    pub fn start_again(&mut self) {
        self.up();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use distlog_core::record::{Field, Record, Value};
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};

/// A sender identity for hand-made batches.
pub fn sender(host: &str, pid: u32, instance: u64) -> Sender {
    Sender {
        host: host.into(),
        pid,
        program: format!("{host}-app"),
        start_ns: 1_700_000_000_000_000_000,
        instance,
    }
}

/// Now, in ns since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `n` plain records from `sender`, sequence numbers from `first`.
pub fn plain_batch(s: &Sender, first: u64, n: u64) -> Vec<u8> {
    let t = now_ns();
    let b = Batch {
        sender: s.clone(),
        first_seq: first,
        dropped: 0,
        records: (0..n)
            .map(|i| Record {
                seq: first + i,
                time_ns: t + i,
                level: if (first + i) % 10 == 0 { 40 } else { 20 },
                kind: b'L',
                target: "load".into(),
                message: format!("record {}", first + i),
                fields: vec![Field {
                    key: "i".into(),
                    value: Value::U64(first + i),
                }],
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}

fn task_rec(seq: u64, t: u64, task: &str, n: u32, msg: &str, status: &str) -> Record {
    let mut fields = Vec::new();
    if !status.is_empty() {
        fields.push(Field {
            key: "task_status".into(),
            value: Value::Str(status.into()),
        });
    }
    if status == "succeeded" || status == "failed" {
        fields.push(Field {
            key: "duration_ns".into(),
            value: Value::U64(3_000_000),
        });
    }
    Record {
        seq,
        time_ns: t,
        level: if status == "failed" { 40 } else { 20 },
        kind: b'L',
        target: "svc".into(),
        message: msg.into(),
        fields,
        task: task.into(),
        task_n: n,
        error: if status == "failed" {
            "boom".into()
        } else {
            String::new()
        },
        ..Record::default()
    }
}

/// One request's tree over two services: the root task and subtask `/1`
/// logged by `a`, subtask `/2` (imported from the root's id) by `b`.
/// Returns each sender's batch (sequence numbers from 0) and its record
/// count.
pub fn tree_batches(root: &str, a: &Sender, b: &Sender) -> [(Vec<u8>, u64); 2] {
    let t = now_ns();
    let c1 = format!("{root}/1");
    let c2 = format!("{root}/2");
    let ra = vec![
        task_rec(0, t, root, 1, "GET /orders/17", "started"),
        task_rec(1, t + 10, &c1, 1, "load order", "started"),
        task_rec(2, t + 20, &c1, 2, "cache miss", ""),
        task_rec(3, t + 30, &c1, 3, "load order", "succeeded"),
        task_rec(4, t + 90, root, 2, "GET /orders/17", "succeeded"),
    ];
    let rb = vec![
        task_rec(0, t + 40, &c2, 1, "charge card", "started"),
        task_rec(1, t + 50, &c2, 2, "retrying", ""),
        task_rec(2, t + 60, &c2, 3, "FAILED charge card", "failed"),
    ];
    let enc = |s: &Sender, records: Vec<Record>| {
        let n = records.len() as u64;
        let body = encode_batch_to_vec(&Batch {
            sender: s.clone(),
            first_seq: 0,
            dropped: 0,
            records,
        })
        .to_vec();
        (body, n)
    };
    [enc(a, ra), enc(b, rb)]
}

/// A PUSH socket connected to `endpoint`.
pub fn push(ctx: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let s = ctx.socket(zmq::PUSH).unwrap();
    s.set_linger(10_000).unwrap();
    s.connect(endpoint).unwrap();
    s
}

/// Sends one batch with topic `TLR`.
pub fn send(s: &zmq::Socket, body: &[u8]) {
    s.send_multipart([&b"TLR"[..], body], 0).unwrap();
}
