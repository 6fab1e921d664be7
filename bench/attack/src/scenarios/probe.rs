//! `probe`: is the emulator still serving? A fresh client WebSocket must get
//! its `connected` frame within 5 s; `GET /api/health` (with a REST token,
//! which the emulator may or may not ask for) is reported beside it.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::target::{connect_within, Target, JSON_PROTOCOL};
use crate::wire;

const LIMIT: Duration = Duration::from_secs(5);

/// Whether a fresh WebSocket is served, and a line saying what was seen.
pub async fn run(target: &Target) -> (bool, String) {
    let websocket = websocket(target).await;
    let health = health(target).await;
    let serving = websocket.is_ok();
    let websocket = websocket.unwrap_or_else(|why| why);
    (serving, format!("websocket {websocket}, health {health}"))
}

/// `Ok("connected")`, or why not.
async fn websocket(target: &Target) -> Result<String, String> {
    let token = target.client_token("probe", &[]);
    let mut ws = connect_within(target, &token, JSON_PROTOCOL, LIMIT)
        .await
        .map_err(|why| format!("refused ({why})"))?;
    let first = timeout(LIMIT, ws.next()).await;
    let _ = timeout(LIMIT, ws.close(None)).await;
    match first {
        Ok(Some(Ok(Message::Text(text))))
            if serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v.get("event").and_then(Value::as_str) == Some("connected")) =>
        {
            Ok("connected".to_owned())
        }
        Ok(other) => Err(format!("no connected frame ({other:?})")),
        Err(_) => Err("no connected frame (timeout)".to_owned()),
    }
}

/// The status of `GET /api/health`, or why there is none.
pub async fn health(target: &Target) -> String {
    let path = "/api/health?api-version=2024-12-01";
    let token = target.rest_token(path);
    match timeout(
        LIMIT,
        wire::request(target.addr, "GET", path, &token, "text/plain", b""),
    )
    .await
    {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => format!("{:?}", e.kind()),
        Err(_) => "timeout".to_owned(),
    }
}
