//! Counting failed handshakes on the ingest sockets, by reason.
//!
//! A client whose handshake fails never gets a message through, so the
//! workers never see it. ZeroMQ's socket monitor on each ingest socket
//! reports those failures ([`crate::monitor`]); this module counts them in the broker's
//! rejection counters (`distlogd_rejected_total{reason=...}`) and warns (at
//! most every 10 s):
//!
//! - `handshake_no_curve`: a client without CURVE at a CURVE broker;
//! - `handshake_unexpected_curve`: a CURVE client at a broker without it;
//! - `handshake_bad_key`: a CURVE hello this broker cannot decrypt (the
//!   client has the wrong server public key);
//! - `handshake_aborted`: the peer went away during the handshake, without
//!   saying why (a client that gave up first, or not a ZeroMQ client);
//! - `handshake_protocol`: another ZMTP protocol error (not a ZeroMQ
//!   client, or a broken one).
//!
//! A client key refused by the allow-list is counted by the ZAP handler,
//! which knows why (`curve_denied`, [`crate::zap`]); its monitor event is
//! not counted again. Nor is the aborted handshake of a connection the
//! broker closed itself for being over `max_connections`
//! (`too_many_connections`, [`crate::connections`]).

use crate::metrics::Metrics;
use crate::warn::RateLimited;
use std::time::Duration;

/// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`: one side uses CURVE, the
/// other does not.
const MECHANISM_MISMATCH: u32 = 0x1100_0002;

/// `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE message that does not
/// decrypt.
const CRYPTOGRAPHIC: u32 = 0x1100_0001;

static WARN: RateLimited = RateLimited::new(Duration::from_secs(10));

/// Counts one failed handshake (a `HANDSHAKE_FAILED_*` monitor event and
/// its value) on an ingest socket; `curve` tells whether the sockets are
/// CURVE servers.
pub fn failed(event: zmq::SocketEvent, value: u32, curve: bool, metrics: &Metrics) {
    let reason = reason(event, value, curve);
    metrics.reject(reason);
    WARN.warn(|| format!("a client's handshake failed ({reason}): {}", advice(reason)));
}

/// The counter reason of a failed handshake.
fn reason(event: zmq::SocketEvent, value: u32, curve: bool) -> &'static str {
    match event {
        zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL if value == MECHANISM_MISMATCH => {
            if curve {
                "handshake_no_curve"
            } else {
                "handshake_unexpected_curve"
            }
        }
        zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL if value == CRYPTOGRAPHIC => {
            "handshake_bad_key"
        }
        zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL => "handshake_aborted",
        _ => "handshake_protocol",
    }
}

fn advice(reason: &str) -> &'static str {
    match reason {
        "handshake_no_curve" => {
            "this broker requires CURVE; give the client DISTLOG_CURVE_SERVER_KEY and DISTLOG_CURVE_KEY_FILE"
        }
        "handshake_unexpected_curve" => {
            "the client uses CURVE and this broker does not; configure curve here or remove it from the client"
        }
        "handshake_bad_key" => {
            "the client's DISTLOG_CURVE_SERVER_KEY is not this broker's public key"
        }
        "handshake_aborted" => "the peer closed the connection during the handshake",
        _ => "the peer may not be a ZeroMQ client of this broker",
    }
}
