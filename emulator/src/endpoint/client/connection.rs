//! A JSON or raw connection's life beyond one socket: registered when its
//! first socket opens ([`start`], which raises `connected`), parked for
//! recovery or ended when a socket goes ([`after`]); ending it for good is
//! `lifecycle/`'s ([`finish`]).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::SinkExt as _;

use super::ended::Ended;
use super::outbound::close_frame;
use super::session::serve;
use crate::hub::{lock, Connection, Protocol, Queue};
use crate::lifecycle::handshake::{Sink, Source};
use crate::lifecycle::{finish, raise_connected};
use crate::protocol::json::frames;
use crate::protocol::raw::RawMode;
use crate::service::Shared;

/// Registers a new connection and serves its first socket.
pub(super) async fn start(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    rx: Queue,
    (mut sink, stream): (Sink, Source),
    groups: Vec<String>,
    raw: RawMode,
) {
    if let Err(refusal) = shared.hubs.add(&conn, &groups) {
        // Another handshake of the same user got in first.
        tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, reason = %refusal, "refused client");
        let _ = sink.send(close_frame(1008, &refusal.to_string())).await;
        return;
    }
    shared.changed();
    if conn.protocol.is_json() {
        let token =
            (conn.protocol == Protocol::ReliableJson).then_some(conn.reconnection_token.as_str());
        let frame = frames::connected(&conn.id, conn.user_id.as_deref(), token);
        if sink
            .send(Message::Text(Utf8Bytes::from(frame)))
            .await
            .is_err()
        {
            finish(&shared, &conn, Some("The connection was lost.".to_owned()));
            return;
        }
    }
    raise_connected(&shared, &conn);
    let (ended, rx) = serve(&shared, &conn, rx, (sink, stream), &raw).await;
    after(shared, conn, rx, ended);
}

/// What happens once a socket is gone: keep a reliable connection for
/// recovery, or end the connection.
pub(super) fn after(shared: Arc<Shared>, conn: Arc<Connection>, rx: Queue, ended: Ended) {
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
