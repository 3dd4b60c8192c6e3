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
//! With the broker's `curve:` settings (and `publish: true`, the default
//! there), the socket is a CURVE server under the same allow-list as the
//! ingest sockets.

use super::delivery::Delivery;
use super::seam::{Context, Processor, QueueConfig, Settings};
use crate::config::curve;
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
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
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
        Ok(Publish { socket })
    }
}

impl Processor for Publish {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let topic = d.topic.bytes();
        for body in d.bodies() {
            // PUB never blocks: past the high-water mark it drops for the
            // slow subscriber.
            self.socket
                .send_multipart([&topic[..], &body[..]], zmq::DONTWAIT)
                .map_err(|e| zmq_err("send", e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
