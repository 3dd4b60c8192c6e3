//! `publish`: a ZeroMQ PUB socket for live subscribers (`distlog tail`).
//!
//! Each message is `[topic, body]`, exactly as on the ingest wire: the
//! 3-byte topic (`PLR`: system, kind, encoding `R`) and a distlog batch
//! body. Subscribers choose by topic prefix (`P` for production, `PL`
//! for its log records, `` for all). A subscriber that stops reading gets
//! up to `hwm` messages queued, then ZeroMQ drops for it alone: the broker
//! never grows without bound and never waits for a subscriber.

use super::{Context, Delivery, Processor};
use crate::config::PublishConfig;
use std::io;

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
        if let Some(cc) = ctx.config.curve.as_ref().filter(|c| c.publish) {
            let keys = cc.load().map_err(io::Error::other)?.keys;
            distlog::curve::set_server(&mut socket, &keys, crate::zap::DOMAIN)
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
