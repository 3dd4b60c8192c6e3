//! The ZAP handler (ZeroMQ RFC 27): decides which CURVE clients may
//! connect to the broker's sockets, by their public key.
//!
//! libzmq asks it over `inproc://zeromq.zap.01` in the broker's context
//! for every new CURVE connection; a key not on the allow-list is refused
//! before any message is read, and counted as rejected (`curve_denied`).

use crate::metrics::Metrics;
use parking_lot::RwLock;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The ZAP domain the broker's sockets use.
pub const DOMAIN: &str = "distlog";

/// Who may connect: `None` lets any key in (encryption only).
pub type Allow = Arc<RwLock<Option<BTreeSet<[u8; 32]>>>>;

/// Binds the handler in `ctx` and serves it on a thread until `stop`.
pub fn start(
    ctx: &zmq::Context,
    allow: Allow,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, String> {
    let sock = ctx.socket(zmq::REP).map_err(|e| e.to_string())?;
    sock.set_linger(0).map_err(|e| e.to_string())?;
    sock.bind("inproc://zeromq.zap.01")
        .map_err(|e| format!("cannot bind the ZAP handler: {e}"))?;
    std::thread::Builder::new()
        .name("zap".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
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
        .map_err(|e| e.to_string())
}

/// The reply to one ZAP request.
fn answer(req: &[Vec<u8>], allow: &Option<BTreeSet<[u8; 32]>>, metrics: &Metrics) -> Vec<Vec<u8>> {
    let id = req.get(1).cloned().unwrap_or_default();
    let reply = |code: &str, text: &str| {
        vec![
            b"1.0".to_vec(),
            id.clone(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            Vec::new(),
            Vec::new(),
        ]
    };
    if req.len() < 6 || req[0] != b"1.0" {
        return reply("500", "malformed ZAP request");
    }
    if req[5] != b"CURVE" {
        metrics.reject("curve_denied");
        return reply("400", "CURVE required");
    }
    let key: Option<[u8; 32]> = req.get(6).and_then(|k| k.as_slice().try_into().ok());
    match (key, allow) {
        (Some(_), None) => reply("200", "OK"),
        (Some(k), Some(set)) if set.contains(&k) => reply("200", "OK"),
        _ => {
            metrics.reject("curve_denied");
            reply("400", "client key not allowed")
        }
    }
}
