//! The one thread watching the ingest sockets, through ZeroMQ's socket
//! monitor: failed handshakes are counted by reason ([`crate::handshakes`]),
//! and accepted and closed connections kept under `max_connections`
//! ([`crate::connections`]).
//!
//! Invariants: every socket is monitored before it binds, so no connection
//! or handshake goes unseen; each wake reads every event queued on every
//! monitor, in order (libzmq blocks its I/O thread rather than drop an event
//! when a monitor's queue is full, so the queue on this side is unbounded
//! and drained promptly instead).

use crate::connections::{Connections, Local};
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use zmq::SocketEvent;

/// Monitors attached to the ingest sockets, not yet read.
pub struct Watch {
    monitors: Vec<zmq::Socket>,
}

/// Attaches a monitor to each of `sockets` (call before they bind).
pub fn watch(ctx: &zmq::Context, sockets: &[zmq::Socket]) -> Result<Watch, String> {
    let events = SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
        | SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
        | SocketEvent::ACCEPTED as i32
        | SocketEvent::DISCONNECTED as i32;
    let mut monitors = Vec::new();
    for (i, s) in sockets.iter().enumerate() {
        let addr = format!("inproc://distlogd-ingest-monitor-{i}");
        s.monitor(&addr, events)
            .map_err(|e| format!("cannot monitor an ingest socket: {e}"))?;
        let m = ctx.socket(zmq::PAIR).map_err(|e| e.to_string())?;
        m.set_linger(0).map_err(|e| e.to_string())?;
        // Unbounded here, so that libzmq's I/O thread never waits on this
        // thread (see the invariants).
        m.set_rcvhwm(0).map_err(|e| e.to_string())?;
        m.connect(&addr).map_err(|e| e.to_string())?;
        monitors.push(m);
    }
    Ok(Watch { monitors })
}

impl Watch {
    /// Reads the monitors on a thread until `stop`. `locals` are the
    /// sockets' bound addresses (in the same order), `curve` whether they
    /// are CURVE servers, `max` the connection cap (changed by reloads).
    pub fn start(
        self,
        locals: Vec<Local>,
        curve: bool,
        max: Arc<AtomicUsize>,
        metrics: Arc<Metrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<JoinHandle<()>, String> {
        let monitors = self.monitors;
        std::thread::Builder::new()
            .name("ingest-monitor".into())
            .spawn(move || {
                let mut conns = Connections::new(locals, max, metrics.clone());
                // Per monitor: an aborted handshake read last, waiting one
                // wake for the event after it (see `handle`).
                let mut held: Vec<Option<u32>> = vec![None; monitors.len()];
                while !stop.load(Ordering::Acquire) {
                    let mut items: Vec<_> = monitors
                        .iter()
                        .map(|m| m.as_poll_item(zmq::POLLIN))
                        .collect();
                    let _ = zmq::poll(&mut items, 100);
                    for (i, m) in monitors.iter().enumerate() {
                        let mut events = Vec::new();
                        while let Some(e) = distlog_core::wire::recv_monitor_event(m) {
                            events.push(e);
                        }
                        held[i] = handle(i, held[i].take(), &events, &mut conns, curve, &metrics);
                    }
                    conns.sweep();
                }
            })
            .map_err(|e| e.to_string())
    }
}

/// Applies the `events` just read from monitor `socket`, after the aborted
/// handshake `held` from the previous wake; returns the one to hold now.
///
/// A connection closed for being over the cap fails its handshake without
/// detail; libzmq reports that right before its disconnection, so an
/// aborted handshake followed by the disconnection of a refused fd is not
/// counted (it is `too_many_connections`). When the aborted handshake is
/// the last event read, it waits one wake (at most 100 ms) for its
/// follower.
fn handle(
    socket: usize,
    held: Option<u32>,
    events: &[(SocketEvent, u32)],
    conns: &mut Connections,
    curve: bool,
    metrics: &Metrics,
) -> Option<u32> {
    let held = held.map(|v| (SocketEvent::HANDSHAKE_FAILED_NO_DETAIL, v));
    let all: Vec<_> = held.into_iter().chain(events.iter().copied()).collect();
    for (k, &(event, value)) in all.iter().enumerate() {
        match event {
            SocketEvent::ACCEPTED => conns.accepted(socket, value as i32),
            SocketEvent::DISCONNECTED => conns.disconnected(socket, value as i32),
            SocketEvent::HANDSHAKE_FAILED_NO_DETAIL => match all.get(k + 1) {
                Some(&(SocketEvent::DISCONNECTED, fd)) if conns.was_refused(socket, fd as i32) => {}
                None if !(k == 0 && held.is_some()) => return Some(value),
                _ => crate::handshakes::failed(event, value, curve, metrics),
            },
            _ => crate::handshakes::failed(event, value, curve, metrics),
        }
    }
    None
}
