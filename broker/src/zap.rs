//! The ZAP handler (ZeroMQ RFC 27): decides which CURVE clients may
//! connect to the broker's sockets, by their public key.
//!
//! libzmq asks it over `inproc://zeromq.zap.01` in the broker's context
//! for every new CURVE connection; a key not on the allow-list is refused
//! before any message is read, and counted as rejected (`curve_denied`).
//!
//! An accepted client's User-Id is its public key in Z85, so every message
//! it sends carries the key (`zmq_msg_gets("User-Id")`): the broker checks
//! it against the allow-list in force (a reload that removes a key refuses
//! that key's open sessions too) and keys each sender's sequence state by
//! it (see [`peer_key`]).
//!
//! The handler stops last, after every CURVE socket has closed; and those
//! sockets enforce the ZAP domain ([`crate::config::curve::DOMAIN`]), so a client that connects while no
//! handler answers is refused, never let in unauthenticated.

use crate::metrics::Metrics;
use parking_lot::RwLock;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Who may connect: `None` lets any key in (encryption only).
pub type Allow = Arc<RwLock<Option<BTreeSet<[u8; 32]>>>>;

/// The running handler.
pub struct Zap {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Zap {
    /// Stops the handler; call once every CURVE socket is closed.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

/// The client key of a message from a CURVE socket (its User-Id, set by
/// this handler), or `None` on a socket without CURVE.
pub fn peer_key(msg: &mut zmq::Message) -> Option<[u8; 32]> {
    msg.gets("User-Id")
        .and_then(|z85| distlog::curve::decode_key(z85).ok())
}

/// Binds the handler in `ctx` and serves it on a thread until stopped.
pub fn start(ctx: &zmq::Context, allow: Allow, metrics: Arc<Metrics>) -> Result<Zap, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let sock = ctx.socket(zmq::REP).map_err(|e| e.to_string())?;
    sock.set_linger(0).map_err(|e| e.to_string())?;
    sock.bind("inproc://zeromq.zap.01")
        .map_err(|e| format!("cannot bind the ZAP handler: {e}"))?;
    let thread = std::thread::Builder::new()
        .name("zap".into())
        .spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                match sock.poll(zmq::POLLIN, 100) {
                    Ok(n) if n > 0 => {}
                    _ => continue,
                }
                let Ok(req) = sock.recv_multipart(0) else {
                    continue;
                };
                let reply = answer(&req, &allow.read(), &metrics);
                let _ = sock.send_multipart(reply, 0);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(Zap { stop, thread })
}

/// The reply to one ZAP request.
fn answer(req: &[Vec<u8>], allow: &Option<BTreeSet<[u8; 32]>>, metrics: &Metrics) -> Vec<Vec<u8>> {
    let id = req.get(1).cloned().unwrap_or_default();
    let reply = |code: &str, text: &str, user: String| {
        vec![
            b"1.0".to_vec(),
            id.clone(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user.into_bytes(),
            Vec::new(),
        ]
    };
    if req.len() < 6 || req[0] != b"1.0" {
        return reply("500", "malformed ZAP request", String::new());
    }
    if req[5] != b"CURVE" {
        metrics.reject("curve_denied");
        return reply("400", "CURVE required", String::new());
    }
    let key: Option<[u8; 32]> = req.get(6).and_then(|k| k.as_slice().try_into().ok());
    match (key, allow) {
        (Some(k), None) => reply("200", "OK", distlog::curve::encode_key(&k)),
        (Some(k), Some(set)) if set.contains(&k) => {
            reply("200", "OK", distlog::curve::encode_key(&k))
        }
        _ => {
            metrics.reject("curve_denied");
            reply("400", "client key not allowed", String::new())
        }
    }
}
