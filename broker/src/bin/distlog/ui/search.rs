//! `GET /api/search`: the store (or database) scanned with a filter and a
//! time range, results streamed as they are found.
//!
//! The scan is `distlog query`'s (`query::scan_rendered`) on a blocking
//! thread; each piece of the source (a segment, a chunk of rows) becomes
//! one chunk of NDJSON through a channel of [`PIECES_IN_FLIGHT`] pieces,
//! so the first results reach the page after one piece is read, and a
//! page that stops reading (or closes) stops the scan. Lines:
//!
//! - `{"text": "<distlog query's text line>", "record": {<its JSON>}}` per
//!   record, in stored order, at most `limit` (default [`DEFAULT_LIMIT`],
//!   at most [`MAX_LIMIT`]);
//! - last, `{"done": true, "count": N, "capped": bool, "skipped": S}`, or
//!   `{"error": "..."}` if the scan failed.
//!
//! A filter that does not parse is a 400 with `line`, `column` and
//! `message`, as `distlog query` reports it.

use super::routes::{json, json_error, ndjson};
use super::State;
use crate::query::{scan_rendered, Render};
use crate::source::Selection;
use crate::CliError;
use axum::body::Body;
use axum::extract::{Query, State as Shared};
use axum::http::{Response, StatusCode};
use distlog_filter::Filter;
use std::sync::Arc;

/// Records a search returns unless it asks for fewer.
pub const DEFAULT_LIMIT: u64 = 1_000;
/// The most records one search returns.
pub const MAX_LIMIT: u64 = 100_000;
/// Pieces rendered ahead of what the page has read.
const PIECES_IN_FLIGHT: usize = 4;

/// The query string.
#[derive(serde::Deserialize)]
pub struct Params {
    filter: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
}

/// Parses a filter, or the 400 that shows where it is wrong.
pub fn parse_filter(src: Option<&str>) -> Result<Filter, Box<Response<Body>>> {
    // Not trimmed: the error's column is the page's column.
    let Some(src) = src.filter(|s| !s.trim().is_empty()) else {
        return Ok(Filter::always());
    };
    Filter::parse(src).map_err(|e| {
        Box::new(json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "error": crate::filter_error(&e),
                "line": e.line(),
                "column": e.column(),
                "message": e.message(),
            }),
        ))
    })
}

pub async fn search(Shared(state): Shared<Arc<State>>, Query(p): Query<Params>) -> Response<Body> {
    let filter = match parse_filter(p.filter.as_deref()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let now = crate::time::now_ns();
    let bounds = crate::time::bound(p.since.as_deref(), now)
        .and_then(|s| Ok((s, crate::time::bound(p.until.as_deref(), now)?)));
    let (since, until) = match bounds {
        Ok(b) => b,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.0),
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(PIECES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sel = Selection {
            filter: &filter,
            since: since.unwrap_or(0),
            until: until.unwrap_or(u64::MAX),
        };
        let result = scan_rendered(
            &state.source,
            &sel,
            limit,
            Some(&render_lines as &Render),
            |text| {
                // A closed page drops the receiver: stop scanning. The
                // lines are made of `&str`s: the lossy conversion keeps
                // them as they are.
                let text = String::from_utf8_lossy(text).into_owned();
                Ok(tx.blocking_send(text).is_ok())
            },
        );
        let last = match result {
            Ok((count, tally)) => serde_json::json!({
                "done": true,
                "count": count,
                "capped": count == limit,
                "skipped": tally.skipped,
            }),
            Err(CliError(e)) => serde_json::json!({ "error": e }),
        };
        let _ = tx.blocking_send(format!("{last}\n"));
    });
    ndjson(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// [`render`] into a scan's [`Lines`](crate::print::Lines).
fn render_lines(
    system: u8,
    sender: &distlog_core::wire::ArchivedSender,
    r: distlog_core::view::RecordRef<'_>,
    lines: &mut crate::print::Lines,
) {
    let mut out = String::new();
    render(system, sender, r, &mut out);
    lines.push_str(&out);
}

/// One result line: the record as `distlog query` prints it (no colour),
/// and as its JSON form for the expanded view.
pub fn render(
    system: u8,
    sender: &distlog_core::wire::ArchivedSender,
    r: distlog_core::view::RecordRef<'_>,
    out: &mut String,
) {
    let mut text = String::new();
    distlog_filter::render::text_line(system, sender, r, false, &mut text);
    out.push_str("{\"text\":");
    // A String always serialises.
    out.push_str(&serde_json::to_string(&text).unwrap_or_default());
    out.push_str(",\"record\":");
    distlog_filter::render::json_record(system, sender, r, out);
    out.push_str("}\n");
}
