//! JetStream inputs: durable pull consumers read like another ingest
//! socket (see `docs/JETSTREAM.md`).
//!
//! ```yaml
//! jetstream_inputs:
//!   - url: nats://127.0.0.1:4222
//!     stream: DISTLOG
//!     consumer: central      # durable pull consumer
//! ```

use super::units;
use crate::processor::jetstream::{check_servers, default_stream, is_nats_name};
use crate::processor::Invalid;
use serde::Deserialize;
use std::time::Duration;

/// A JetStream input: a durable pull consumer whose messages go through
/// the same decoding and rules as the ZeroMQ input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamInputConfig {
    /// NATS server URL(s), comma separated (the nodes of a cluster).
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

fn default_fetch() -> usize {
    256
}
fn default_ack_pending() -> i64 {
    1024
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

impl JetstreamInputConfig {
    /// Checks beyond the types: the first setting that is wrong.
    pub fn check(&self) -> Result<(), Invalid> {
        check_servers(&self.url)?;
        if !is_nats_name(&self.stream) || !is_nats_name(&self.consumer) {
            let key = if is_nats_name(&self.stream) {
                "consumer"
            } else {
                "stream"
            };
            return Err(Invalid::new(
                key,
                "stream and consumer: letters, digits, '-', '_'",
            ));
        }
        if self.fetch == 0 || self.max_ack_pending < 1 {
            let key = if self.fetch == 0 {
                "fetch"
            } else {
                "max_ack_pending"
            };
            return Err(Invalid::new(key, "fetch and max_ack_pending above 0"));
        }
        Ok(())
    }
}
