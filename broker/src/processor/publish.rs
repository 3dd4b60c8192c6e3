//! `publish`: a ZeroMQ PUB socket for live subscribers (`distlog tail`).
//!
//! Each message is `[topic, body]`, exactly as on the ingest wire: the
//! 3-byte topic (`PLR`: system, kind, encoding `R`) and a distlog batch
//! body. Subscribers choose by topic prefix (`P` for production, `PL`
//! for its log records, `` for all). A subscriber that stops reading gets
//! up to `hwm` messages queued, then ZeroMQ drops for it alone: the broker
//! never grows without bound and never waits for a subscriber.
//!
//! ```yaml
//! live: { type: publish, endpoint: tcp://127.0.0.1:5011, hwm: 1000 }
//! ```
//!
//! # `format: json`: for consumers in any language
//!
//! With `format: json` each message is one record: `[topic, object]`,
//! where the topic's third letter is `J` (`PLJ`: the encoding letter the
//! ingest wire uses for JSON) and the object is the record with the
//! original Python client's field names, exactly as the `jsonl` processor
//! writes a line (`distlog_filter::render::json_record`). A consumer needs only a
//! ZeroMQ SUB socket and a JSON parser:
//!
//! ```python
//! sub = zmq.Context().socket(zmq.SUB)
//! sub.connect("tcp://127.0.0.1:5012")
//! sub.setsockopt(zmq.SUBSCRIBE, b"PLJ")   # production log records
//! topic, body = sub.recv_multipart()
//! record = json.loads(body)              # record["levelname"], record["message"], ...
//! ```
//!
//! ```yaml
//! live-json: { type: publish, endpoint: tcp://127.0.0.1:5012, format: json }
//! ```
//!
//! With the broker's `curve:` settings (and `publish: true`, the default
//! there), the socket is a CURVE server under the same allow-list as the
//! ingest sockets.

use super::delivery::Delivery;
use super::seam::{Context, Processor, QueueConfig, Settings};
use crate::config::curve;
use distlog_core::wire::ENCODING_JSON;
use serde::Deserialize;
use std::io;

/// The `publish` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Endpoint to bind, e.g. `tcp://127.0.0.1:5011` (not one the broker
    /// binds for anything else).
    pub endpoint: String,
    /// Messages ZeroMQ keeps per slow subscriber before dropping for it
    /// (ZMQ_SNDHWM, default 1000; a message is one batch, up to 128 KiB from distlog clients by default).
    #[serde(default = "default_hwm")]
    pub hwm: i32,
    /// `binary` (default: distlog batches, as `distlog tail` reads them)
    /// or `json` (one JSON object per record, topic `<system><kind>J`).
    #[serde(default)]
    pub format: Format,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// What a `publish` socket sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `[topic, batch body]`, as on the ingest wire (default).
    #[default]
    Binary,
    /// `[topic ending in J, one JSON object]` per record.
    Json,
}

/// ZMQ_SNDHWM of `publish` and `forward` sockets unless set.
pub(super) fn default_hwm() -> i32 {
    1000
}

impl Settings for PublishConfig {
    fn endpoint(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Publish::bind(self, ctx)?))
    }
}

/// The PUB socket.
pub struct Publish {
    socket: zmq::Socket,
    format: Format,
    /// The JSON object being sent (reused).
    json: String,
}

fn zmq_err(what: &str, e: zmq::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Publish {
    /// Binds the endpoint.
    pub fn bind(c: &PublishConfig, ctx: &Context<'_>) -> io::Result<Publish> {
        let mut socket = ctx.zmq.socket(zmq::PUB).map_err(|e| zmq_err("socket", e))?;
        socket.set_sndhwm(c.hwm).map_err(|e| zmq_err("sndhwm", e))?;
        socket.set_linger(0).map_err(|e| zmq_err("linger", e))?;
        if let Some(cc) = ctx.shared.curve.filter(|c| c.publish) {
            let keys = cc.load().map_err(io::Error::other)?.keys;
            distlog::curve::set_server(&mut socket, &keys, curve::DOMAIN)
                .map_err(io::Error::other)?;
        }
        socket
            .bind(&c.endpoint)
            .map_err(|e| zmq_err(&format!("cannot bind {}", c.endpoint), e))?;
        Ok(Publish {
            socket,
            format: c.format,
            json: String::new(),
        })
    }
}

impl Processor for Publish {
    // PUB never blocks: past the high-water mark it drops for the slow
    // subscriber.
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        match self.format {
            Format::Binary => {
                let topic = d.topic.bytes();
                for body in d.bodies() {
                    self.socket
                        .send_multipart([&topic[..], &body[..]], zmq::DONTWAIT)
                        .map_err(|e| zmq_err("send", e))?;
                }
            }
            Format::Json => {
                let topic = [d.topic.system, d.topic.kind, ENCODING_JSON];
                let sender = d.batch.get().sender();
                for r in d.records() {
                    self.json.clear();
                    distlog_filter::render::json_record(d.topic.system, sender, r, &mut self.json);
                    self.socket
                        .send_multipart([&topic[..], self.json.as_bytes()], zmq::DONTWAIT)
                        .map_err(|e| zmq_err("send", e))?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
