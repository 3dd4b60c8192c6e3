//! A PULL socket on a free tcp port, decoding every batch on its own thread
//! and counting the application's records (not distlog's own warnings):
//! the receiving end for benches that need delivery confirmed but not the
//! records themselves (`benches/log_call.rs`, the peers' `peer_distlog`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Starts the receiver; returns its endpoint and the running count.
pub fn spawn() -> (String, Arc<AtomicU64>) {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    std::thread::spawn(move || {
        let _ctx = ctx;
        while let Ok(frames) = pull.recv_multipart(0) {
            let batch = distlog_core::wire::OwnedBatch::from_body(&frames[1]).unwrap();
            let n = batch
                .get()
                .records()
                .filter(|r| r.target() != "distlog")
                .count();
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    (endpoint, received)
}
