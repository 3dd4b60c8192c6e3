//! The broker's configuration: where it listens, its processors, and the
//! rules that route records to them.
//!
//! With no file, [`Config::embedded`] listens on `tcp://127.0.0.1:5010` and
//! stores every record under `./distlog-data`. A YAML file
//! (`distlogd --config FILE`) looks like this (every key is optional; see
//! `broker/distlogd.example.yaml` for all of them):
//!
//! ```yaml
//! listen: [tcp://127.0.0.1:5010]
//! data_dir: /var/lib/distlog
//! metrics: { listen: 127.0.0.1:9110, interval: 10s }
//! processors:
//!   store:  { type: store, segment_size: 64MiB, retain_age: 7d }
//!   errors: { type: jsonl, path: /var/log/distlog/errors.jsonl }
//!   live:   { type: publish, endpoint: tcp://127.0.0.1:5011 }
//! rules:
//!   - name: errors
//!     filter: level >= error
//!     processors: [errors]
//!   - name: all
//!     filter: "true"
//!     processors: [store, live]
//! default: [store]
//! ```
//!
//! A record goes to every processor of every rule it matches (once per
//! processor), and to `default` when it matches no rule.
//!
//! [`Config::parse`] reports errors with the line and column they are at:
//! syntax and type errors from the YAML parser, and the broker's own checks
//! (filters that do not compile, rules naming processors that do not
//! exist, paths that are not absolute where they must be) located by
//! looking up the offending text.

pub mod remote;
pub mod units;

pub use remote::{JetstreamConfig, JetstreamInputConfig, PostgresConfig};

use distlog::filter::Filter;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PULL endpoints to bind.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Acknowledging endpoints to bind (ROUTER): clients built with
    /// `acknowledged(true)` connect here, send batches as on `listen`, and
    /// get an acknowledgement for each once the processors have taken it
    /// (`docs/PROTOCOL.md`). Default: none.
    #[serde(default)]
    pub ack_listen: Vec<String>,
    /// The data directory: the default `dir` of store processors.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest message accepted (ZMQ_MAXMSGSIZE); larger ones are dropped
    /// by ZeroMQ before they take memory. Default 16 MiB.
    #[serde(default = "default_max_message", with = "units::size")]
    pub max_message: u64,
    /// Messages ZeroMQ queues per ingest socket before it stops reading
    /// from clients (ZMQ_RCVHWM, default 1000): with `max_message`, the
    /// bound on memory taken by input not yet decoded.
    #[serde(default = "default_ingest_hwm")]
    pub ingest_hwm: i32,
    /// Client connections open at once, over all ingest endpoints (default
    /// 1024); more are closed as they arrive. With `ingest_hwm` and
    /// `max_message`, the bound on the broker's ingest memory. A reload
    /// changes it at once (open connections above a lowered cap stay).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Threads that validate, decode and filter (default: 2).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// The broker's own metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// CURVE encryption and client authentication (default: off).
    #[serde(default)]
    pub curve: Option<CurveConfig>,
    /// Processors by name.
    #[serde(default)]
    pub processors: BTreeMap<String, ProcessorConfig>,
    /// Rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Processors for records that match no rule.
    #[serde(default)]
    pub default: Vec<String>,
    /// JetStream durable consumers read like another ingest socket.
    #[serde(default)]
    pub jetstream_inputs: Vec<JetstreamInputConfig>,
}

/// The broker's own metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the Prometheus text endpoint (`GET /metrics`), e.g.
    /// `127.0.0.1:9110`. None: no endpoint.
    #[serde(default)]
    pub listen: Option<String>,
    /// How often the broker routes its metrics as performance records
    /// (kind `P`) through its own rules. `0s` disables them. Default 10s.
    #[serde(default = "default_metrics_interval", with = "units::duration")]
    pub interval: Duration,
    /// System byte of those records (`T`, `S` or `P`). Default `P`.
    #[serde(default = "default_system")]
    pub system: char,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            interval: default_metrics_interval(),
            system: default_system(),
        }
    }
}

