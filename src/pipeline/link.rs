//! The connection to the broker, as ZeroMQ's socket monitor reports it.
//!
//! ZeroMQ never says whether a message reached anyone. Two settings and a
//! monitor make "handed to ZeroMQ" mean "handed to an authenticated peer":
//!
//! - `ZMQ_IMMEDIATE=1` on the PUSH socket: ZeroMQ queues messages only on
//!   connections whose handshake (NULL or CURVE) completed. With no broker,
//!   or a broker that refuses the handshake, every send fails with `EAGAIN`
//!   and the batch stays in the sender's own bounded memory, where it is
//!   counted when it is finally dropped.
//! - The socket monitor (`zmq_socket_monitor` over an `inproc://` PAIR)
//!   tells why: connected, handshake succeeded, handshake failed (no
//!   detail, protocol, authentication), disconnected. [`Link`] keeps the
//!   state and reports each handshake failure cause once on stderr, with
//!   the fix (the application cannot log it: its records are what is not
//!   getting through).
//!
//! Only the sender thread reads the monitor; the state it publishes is one
//! atomic byte, read by [`stats`](crate::stats).

use std::sync::atomic::{AtomicU8, Ordering};

/// The state of the connection to the broker, from [`stats`](crate::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Connection {
    /// No broker has completed a handshake yet (none listening, or still
    /// connecting).
    #[default]
    Connecting,
    /// A broker completed the handshake: batches are being handed to it.
    Connected,
    /// The broker was connected and went away; ZeroMQ keeps reconnecting.
    Disconnected,
    /// The last connection attempt failed its handshake, for this reason
    /// (the message on stderr says how to fix it).
    HandshakeFailed(HandshakeFailure),
}

/// Why a handshake with the broker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The broker requires CURVE and this client has no keys.
    CurveRequired,
    /// This client uses CURVE and the broker does not.
    CurveNotOffered,
    /// The broker refused this client's CURVE key (not on its allow-list).
    KeyRefused,
    /// The CURVE handshake failed without detail: the broker's public key
    /// configured here is not the broker's, or the broker closed the
    /// connection first because it does not use CURVE.
    NoDetail,
    /// Another protocol error (the endpoint may not be a distlog broker).
    Protocol,
    /// The peer closed the connection during the handshake without a
    /// reason: most often a socket type it does not take (an acknowledged
    /// client at a plain `listen` endpoint, or the reverse), or a broker
    /// with `max_connections` connections open.
    ClosedInHandshake,
}

impl HandshakeFailure {
    /// A short name, as used in counters (`handshake_failed` drops are
    /// reported with it).
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFailure::CurveRequired => "curve_required",
            HandshakeFailure::CurveNotOffered => "curve_not_offered",
            HandshakeFailure::KeyRefused => "key_refused",
            HandshakeFailure::NoDetail => "no_detail",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::ClosedInHandshake => "closed_in_handshake",
        }
    }

    /// What went wrong and what to do about it.
    fn advice(self, endpoint: &str) -> String {
        match self {
            HandshakeFailure::CurveRequired => format!(
                "the broker at {endpoint} requires CURVE and this client has no keys: set \
                 DISTLOG_CURVE_SERVER_KEY (the broker's public key) and DISTLOG_CURVE_KEY_FILE \
                 (a `distlog keygen` file whose public key is on the broker's allow-list), or \
                 call .curve(..) on the builder"
            ),
            HandshakeFailure::CurveNotOffered => format!(
                "this client uses CURVE and the broker at {endpoint} does not: configure curve \
                 on the broker, or unset DISTLOG_CURVE_SERVER_KEY and DISTLOG_CURVE_KEY_FILE"
            ),
            HandshakeFailure::KeyRefused => format!(
                "the broker at {endpoint} refused this client's CURVE key: add its public key \
                 to the broker's curve allow-list, or use a key file whose key is on it"
            ),
            HandshakeFailure::NoDetail => format!(
                "the CURVE handshake with {endpoint} failed: check that DISTLOG_CURVE_SERVER_KEY \
                 is the broker's public key (distlogd's key file), and that the broker has \
                 curve configured"
            ),
            HandshakeFailure::Protocol => format!(
                "the handshake with {endpoint} failed with a protocol error: is that endpoint a \
                 distlogd ingest socket?"
            ),
            HandshakeFailure::ClosedInHandshake => format!(
                "{endpoint} closed the connection during the handshake: a client with \
                 acknowledged delivery must use one of the broker's ack_listen endpoints, and \
                 one without it a listen endpoint; or the broker has max_connections open (it \
                 counts too_many_connections) and ZeroMQ keeps retrying"
            ),
        }
    }

    const ALL: [HandshakeFailure; 6] = [
        HandshakeFailure::CurveRequired,
        HandshakeFailure::CurveNotOffered,
        HandshakeFailure::KeyRefused,
        HandshakeFailure::NoDetail,
        HandshakeFailure::Protocol,
        HandshakeFailure::ClosedInHandshake,
    ];

    fn code(self) -> u8 {
        Self::ALL.iter().position(|&f| f == self).unwrap_or(0) as u8 + 4
    }
}

/// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`, the value of a
/// `HANDSHAKE_FAILED_PROTOCOL` event when one side uses CURVE and the other
/// does not.
const MECHANISM_MISMATCH: u32 = 0x1100_0002;

/// The connection state shared with [`stats`](crate::stats): one byte.
#[derive(Debug, Default)]
pub(crate) struct SharedState(AtomicU8);

impl SharedState {
    pub(crate) fn get(&self) -> Connection {
        match self.0.load(Ordering::Relaxed) {
            0 => Connection::Connecting,
            1 => Connection::Connected,
            2 => Connection::Disconnected,
            c => HandshakeFailure::ALL
                .get(usize::from(c) - 4)
                .map_or(Connection::Connecting, |&f| Connection::HandshakeFailed(f)),
        }
    }

