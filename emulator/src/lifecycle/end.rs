//! A connection ended for good, once, whatever its protocol: forgotten by
//! the hubs, its group streams closed, `disconnected` raised.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::events::{event_call, json_body};
use super::streams::sender_gone;
use crate::hub::Connection;
use crate::service::Shared;
use webpubsub::wire::{DisconnectedBody, EventType};

/// Ends a connection for good: forgets it and tells the upstream.
pub(crate) fn finish(shared: &Arc<Shared>, conn: &Arc<Connection>, reason: Option<String>) {
    if conn.ended.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.hubs.remove(&conn.hub, &conn.id);
    // Uncounted as detached, also if another connection had its id by now.
    shared.hubs.attach(conn);
    sender_gone(shared, conn);
    shared.changed();
    tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id, reason = reason.as_deref(), "client disconnected");
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        conn.connected_delivered().await;
        let body = match &conn.mqtt {
            Some(link) => link.disconnected_body(reason.as_deref()),
            None => DisconnectedBody::new(reason),
        };
        let call = event_call(
            &conn,
            EventType::Disconnected,
            "application/json",
            json_body(&body),
        );
        let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
    });
}
