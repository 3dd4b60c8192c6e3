//! `distlogd`: the distlog broker.
//!
//! ```text
//! distlogd [--listen ENDPOINT]... [--data-dir DIR]
//! ```
//!
//! With no flags it listens on tcp://127.0.0.1:5010 and stores under
//! ./distlog-data. SIGTERM or SIGINT: stop taking input, store everything
//! received, sync, print the counters, exit 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str = "usage: distlogd [--listen ENDPOINT]... [--data-dir DIR]
  --listen ENDPOINT  PULL endpoint to bind (repeatable; default tcp://127.0.0.1:5010)
  --data-dir DIR     where the store keeps its segments (default ./distlog-data)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlogd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen = Vec::new();
    let mut data_dir = PathBuf::from("distlog-data");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match a.as_str() {
            "--listen" => listen.push(value("--listen")?),
            "--data-dir" => data_dir = PathBuf::from(value("--data-dir")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if listen.is_empty() {
        listen.push(distlog::DEFAULT_ENDPOINT.to_owned());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let mut store = distlogd::store::Writer::open(&data_dir, 64 * 1024 * 1024)
        .map_err(|e| format!("{e} (data dir {})", data_dir.display()))?;
    let ctx = zmq::Context::new();
    let mut sockets = Vec::new();
    for ep in &listen {
        let s = ctx.socket(zmq::PULL).map_err(|e| e.to_string())?;
        s.set_maxmsgsize(distlogd::ingest::MAX_MESSAGE)
            .map_err(|e| e.to_string())?;
        s.set_rcvhwm(10_000).map_err(|e| e.to_string())?;
        s.bind(ep)
            .map_err(|e| format!("cannot listen on {ep}: {e}"))?;
        sockets.push(s);
    }
    eprintln!(
        "distlogd: listening on {}, storing under {}",
        listen.join(", "),
        data_dir.display()
    );
    let c = distlogd::ingest::run(&sockets, &mut store, &stop)
        .map_err(|e| format!("store failed: {e}"))?;
    eprintln!(
        "distlogd: stopped: messages={} batches={} records={} bytes={} gap_records={} client_dropped={} rejected={:?}",
        c.messages, c.batches, c.records, c.bytes, c.gap_records, c.client_dropped, c.rejected
    );
    Ok(())
}
