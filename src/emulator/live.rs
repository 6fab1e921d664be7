//! The live view: `/_emulator` shows hubs, connections and the latest
//! upstream calls, refreshed as they change.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::Shared;

/// The page; it long-polls [`state`].
const PAGE: &str = include_str!("live.html");
/// How long a poll waits for a change before answering anyway.
const POLL: Duration = Duration::from_secs(25);

pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /_emulator/api/state[?since=N]`: hubs, connections and recent
/// upstream calls as JSON; with `since`, answers once the version passes N
/// (or after 25 s).
pub(crate) async fn state(State(shared): State<Arc<Shared>>, uri: http::Uri) -> Response {
    let since = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse::<u64>().ok())
    });
    if let Some(since) = since {
        let mut changes = shared.upstream.changes.subscribe();
        let _ = tokio::time::timeout(POLL, changes.wait_for(|v| *v > since)).await;
    }
    let version = *shared.upstream.changes.borrow();
    let body = serde_json::json!({
        "version": version,
        "host": shared.host,
        "hubs": shared.hubs.snapshot(),
        "upstreamCalls": shared.upstream.recent(),
    });
    (
        [
            (http::header::CONTENT_TYPE, "application/json"),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}
