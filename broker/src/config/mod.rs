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
//! This module holds the file's top level (listening, metrics, rules) and
//! the parts every section shares: [`units`] (sizes, durations),
//! [`curve`] (the broker's CURVE keys), [`spans`] (where each setting is
//! written). Each processor's section is its own: its settings type,
//! defaults and check live beside the processor, in
//! `processor/<type>.rs` (see [`crate::processor`] for what adding one
//! touches).
//!
//! [`Config::parse`] reports errors with the line and column they are at:
//! syntax and type errors from the YAML deserializer, and the broker's own
//! checks (filters that do not compile, rules naming processors that do
//! not exist, a processor's [`Settings::check`](crate::processor::Settings::check))
//! at the setting they name, placed by [`spans`] from the YAML parser's
//! events.

pub mod curve;
pub mod jetstream_input;
pub mod spans;
pub mod units;

pub use crate::processor::ProcessorConfig;
pub use curve::{Curve, CurveConfig};
pub use jetstream_input::JetstreamInputConfig;

use crate::processor::{store::StoreConfig, Shared};
use distlog_filter::Filter;
use serde::Deserialize;
use spans::{At, Spans};
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
    /// The kernel's receive buffer per ingest connection (ZMQ_RCVBUF, so
    /// SO_RCVBUF; the kernel caps it at `net.core.rmem_max` and doubles
    /// it for its bookkeeping). Default 4 MiB; `0` leaves it to the
    /// kernel's autotuning (`net.ipv4.tcp_rmem`). A fixed buffer this
    /// size keeps a streaming client's window open, so its sends are
    /// processed in its own context rather than in the broker's receive:
    /// 13% less CPU in ZeroMQ's I/O thread than autotuning on loopback
    /// (PERFORMANCE.md, "the broker's ingest threads").
    #[serde(default = "default_ingest_rcvbuf", with = "units::size")]
    pub ingest_rcvbuf: u64,
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

/// One rule: a filter and the processors its records go to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name (for metrics); defaults to `rule<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// A filter expression (see `distlog_filter`).
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Processor names.
    pub processors: Vec<String>,
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
fn default_ingest_rcvbuf() -> u64 {
    4 << 20
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
        let filters = config.check().map_err(|r| r.place(&Spans::of(src)))?;
        Ok(Checked { config, filters })
    }

    /// Checks a config built or changed in code (command-line overrides)
    /// and compiles its filters.
    pub fn recheck(mut self) -> Result<Checked, ConfigError> {
        let filters = self.check().map_err(|r| r.place(&Spans::default()))?;
        Ok(Checked {
            config: self,
            filters,
        })
    }

    /// The broker's own checks, beyond what the types say: the first
    /// problem, and the setting it is about.
    fn check(&mut self) -> Result<Vec<Filter>, Refusal> {
        let refuse = |at: At, message: &str| Err(Refusal::new(at, message));
        if self.listen.is_empty() {
            return refuse(At::key("listen"), "listen: give at least one endpoint");
        }
        if self.ingest_hwm < 1 {
            return refuse(At::key("ingest_hwm"), "ingest_hwm: at least 1");
        }
        if self.ingest_rcvbuf > i32::MAX as u64 {
            return refuse(
                At::key("ingest_rcvbuf"),
                "ingest_rcvbuf: at most 2GiB (the kernel caps it at net.core.rmem_max anyway); 0 for the kernel's autotuning",
            );
        }
        if self.max_connections < 1 {
            return refuse(
                At::key("max_connections"),
                "max_connections: at least 1 (it caps client connections over all ingest endpoints)",
            );
        }
        if self.workers == 0 || self.workers > 64 {
            return refuse(At::key("workers"), "workers: between 1 and 64");
        }
        if !matches!(self.metrics.system, 'T' | 'S' | 'P') {
            return refuse(
                At::key("metrics").then("system"),
                "metrics.system: one of T, S, P",
            );
        }
        if self.max_message < 1024 {
            return refuse(At::key("max_message"), "max_message: at least 1KiB");
        }
        for (name, p) in &self.processors {
            p.check().map_err(|e| {
                Refusal::new(
                    At::key("processors").then(name).then(e.key),
                    format!("processor {name:?}: {}", e.message),
                )
            })?;
        }
        if let Some(c) = &self.curve {
            if c.allow_any && (!c.allow.is_empty() || c.allow_file.is_some()) {
                return refuse(
                    At::key("curve").then("allow_any"),
                    "curve: `allow_any: true` lets every key in, so the `allow`/`allow_file` list beside it would do nothing; remove one of them",
                );
            }
            c.load().map_err(|e| Refusal::new(At::key("curve"), e))?;
        }
        for (i, c) in self.jetstream_inputs.iter().enumerate() {
            c.check().map_err(|e| {
                Refusal::new(
                    At::key("jetstream_inputs").item(i).then(e.key),
                    format!("jetstream_inputs[{i}]: {}", e.message),
                )
            })?;
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            rule.name.get_or_insert_with(|| format!("rule{i}"));
        }
        let mut filters = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let name = rule.name.as_deref().unwrap_or_default();
            let at = At::key("rules").item(i);
            let filter = Filter::parse(&rule.filter).map_err(|e| {
                Refusal::new(
                    at.clone().then("filter").inside(e.line(), e.column()),
                    format!("rule {name:?}: filter does not compile: {}", e.message()),
                )
            })?;
            filters.push(filter);
            if rule.processors.is_empty() {
                return Err(Refusal::new(
                    at.then("processors"),
                    format!("rule {name:?}: list at least one processor"),
                ));
            }
            for (j, p) in rule.processors.iter().enumerate() {
                if !self.processors.contains_key(p) {
                    return Err(Refusal::new(
                        at.then("processors").item(j),
                        format!(
                            "rule {name:?}: no processor named {p:?} (processors: {})",
                            self.processor_names()
                        ),
                    ));
                }
            }
        }
        for (j, p) in self.default.iter().enumerate() {
            if !self.processors.contains_key(p) {
                return Err(Refusal::new(
                    At::key("default").item(j),
                    format!(
                        "default: no processor named {p:?} (processors: {})",
                        self.processor_names()
                    ),
                ));
            }
        }
        if self.rules.is_empty() && self.default.is_empty() {
            return refuse(
                At::key("processors"),
                "no rules and no default: every record would be dropped; add `default: [<processor>]`",
            );
        }
        let listen = self
            .listen
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), At::key("listen").item(i)));
        let ack = self
            .ack_listen
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), At::key("ack_listen").item(i)));
        let processors = self.processors.iter().filter_map(|(name, p)| {
            let a = p.settings().endpoint()?;
            Some((a, At::key("processors").then(name).then("endpoint").value()))
        });
        let mut binds: Vec<(&str, At)> = Vec::new();
        for (a, at) in listen.chain(ack).chain(processors) {
            if let Some((_, first)) = binds.iter().find(|(b, _)| *b == a) {
                // Processors are in name order, not the file's: the error
                // points at whichever of the two the file has later.
                let message = format!("endpoint {a:?} is bound twice");
                return Err(Refusal::new(at, message).or_later(first.clone()));
            }
            binds.push((a, at));
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
        store.dir_in(&self.data_dir)
    }
}

