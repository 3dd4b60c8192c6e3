//! `distlog ui`: a web view of the store and the broker, on one port.
//!
//! - search (`search.rs`): the filter language and a time range over the
//!   store or PostgreSQL, results streamed as NDJSON as each piece of the
//!   source is read, capped;
//! - the request tree as a waterfall (`tree_json.rs`): `distlog tree`'s
//!   tree, as its JSON lines;
//! - live tail (`live.rs`): the broker's publish socket, fanned out to
//!   every open page through a bounded channel (a page that falls behind
//!   is told how many batches it skipped);
//! - at a glance (`metrics.rs`): the broker's Prometheus endpoint, read
//!   for the page (bounded size and time).
//!
//! The page itself (`assets/`) is hand-written HTML, CSS and JavaScript
//! embedded in the binary. Everything a record carries is untrusted: the
//! page writes it with `textContent` only, and every response carries a
//! Content-Security-Policy without inline script (`routes.rs`).

mod live;
mod metrics;
mod routes;
mod search;
mod tree_json;

use crate::source::{Source, SourceArgs};
use crate::CliError;
use std::net::SocketAddr;
use std::sync::Arc;

/// Arguments of `distlog ui`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve on this address (loopback by default: the page shows whatever
    /// the store holds to whoever reaches it). Port 0 picks a free port;
    /// the address served is printed on stdout either way.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    src: SourceArgs,
    /// Live tail from this broker publish endpoint (distlogd --publish).
    #[arg(long, value_name = "ENDPOINT")]
    broker: Option<String>,
    /// The broker's metrics address (distlogd --metrics), for the glance.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<String>,
    /// The broker's CURVE public key (Z85), when its publish socket is
    /// encrypted; needs --curve-key-file.
    #[arg(long, value_name = "KEY", requires = "curve_key_file")]
    curve_server_key: Option<String>,
    /// This subscriber's key pair (`distlog keygen`), allowed by the broker.
    #[arg(long, value_name = "FILE", requires = "curve_server_key")]
    curve_key_file: Option<std::path::PathBuf>,
    /// Scan threads for a store (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Also answer requests addressed to this host name (repeatable).
    /// Without it only `localhost` and IP addresses are answered, so a web
    /// page elsewhere cannot reach the view through a DNS name that
    /// points at this machine (DNS rebinding).
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
}

/// What every request handler shares.
pub struct State {
    /// Where search and trees read from.
    source: Source,
    /// Live batches from the broker, when `--broker` was given.
    live: Option<live::Feed>,
    /// The broker's metrics address, when given.
    metrics: Option<String>,
    /// Host names answered besides `localhost` and IP addresses.
    allowed_hosts: Vec<String>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let source = Source::new(&a.src, a.threads)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the server's runtime: {e}")))?;
    let live = match &a.broker {
        None => None,
        Some(broker) => Some(live::Feed::start(
            broker.clone(),
            a.curve_server_key.clone().zip(a.curve_key_file.clone()),
        )?),
    };
    let state = Arc::new(State {
        source,
        live,
        metrics: a.metrics.clone(),
        allowed_hosts: a
            .allow_host
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    });
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| CliError(format!("cannot listen on {}: {e}", a.listen)))?;
        let addr = listener.local_addr()?;
        println!("distlog ui: serving http://{addr}/");
        axum::serve(listener, routes::router(state))
            .await
            .map_err(|e| CliError(format!("the server stopped: {e}")))
    })
}
