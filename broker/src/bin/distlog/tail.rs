//! `distlog tail`: live records from a broker's publish socket.
//!
//! The broker publishes two-frame messages `[topic, body]`: the 3-byte topic
//! (`PLR`: system, kind, encoding) and a distlog batch body exactly as on the
//! ingest wire. Subscriptions are topic prefixes. Every batch is validated
//! before it is read (the socket is untrusted); other encodings are skipped.

use crate::out::Out;
use crate::{compile_filter, CliError, Format};
use distlog_core::wire::{OwnedBatch, Topic, ENCODING_BATCH};
use distlog_filter::RecordView;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The broker's default publish endpoint.
pub const DEFAULT_BROKER: &str = "tcp://127.0.0.1:5011";

/// The largest published message taken (bigger ones are dropped by ZeroMQ).
const MAX_MESSAGE: i64 = 64 * 1024 * 1024;

/// Arguments of `distlog tail`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The broker's publish endpoint (distlogd --publish).
    #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BROKER)]
    broker: String,
    /// Only records that pass this filter, e.g. 'level >= warn'.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Subscribe to topics starting with PREFIX only: `P` production, `PL`
    /// production log records, `T` test... (default: everything).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    topic: String,
    /// Give up when the broker cannot be reached within SECS (0: wait
    /// forever).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    connect_timeout: f64,
    /// Do not indent lines by task depth.
    #[arg(long)]
    no_indent: bool,
    /// The broker's CURVE public key (Z85), when its publish socket is
    /// encrypted; needs --curve-key-file.
    #[arg(long, value_name = "KEY", requires = "curve_key_file")]
    curve_server_key: Option<String>,
    /// This subscriber's key pair (`distlog keygen`), allowed by the broker.
    #[arg(long, value_name = "FILE", requires = "curve_server_key")]
    curve_key_file: Option<std::path::PathBuf>,
}

/// Waits until the socket's monitor reports a connection, or the timeout.
fn wait_connected(
    ctx: &zmq::Context,
    monitor: &str,
    timeout: Option<Duration>,
    stop: &AtomicBool,
) -> Result<bool, CliError> {
    let mon = ctx.socket(zmq::PAIR)?;
    mon.connect(monitor)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        match mon.poll(zmq::POLLIN, 100) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let Ok(frames) = mon.recv_multipart(0) else {
            continue;
        };
        let event = frames
            .first()
            .filter(|f| f.len() >= 2)
            .map(|f| u16::from_le_bytes([f[0], f[1]]));
        if event == Some(zmq::SocketEvent::CONNECTED.to_raw()) {
            return Ok(true);
        }
    }
}

/// Where and how to subscribe: `distlog tail`'s connection arguments,
/// shared with the web view's live tail (`ui/live.rs`).
pub struct Subscription<'a> {
    /// The broker's publish endpoint.
    pub broker: &'a str,
    /// Topic prefix subscribed to.
    pub topic: &'a str,
    /// How long to wait for a connection (`None`: forever).
    pub timeout: Option<Duration>,
    /// The broker's CURVE public key and this subscriber's key file.
    pub curve: Option<(&'a str, &'a std::path::Path)>,
}

/// What one receive brought.
pub enum Received {
    /// A valid batch of the given system.
    Batch(u8, OwnedBatch),
    /// Nothing within the poll time (or a signal): poll again.
    Nothing,
    /// Another encoding: not for us.
    Other,
    /// A malformed message or batch, and why.
    Rejected(String),
}

/// A connected SUB socket on a broker's publish endpoint.
pub struct Subscriber {
    // Field order: the socket closes before its context.
    sub: zmq::Socket,
    _ctx: zmq::Context,
}