    fn set(&self, c: Connection) {
        let code = match c {
            Connection::Connecting => 0,
            Connection::Connected => 1,
            Connection::Disconnected => 2,
            Connection::HandshakeFailed(f) => f.code(),
        };
        self.0.store(code, Ordering::Relaxed);
    }
}

/// The monitor of the sender's socket.
pub(crate) struct Link {
    monitor: zmq::Socket,
    endpoint: String,
    curve: bool,
    state: Connection,
    /// Causes already reported on stderr.
    reported: Vec<HandshakeFailure>,
    /// A connection was lost since the last handshake.
    lost: bool,
    /// A handshake succeeded after a connection was lost, not yet taken
    /// by [`take_reconnected`](Link::take_reconnected).
    reconnected: bool,
    /// A connection is up and its handshake has not ended yet.
    handshaking: bool,
}

impl Link {
    /// Starts monitoring `socket` (before it connects to `endpoint`).
    /// `curve` tells whether it is a CURVE client.
    pub(crate) fn watch(
        ctx: &zmq::Context,
        socket: &zmq::Socket,
        endpoint: &str,
        curve: bool,
    ) -> Result<Link, zmq::Error> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let addr = format!(
            "inproc://distlog-monitor-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::CONNECTED as i32
            | zmq::SocketEvent::DISCONNECTED as i32
            | zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32;
        socket.monitor(&addr, events)?;
        let monitor = ctx.socket(zmq::PAIR)?;
        monitor.set_linger(0)?;
        monitor.connect(&addr)?;
        Ok(Link {
            monitor,
            endpoint: endpoint.to_owned(),
            curve,
            state: Connection::Connecting,
            reported: Vec::new(),
            lost: false,
            reconnected: false,
            handshaking: false,
        })
    }

    /// The state as of the last [`poll`](Link::poll).
    pub(crate) fn state(&self) -> Connection {
        self.state
    }

    /// Whether a broker completed a handshake after a connection was lost
    /// (once per reconnection): what was in flight on the old connection
    /// may be gone.
    pub(crate) fn take_reconnected(&mut self) -> bool {
        std::mem::take(&mut self.reconnected)
    }

    /// The endpoint watched.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Takes every event the monitor has queued (never waits) and publishes
    /// the resulting state in `shared`.
    pub(crate) fn poll(&mut self, shared: &SharedState) {
        let before = self.state;
        while let Some((event, value)) = self.next_event() {
            self.apply(event, value);
        }
        if self.state != before {
            shared.set(self.state);
        }
    }

    fn next_event(&self) -> Option<(zmq::SocketEvent, u32)> {
        distlog_core::wire::recv_monitor_event(&self.monitor)
    }

    fn apply(&mut self, event: zmq::SocketEvent, value: u32) {
        use zmq::SocketEvent as E;
        if event == E::DISCONNECTED {
            self.lost = true;
            if std::mem::take(&mut self.handshaking) {
                // Closed with no handshake event: a socket type the peer
                // does not take (ZeroMQ reports no reason for that).
                self.state = self.failed(HandshakeFailure::ClosedInHandshake);
                return;
            }
        }
        match event {
            E::CONNECTED => self.handshaking = true,
            E::HANDSHAKE_SUCCEEDED
            | E::HANDSHAKE_FAILED_AUTH
            | E::HANDSHAKE_FAILED_NO_DETAIL
            | E::HANDSHAKE_FAILED_PROTOCOL => self.handshaking = false,
            _ => {}
        }
        if event == E::HANDSHAKE_SUCCEEDED && std::mem::take(&mut self.lost) {
            self.reconnected = true;
        }
        self.state = match event {
            E::HANDSHAKE_SUCCEEDED => Connection::Connected,
            E::DISCONNECTED if self.state == Connection::Connected => Connection::Disconnected,
            E::HANDSHAKE_FAILED_AUTH => self.failed(HandshakeFailure::KeyRefused),
            E::HANDSHAKE_FAILED_NO_DETAIL if self.curve => self.failed(HandshakeFailure::NoDetail),
            // A client without CURVE fails without detail when the broker
            // saw the mechanism mismatch first and closed the connection.
            E::HANDSHAKE_FAILED_NO_DETAIL => self.failed(HandshakeFailure::CurveRequired),
            E::HANDSHAKE_FAILED_PROTOCOL if value == MECHANISM_MISMATCH => {
                self.failed(if self.curve {
                    HandshakeFailure::CurveNotOffered
                } else {
                    HandshakeFailure::CurveRequired
                })
            }
            E::HANDSHAKE_FAILED_PROTOCOL => self.failed(HandshakeFailure::Protocol),
            _ => self.state,
        };
    }

    /// The state after a failed handshake; the first time for a cause, one
    /// line on stderr.
    fn failed(&mut self, why: HandshakeFailure) -> Connection {
        if !self.reported.contains(&why) {
            self.reported.push(why);
            eprintln!(
                "distlog: error: cannot deliver records ({}): {}",
                why.name(),
                why.advice(&self.endpoint)
            );
        }
        Connection::HandshakeFailed(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_state_round_trips_every_value() {
        let s = SharedState::default();
        assert_eq!(s.get(), Connection::Connecting);
        let mut all = vec![
            Connection::Connecting,
            Connection::Connected,
            Connection::Disconnected,
        ];
        all.extend(HandshakeFailure::ALL.map(Connection::HandshakeFailed));
        for c in all {
            s.set(c);
            assert_eq!(s.get(), c);
        }
    }
}
