//! The routes, the embedded assets, and the headers every response
//! carries.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (`assets/index.html`) |
//! | `GET /app.js`, `/app.css` | its script and style |
//! | `GET /api/search?filter=&since=&until=&limit=` | records, NDJSON, streamed |
//! | `GET /api/tree?task=` | one task tree, NDJSON (a task a line) |
//! | `GET /api/tail?filter=` | live records, NDJSON, until the page closes |
//! | `GET /api/metrics` | the broker's metrics, JSON |

use super::State;
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// No inline script, no script from anywhere but this server, nothing
/// framed, no plugins: a record that smuggles markup past the page's
/// `textContent` rendering still cannot run.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The router over the shared state.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/api/search", get(super::search::search))
        .route("/api/tree", get(super::tree_json::tree))
        .route("/api/tail", get(super::live::tail))
        .route("/api/metrics", get(super::metrics::metrics))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        // Outermost: every response carries the headers, refusals too.
        .layer(axum::middleware::map_response(secure))
        .with_state(state)
}

/// Answers only requests addressed to `localhost`, an IP address or a
/// name given with `--allow-host`: a page on another site that makes its
/// own DNS name resolve to this machine (DNS rebinding) gets 403, not the
/// store.
async fn check_host(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if host_allowed(host, &state.allowed_hosts) {
        next.run(req).await
    } else {
        json_error(
            StatusCode::FORBIDDEN,
            "this host name is not allowed: start distlog ui with --allow-host NAME",
        )
    }
}

/// Whether `host` (a Host header: name or address, optional port) is
/// `localhost`, an IP address, or one of `allowed` (lowercase).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost" || name.parse::<std::net::Ipv4Addr>().is_ok() || allowed.contains(&name)
}

async fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, kind)], body)
}

/// The headers of every response: the policy above, no MIME sniffing (a
/// JSON body is never read as HTML), no referrer, no caching of API data.
async fn secure(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `{"error": message}` with a status.
pub fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }))
}

/// A JSON response.
pub fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A streamed NDJSON response: one JSON value a line, sent as produced.
pub fn ndjson<S>(lines: S) -> Response<Body>
where
    S: futures_util::Stream<Item = String> + Send + 'static,
{
    use futures_util::StreamExt;
    let body = Body::from_stream(lines.map(Ok::<_, std::convert::Infallible>));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_local_names_addresses_and_allowed_names_are_answered() {
        let allowed = vec!["logs.example.com".to_owned()];
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:8080",
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "logs.example.com:8080",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:8080",
            "[not-v6]:80",
            "logs.example.com.evil:8080",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
