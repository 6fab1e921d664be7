//! The events a connection raises once it is connected, whatever its
//! protocol: `connected` ([`raise_connected`]), user events
//! ([`user_event`]), each as an upstream call of this connection
//! ([`event_call`]: its state, its next event id).

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use crate::hub::{lock, Connection, Data};
use crate::service::Shared;
use crate::upstream::{UpstreamAnswer, UpstreamCall, UpstreamError};
use webpubsub::events::DataType;
use webpubsub::wire::{ConnectedBody, EventType};

/// Raises `connected` in its own task: it does not hold up the client;
/// later events wait for it ([`Connection::connected_delivered`]), so the
/// upstream sees them in order.
pub(crate) fn raise_connected(shared: &Arc<Shared>, conn: &Arc<Connection>) {
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let call = event_call(
            &conn,
            EventType::Connected,
            "application/json",
            json_body(&ConnectedBody::new()),
        );
        // The answer to a non-blocking event is not read (state included).
        let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
        conn.connected_over();
    });
}

/// A system event's body (one of `webpubsub::wire`'s body types) as JSON.
/// They always serialize; an empty body would be the emulator's bug.
pub(crate) fn json_body(body: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
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
pub(crate) enum UserEventError {
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
pub(crate) async fn user_event(
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
pub(crate) fn keep_state(conn: &Connection, answer: &UpstreamAnswer) {
    if let Some(state) = &answer.state {
        *lock(&conn.state) = Some(state.clone()).filter(|s| !s.is_empty());
    }
}
