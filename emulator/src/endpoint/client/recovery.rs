//! Recovery: a reliable client whose transport broke reconnects with its
//! connection id and reconnection token within the recovery window, and
//! gets the unacknowledged messages again, then the rest, in order.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt as _;
use http::HeaderValue;

use super::connection::after;
use super::ended::Ended;
use super::outbound::text;
use super::session::serve;
use crate::hub::{lock, Connection, Envelope, Protocol, Queue};
use crate::lifecycle::handshake::{configure, halves, Sink, Source};
use crate::protocol::json::frames;
use crate::protocol::raw::RawMode;
use crate::service::Shared;

/// A reliable client asks to resume a connection whose transport broke.
pub(super) fn recover(
    shared: Arc<Shared>,
    hub: &str,
    id: &str,
    token: &str,
    ws: WebSocketUpgrade,
    offered: &[String],
) -> Response {
    // Only a lookup: nothing is created for an unknown hub or connection.
    let conn = shared.hubs.get(hub, id).filter(|conn| {
        conn.protocol == Protocol::ReliableJson
            && !conn.is_killed()
            && shared.reconnect_key.verify(hub, id, token)
            && offered.iter().any(|o| o == Protocol::RELIABLE_JSON)
    });
    let mut ws = configure(ws);
    if offered.iter().any(|o| o == Protocol::RELIABLE_JSON) {
        ws.set_selected_protocol(HeaderValue::from_static(Protocol::RELIABLE_JSON));
    } else if let Some(first) = offered.first().and_then(|o| HeaderValue::from_str(o).ok()) {
        ws.set_selected_protocol(first);
    }
    let Some(conn) = conn else {
        tracing::info!(target: "webpubsub_emulator::client", connection = %id, "recovery refused");
        return ws.on_upgrade(|socket| async move {
            let (mut sink, _) = halves(socket);
            refuse_recovery(&mut sink).await;
        });
    };
    // The old socket may still be attached (a half-open TCP connection the
    // emulator has not noticed yet): ask it to let go, then take over.
    let parked = lock(&conn.parked).take();
    if parked.is_none() {
        conn.takeover.notify_waiters();
    }
    ws.on_upgrade(move |socket| take_over(shared, conn, parked, halves(socket)))
}

/// The recovering socket takes the connection over once its queue is free
/// (parked, or let go by the old socket), or is refused.
async fn take_over(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    parked: Option<Queue>,
    (mut sink, stream): (Sink, Source),
) {
    let rx = match parked {
        Some(rx) => Some(rx),
        None => wait_parked(&conn).await,
    };
    match rx {
        Some(rx) => {
            conn.bump_generation();
            shared.hubs.attach(&conn);
            tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, "connection recovered");
            resume(shared, conn, rx, (sink, stream)).await;
        }
        None => {
            tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, "recovery refused: the connection did not come free");
            refuse_recovery(&mut sink).await;
        }
    }
}

/// Waits (up to 2 s) for the socket serving a connection to let it go.
async fn wait_parked(conn: &Connection) -> Option<Queue> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(rx) = lock(&conn.parked).take() {
            return Some(rx);
        }
        if conn.ended.load(Ordering::Acquire) || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A failed recovery is an upgrade followed by close 1008, so the client
/// stops retrying and connects anew.
async fn refuse_recovery(sink: &mut Sink) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: Utf8Bytes::from_static("The connection cannot be recovered."),
        })))
        .await;
}

/// Serves a recovered connection: unacknowledged messages first, in order.
async fn resume(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    rx: Queue,
    (mut sink, stream): (Sink, Source),
) {
    let pending: Vec<(u64, Arc<Envelope>)> = lock(&conn.reliable).frames.iter().cloned().collect();
    for (sequence, envelope) in pending {
        let frame = frames::message(&envelope.origin, &envelope.data, Some(sequence));
        if sink.send(text(frame)).await.is_err() {
            after(shared, conn, rx, Ended::Dropped);
            return;
        }
    }
    let (ended, rx) = serve(&shared, &conn, rx, (sink, stream), &RawMode::default()).await;
    after(shared, conn, rx, ended);
}
