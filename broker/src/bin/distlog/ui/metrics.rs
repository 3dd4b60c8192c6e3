//! `GET /api/metrics`: the broker's Prometheus metrics as JSON, for the
//! glance (rates are computed by the page from successive reads).
//!
//! One `GET /metrics` to the broker's `--metrics` address per call, with
//! a [`TIMEOUT`] and at most [`MAX_BYTES`] read; at most [`MAX_SAMPLES`]
//! samples are returned as `[name, labels, value]`.

use super::routes::{json, json_error};
use super::State;
use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one read of the broker's metrics may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The most bytes read from the broker.
pub const MAX_BYTES: u64 = 4 << 20;
/// The most samples returned.
pub const MAX_SAMPLES: usize = 5_000;

pub async fn metrics(Shared(state): Shared<Arc<State>>) -> Response<Body> {
    let Some(addr) = state.metrics.clone() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no broker metrics: start distlog ui with --metrics ADDR:PORT (distlogd --metrics)",
        );
    };
    match tokio::time::timeout(TIMEOUT, fetch(&addr)).await {
        Ok(Ok(text)) => json(
            StatusCode::OK,
            serde_json::json!({ "broker": addr, "samples": parse(&text) }),
        ),
        Ok(Err(e)) => json_error(
            StatusCode::BAD_GATEWAY,
            &format!("cannot read the broker's metrics at {addr}: {e}"),
        ),
        Err(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the broker's metrics at {addr} did not answer within {TIMEOUT:?}"),
        ),
    }
}

async fn fetch(addr: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: distlog-ui\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    s.take(MAX_BYTES).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_owned())
}

/// `name{labels} value` lines (comments skipped) as `[name, labels, value]`.
fn parse(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some((name.trim().to_owned(), labels.to_owned(), value))
        })
        .take(MAX_SAMPLES)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn prometheus_lines_become_samples() {
        let got = super::parse(
            "# HELP x y\ndistlog_records_total 12\nq{processor=\"store\"} 3.5\nbad line\n",
        );
        assert_eq!(
            got,
            [
                ("distlog_records_total".to_owned(), String::new(), 12.0),
                ("q".to_owned(), "processor=\"store\"".to_owned(), 3.5)
            ]
        );
    }
}