/// CURVE on the broker's sockets: ingest always, publish unless
/// `publish: false`. Clients must present a public key on the allow-list
/// (or any key, with `allow_any: true`: encryption without
/// authentication).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveConfig {
    /// The broker's key file (`distlog keygen`); keep it mode 0600.
    pub key_file: PathBuf,
    /// Allowed client public keys (Z85).
    #[serde(default)]
    pub allow: Vec<String>,
    /// A file of allowed client public keys, one per line (`#` comments).
    #[serde(default)]
    pub allow_file: Option<PathBuf>,
    /// Accept any client key (encryption only). Default false.
    #[serde(default)]
    pub allow_any: bool,
    /// Also encrypt the publish sockets (default true).
    #[serde(default = "default_true")]
    pub publish: bool,
}

/// CURVE settings read and checked: the broker's keys and the allow-list.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The broker's key pair.
    pub keys: distlog::curve::KeyPair,
    /// Allowed client public keys; `None`: any.
    pub allow: Option<std::collections::BTreeSet<[u8; 32]>>,
    /// Encrypt publish sockets too.
    pub publish: bool,
}

impl CurveConfig {
    /// Reads the key file and the allow-list.
    pub fn load(&self) -> Result<Curve, String> {
        let keys = distlog::curve::KeyPair::load(&self.key_file).map_err(|e| e.to_string())?;
        let mut text: Vec<(String, String)> = self
            .allow
            .iter()
            .map(|k| (k.clone(), "curve.allow".to_owned()))
            .collect();
        if let Some(f) = &self.allow_file {
            let body = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read allow_file {}: {e}", f.display()))?;
            for (i, line) in body.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    text.push((line.to_owned(), format!("{} line {}", f.display(), i + 1)));
                }
            }
        }
        let mut allow = std::collections::BTreeSet::new();
        for (k, at) in text {
            allow.insert(distlog::curve::decode_key(&k).map_err(|e| format!("{at}: {e}"))?);
        }
        if allow.is_empty() && !self.allow_any {
            return Err(
                "curve: no client keys allowed; list them in `allow` or `allow_file`, or set `allow_any: true`"
                    .into(),
            );
        }
        Ok(Curve {
            keys,
            allow: (!self.allow_any).then_some(allow),
            publish: self.publish,
        })
    }
}

fn default_true() -> bool {
    true
}

/// One rule: a filter and the processors its records go to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name (for metrics); defaults to `rule<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// A filter expression (see `distlog::filter`).
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Processor names.
    pub processors: Vec<String>,
}

/// What a processor does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Wait for room: the broker slows down, ZeroMQ's buffers fill, and
    /// clients drop (and count) when theirs are full. Nothing the broker
    /// took is lost.
    Block,
    /// Drop the batch for this processor and count it; the others carry on.
    Drop,
}

/// A processor's queue between the router and its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Most batches waiting (default 1024).
    #[serde(default = "default_queue_batches")]
    pub batches: usize,
    /// Most bytes waiting (default 64 MiB).
    #[serde(default = "default_queue_bytes", with = "units::size")]
    pub bytes: u64,
    /// When full: `block` or `drop`. Default: `block` for `store`, `drop`
    /// for the others.
    #[serde(default)]
    pub overflow: Option<Overflow>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            batches: default_queue_batches(),
            bytes: default_queue_bytes(),
            overflow: None,
        }
    }
}

/// A processor: its kind and settings, and its queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProcessorConfig {
    /// The embedded segment store.
    Store(StoreConfig),
    /// JSON lines files.
    Jsonl(JsonlConfig),
    /// Coloured text on the terminal.
    Console(ConsoleConfig),
    /// A ZeroMQ PUB socket for live subscribers.
    Publish(PublishConfig),
    /// PUSH to another distlogd.
    Forward(ForwardConfig),
    /// Binary COPY into PostgreSQL.
    Postgres(PostgresConfig),
    /// Publish to a NATS JetStream stream.
    Jetstream(JetstreamConfig),
}

impl ProcessorConfig {
    /// The queue settings.
    pub fn queue(&self) -> QueueConfig {
        match self {
            ProcessorConfig::Store(c) => c.queue,
            ProcessorConfig::Jsonl(c) => c.queue,
            ProcessorConfig::Console(c) => c.queue,
            ProcessorConfig::Publish(c) => c.queue,
            ProcessorConfig::Forward(c) => c.queue,
            ProcessorConfig::Postgres(c) => c.queue,
            ProcessorConfig::Jetstream(c) => c.queue,
        }
    }

