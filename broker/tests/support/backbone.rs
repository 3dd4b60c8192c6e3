//! The backbone topology on one machine, for the `backbone_*` tests: a
//! 3-node NATS cluster with JetStream (Debian's nats-server, routes on
//! loopback ports, each node's store in a temp dir), the `DISTLOG` stream
//! on it, two edge distlogd publishing to it, two central distlogd sharing
//! one durable consumer and writing to one PostgreSQL, and the clients:
//! `distlog loadgen` and the real Python client.
//!
//! A test binary includes it with `#[path = "support/backbone.rs"] mod
//! backbone;` next to `mod servers;` and `mod support;`. Everything waits
//! on conditions (a port listening, the cluster answering, a row count),
//! never on a fixed time.
#![allow(dead_code)]

use crate::servers;
use crate::support::{
    free_port, metric, metrics_text, python, repo_root, wait_for, Broker, TempDir,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The stream every test uses.
pub const STREAM: &str = "DISTLOG";
/// The durable consumer the central brokers share.
pub const CONSUMER: &str = "central";

/// A tokio runtime for one NATS admin call.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One nats-server of the cluster.
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Three nats-servers with JetStream forming the cluster `distlog`.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts three nodes and waits until the cluster accepts JetStream
    /// requests.
    pub fn start(tag: &str) -> NatsCluster {
        let dir = TempDir::new(&format!("nats-cluster-{tag}"));
        let nodes: Vec<Node> = (1..=3)
            .map(|i| Node {
                name: format!("nats-{i}"),
                port: free_port(),
                cluster_port: free_port(),
                dir: dir.path().join(format!("nats-{i}")),
                child: None,
            })
            .collect();
        let mut c = NatsCluster { nodes, _dir: dir };
        for i in 0..3 {
            c.up(i);
        }
        c
    }

    fn up(&mut self, i: usize) {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let n = &mut self.nodes[i];
        std::fs::create_dir_all(&n.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("log"))
            .unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &n.port.to_string()])
            .args(["-n", &n.name, "--cluster_name", "distlog"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", n.cluster_port),
                "--routes",
                &routes.join(","),
                "-sd",
            ])
            .arg(n.dir.join("js"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (Debian: apt-get install -y nats-server)");
        n.child = Some(child);
        let port = n.port;
        wait_for(
            &format!("nats-server {} listening", n.name),
            Duration::from_secs(30),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
    }

    /// The running nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| c.id()))
            .collect()
    }

    /// Every node's client port, by node index.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The names of the nodes process `pid` holds a client connection to
    /// (from its sockets in `/proc`: Linux only, empty elsewhere).
    pub fn connected(&self, pid: u32) -> Vec<String> {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| {
                let l = std::fs::read_link(fd.path()).ok()?;
                let l = l.to_string_lossy();
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
            })
            .collect();
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        let mut names = Vec::new();
        for l in tcp.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local, remote (hex addr:port), state, ..., inode (10th)
            if f.len() < 10 || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            let port = f[2]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let Some(n) = self.nodes.iter().find(|n| Some(n.port) == port) {
                names.push(n.name.clone());
            }
        }
        names
    }

    /// Every node's client URL, comma separated (what brokers are given).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`'s name (`nats-1`...).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node named `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    /// Kills node `i` with SIGKILL (a crash).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again, same ports and store.
    pub fn restart(&mut self, i: usize) {
        self.up(i);
    }

    /// Creates the stream (file storage, subjects `distlog.>`, `replicas`,
    /// the default 2-minute duplicate window), retrying while the cluster
    /// elects its leaders, and waits until the stream has a leader and
    /// (with replicas) its followers are current.
    pub fn create_stream(&self, replicas: usize) {
        let urls = self.urls();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = rt().block_on(async {
                let c = async_nats::connect(urls.split(',').collect::<Vec<_>>()).await?;
                let js = async_nats::jetstream::new(c);
                let mut s = js
                    .get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: STREAM.into(),
                        subjects: vec!["distlog.>".into()],
                        storage: async_nats::jetstream::stream::StorageType::File,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await?;
                let info = s.info().await?;
                let cluster = info.cluster.clone().unwrap_or_default();
                let ready = cluster.leader.is_some()
                    && cluster.replicas.iter().filter(|p| p.current).count() + 1 >= replicas;
                Ok::<_, async_nats::Error>(ready)
            });
            let last = match r {
                Ok(true) => return,
                Ok(false) => "stream not ready".to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "the JetStream cluster did not create the stream: {last}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The stream's leader node, once there is one.
    pub fn stream_leader(&self) -> String {
        let mut leader = None;
        wait_for("a stream leader", Duration::from_secs(60), || {
            leader = self.stream_info().and_then(|i| i.cluster?.leader);
            leader.is_some()
        });
        leader.unwrap()
    }

    /// The stream's info, None when no node answers.
    pub fn stream_info(&self) -> Option<async_nats::jetstream::stream::Info> {
        let urls = self.urls();
        rt().block_on(async {
            let c = async_nats::connect(urls.split(',').collect::<Vec<_>>()).await?;
            let js = async_nats::jetstream::new(c);
            let mut s = js.get_stream(STREAM).await?;
            Ok::<_, async_nats::Error>(s.info().await?.clone())
        })
        .ok()
    }

    /// The shared consumer's info, None when it does not exist (yet).
    pub fn consumer_info(&self) -> Option<async_nats::jetstream::consumer::Info> {
        let urls = self.urls();
        rt().block_on(async {
            let c = async_nats::connect(urls.split(',').collect::<Vec<_>>()).await?;
            let js = async_nats::jetstream::new(c);
            let s = js.get_stream(STREAM).await?;
            let mut c: async_nats::jetstream::consumer::PullConsumer =
                s.get_consumer(CONSUMER).await?;
            Ok::<_, async_nats::Error>(c.info().await?.clone())
        })
        .ok()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn write(dir: &Path, name: &str, yaml: String) -> String {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p.to_string_lossy().into_owned()
}

/// An edge distlogd: plain ingest on `endpoint` (Python clients),
/// acknowledged ingest on `ack_endpoint` (loadgen with `--ack`), everything
/// to the stream through the `jetstream` processor (queue: block, so
/// nothing is dropped at the edge).
pub struct Edge {
    pub endpoint: String,
    pub ack_endpoint: String,
    pub metrics: String,
    config: String,
    data: PathBuf,
    pub broker: Option<Broker>,
}

impl Edge {
    pub fn start(dir: &Path, name: &str, urls: &str) -> Edge {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let ack_endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let config = write(
            dir,
            &format!("{name}.yaml"),
            format!(
                "listen: [{endpoint:?}]\n\
                 ack_listen: [{ack_endpoint:?}]\n\
                 metrics: {{interval: 0s, listen: {metrics:?}}}\n\
                 processors:\n  \
                   js: {{type: jetstream, url: {urls:?}, stream: {STREAM}, replicas: 3, \
                         ack_timeout: 2s, shutdown_timeout: 120s, queue: {{overflow: block}}}}\n\
                 default: [js]\n"
            ),
        );
        let mut e = Edge {
            endpoint,
            ack_endpoint,
            metrics,
            config,
            data: dir.join(name),
            broker: None,
        };
        e.up();
        e
    }

    fn up(&mut self) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_distlogd"));
        c.arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data);
        self.broker = Some(Broker::spawn(c, &self.endpoint));
        let m = self.metrics.clone();
        wait_for(
            "the edge's metrics endpoint",
            Duration::from_secs(30),
            || std::net::TcpStream::connect(&m).is_ok(),
        );
    }

    /// SIGTERM (it publishes everything it took, then exits): its stderr.
    pub fn stop(&mut self) -> String {
        let (s, err) = self.broker.take().unwrap().stop();
        assert!(s.success(), "edge: {err}");
        err
    }

    /// Starts it again with the same config and endpoints.
    pub fn restart(&mut self) {
        self.up();
    }
}

/// A central distlogd: the shared consumer into PostgreSQL (queue: block,
/// so a slow database holds the stream back instead of dropping).
pub struct Central {
    pub metrics: String,
    pub broker: Option<Broker>,
}

impl Central {
    /// `ack_wait`: how long the stream waits for an acknowledgement before
    /// redelivering (short in tests, so a takeover is quick).
    pub fn start(dir: &Path, name: &str, urls: &str, pg_url: &str, ack_wait: &str) -> Central {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let config = write(
            dir,
            &format!("{name}.yaml"),
            format!(
                "listen: [{endpoint:?}]\n\
                 metrics: {{interval: 0s, listen: {metrics:?}}}\n\
                 processors:\n  \
                   db: {{type: postgres, url: {pg_url:?}, batch: 5000, flush_interval: 100ms, \
                         retry: 200ms, queue: {{overflow: block}}}}\n\
                 default: [db]\n\
                 jetstream_inputs:\n  \
                   - {{url: {urls:?}, stream: {STREAM}, consumer: {CONSUMER}, ack_wait: {ack_wait}, fetch: 64, max_ack_pending: 256}}\n"
            ),
        );
        let mut c = Command::new(env!("CARGO_BIN_EXE_distlogd"));
        c.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join(name));
        let broker = Broker::spawn(c, &endpoint);
        let m = metrics.clone();
        wait_for(
            "the central's metrics endpoint",
            Duration::from_secs(30),
            || std::net::TcpStream::connect(&m).is_ok(),
        );
        Central {
            metrics,
            broker: Some(broker),
        }
    }

    /// Records its `db` processor skipped as already stored.
    pub fn repeated(&self) -> u64 {
        metric(
            &metrics_text(&self.metrics),
            "distlogd_processor_repeated_records_total{processor=\"db\"}",
        )
    }

    /// Messages it took from the stream.
    pub fn messages(&self) -> u64 {
        metric(&metrics_text(&self.metrics), "distlogd_messages_total")
    }

    /// SIGTERM: its stderr.
    pub fn stop(&mut self) -> String {
        let (s, err) = self.broker.take().unwrap().stop();
        assert!(s.success(), "central: {err}");
        err
    }

    /// SIGKILL (a crash, nothing flushed or acknowledged).
    pub fn kill(&mut self) {
        let _ = self.broker.take().unwrap().kill();
    }
}

