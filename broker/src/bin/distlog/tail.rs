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

pub fn run(a: Args) -> Result<(), CliError> {
    let filter = compile_filter(a.filter.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_maxmsgsize(MAX_MESSAGE)?;
    sub.set_rcvhwm(10_000)?;
    sub.set_linger(0)?;
    if let (Some(server), Some(file)) = (&a.curve_server_key, &a.curve_key_file) {
        let curve = |e: distlog::curve::CurveError| CliError(format!("CURVE: {e}"));
        let server = distlog::curve::decode_key(server).map_err(curve)?;
        let keys = distlog::curve::KeyPair::load(file).map_err(curve)?;
        distlog::curve::set_client(&sub, &server, &keys).map_err(curve)?;
    }
    let monitor = format!("inproc://distlog-tail-monitor-{}", std::process::id());
    sub.monitor(&monitor, zmq::SocketEvent::CONNECTED as i32)?;
    sub.connect(&a.broker)
        .map_err(|e| CliError(format!("cannot connect to {}: {e}", a.broker)))?;
    sub.set_subscribe(a.topic.as_bytes())?;
    let timeout = (a.connect_timeout > 0.0).then(|| Duration::from_secs_f64(a.connect_timeout));
    if !wait_connected(&ctx, &monitor, timeout, &stop)? {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        return Err(CliError(format!(
            "broker unreachable: no connection to {} within {}s (is distlogd running with --publish {}?)",
            a.broker, a.connect_timeout, a.broker
        )));
    }
    let mut out = Out::new();
    let colour = out.colour;
    let mut line = String::new();
    let mut rejected = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // A signal interrupts the wait (EINTR): the loop then sees `stop`.
        match sub.poll(zmq::POLLIN, 200) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let frames = match sub.recv_multipart(0) {
            Ok(f) => f,
            Err(zmq::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let [topic, body] = frames.as_slice() else {
            rejected += 1;
            continue;
        };
        let Ok(topic) = Topic::parse(topic) else {
            rejected += 1;
            continue;
        };
        if topic.encoding != ENCODING_BATCH {
            continue;
        }
        let batch = match OwnedBatch::from_body(body) {
            Ok(b) => b,
            Err(e) => {
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
            if !filter.matches(&RecordView::new(topic.system, batch.sender(), r)) {
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
                Format::Text => distlog_filter::render::text_line(
                    topic.system,
                    batch.sender(),
                    r,
                    colour,
                    &mut line,
                ),
                Format::Jsonl => {
                    distlog_filter::render::json_record(topic.system, batch.sender(), r, &mut line)
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