/// What a check refuses, and the setting it is about.
#[derive(Debug)]
struct Refusal {
    /// The setting; or two that clash, of which the error points at the
    /// one written later.
    at: Vec<At>,
    message: String,
}

impl Refusal {
    fn new(at: At, message: impl Into<String>) -> Refusal {
        Refusal {
            at: vec![at],
            message: message.into(),
        }
    }

    fn or_later(mut self, other: At) -> Refusal {
        self.at.push(other);
        self
    }

    /// The error, placed in the text `spans` index.
    fn place(self, spans: &Spans) -> ConfigError {
        ConfigError {
            at: self.at.iter().filter_map(|at| spans.locate(at)).max(),
            message: self.message,
        }
    }
}

impl<'a> From<&'a Config> for Shared<'a> {
    fn from(c: &'a Config) -> Shared<'a> {
        Shared {
            data_dir: &c.data_dir,
            curve: c.curve.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::Overflow;

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
    fn ingest_rcvbuf_defaults_to_4mib_takes_0_for_autotuning_and_is_bounded() {
        assert_eq!(Config::parse("").unwrap().config.ingest_rcvbuf, 4 << 20);
        let c = Config::parse("ingest_rcvbuf: 0\n").unwrap().config;
        assert_eq!(c.ingest_rcvbuf, 0);
        let e = Config::parse("ingest_rcvbuf: 3GiB\n").unwrap_err();
        assert!(e.message.contains("ingest_rcvbuf"), "{e}");
        assert_eq!(e.at.map(|a| a.0), Some(1), "{e}");
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

    /// Errors point at the setting they are about, found by its path in
    /// the document, not at the first place its text occurs.
    #[test]
    fn errors_point_at_the_occurrence_they_are_about() {
        // The unknown processor's name is also an earlier rule's name.
        let src = "processors:\n  s: {type: store}\nrules:\n  - name: nope\n    processors: [s]\n  - processors: [nope]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("no processor named \"nope\""), "{e}");
        assert_eq!(e.at, Some((6, 18)), "{e}");

        // The second rule's filter fails; the first has the same key.
        let src = "processors:\n  s: {type: store}\nrules:\n  - {filter: \"level >= warn\", processors: [s]}\n  - {filter: \"level >= nope\", processors: [s]}\n";
        let e = Config::parse(src).unwrap_err();
        assert_eq!(e.at, Some((5, 24)), "{e}");

        // An endpoint bound twice: the error is at the second binding.
        let src = "listen: [tcp://127.0.0.1:5010]\nprocessors:\n  s: {type: store}\n  live: {type: publish, endpoint: tcp://127.0.0.1:5010}\ndefault: [s]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("bound twice"), "{e}");
        assert_eq!(e.at, Some((4, 35)), "{e}");
        // Two publish processors: processors are checked in name order,
        // and the file's later one is still the one pointed at.
        let src = "processors:\n  zz: {type: publish, endpoint: tcp://127.0.0.1:5011}\n  aa: {type: publish, endpoint: tcp://127.0.0.1:5011}\ndefault: [zz]\n";
        let e = Config::parse(src).unwrap_err();
        assert_eq!(e.at, Some((3, 33)), "{e}");

        // A processor setting: at its key inside that processor, though
        // another processor has the same key (and the name `s` is in
        // `processors`).
        let src = "processors:\n  t: {type: store, segment_size: 1MiB}\n  s: {type: store, segment_size: 1}\ndefault: [s]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("segment_size at least 4KiB"), "{e}");
        assert_eq!(e.at, Some((3, 20)), "{e}");
        let src = "processors:\n  s:\n    type: store\n    queue: {batches: 0}\ndefault: [s]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("queue batches and bytes"), "{e}");
        assert_eq!(e.at, Some((4, 13)), "{e}");
        // A setting left to its default: at the processor.
        let src =
            "processors:\n  db: {type: postgres, url: \"host=h\", batch: 300000}\ndefault: [db]\n";
        let e = Config::parse(src).unwrap_err();
        assert!(e.message.contains("buffer at least batch"), "{e}");
        assert_eq!(e.at, Some((2, 3)), "{e}");
    }

    /// Every kind's `type:` is its module's name, which is what
    /// [`ProcessorConfig::kind`] says.
    #[test]
    fn kinds_are_named_as_written() {
        for kind in crate::processor::KINDS {
            let e = serde_yaml_ng::from_str::<ProcessorConfig>(&format!("type: {kind}"));
            match e {
                Ok(p) => assert_eq!(p.kind(), *kind),
                // Its required settings are missing, but the kind is known.
                Err(e) => assert!(e.to_string().contains("missing field"), "{kind}: {e}"),
            }
        }
    }

    #[test]
    fn postgres_jetstream_and_inputs_parse_and_are_checked() {
        let src = "processors:\n  db: {type: postgres, url: \"host=h user=u dbname=d\", batch: 100, buffer: 1000}\n  js: {type: jetstream, url: \"nats://h:4222\"}\ndefault: [db, js]\njetstream_inputs:\n  - {url: \"nats://h:4222\", consumer: central}\n";
        let c = Config::parse(src).unwrap().config;
        let ProcessorConfig::Postgres(p) = &c.processors["db"] else {
            panic!("not postgres")
        };
        assert_eq!((p.batch, p.buffer), (100, 1000));
        let ProcessorConfig::Jetstream(j) = &c.processors["js"] else {
            panic!("not jetstream")
        };
        assert_eq!(
            (j.stream.as_str(), j.subject_prefix.as_str()),
            ("DISTLOG", "distlog")
        );
        assert_eq!(c.processors["db"].kind(), "postgres");
        assert_eq!(c.jetstream_inputs[0].stream, "DISTLOG");
        assert_eq!(c.jetstream_inputs[0].fetch, 256);

        for (bad, says) in [
            ("processors:\n  db: {type: postgres, url: \"host=h\", batch: 10, buffer: 5}\ndefault: [db]\n", "buffer at least batch"),
            ("processors:\n  db: {type: postgres, url: \"postgresql://h:notaport/d\"}\ndefault: [db]\n", "bad url"),
            ("processors:\n  js: {type: jetstream, url: \"nats://h\", stream: \"a.b\"}\ndefault: [js]\n", "stream and subject_prefix"),
            ("processors:\n  s: {type: store}\ndefault: [s]\njetstream_inputs: [{url: \"nats://h\", consumer: \"x y\"}]\n", "jetstream_inputs[0]"),
            ("processors:\n  s: {type: store}\ndefault: [s]\njetstream_inputs: [{url: \"nats://h\"}]\n", "consumer"),
        ] {
            let e = Config::parse(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }
}
