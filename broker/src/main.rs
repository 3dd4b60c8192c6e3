//! `distlogd`: the distlog broker.
//!
//! With no flags it listens on tcp://127.0.0.1:5010 and stores everything
//! under ./distlog-data. SIGTERM or SIGINT: stop taking input, hand
//! everything received to the processors, flush, print the counters, exit
//! 0. SIGHUP: reload the config file (a bad one is rejected, the old one
//! kept).
#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches, Parser};
use distlogd::config::{Checked, Config, ProcessorConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The distlog broker: takes records from many processes, filters them
/// with compiled rules, and routes them to processors (store, files,
/// terminal, live subscribers, other brokers).
#[derive(Parser, Debug)]
#[command(
    name = "distlogd",
    version,
    after_help = "`distlogd --version` shows the libzmq linked in and whether it has CURVE."
)]
struct Args {
    /// YAML config with rules and processors (see distlogd.example.yaml).
    /// Without one: listen on tcp://127.0.0.1:5010, store under
    /// ./distlog-data. SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check a config file, print what is wrong (with line and column), and
    /// exit: 0 when it is valid.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,

    /// PULL endpoint to bind (repeatable); replaces the config's `listen`.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,

    /// Acknowledging endpoint to bind (repeatable; ROUTER, for clients
    /// with acknowledged delivery); replaces the config's `ack_listen`.
    #[arg(long, value_name = "ENDPOINT")]
    ack_listen: Vec<String>,

    /// Directory of store processors that do not name their own `dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Also publish every record on this PUB endpoint (for `distlog tail`).
    #[arg(long, value_name = "ENDPOINT")]
    publish: Option<String>,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9110).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

impl Args {
    /// Reads the config (or the embedded default) and applies the flags.
    fn load(&self) -> Result<Checked, String> {
        let checked = match &self.config {
            Some(p) => Config::load(p).map_err(|e| format!("{}: {e}", p.display()))?,
            None => Config::parse("").map_err(|e| e.to_string())?,
        };
        let mut c = checked.config;
        if !self.listen.is_empty() {
            c.listen = self.listen.clone();
        }
        if !self.ack_listen.is_empty() {
            c.ack_listen = self.ack_listen.clone();
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(a) = &self.metrics {
            c.metrics.listen = Some(a.clone());
        }
        if let Some(ep) = &self.publish {
            let name = "publish-flag".to_owned();
            let p: ProcessorConfig =
                serde_yaml_ng::from_str(&format!("{{type: publish, endpoint: {ep:?}}}"))
                    .map_err(|e| format!("--publish {ep}: {e}"))?;
            c.processors.insert(name.clone(), p);
            for r in &mut c.rules {
                r.processors.push(name.clone());
            }
            c.default.push(name);
        }
        c.recheck().map_err(|e| e.to_string())
    }
}

/// `--version`'s long form: the libzmq linked in and whether it has CURVE
/// (builds from this repository always do; see README "Build").
fn long_version() -> String {
    let (major, minor, patch) = zmq::version();
    let curve = if distlog::curve::available() {
        "yes"
    } else {
        "no (libzmq built without libsodium; build from the distlog repository, whose [patch.crates-io] entry compiles it in)"
    };
    format!(
        "{}\nlibzmq {major}.{minor}.{patch}\nCURVE: {curve}",
        env!("CARGO_PKG_VERSION")
    )
}

fn main() -> ExitCode {
    let matches = Args::command()
        // Built once per process; clap takes a &'static str without its
        // `string` feature.
        .long_version(&*Box::leak(long_version().into_boxed_str()))
        .get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Some(p) = &args.check_config {
        return match Config::load(p) {
            Ok(c) => {
                println!(
                    "{}: ok ({} processors, {} rules)",
                    p.display(),
                    c.config.processors.len(),
                    c.config.rules.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlogd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    // Handlers first, so a SIGTERM while the config loads or the sockets
    // bind still means a clean stop (exit 0), not death by signal.
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| e.to_string())?;
    let checked = args.load()?;
    // Before any thread allocates: message buffers are reused, not
    // faulted in afresh after every burst.
    distlogd::allocator::keep_freed_memory();
    let broker = distlogd::Broker::start(&checked)?;
    let c = &checked.config;
    eprintln!(
        "distlogd: listening on {}{}; processors: {}{}",
        c.listen.join(", "),
        if c.ack_listen.is_empty() {
            String::new()
        } else {
            format!(" (acknowledged: {})", c.ack_listen.join(", "))
        },
        c.processors
            .iter()
            .map(|(n, p)| format!("{n} ({})", p.kind()))
            .collect::<Vec<_>>()
            .join(", "),
        c.metrics
            .listen
            .as_ref()
            .map(|a| format!("; metrics on http://{a}/metrics"))
            .unwrap_or_default()
    );
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
        if hup.swap(false, Ordering::AcqRel) {
            if args.config.is_none() {
                eprintln!("distlogd: SIGHUP: no --config file to reload");
                continue;
            }
            let result = args.load().inspect_err(|_| {
                let failed = &broker.metrics().reloads_failed;
                failed.fetch_add(1, Ordering::Relaxed);
            });
            match result.and_then(|c| broker.reload(c)) {
                Ok(()) => eprintln!("distlogd: config reloaded"),
                Err(e) => eprintln!("distlogd: error: reload rejected, the old config stays: {e}"),
            }
        }
    }
    let s = broker.stop();
    eprintln!(
        "distlogd: stopped: messages={} batches={} records={} bytes={} gap_records={} late_records={} client_dropped={} rejected={:?} processors={:?}",
        s.messages,
        s.batches,
        s.records,
        s.bytes,
        s.gap_records,
        s.late_records,
        s.client_dropped,
        s.rejected,
        s.processors
            .iter()
            .map(|(k, v)| (k.as_str(), {
                    let mut c = format!("written={} dropped={}", v.written, v.dropped);
                    // Only processors that run a program (exec) have these.
                    if v.lost > 0 || v.restarts > 0 {
                        c.push_str(&format!(" lost={} restarts={}", v.lost, v.restarts));
                    }
                    c
                }))
            .collect::<std::collections::BTreeMap<_, _>>()
    );
    Ok(())
}
