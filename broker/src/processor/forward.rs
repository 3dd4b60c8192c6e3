//! `forward`: PUSH batches on to another distlogd, unchanged, for fan-in
//! from many nodes. The sender identity and sequence numbers inside each
//! batch travel with it, so the central broker tracks gaps per original
//! sender.
//!
//! While the other broker is away, ZeroMQ keeps up to `hwm` messages; past
//! that, the processor waits (retrying every 100 ms), its queue fills, and
//! its overflow policy (default `drop`, counted) decides. When the broker
//! stops, a forward processor that still cannot send gives up after 5
//! seconds and counts the rest as dropped.
//!
//! ```yaml
//! central:
//!   type: forward
//!   endpoint: tcp://central:5010
//!   curve: { server_key: "<the other broker's public key>", key_file: /etc/distlog/node.key }
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Processor, QueueConfig, Settings};
use serde::Deserialize;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `forward` processor's settings.
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
    #[serde(default = "super::publish::default_hwm")]
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

impl Settings for ForwardConfig {
    /// The CURVE keys decode and the key file reads.
    fn check(&self) -> Result<(), Invalid> {
        let Some(c) = &self.curve else { return Ok(()) };
        distlog::curve::decode_key(&c.server_key)
            .and_then(|_| distlog::curve::KeyPair::load(&c.key_file))
            .map(drop)
            .map_err(|e| Invalid::new("curve", format!("curve: {e}")))
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Forward::connect(self, ctx)?))
    }
}

/// The PUSH socket.
pub struct Forward {
    socket: zmq::Socket,
    closing: Arc<AtomicBool>,
}

fn zmq_err(what: &str, e: zmq::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Forward {
    /// Connects (ZeroMQ connects in the background and reconnects by
    /// itself).
    pub fn connect(c: &ForwardConfig, ctx: &Context<'_>) -> io::Result<Forward> {
        let socket = ctx
            .zmq
            .socket(zmq::PUSH)
            .map_err(|e| zmq_err("socket", e))?;
        socket.set_sndhwm(c.hwm).map_err(|e| zmq_err("sndhwm", e))?;
        socket.set_linger(5000).map_err(|e| zmq_err("linger", e))?;
        socket
            .set_sndtimeo(100)
            .map_err(|e| zmq_err("sndtimeo", e))?;
        if let Some(cc) = &c.curve {
            let server = distlog::curve::decode_key(&cc.server_key).map_err(io::Error::other)?;
            let keys = distlog::curve::KeyPair::load(&cc.key_file).map_err(io::Error::other)?;
            distlog::curve::set_client(&socket, &server, &keys).map_err(io::Error::other)?;
        }
        socket
            .connect(&c.endpoint)
            .map_err(|e| zmq_err(&format!("cannot connect to {}", c.endpoint), e))?;
        Ok(Forward {
            socket,
            closing: ctx.closing.clone(),
        })
    }
}

impl Processor for Forward {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let topic = d.topic.bytes();
        for body in d.bodies() {
            let mut give_up: Option<Instant> = None;
            loop {
                match self.socket.send_multipart([&topic[..], &body[..]], 0) {
                    Ok(()) => break,
                    Err(zmq::Error::EAGAIN) => {
                        if self.closing.load(Ordering::Acquire) {
                            let t = *give_up.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_secs(5) {
                                return Err(io::Error::other(
                                    "the other broker did not take the batch before shutdown",
                                ));
                            }
                        }
                    }
                    Err(e) => return Err(zmq_err("send", e)),
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