    /// The overflow policy, with the kind's default applied.
    pub fn overflow(&self) -> Overflow {
        self.queue().overflow.unwrap_or(match self {
            ProcessorConfig::Store(_) => Overflow::Block,
            _ => Overflow::Drop,
        })
    }

    /// The kind's name, as written after `type:`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessorConfig::Store(_) => "store",
            ProcessorConfig::Jsonl(_) => "jsonl",
            ProcessorConfig::Console(_) => "console",
            ProcessorConfig::Publish(_) => "publish",
            ProcessorConfig::Forward(_) => "forward",
            ProcessorConfig::Postgres(_) => "postgres",
            ProcessorConfig::Jetstream(_) => "jetstream",
        }
    }
}

/// When the store forces its data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch: a machine crash loses nothing stored. Slow.
    Always,
    /// At most `fsync_interval` after a write, on rotation and at shutdown
    /// (the default).
    Interval,
    /// Only on rotation and at shutdown; the OS writes back the rest.
    Never,
}

/// The `store` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the segments; default: the top-level `data_dir`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Rotate when a segment reaches this size (default 64 MiB).
    #[serde(default = "default_segment_size", with = "units::size")]
    pub segment_size: u64,
    /// Rotate when a segment is this old (default 1h).
    #[serde(default = "default_segment_age", with = "units::duration")]
    pub segment_age: Duration,
    /// Delete segments older than this (default: keep).
    #[serde(default, with = "units::duration::option")]
    pub retain_age: Option<Duration>,
    /// Delete the oldest segments while the store is larger (default: keep).
    #[serde(default, with = "units::size::option")]
    pub retain_size: Option<u64>,
    /// When to fsync (default `interval`).
    #[serde(default = "default_fsync")]
    pub fsync: Fsync,
    /// The longest a write waits for `fsync` under `interval` (default 1s).
    #[serde(default = "default_fsync_interval", with = "units::duration")]
    pub fsync_interval: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// The `jsonl` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The file written to; rotated files get `.1`, `.2`, ... (newest
    /// first).
    pub path: PathBuf,
    /// Rotate at this size (default 100 MiB).
    #[serde(default = "default_jsonl_rotate", with = "units::size")]
    pub rotate_size: u64,
    /// Rotated files kept (default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// Where the `console` processor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (default).
    Stderr,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// When the stream is a terminal (default).
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The `console` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `stdout` or `stderr` (default).
    #[serde(default = "default_stream")]
    pub stream: Stream,
    /// `auto` (default), `always`, `never`.
    #[serde(default = "default_colour")]
    pub colour: Colour,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// The `publish` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Endpoint to bind, e.g. `tcp://127.0.0.1:5011`.
    pub endpoint: String,
    /// Messages ZeroMQ keeps per slow subscriber before dropping for it
    /// (ZMQ_SNDHWM, default 1000; a message is one batch, up to 128 KiB from distlog clients by default).
    #[serde(default = "default_hwm")]
    pub hwm: i32,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// CURVE as a client of another broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveClientConfig {
    /// The other broker's public key (Z85).
    pub server_key: String,
    /// This broker's key file, whose public key the other one allows.
    pub key_file: PathBuf,
}

/// The `forward` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The other broker's ingest endpoint, e.g. `tcp://central:5010`.
    pub endpoint: String,
    /// CURVE to the other broker (default: plain).
    #[serde(default)]
    pub curve: Option<CurveClientConfig>,
    /// Messages ZeroMQ keeps while the other broker is away (ZMQ_SNDHWM,
    /// default 1000).
    #[serde(default = "default_hwm")]
    pub hwm: i32,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_listen() -> Vec<String> {
    vec![distlog::DEFAULT_ENDPOINT.to_owned()]
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("distlog-data")
}
fn default_max_message() -> u64 {
    16 << 20
}
fn default_ingest_hwm() -> i32 {
    1000
}
/// Enough for a thousand client processes per broker, and at the usual
/// default `ulimit -n` of 1024 (the broker raises its soft limit to fit).
fn default_max_connections() -> usize {
    1024
}
fn default_workers() -> usize {
    2
}
fn default_metrics_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_system() -> char {
    'P'
}
fn default_filter() -> String {
    "true".to_owned()
}
fn default_queue_batches() -> usize {
    1024
}
fn default_queue_bytes() -> u64 {
    64 << 20
}
fn default_segment_size() -> u64 {
    64 << 20
}
fn default_segment_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_fsync() -> Fsync {
    Fsync::Interval
}
fn default_fsync_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_jsonl_rotate() -> u64 {
    100 << 20
}
fn default_keep() -> u32 {
    5
}
fn default_stream() -> Stream {
    Stream::Stderr
}
fn default_colour() -> Colour {
    Colour::Auto
}
fn default_hwm() -> i32 {
    1000
}

