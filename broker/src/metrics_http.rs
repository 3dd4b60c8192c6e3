//! The Prometheus endpoint (`GET /metrics`): a bounded HTTP/1 responder.
//!
//! Anyone who can reach the address can connect, so every connection has a
//! fixed cost whatever it sends:
//!
//! - one accept thread and [`WORKERS`] responder threads, whatever the
//!   number of connections; at most [`QUEUED`] accepted connections wait
//!   for a responder, more are closed at once (`metrics_http_busy`);
//! - the request head is read into a [`MAX_HEAD`]-byte buffer and parsed
//!   by `httparse` with at most [`MAX_HEADERS`] headers; a longer head is
//!   answered 431 and closed (`metrics_http_head_too_large`), a malformed
//!   one 400 (`metrics_http_bad_request`);
//! - reading the head may take [`HEAD_DEADLINE`] in all (a client sending
//!   a byte at a time included), each write [`WRITE_TIMEOUT`]; past either
//!   the connection is closed (`metrics_http_timeout`);
//! - one response per connection (`Connection: close`): pipelined requests
//!   from a client that never reads cost nothing more.
//!
//! Refusals are counted by reason in `distlogd_rejected_total`.

use crate::metrics::Metrics;
use crossbeam_channel::{bounded, TrySendError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Responder threads.
pub const WORKERS: usize = 2;
/// Accepted connections waiting for a responder.
pub const QUEUED: usize = 8;
/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most request headers parsed.
pub const MAX_HEADERS: usize = 32;
/// Time allowed to read a whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// Time allowed for each write of the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `GET /metrics` on `addr` until the process exits.
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| std::io::Error::other(format!("cannot serve metrics on {addr}: {e}")))?;
    let (tx, rx) = bounded::<TcpStream>(QUEUED);
    for i in 0..WORKERS {
        let (rx, metrics) = (rx.clone(), metrics.clone());
        std::thread::Builder::new()
            .name(format!("metrics-http-{i}"))
            .spawn(move || {
                for conn in rx {
                    if let Err(reason) = respond(conn, &metrics) {
                        metrics.reject(reason);
                    }
                }
            })?;
    }
    std::thread::Builder::new()
        .name("metrics-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if let Err(TrySendError::Full(_)) = tx.try_send(conn) {
                    metrics.reject("metrics_http_busy");
                }
            }
        })?;
    Ok(())
}

/// Reads one request head and answers it; the reason when refused.
fn respond(mut conn: TcpStream, metrics: &Metrics) -> Result<(), &'static str> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = [0u8; MAX_HEAD];
    let mut len = 0;
    let path = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("metrics_http_timeout");
        }
        let _ = conn.set_read_timeout(Some(left));
        let n = match conn.read(&mut buf[len..]) {
            Ok(0) => return Ok(()), // closed before a whole request
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("metrics_http_timeout")
            }
            Err(_) => return Ok(()),
        };
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => break req.path.unwrap_or("").to_owned(),
            Ok(httparse::Status::Partial) if len < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                let _ = reply(
                    &mut conn,
                    "431 Request Header Fields Too Large",
                    "request head too large\n",
                );
                return Err("metrics_http_head_too_large");
            }
            Err(_) => {
                let _ = reply(&mut conn, "400 Bad Request", "bad request\n");
                return Err("metrics_http_bad_request");
            }
        }
    };
    let sent = if path == "/metrics" || path == "/" {
        reply(&mut conn, "200 OK", &metrics.prometheus())
    } else {
        reply(&mut conn, "404 Not Found", "not found: try /metrics\n")
    };
    sent.map_err(|_| "metrics_http_timeout")
}

fn reply(conn: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}
