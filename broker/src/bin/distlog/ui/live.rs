//! `GET /api/tail?filter=`: live records from the broker's publish socket.
//!
//! One thread ([`Feed`]) holds `distlog tail`'s subscriber
//! (`tail::Subscriber`: every batch validated) and hands each batch to a
//! broadcast channel of [`BATCHES_BUFFERED`] batches; every open page
//! reads it through its own filter. A page that reads slower than the
//! broker publishes loses the oldest batches, never blocks the feed or the
//! other pages, and is told how many it lost (`{"skipped_batches": n}`).
//! Pausing is the page's: it keeps reading while paused and holds a
//! bounded buffer, counting what it had to drop.
//!
//! Lines: first `{"hello": true, "broker": "...", "connected": bool}`,
//! then one `{"text": ..., "record": ...}` per record (as search sends
//! them), `{"skipped_batches": n}` when the page fell behind.

use super::routes::{json_error, ndjson};
use super::State;
use crate::tail::{Received, Subscriber, Subscription};
use crate::CliError;
use axum::body::Body;
use axum::extract::{Query, State as Shared};
use axum::http::{Response, StatusCode};
use distlog_core::wire::OwnedBatch;
use distlog_filter::RecordView;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Batches held for pages that read slower than the broker publishes.
pub const BATCHES_BUFFERED: usize = 1_024;

/// A batch as published: its system and its validated body.
pub struct Live {
    system: u8,
    batch: OwnedBatch,
}

/// The broker subscription shared by every page.
pub struct Feed {
    broker: String,
    tx: broadcast::Sender<Arc<Live>>,
    connected: Arc<AtomicBool>,
}

impl Feed {
    /// Starts the subscriber thread (it retries until the broker answers).
    pub fn start(
        broker: String,
        curve: Option<(String, std::path::PathBuf)>,
    ) -> Result<Feed, CliError> {
        let (tx, _) = broadcast::channel(BATCHES_BUFFERED);
        let connected = Arc::new(AtomicBool::new(false));
        let (tx2, conn2, ep) = (tx.clone(), connected.clone(), broker.clone());
        std::thread::Builder::new()
            .name("distlog-ui-feed".into())
            .spawn(move || feed(&ep, curve, &tx2, &conn2))
            .map_err(|e| CliError(format!("cannot start the live tail thread: {e}")))?;
        Ok(Feed {
            broker,
            tx,
            connected,
        })
    }
}

fn feed(
    broker: &str,
    curve: Option<(String, std::path::PathBuf)>,
    tx: &broadcast::Sender<Arc<Live>>,
    connected: &AtomicBool,
) {
    let never = AtomicBool::new(false);
    let subscription = Subscription {
        broker,
        topic: "",
        timeout: Some(Duration::from_secs(1)),
        curve: curve.as_ref().map(|(k, f)| (k.as_str(), f.as_path())),
    };
    let sub = loop {
        match Subscriber::connect(&subscription, &never) {
            Ok(Some(s)) => break s,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("distlog ui: live tail unavailable: {}", e.0);
                return;
            }
        }
    };
    connected.store(true, Ordering::Relaxed);
    let mut rejected = 0u64;
    loop {
        match sub.recv(500) {
            // No page open is not an error: the batch is dropped.
            Ok(Received::Batch(system, batch)) => drop(tx.send(Arc::new(Live { system, batch }))),
            Ok(Received::Nothing | Received::Other) => {}
            Ok(Received::Rejected(e)) => {
                rejected += 1;
                if rejected == 1 {
                    eprintln!("distlog ui: warning: skipped a published batch: {e}");
                }
            }
            Err(e) => {
                eprintln!("distlog ui: live tail stopped: {}", e.0);
                connected.store(false, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The query string.
#[derive(serde::Deserialize)]
pub struct Params {
    filter: Option<String>,
}

pub async fn tail(Shared(state): Shared<Arc<State>>, Query(p): Query<Params>) -> Response<Body> {
    let filter = match super::search::parse_filter(p.filter.as_deref()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some(feed) = &state.live else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no live tail: start distlog ui with --broker ENDPOINT (distlogd --publish)",
        );
    };
    let rx = feed.tx.subscribe();
    let hello = serde_json::json!({
        "hello": true,
        "broker": feed.broker,
        "connected": feed.connected.load(Ordering::Relaxed),
    });
    let first = futures_util::stream::iter([format!("{hello}\n")]);
    let rest = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            let line = match rx.recv().await {
                Ok(live) => {
                    let b = live.batch.get();
                    let mut text = String::new();
                    for r in b.records() {
                        if filter.matches(&RecordView::new(live.system, b.sender(), r)) {
                            super::search::render(live.system, b.sender(), r, &mut text);
                        }
                    }
                    text
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    format!("{{\"skipped_batches\":{n}}}\n")
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if !line.is_empty() {
                return Some((line, (rx, filter)));
            }
        }
    });
    use futures_util::StreamExt;
    ndjson(first.chain(rest))
}
