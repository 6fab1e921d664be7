//! One socket of a connection: the WebSocket limits it is upgraded with,
//! then [`serve`], which reads client frames and writes queued messages
//! until the socket ends, and says how it ended.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;

use super::ended::Ended;
use super::invoke::Invocations;
use super::outbound::{close_frame, write_one, Write};
use super::reader::Reader;
use crate::hub::{lock, Connection, Outbound};
use crate::lifecycle::finish;
use crate::lifecycle::handshake::MAX_FRAME;
use crate::protocol::json::frames;
use crate::protocol::raw::RawMode;
use crate::service::Shared;

/// WebSocket ping interval of the service (the longest the emulator uses).
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Whether a read failed because the peer sent a message or frame over
/// [`MAX_FRAME`]. axum hides tungstenite's error type, so this reads its
/// message: `Space limit exceeded: Message too long: … > …`.
fn too_big(error: &axum::Error) -> bool {
    error.to_string().contains("Space limit exceeded")
}

/// Reads client frames and writes queued messages until the socket ends.
pub(super) async fn serve(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    rx: &mut mpsc::Receiver<Outbound>,
    socket: WebSocket,
    raw: &RawMode,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    // Pending invocations end with their socket: the client rejects them
    // when it closes (dropping `reader` aborts them).
    let mut reader = Reader {
        shared,
        conn,
        raw,
        invocations: Invocations::new(shared, conn),
    };
    // A live client answers pings, so a silent one is gone (or stalling).
    let silence = shared.client_timeout.max(Duration::from_millis(30));
    let ping_every = (silence / 3).clamp(Duration::from_millis(10), KEEP_ALIVE);
    let read = async {
        loop {
            let frame = match tokio::time::timeout(silence, stream.next()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ended::Dropped,
                Err(_) => {
                    tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id,
                        timeout = ?silence, "client silent for too long: dropping its socket");
                    return Ended::Dropped;
                }
            };
            let outcome = match frame {
                Ok(Message::Text(text)) => reader.text(text.as_str()).await,
                Ok(Message::Binary(bytes)) => reader.binary(bytes).await,
                Ok(Message::Close(_)) => return Ended::ClientClosed,
                Ok(Message::Ping(_) | Message::Pong(_)) => Ok(()),
                Err(e) if too_big(&e) => {
                    return Ended::Terminated(
                        1009,
                        format!("Message too big: the limit is {MAX_FRAME} bytes."),
                    )
                }
                Err(_) => return Ended::Dropped,
            };
            if let Err(ended) = outcome {
                return ended;
            }
        }
    };
    let write = async {
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        loop {
            tokio::select! {
                message = rx.recv() => {
                    let Some(mut message) = message else { return Ended::Dropped };
                    // Write what is queued (up to a batch) before one flush.
                    let mut batch = 0;
                    loop {
                        let cost = message.cost();
                        match write_one(conn, message) {
                            Write::Frame(frame) => {
                                if sink.feed(frame).await.is_err() {
                                    return Ended::Dropped;
                                }
                            }
                            Write::Skip => {}
                            Write::Close(frames, reason) => {
                                for frame in frames {
                                    let _ = sink.send(frame).await;
                                }
                                return Ended::ServiceClosed(reason);
                            }
                        }
                        conn.written(cost);
                        batch += 1;
                        match rx.try_recv() {
                            Ok(next) if batch < 64 => message = next,
                            Ok(next) => {
                                if sink.flush().await.is_err() {
                                    return Ended::Dropped;
                                }
                                batch = 0;
                                message = next;
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        return Ended::Dropped;
                    }
                }
                _ = keep_alive.tick() => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
    };
    // A slow reader is cut off even while a write to it is blocked.
    let killed = async {
        conn.kill.notified().await;
        let reason = lock(&conn.kill_reason).clone().unwrap_or_default();
        Ended::Terminated(1008, reason)
    };
    // A recovering client takes the connection over from this socket.
    let taken_over = async {
        conn.takeover.notified().await;
        Ended::Dropped
    };
    let ended = tokio::select! {
        ended = read => ended,
        ended = write => ended,
        ended = killed => ended,
        ended = taken_over => ended,
    };
    if let Ended::Terminated(code, reason) = &ended {
        // Gone for good from now on, whatever the goodbye below takes.
        finish(shared, conn, Some(reason.clone()));
        // The peer may not be reading: say goodbye, but not forever.
        let goodbye = async {
            if conn.protocol.is_json() {
                let _ = sink
                    .send(Message::Text(Utf8Bytes::from(frames::disconnected(reason))))
                    .await;
            }
            let _ = sink.send(close_frame(*code, reason)).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
    if let Ended::ClientClosed = ended {
        let _ = sink.close().await;
    }
    ended
}