/// Line breaks in `src` as the YAML scanner counts them: `\n`, `\r\n` and
/// a lone `\r`, and also NEL (U+0085), LS (U+2028) and PS (U+2029). A
/// [`ConfigError`]'s line is at most this plus 2 (one past the end).
pub fn yaml_line_breaks(src: &str) -> usize {
    src.replace("\r\n", "\n")
        .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .count()
}

/// A config error, with where it is when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => write!(f, "line {line}, column {col}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A checked configuration: the file's settings with every filter compiled.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The settings.
    pub config: Config,
    /// The compiled filter of each rule, in rule order.
    pub filters: Vec<Filter>,
}

impl Config {
    /// The embedded defaults: listen on the default endpoint, store
    /// everything under `./distlog-data`.
    pub fn embedded() -> Config {
        Config::parse("")
            .expect("the embedded config is valid")
            .config
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Checked, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            at: None,
            message: format!("cannot read config {}: {e}", path.display()),
        })?;
        Config::parse(&src)
    }

    /// Parses and checks config text. An empty text is the embedded
    /// default. When the file names no processors, a `store` processor
    /// under `data_dir` is added and is the default.
    pub fn parse(src: &str) -> Result<Checked, ConfigError> {
        let mut config: Config = if src.trim().is_empty() {
            serde_yaml_ng::from_str("{}")
        } else {
            serde_yaml_ng::from_str(src)
        }
        .map_err(|e| ConfigError {
            at: e.location().map(|l| (l.line(), l.column())),
            message: e.to_string(),
        })?;
        if config.processors.is_empty() && config.rules.is_empty() && config.default.is_empty() {
            let store: ProcessorConfig =
                serde_yaml_ng::from_str("type: store").map_err(|e| ConfigError {
                    at: None,
                    message: e.to_string(),
                })?;
            config.processors.insert("store".to_owned(), store);
            config.default = vec!["store".to_owned()];
        }
        let filters = config.check(src)?;
        Ok(Checked { config, filters })
    }

    /// Checks a config built or changed in code (command-line overrides)
    /// and compiles its filters.
    pub fn recheck(mut self) -> Result<Checked, ConfigError> {
        let filters = self.check("")?;
        Ok(Checked {
            config: self,
            filters,
        })
    }

    /// The broker's own checks, beyond what the types say.
    fn check(&mut self, src: &str) -> Result<Vec<Filter>, ConfigError> {
        let err = |needle: &str, message: String| ConfigError {
            at: locate(src, needle, 0),
            message,
        };
        if self.listen.is_empty() {
            return Err(err("listen", "listen: give at least one endpoint".into()));
        }
        if self.ingest_hwm < 1 {
            return Err(err("ingest_hwm", "ingest_hwm: at least 1".into()));
        }
        if self.max_connections < 1 {
            return Err(err(
                "max_connections",
                "max_connections: at least 1 (it caps client connections over all ingest endpoints)"
                    .into(),
            ));
        }
        if self.workers == 0 || self.workers > 64 {
            return Err(err("workers", "workers: between 1 and 64".into()));
        }
        if !matches!(self.metrics.system, 'T' | 'S' | 'P') {
            return Err(err("system", "metrics.system: one of T, S, P".into()));
        }
        if self.max_message < 1024 {
            return Err(err("max_message", "max_message: at least 1KiB".into()));
        }
        for (name, p) in &self.processors {
            let q = p.queue();
            if q.batches == 0 || q.bytes == 0 {
                return Err(err(
                    name,
                    format!("processor {name:?}: queue batches and bytes must be above 0"),
                ));
            }
            if let ProcessorConfig::Store(s) = p {
                if s.segment_size < 4096 {
                    return Err(err(
                        "segment_size",
                        format!("processor {name:?}: segment_size at least 4KiB"),
                    ));
                }
            }
            let remote = match p {
                ProcessorConfig::Postgres(c) => remote::check_postgres(name, c),
                ProcessorConfig::Jetstream(c) => remote::check_jetstream(name, c),
                _ => Ok(()),
            };
            remote.map_err(|m| err(name, m))?;
            if let ProcessorConfig::Jsonl(j) = p {
                if j.path.file_name().is_none() {
                    return Err(err(
                        &j.path.to_string_lossy(),
                        format!("processor {name:?}: path must name a file"),
                    ));
                }
            }
        }
        if let Some(c) = &self.curve {
            if c.allow_any && (!c.allow.is_empty() || c.allow_file.is_some()) {
                return Err(err(
                    "allow_any",
                    "curve: `allow_any: true` lets every key in, so the `allow`/`allow_file` list beside it would do nothing; remove one of them".into(),
                ));
            }
            c.load().map_err(|e| err("curve", e))?;
        }
        for (name, p) in &self.processors {
            if let ProcessorConfig::Forward(ForwardConfig { curve: Some(c), .. }) = p {
                distlog::curve::decode_key(&c.server_key)
                    .and_then(|_| distlog::curve::KeyPair::load(&c.key_file))
                    .map_err(|e| err(name, format!("processor {name:?}: curve: {e}")))?;
            }
        }
        for (i, c) in self.jetstream_inputs.iter().enumerate() {
            remote::check_input(i, c).map_err(|m| err("jetstream_inputs", m))?;
        }
        let mut filters = Vec::with_capacity(self.rules.len());
        let mut search_from = src.find("rules:").unwrap_or(0);
        for (i, rule) in self.rules.iter_mut().enumerate() {
            rule.name.get_or_insert_with(|| format!("rule{i}"));
        }
        for rule in &self.rules {
            let name = rule.name.clone().unwrap_or_default();
            let filter_at = find_key(src, "filter", search_from);
            let filter = Filter::parse(&rule.filter).map_err(|e| {
                let at = filter_at.map(|(off, line, col)| {
                    // Point inside the filter text when it is on the key's line.
                    let value_col = value_column(src, off).unwrap_or(col);
                    if e.line() == 1 {
                        (line, value_col + e.column() - 1)
                    } else {
                        (line + e.line() - 1, e.column())
                    }
                });
                ConfigError {
                    at,
                    message: format!("rule {name:?}: filter does not compile: {}", e.message()),
                }
            })?;
            if let Some((off, _, _)) = filter_at {
                search_from = off + 1;
            }
            filters.push(filter);
            if rule.processors.is_empty() {
                return Err(err(
                    &name,
                    format!("rule {name:?}: list at least one processor"),
                ));
            }
            for p in &rule.processors {
                if !self.processors.contains_key(p) {
                    return Err(ConfigError {
                        at: locate(src, p, src.find("rules:").unwrap_or(0)),
                        message: format!(
                            "rule {name:?}: no processor named {p:?} (processors: {})",
                            self.processor_names()
                        ),
                    });
                }
            }
        }
        for p in &self.default {
            if !self.processors.contains_key(p) {
                return Err(ConfigError {
                    at: locate(src, p, src.find("default:").unwrap_or(0)),
                    message: format!(
                        "default: no processor named {p:?} (processors: {})",
                        self.processor_names()
                    ),
                });
            }
        }
        if self.rules.is_empty() && self.default.is_empty() {
            return Err(err(
                "processors",
                "no rules and no default: every record would be dropped; add `default: [<processor>]`".into(),
            ));
        }
        let mut binds: Vec<&str> = self
            .listen
            .iter()
            .chain(&self.ack_listen)
            .map(String::as_str)
            .collect();
        for p in self.processors.values() {
            if let ProcessorConfig::Publish(c) = p {
                binds.push(&c.endpoint);
            }
        }
        for (i, a) in binds.iter().enumerate() {
            if binds[..i].contains(a) {
                return Err(err(a, format!("endpoint {a:?} is bound twice")));
            }
        }
        Ok(filters)
    }

    fn processor_names(&self) -> String {
        if self.processors.is_empty() {
            return "none defined".into();
        }
        self.processors
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The directory a store processor writes to.
    pub fn store_dir(&self, store: &StoreConfig) -> PathBuf {
        store.dir.clone().unwrap_or_else(|| self.data_dir.clone())
    }
}