impl Subscriber {
    /// Connects and waits for the connection (until `stop` is set or the
    /// timeout passes: then `Ok(None)`).
    pub fn connect(
        s: &Subscription<'_>,
        stop: &AtomicBool,
    ) -> Result<Option<Subscriber>, CliError> {
        let ctx = zmq::Context::new();
        let sub = ctx.socket(zmq::SUB)?;
        sub.set_maxmsgsize(MAX_MESSAGE)?;
        sub.set_rcvhwm(10_000)?;
        sub.set_linger(0)?;
        if let Some((server, file)) = s.curve {
            let curve = |e: distlog::curve::CurveError| CliError(format!("CURVE: {e}"));
            let server = distlog::curve::decode_key(server).map_err(curve)?;
            let keys = distlog::curve::KeyPair::load(file).map_err(curve)?;
            distlog::curve::set_client(&sub, &server, &keys).map_err(curve)?;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let monitor = format!(
            "inproc://distlog-tail-monitor-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sub.monitor(&monitor, zmq::SocketEvent::CONNECTED as i32)?;
        sub.connect(s.broker)
            .map_err(|e| CliError(format!("cannot connect to {}: {e}", s.broker)))?;
        sub.set_subscribe(s.topic.as_bytes())?;
        if !wait_connected(&ctx, &monitor, s.timeout, stop)? {
            return Ok(None);
        }
        Ok(Some(Subscriber { sub, _ctx: ctx }))
    }

    /// Waits up to `poll_ms` for a message and validates it.
    pub fn recv(&self, poll_ms: i64) -> Result<Received, CliError> {
        // A signal interrupts the wait (EINTR): the caller then sees its
        // stop flag.
        match self.sub.poll(zmq::POLLIN, poll_ms) {
            Ok(0) | Err(zmq::Error::EINTR) => return Ok(Received::Nothing),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let frames = match self.sub.recv_multipart(0) {
            Ok(f) => f,
            Err(zmq::Error::EINTR) => return Ok(Received::Nothing),
            Err(e) => return Err(e.into()),
        };
        let [topic, body] = frames.as_slice() else {
            return Ok(Received::Rejected(format!(
                "{} frames, expected 2",
                frames.len()
            )));
        };
        let topic = match Topic::parse(topic) {
            Ok(t) => t,
            Err(e) => return Ok(Received::Rejected(e.to_string())),
        };
        if topic.encoding != ENCODING_BATCH {
            return Ok(Received::Other);
        }
        Ok(match OwnedBatch::from_body(body) {
            Ok(b) => Received::Batch(topic.system, b),
            Err(e) => Received::Rejected(e.to_string()),
        })
    }
}

pub fn run(a: Args) -> Result<(), CliError> {
    let filter = compile_filter(a.filter.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let timeout = (a.connect_timeout > 0.0).then(|| Duration::from_secs_f64(a.connect_timeout));
    let subscription = Subscription {
        broker: &a.broker,
        topic: &a.topic,
        timeout,
        curve: a
            .curve_server_key
            .as_deref()
            .zip(a.curve_key_file.as_deref()),
    };
    let Some(sub) = Subscriber::connect(&subscription, &stop)? else {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        return Err(unreachable(&a.broker, a.connect_timeout));
    };
    let mut out = Out::new();
    let colour = out.colour;
    let mut line = String::new();
    let mut rejected = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (system, batch) = match sub.recv(200)? {
            Received::Batch(system, b) => (system, b),
            Received::Nothing | Received::Other => continue,
            Received::Rejected(e) => {
                rejected += 1;
                if rejected == 1 {
                    eprintln!("distlog: warning: skipped a published batch: {e}");
                }
                continue;
            }
        };
        let batch = batch.get();
        let mut any = false;
        // A record at a time into the buffered output: a batch never
        // becomes one string, whatever its records expand to.
        for r in batch.records() {
            if !filter.matches(&RecordView::new(system, batch.sender(), r)) {
                continue;
            }
            any = true;
            line.clear();
            if !a.no_indent && a.format == Format::Text {
                for _ in 0..distlog_filter::render::task_depth(r.task()) {
                    line.push_str("  ");
                }
            }
            match a.format {
                Format::Text => {
                    distlog_filter::render::text_line(system, batch.sender(), r, colour, &mut line)
                }
                Format::Jsonl => {
                    distlog_filter::render::json_record(system, batch.sender(), r, &mut line)
                }
            }
            line.push('\n');
            out.write(&line)?;
        }
        if any {
            out.flush()?;
        }
    }
    out.flush()
}

/// The error for a broker that never answered.
pub fn unreachable(broker: &str, secs: f64) -> CliError {
    CliError(format!(
        "broker unreachable: no connection to {broker} within {secs}s (is distlogd running with --publish {broker}?)"
    ))
}
