//! A connection's life beyond one socket: registered when its first socket
//! opens ([`start`], which raises `connected`), parked for recovery or
//! ended when a socket goes ([`after`]), and ended for good once
//! ([`finish`], which raises `disconnected`). Also the upstream calls made
//! on a connection's behalf ([`user_event`] for `event`, `invoke` and raw
//! frames).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::outbound::close_frame;
use super::reader::RawMode;
use super::session::{serve, Ended};
use crate::frames;
use crate::hub::{lock, Connection, Data, Outbound, Protocol};
use crate::server::Shared;
use crate::upstream::{UpstreamAnswer, UpstreamCall, UpstreamError};
use http::StatusCode;
use webpubsub::events::DataType;
use webpubsub::wire::EventType;

/// Registers a new connection and serves its first socket.
pub(super) async fn start(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut rx: mpsc::Receiver<Outbound>,
    mut socket: WebSocket,
    groups: Vec<String>,
    raw: RawMode,
) {
    if let Err(refusal) = shared.hubs.add(&conn, &groups) {
        // Another handshake of the same user got in first.
        tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, reason = %refusal, "refused client");
        let _ = socket.send(close_frame(1008, &refusal.to_string())).await;
        return;
    }
    shared.changed();
    if conn.protocol.is_json() {
        let token =
            (conn.protocol == Protocol::ReliableJson).then_some(conn.reconnection_token.as_str());
        let frame = frames::connected(&conn.id, conn.user_id.as_deref(), token);
        if socket
            .send(Message::Text(Utf8Bytes::from(frame)))
            .await
            .is_err()
        {
            finish(&shared, &conn, Some("The connection was lost.".to_owned()));
            return;
        }
    }
    // `connected` does not hold up the client; later events wait for it, so
    // the upstream sees them in order.
    {
        let shared = shared.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let call = event_call(
                &conn,
                EventType::Connected,
                "application/json",
                Bytes::from_static(b"{}"),
            );
            // The answer to a non-blocking event is not read (state included).
            let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
            conn.connected_done.send_replace(true);
        });
    }
    let ended = serve(&shared, &conn, &mut rx, socket, &raw).await;
    after(shared, conn, rx, ended);
}

/// What happens once a socket is gone: keep a reliable connection for
/// recovery, or end the connection.
pub(super) fn after(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    rx: mpsc::Receiver<Outbound>,
    ended: Ended,
) {
    match ended {
        Ended::Dropped if conn.protocol == Protocol::ReliableJson && !conn.is_killed() => {
            // Kept without a socket only within the detached caps.
            if let Err(why) = shared.hubs.detach(&conn) {
                tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, reason = %why,
                    "transport lost; not kept for recovery");
                finish(&shared, &conn, Some("The connection was lost.".to_owned()));
                return;
            }
            let generation = conn.attach_generation();
            *lock(&conn.parked) = Some(rx);
            tracing::debug!(target: "webpubsub_emulator::client", connection = %conn.id, "transport lost; waiting for recovery");
            let window = shared.recovery_window;
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                if conn.attach_generation() == generation && lock(&conn.parked).take().is_some() {
                    finish(
                        &shared,
                        &conn,
                        Some("The connection was lost and not recovered.".to_owned()),
                    );
                }
            });
        }
        Ended::Dropped => finish(&shared, &conn, Some("The connection was lost.".to_owned())),
        Ended::ClientClosed => finish(&shared, &conn, None),
        Ended::ServiceClosed(reason) | Ended::Terminated(_, reason) => {
            finish(&shared, &conn, Some(reason));
        }
    }
}

/// Ends a connection for good: forgets it and tells the upstream.
pub(crate) fn finish(shared: &Arc<Shared>, conn: &Arc<Connection>, reason: Option<String>) {
    if conn.ended.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.hubs.remove(&conn.hub, &conn.id);
    // Uncounted as detached, also if another connection had its id by now.
    shared.hubs.attach(conn);
    super::stream::sender_gone(shared, conn);
    shared.changed();
    tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, reason = reason.as_deref(), "client disconnected");
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        conn.connected_delivered().await;
        let body = match (&conn.mqtt, &reason) {
            (Some(link), _) => serde_json::to_string(&link.disconnected_body(reason.as_deref()))
                .unwrap_or_default(),
            (None, Some(reason)) => serde_json::json!({ "reason": reason }).to_string(),
            (None, None) => "{}".to_owned(),
        };
        let call = event_call(
            &conn,
            EventType::Disconnected,
            "application/json",
            Bytes::from(body),
        );
        let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
    });
}

/// The upstream call of event `kind` of this connection (its state, next event id).
pub(crate) fn event_call<'a>(
    conn: &'a Connection,
    kind: EventType<'a>,
    content_type: &'static str,
    body: Bytes,
) -> UpstreamCall<'a> {
    UpstreamCall {
        hub: &conn.hub,
        connection_id: &conn.id,
        user_id: conn.user_id.as_deref(),
        subprotocol: conn.subprotocol.as_deref(),
        state: lock(&conn.state).clone(),
        event_id: conn.next_event_id(),
        kind,
        content_type,
        body,
        extra: conn
            .mqtt
            .as_ref()
            .map(|link| link.event_headers(&conn.hub, &conn.id))
            .unwrap_or_default(),
    }
}

/// Why a user event got no answer.
#[derive(Debug)]
pub(super) enum UserEventError {
    /// No handler of the hub subscribes to the event.
    NoHandler,
    /// The handler refused (non-2xx), could not be reached, or its answer
    /// could not be read.
    Upstream(UpstreamError),
}

/// Raises user event `name` of this connection, as `event` frames, raw
/// frames and `invoke` frames do: the body typed by the payload's kind,
/// the answer's connection state kept. `Ok(Some)`: the answer's body as a
/// payload (`text/plain` → text, valid `application/json` → JSON, anything
/// else → binary); `Ok(None)`: an empty or `204` answer.
pub(super) async fn user_event(
    shared: &Shared,
    conn: &Connection,
    name: &str,
    data: Data,
) -> Result<Option<Data>, UserEventError> {
    conn.connected_delivered().await;
    let content_type = match data.kind {
        DataType::Text => "text/plain; charset=utf-8",
        DataType::Json => "application/json",
        // Binary, and any kind a later core version adds: raw bytes.
        _ => "application/octet-stream",
    };
    let call = event_call(conn, EventType::User(name), content_type, data.bytes);
    let answer = shared
        .upstream
        .call(shared.settings(&conn.hub), call)
        .await
        .map_err(UserEventError::Upstream)?
        .ok_or(UserEventError::NoHandler)?;
    keep_state(conn, &answer);
    if answer.body.is_empty() || answer.status == StatusCode::NO_CONTENT {
        return Ok(None);
    }
    let content_type = answer.content_type.as_deref().unwrap_or("");
    let kind = if content_type.starts_with("text/plain") {
        DataType::Text
    } else if content_type.starts_with("application/json") {
        if serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).is_ok() {
            DataType::Json
        } else {
            DataType::Text
        }
    } else {
        DataType::Binary
    };
    Ok(Some(Data {
        kind,
        bytes: answer.body,
    }))
}

/// Keeps the connection state an answer set (`ce-connectionState`; empty clears it).
fn keep_state(conn: &Connection, answer: &UpstreamAnswer) {
    if let Some(state) = &answer.state {
        *lock(&conn.state) = Some(state.clone()).filter(|s| !s.is_empty());
    }
}
