//! `GET /api/tree?task=ID`: one request's task tree for the waterfall.
//!
//! The tree is `distlog tree`'s (`tree::load`), served as its JSON lines
//! (`distlog tree --format jsonl`: one task a line, parents before
//! children, each with status, times, process and records). Trees larger
//! than [`MAX_TREE_BYTES`] of JSON are refused rather than sent to a page
//! that could not draw them.

use super::routes::json_error;
use super::State;
use axum::body::Body;
use axum::extract::{Query, State as Shared};
use axum::http::{header, Response, StatusCode};
use axum::response::IntoResponse;
use std::sync::Arc;

/// The largest tree sent, in bytes of JSON.
pub const MAX_TREE_BYTES: usize = 64 << 20;

/// The query string.
#[derive(serde::Deserialize)]
pub struct Params {
    task: String,
}

pub async fn tree(Shared(state): Shared<Arc<State>>, Query(p): Query<Params>) -> Response<Body> {
    let built = tokio::task::spawn_blocking(move || {
        let tree = crate::tree::load(&state.source, &p.task)?;
        let mut text = String::new();
        tree.jsonl(&mut text);
        Ok::<_, crate::CliError>(text)
    })
    .await;
    match built {
        Ok(Ok(text)) if text.len() > MAX_TREE_BYTES => json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "this tree is {} MiB of JSON, more than the {} MiB the page draws; use `distlog tree`",
                text.len() >> 20,
                MAX_TREE_BYTES >> 20
            ),
        ),
        Ok(Ok(text)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            text,
        )
            .into_response(),
        Ok(Err(e)) => json_error(StatusCode::NOT_FOUND, &e.0),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