/// A running `distlog loadgen`.
pub struct Loadgen(Child);

impl Loadgen {
    /// `records` records over `threads` threads at `rate` records/s in
    /// all, acknowledged delivery to an edge's `ack_endpoint`, blocking
    /// instead of dropping (so every record logged must arrive).
    pub fn start(ack_endpoint: &str, records: u64, rate: u64) -> Loadgen {
        let child = Command::new(env!("CARGO_BIN_EXE_distlog"))
            .args(["loadgen", "--endpoint", ack_endpoint, "--ack", "--block"])
            .args(["--records", &records.to_string(), "--threads", "2"])
            .args(["--rate", &rate.to_string(), "--system", "P"])
            .args(["--flush-timeout", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Loadgen(child)
    }

    /// A loadgen the caller started (stdout piped).
    pub fn from_child(c: Child) -> Loadgen {
        Loadgen(c)
    }

    /// Waits for the end; its summary (the last line, JSON).
    pub fn finish(mut self) -> serde_json::Value {
        let mut out = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(self.0.wait().unwrap().success(), "loadgen: {out}");
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    }

    /// Records logged and kept by the client (`sent - dropped`); with
    /// `--block` nothing is dropped.
    pub fn logged(v: &serde_json::Value) -> u64 {
        v["sent"].as_u64().unwrap() - v["dropped"].as_u64().unwrap()
    }
}

/// Runs the real Python client (`tests/python/send_records.py`: `n` plain
/// records plus a task tree, in JSON then pickle) against `endpoint`;
/// returns how many records it sent.
pub fn python_client(endpoint: &str, n: u64) -> u64 {
    let script = repo_root().join("tests/python/send_records.py");
    let out = Command::new(python())
        .arg(&script)
        .args([endpoint, &n.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send_records.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["records"].as_array().unwrap().len() as u64
}

/// What PostgreSQL holds: rows, distinct identities of distlog clients'
/// records, Python clients' rows, and the sequence numbers missing below
/// each sender's highest (gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    pub rows: u64,
    pub distinct: u64,
    pub python: u64,
    pub gaps: u64,
}

impl Rows {
    pub fn of(pg: &servers::Postgres) -> Rows {
        let n = |sql: &str| pg.count(sql) as u64;
        Rows {
            rows: n("SELECT count(*) FROM distlog_log"),
            distinct: n(
                "SELECT count(*) FROM (SELECT DISTINCT instance, seq, host, pid \
                         FROM distlog_log WHERE instance <> 0) d",
            ),
            python: n("SELECT count(*) FROM distlog_log WHERE instance = 0"),
            gaps: n("SELECT coalesce(sum(max_seq + 1 - n), 0)::bigint FROM \
                     (SELECT max(seq) AS max_seq, count(*) AS n FROM distlog_log \
                      WHERE instance <> 0 GROUP BY instance) g"),
        }
    }
}

impl Rows {
    /// The failure tests' verdict: every record logged is a row, none
    /// twice, the Python clients' all there, no sequence gaps. `why` is
    /// added to the first message (what the test saw go wrong, if any).
    pub fn assert_exactly_once(&self, logged: u64, python: u64, why: &str) {
        assert_eq!(self.rows, logged, "every record logged is a row{why}");
        assert_eq!(self.distinct + self.python, self.rows, "no duplicates");
        assert_eq!(self.python, python);
        assert_eq!(self.gaps, 0, "no sequence gaps");
    }
}

/// Rows in `distlog_log` now (-1 while the database or table is not
/// there).
pub fn rows_now(pg: &servers::Postgres) -> i64 {
    pg.try_count("SELECT count(*) FROM distlog_log")
}

/// Waits until PostgreSQL holds `total` rows (at most `within`).
pub fn wait_rows(pg: &servers::Postgres, total: u64, within: Duration) {
    let mut last = 0;
    let deadline = Instant::now() + within;
    loop {
        last = rows_now(pg).max(last);
        if last as u64 >= total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {total} rows: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whole topology: cluster and stream (R=`replicas`), PostgreSQL, two
/// edges, `centrals` central brokers.
pub struct Topology {
    pub nats: NatsCluster,
    pub pg: servers::Postgres,
    pub edges: Vec<Edge>,
    pub centrals: Vec<Central>,
    pub dir: TempDir,
}

impl Topology {
    pub fn start(tag: &str, replicas: usize, centrals: usize, ack_wait: &str) -> Topology {
        let dir = TempDir::new(&format!("backbone-{tag}"));
        let nats = NatsCluster::start(tag);
        let pg = servers::Postgres::start(&format!("backbone-{tag}"));
        nats.create_stream(replicas);
        let urls = nats.urls();
        let centrals: Vec<Central> = (0..centrals)
            .map(|i| {
                Central::start(
                    dir.path(),
                    &format!("central-{i}"),
                    &urls,
                    &pg.url(),
                    ack_wait,
                )
            })
            .collect();
        if !centrals.is_empty() {
            // Every central's pull request is waiting at the consumer's
            // leader before any record is sent: a request sent while a
            // replicated consumer was still electing its leader is lost,
            // and its central notices only when the heartbeats stay away
            // (two of them), then reconnects; a short flat-out run could
            // be over by then, all of it taken by the other central.
            wait_for(
                "every central's pull request at the consumer",
                Duration::from_secs(60),
                || {
                    nats.consumer_info().is_some_and(|i| {
                        i.cluster.is_some_and(|c| c.leader.is_some())
                            && i.num_waiting >= centrals.len()
                    })
                },
            );
        }
        let edges = (0..2)
            .map(|i| Edge::start(dir.path(), &format!("edge-{i}"), &urls))
            .collect();
        Topology {
            nats,
            pg,
            edges,
            centrals,
            dir,
        }
    }

    /// Every broker's main counters, the consumer and the rows: what a
    /// failing test prints.
    pub fn status(&self) -> String {
        let pick = |addr: &str| -> String {
            let text = std::panic::catch_unwind(|| metrics_text(addr)).unwrap_or_default();
            text.lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.starts_with("distlogd_messages_total")
                            || l.starts_with("distlogd_records_total")
                            || l.starts_with("distlogd_rejected")
                            || l.starts_with("distlogd_processor_written")
                            || l.starts_with("distlogd_processor_dropped")
                            || l.starts_with("distlogd_processor_errors")
                            || l.starts_with("distlogd_processor_repeated"))
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = String::new();
        for (i, e) in self.edges.iter().enumerate() {
            out += &format!("\nedge {i}: {}", pick(&e.metrics));
        }
        for (i, c) in self.centrals.iter().enumerate() {
            if c.broker.is_some() {
                out += &format!("\ncentral {i}: {}", pick(&c.metrics));
            }
        }
        out += &format!(
            "\nconsumer: {:?}\nstream: {:?}\nrows: {}",
            self.nats.consumer_info().map(|c| (
                c.num_pending,
                c.num_ack_pending,
                c.num_redelivered,
                c.num_waiting,
                c.cluster
            )),
            self.nats.stream_info().map(|s| s.state.messages),
            rows_now(&self.pg)
        );
        out
    }

    /// One `distlog loadgen --ack --block` per edge, `records` each, paced
    /// at `rate` records/s.
    pub fn loadgens(&self, records: u64, rate: u64) -> Vec<Loadgen> {
        self.edges
            .iter()
            .map(|e| Loadgen::start(&e.ack_endpoint, records, rate))
            .collect()
    }

    /// Waits until PostgreSQL holds `logged` rows and the consumer has
    /// every message acknowledged (nothing pending, nothing in flight).
    pub fn wait_all_written(&mut self, logged: u64) {
        self.wait(
            "every record logged as a row",
            Duration::from_secs(120),
            |t| rows_now(&t.pg) >= logged as i64,
        );
        self.wait(
            "the consumer to have every message acknowledged",
            Duration::from_secs(60),
            |t| {
                t.nats
                    .consumer_info()
                    .is_some_and(|c| c.num_ack_pending == 0 && c.num_pending == 0)
            },
        );
    }

    /// Polls `f` every 100 ms until it holds; after `within`, fails the
    /// test with [`status`](Self::status).
    pub fn wait(&mut self, what: &str, within: Duration, mut f: impl FnMut(&Topology) -> bool) {
        let deadline = Instant::now() + within;
        while !f(self) {
            if Instant::now() > deadline {
                let status = self.status();
                let mut tails = String::new();
                let brokers = self
                    .edges
                    .iter_mut()
                    .filter_map(|e| e.broker.take())
                    .chain(self.centrals.iter_mut().filter_map(|c| c.broker.take()));
                for (i, b) in brokers.enumerate() {
                    let (_, err) = b.kill();
                    let tail: Vec<&str> = err.lines().rev().take(12).collect();
                    tails += &format!(
                        "\n--- broker {i} stderr (last lines, newest first):\n{}",
                        tail.join("\n")
                    );
                }
                panic!("timed out waiting for {what}: {status}{tails}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills every broker still running (SIGKILL: a measurement that has
    /// its figure does not wait for the flushes).
    pub fn kill_all(&mut self) {
        for b in self
            .edges
            .iter_mut()
            .filter_map(|e| e.broker.take())
            .chain(self.centrals.iter_mut().filter_map(|c| c.broker.take()))
        {
            let _ = b.kill();
        }
    }

    /// Stops everything still running (edges first, then centrals);
    /// returns the centrals' stderr.
    pub fn stop(&mut self) -> Vec<String> {
        for e in &mut self.edges {
            if e.broker.is_some() {
                e.stop();
            }
        }
        self.centrals
            .iter_mut()
            .filter(|c| c.broker.is_some())
            .map(|c| c.stop())
            .collect()
    }
}