/// Line and column (1-based) of the first `needle` at or after byte `from`.
fn locate(src: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let off = src.get(from..)?.find(needle)? + from;
    Some(line_col(src, off))
}

/// Byte offset, line and column of the next `key:` at or after `from`.
fn find_key(src: &str, key: &str, from: usize) -> Option<(usize, usize, usize)> {
    let pat = format!("{key}:");
    let mut at = from;
    while let Some(i) = src.get(at..)?.find(&pat) {
        let off = at + i;
        let before = src[..off].chars().next_back();
        if matches!(before, None | Some(' ' | '\n' | '\t' | '{' | ',' | '-')) {
            let (l, c) = line_col(src, off);
            return Some((off, l, c));
        }
        at = off + pat.len();
    }
    None
}

/// The column where the value after `key:` at `off` starts (after spaces
/// and an opening quote).
fn value_column(src: &str, off: usize) -> Option<usize> {
    let colon = off + src[off..].find(':')? + 1;
    let rest = &src[colon..];
    let skip = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let mut v = colon + skip;
    if src[v..].starts_with(['"', '\'']) {
        v += 1;
    }
    Some(line_col(src, v).1)
}

fn line_col(src: &str, off: usize) -> (usize, usize) {
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_any_beside_an_allow_list_is_an_error_at_its_line() {
        let src = "curve:\n  key_file: /nonexistent.key\n  allow: [\"k\"]\n  allow_any: true\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("allow_any"), "{e}");
        assert_eq!(e.at, Some((4, 3)), "{e}");
    }

    #[test]
    fn embedded_default_stores_everything() {
        let c = Config::embedded();
        assert_eq!(c.listen, vec!["tcp://127.0.0.1:5010"]);
        assert_eq!(c.default, vec!["store"]);
        assert!(matches!(c.processors["store"], ProcessorConfig::Store(_)));
        assert_eq!(c.processors["store"].overflow(), Overflow::Block);
    }

    #[test]
    fn full_config_parses() {
        let src = include_str!("../../distlogd.example.yaml");
        let c = Config::parse(src).unwrap();
        assert_eq!(c.filters.len(), c.config.rules.len());
        assert!(c.config.processors.len() >= 4);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Config::parse("listen: [tcp://a:1]\nworkers: many\n").unwrap_err();
        assert_eq!(e.at.map(|a| a.0), Some(2), "{e}");

        let src = "processors:\n  s: {type: store}\nrules:\n  - filter: level >= warn\n    processors: [s]\n  - filter: level >= bogus\n    processors: [s]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("rule1"), "{e}");
        // `bogus` starts at column 22 of line 6.
        assert_eq!(e.at, Some((6, 22)), "{e}");

        let src = "processors:\n  s: {type: store}\nrules:\n  - processors: [s, nope]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("\"nope\""), "{e}");
        assert_eq!(e.at, Some((4, 21)), "{e}");

        let e = Config::parse("processors:\n  s: {type: stroe}\ndefault: [s]\n").unwrap_err();
        assert!(e.message.contains("stroe"), "{e}");
        assert!(e.at.is_some(), "{e}");

        let e = Config::parse("processors:\n  s: {type: store, segmnet_size: 1}\ndefault: [s]\n")
            .unwrap_err();
        assert!(e.message.contains("segmnet_size"), "{e}");

        let e = Config::parse("processors:\n  s: {type: store}\n").unwrap_err();
        assert!(e.message.contains("every record would be dropped"), "{e}");
    }

    #[test]
    fn sizes_and_durations_in_config() {
        let src = "processors:\n  s: {type: store, segment_size: 1MiB, retain_age: 2h, queue: {batches: 8, overflow: drop}}\ndefault: [s]\n";
        let c = Config::parse(src).unwrap().config;
        let ProcessorConfig::Store(s) = &c.processors["s"] else {
            panic!()
        };
        assert_eq!(s.segment_size, 1 << 20);
        assert_eq!(s.retain_age, Some(Duration::from_secs(7200)));
        assert_eq!(c.processors["s"].overflow(), Overflow::Drop);
        assert_eq!(c.processors["s"].queue().batches, 8);
    }
}
