//! Settings of the parts that reach beyond one machine: the `postgres` and
//! `jetstream` processors, and JetStream inputs.
//!
//! ```yaml
//! processors:
//!   db:
//!     type: postgres
//!     url: "host=127.0.0.1 port=5432 user=distlog dbname=logs"
//!     batch: 5000            # records per COPY
//!     buffer: 200000         # records kept while the database is away
//!   stream:
//!     type: jetstream
//!     url: nats://127.0.0.1:4222
//!     stream: DISTLOG        # created when missing, subjects "<prefix>.>"
//!     subject_prefix: distlog
//! jetstream_inputs:
//!   - url: nats://127.0.0.1:4222
//!     stream: DISTLOG
//!     consumer: central      # durable pull consumer
//! ```

use super::units;
use super::QueueConfig;
use serde::Deserialize;
use std::time::Duration;

/// The `postgres` processor (see `docs/POSTGRES.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style connection string (`host=... user=... dbname=...`) or
    /// URL (`postgresql://user@host:port/db`). No TLS.
    pub url: String,
    /// Records per COPY (default 5000): a batch is written once this many
    /// are buffered, or `flush_interval` after the oldest arrived.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Most records buffered while the database is down or slow (default
    /// 200000). Past it, deliveries are dropped and counted.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Most bytes of batches buffered (default 256 MiB).
    #[serde(default = "default_buffer_bytes", with = "units::size")]
    pub buffer_bytes: u64,
    /// Longest a record waits in the buffer before a write is tried
    /// (default 200ms; checked at least once a second).
    #[serde(default = "default_flush_interval", with = "units::duration")]
    pub flush_interval: Duration,
    /// Wait between reconnection attempts (default 1s).
    #[serde(default = "default_retry", with = "units::duration")]
    pub retry: Duration,
    /// Connect timeout (default 5s).
    #[serde(default = "default_connect_timeout", with = "units::duration")]
    pub connect_timeout: Duration,
    /// At shutdown, how long to keep trying to write what is buffered
    /// before counting it as dropped (default 10s).
    #[serde(default = "default_shutdown_timeout", with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// The `jetstream` processor (see `docs/JETSTREAM.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamConfig {
    /// NATS server URL(s), comma separated: `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream; created when missing (file storage, subjects
    /// `<subject_prefix>.>`). Default `DISTLOG`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `<prefix>.<system>.<kind>.<host>`. Default `distlog`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Replicas when the stream is created (default 1; 3 on a cluster).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Publishes waiting for their acknowledgement at once (default 256).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// How long a publish waits for its acknowledgement before it is sent
    /// again (default 5s).
    #[serde(default = "default_ack_timeout", with = "units::duration")]
    pub ack_timeout: Duration,
    /// Attempts per batch before it is dropped and counted (default 0:
    /// retry until shutdown; the queue's overflow policy bounds memory).
    #[serde(default)]
    pub max_attempts: u32,
    /// At shutdown, how long to keep trying (default 10s).
    #[serde(default = "default_shutdown_timeout", with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// A JetStream input: a durable pull consumer whose messages go through
/// the same decoding and rules as the ZeroMQ input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamInputConfig {
    /// NATS server URL(s), comma separated.
    pub url: String,
    /// The stream to consume (default `DISTLOG`).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The durable consumer's name: brokers sharing one name share the
    /// work; each name sees every message.
    pub consumer: String,
    /// Only subjects matching this (default: all of the stream's).
    #[serde(default)]
    pub filter_subject: Option<String>,
    /// Messages fetched per pull (default 256).
    #[serde(default = "default_fetch")]
    pub fetch: usize,
    /// Messages handed to the broker but not yet acknowledged, at most
    /// (the consumer's max_ack_pending; default 1024).
    #[serde(default = "default_ack_pending")]
    pub max_ack_pending: i64,
    /// Redelivery after this long without an acknowledgement (default 30s).
    #[serde(default = "default_ack_wait", with = "units::duration")]
    pub ack_wait: Duration,
}

fn default_batch() -> usize {
    5000
}
fn default_buffer() -> usize {
    200_000
}
fn default_buffer_bytes() -> u64 {
    256 << 20
}
fn default_flush_interval() -> Duration {
    Duration::from_millis(200)
}
fn default_retry() -> Duration {
    Duration::from_secs(1)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_stream() -> String {
    "DISTLOG".to_owned()
}
fn default_prefix() -> String {
    "distlog".to_owned()
}
fn default_replicas() -> usize {
    1
}
fn default_in_flight() -> usize {
    256
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_fetch() -> usize {
    256
}
fn default_ack_pending() -> i64 {
    1024
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

/// Checks beyond the types: a message for the first problem.
pub(super) fn check_postgres(name: &str, c: &PostgresConfig) -> Result<(), String> {
    if c.batch == 0 || c.buffer < c.batch {
        return Err(format!(
            "processor {name:?}: batch above 0 and buffer at least batch"
        ));
    }
    c.url
        .parse::<postgres::Config>()
        .map(|_| ())
        .map_err(|e| format!("processor {name:?}: bad url: {e}"))
}

/// Checks a JetStream processor's settings.
pub(super) fn check_jetstream(name: &str, c: &JetstreamConfig) -> Result<(), String> {
    if c.max_in_flight == 0 || c.replicas == 0 {
        return Err(format!(
            "processor {name:?}: max_in_flight and replicas above 0"
        ));
    }
    if !token_ok(&c.stream) || !c.subject_prefix.split('.').all(token_ok) {
        return Err(format!(
            "processor {name:?}: stream and subject_prefix: letters, digits, '-', '_' (prefix tokens separated by '.')"
        ));
    }
    Ok(())
}

/// Checks a JetStream input's settings.
pub(super) fn check_input(i: usize, c: &JetstreamInputConfig) -> Result<(), String> {
    if !token_ok(&c.stream) || !token_ok(&c.consumer) {
        return Err(format!(
            "jetstream_inputs[{i}]: stream and consumer: letters, digits, '-', '_'"
        ));
    }
    if c.fetch == 0 || c.max_ack_pending < 1 {
        return Err(format!(
            "jetstream_inputs[{i}]: fetch and max_ack_pending above 0"
        ));
    }
    Ok(())
}

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ProcessorConfig};

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
