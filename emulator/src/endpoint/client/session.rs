//! One socket of a connection: the WebSocket limits it is upgraded with,
//! then [`serve`], which reads client frames and writes queued messages
//! until the socket ends, and says how it ended.
//!
//! Two tasks serve a socket. The writer ([`write`]) owns the send half and
//! the queue, and does nothing but turn queued messages into frames: a
//! broadcast wakes it alone, once per burst, and it writes the burst with
//! one flush. The task that called [`serve`] reads client frames, keeps the
//! connection alive and watches for the end (a kill, a recovering client
//! taking over, the writer stopping); it wakes only for those.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::{SinkExt as _, StreamExt as _};

use super::ended::Ended;
use super::invoke::Invocations;
use super::outbound::{close_frame, write_one, Write};
use super::reader::Reader;
use crate::hub::{lock, Connection, Outbound, Queue, Taken, BURST};
use crate::lifecycle::finish;
use crate::lifecycle::handshake::{too_big, Sink, Source, MAX_FRAME};
use crate::protocol::json::frames;
use crate::protocol::raw::RawMode;
use crate::service::Shared;

/// WebSocket ping interval of the service (the longest the emulator uses).
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// What the writer task holds: the socket's send half and the queue. It
/// comes back to [`serve`] when the writer stops, for the goodbye frames
/// and for a reliable connection's recovery.
struct Out {
    sink: Option<Sink>,
    rx: Option<Queue>,
}

/// The writer task: queued messages to frames, a burst at a time (at most
/// 64 frames before a flush), until the queue or the socket ends or the
/// service closes the socket.
async fn write(conn: Arc<Connection>, out: Arc<tokio::sync::Mutex<Out>>) -> Ended {
    let mut out = out.lock_owned().await;
    let Out {
        sink: Some(sink),
        rx: Some(rx),
    } = &mut *out
    else {
        return Ended::Dropped;
    };
    loop {
        let mut message = rx.recv().await;
        // Given back before the flush, and before any return: a reliable
        // connection's budget outlives this socket.
        let mut taken = Taken::default();
        loop {
            taken.add(message.cost());
            match write_one(&conn, message) {
                Write::Frame(frame) => {
                    if sink.feed(frame).await.is_err() {
                        taken.give_back(&conn);
                        return Ended::Dropped;
                    }
                }
                Write::Skip => {}
                Write::Close(frames, reason) => {
                    taken.give_back(&conn);
                    for frame in frames {
                        let _ = sink.send(frame).await;
                    }
                    return Ended::ServiceClosed(reason);
                }
            }
            match rx.try_recv() {
                Some(next) if taken.count() < BURST => message = next,
                Some(next) => {
                    taken.give_back(&conn);
                    if sink.flush().await.is_err() {
                        return Ended::Dropped;
                    }
                    message = next;
                }
                None => break,
            }
        }
        taken.give_back(&conn);
        if sink.flush().await.is_err() {
            return Ended::Dropped;
        }
    }
}

/// Reads client frames while a writer task writes queued messages, until
/// the socket ends: how it ended, and the queue (kept for a reliable
/// connection's recovery).
pub(super) async fn serve(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    rx: Queue,
    (sink, mut stream): (Sink, Source),
    raw: &RawMode,
) -> (Ended, Queue) {
    let out = Arc::new(tokio::sync::Mutex::new(Out {
        sink: Some(sink),
        rx: Some(rx),
    }));
    let mut writer = tokio::spawn(write(conn.clone(), out.clone()));
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
        let mut last_read = tokio::time::Instant::now();
        loop {
            let frame = match tokio::time::timeout(ping_every, stream.next()).await {
                Ok(Some(frame)) => {
                    last_read = tokio::time::Instant::now();
                    frame
                }
                Ok(None) => return Ended::Dropped,
                Err(_) if last_read.elapsed() >= silence => {
                    tracing::info!(target: "webpubsub_emulator::client", connection = %conn.id,
                        timeout = ?silence, "client silent for too long: dropping its socket");
                    return Ended::Dropped;
                }
                Err(_) => {
                    // Silent for a while: the service pings it.
                    conn.send(Outbound::KeepAlive);
                    continue;
                }
            };
            // A frame's work (an upstream call, perhaps) is boxed: its
            // future is large, and this task lives as long as the socket.
            let outcome = match frame {
                Ok(Message::Text(text)) => Box::pin(reader.text(text.as_str())).await,
                Ok(Message::Binary(bytes)) => Box::pin(reader.binary(bytes)).await,
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
    let (ended, writer_done) = tokio::select! {
        ended = read => (ended, false),
        ended = &mut writer => (ended.unwrap_or(Ended::Dropped), true),
        ended = killed => (ended, false),
        ended = taken_over => (ended, false),
    };
    drop(reader);
    if !writer_done {
        // Stopped wherever it is (a write to a peer that does not read
        // included); what it holds comes back when it is gone.
        writer.abort();
        let _ = writer.await;
    }
    // The writer's task is gone, and the lock with it.
    let (sink, rx) = {
        let mut out = out.lock().await;
        (out.sink.take(), out.rx.take())
    };
    // Never `None` (only this function takes them); a closed queue if so.
    let rx = rx.unwrap_or_else(Queue::closed);
    let Some(sink) = sink else {
        return (ended, rx);
    };
    // Boxed: rare, and its futures would otherwise size this task.
    Box::pin(goodbye(shared, conn, sink, &ended)).await;
    (ended, rx)
}

/// The end of a socket: a terminated one is finished and told why (close
/// code and, for JSON clients, a `disconnected` frame); a client's close is
/// answered.
async fn goodbye(shared: &Arc<Shared>, conn: &Arc<Connection>, mut sink: Sink, ended: &Ended) {
    if let Ended::Terminated(code, reason) = ended {
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
}
