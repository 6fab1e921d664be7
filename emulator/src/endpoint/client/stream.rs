//! Group streams, the preview of `@azure/web-pubsub-client` 1.1.0
//! (`openGroupStream` / `onGroupStream`): one connection streams numbered
//! fragments to a group.
//!
//! * **Open**: `sendToGroup` with `stream: {streamId, idleTimeoutMs?}` and no
//!   data. Needs the permission `sendToGroup` needs; answered
//!   `streamAck {expectedSequenceId: 1}`, or refused with `streamClosed`
//!   and an error (the client fails `openGroupStream` with that error's
//!   name; a `streamNack` would count as an ack there).
//! * **Data**: `streamData {streamId, streamSequenceId, dataType, data}`.
//!   The expected id is published to the group as a `message` frame with
//!   `stream: {streamId, streamSequenceId}` and acked cumulatively; an id
//!   already seen (a replay after recovery) is dropped and acked again; an
//!   id past the expected one gets `streamNack` with the expected id. A
//!   frame with only `streamId` is a keep-alive.
//! * **End**: `streamEnd {streamId, error?}` publishes the terminal fragment
//!   (`endOfStream: true`, the next sequence id, text `""` so the client
//!   reads it), acks past it and closes the stream (`streamClosed` without
//!   error, which releases the client's session).
//! * **Closed by the emulator**: no data or keep-alive for the idle timeout,
//!   or the sender's connection ending for good, publish a terminal
//!   fragment with an error (and tell the sender, while it is there).
//!
//! The error names are the emulator's own ([`FORBIDDEN`] … [`IDLE_TIMEOUT`],
//! [`SENDER_GONE`](crate::lifecycle::streams::SENDER_GONE));
//! the real service's are not published.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::ended::invalid;
use super::ended::Ended;
use crate::hub::{lock, Connection, OpenStream, Outbound, StreamTag};
use crate::lifecycle::streams::{close, publish, Ending};
use crate::permissions::Action;
use crate::protocol::json::frames;
use crate::protocol::json::payload;
use crate::service::Shared;

/// Open streams a connection may have at once.
pub(crate) const MAX_STREAMS: usize = 16;
/// The idle timeout of a stream that asks for none.
pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// The shortest idle timeout: a smaller `idleTimeoutMs` is raised to it.
pub(crate) const MIN_IDLE: Duration = Duration::from_secs(1);
/// The longest idle timeout: a larger `idleTimeoutMs` is cut to it.
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(300);
/// The longest `streamId`, in bytes (the client's are 36-byte UUIDs).
pub(crate) const MAX_STREAM_ID: usize = 256;

/// The sender may not send to the group.
pub(crate) const FORBIDDEN: &str = "Forbidden";
/// A malformed open: data on the opening frame, a bad `idleTimeoutMs`, or
/// a stream id already open to another group.
pub(crate) const BAD_REQUEST: &str = "BadRequest";
/// The connection has [`MAX_STREAMS`] open streams.
pub(crate) const TOO_MANY_STREAMS: &str = "TooManyStreams";
/// `streamData` / `streamEnd` for a stream that is not open.
pub(crate) const STREAM_NOT_FOUND: &str = "StreamNotFound";
/// `streamNack`: a fragment past the expected one.
pub(crate) const OUT_OF_ORDER: &str = "OutOfOrder";
/// No data or keep-alive within the stream's idle timeout.
pub(crate) const IDLE_TIMEOUT: &str = "IdleTimeout";
/// The sender ended the stream with an `error`.
pub(crate) const USER_ERROR: &str = "UserError";

/// Queues a reply frame to the sender.
fn reply(conn: &Connection, frame: String) {
    conn.send(Outbound::Frame(frame));
}

/// `streamClosed` with an error.
fn refuse(conn: &Connection, stream_id: &str, name: &'static str, message: &str) {
    reply(
        conn,
        frames::stream_closed(stream_id, Some((name, message))),
    );
}

/// The `streamId` of a stream frame; a frame without a usable one breaks the protocol.
fn stream_id(value: Option<&Value>) -> Result<Arc<str>, Ended> {
    match value.and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.len() <= MAX_STREAM_ID => Ok(Arc::from(id)),
        _ => Err(invalid(&format!(
            "streamId must be a string of 1 to {MAX_STREAM_ID} bytes"
        ))),
    }
}

/// `sendToGroup` with a `stream` object: opens a stream from `conn` to
/// `group`. `ack_id` (not sent by the client) is answered too.
pub(super) fn open(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    group: &str,
    message: &Map<String, Value>,
    ack_id: Option<u64>,
) -> Result<(), Ended> {
    let Some(Value::Object(stream)) = message.get("stream") else {
        return Err(invalid("stream must be an object"));
    };
    let id = stream_id(stream.get("streamId"))?;
    let ack = |error: Option<(&'static str, &str)>| {
        if let Some(id) = ack_id {
            conn.send(Outbound::Ack {
                id,
                error: error.map(|(name, message)| (name, message.to_owned())),
            });
        }
    };
    let refused = |name: &'static str, message: &str| -> Result<(), Ended> {
        refuse(conn, &id, name, message);
        ack(Some((name, message)));
        Ok(())
    };
    if !lock(&conn.permissions).allows(Action::Send, group) {
        return refused(
            FORBIDDEN,
            &format!("No permission to send to group `{group}`."),
        );
    }
    if message.contains_key("data") || message.contains_key("dataType") {
        // The client's first write is `streamSequenceId` 1: data here would
        // have no id of its own.
        return refused(
            BAD_REQUEST,
            "A stream opens without data: send fragments with streamData.",
        );
    }
    let idle = match stream.get("idleTimeoutMs") {
        None | Some(Value::Null) => DEFAULT_IDLE,
        Some(Value::Number(ms)) => {
            let ms = ms.as_f64().unwrap_or(0.0);
            let (min, max) = (MIN_IDLE.as_secs_f64(), MAX_IDLE.as_secs_f64());
            Duration::from_secs_f64((ms / 1000.0).clamp(min, max))
        }
        Some(_) => {
            return refused(BAD_REQUEST, "idleTimeoutMs must be a number.");
        }
    };
    let no_echo = message
        .get("noEcho")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let token = {
        let mut streams = lock(&conn.streams);
        if let Some(existing) = streams.open.get(&id) {
            if &*existing.group != group {
                drop(streams);
                return refused(
                    BAD_REQUEST,
                    &format!("Stream `{id}` is already open to another group."),
                );
            }
            // The same open again: the stream stays as it is.
            let expected = existing.expected;
            drop(streams);
            reply(conn, frames::stream_ack(&id, expected, None));
            ack(None);
            return Ok(());
        }
        if streams.open.len() >= MAX_STREAMS {
            drop(streams);
            return refused(
                TOO_MANY_STREAMS,
                &format!("A connection may have at most {MAX_STREAMS} open streams."),
            );
        }
        streams.opened = streams.opened.wrapping_add(1);
        let token = streams.opened;
        let now = Instant::now();
        streams.open.insert(
            id.clone(),
            OpenStream {
                group: Arc::from(group),
                no_echo,
                expected: 1,
                idle,
                last_seen: now,
                since: now,
                token,
            },
        );
        token
    };
    tracing::debug!(target: "webpubsub_emulator::client", connection = %conn.id, stream = %id, group, "stream opened");
    reply(conn, frames::stream_ack(&id, 1, None));
    ack(None);
    shared.changed();
    tokio::spawn(watch_idle(
        Arc::downgrade(shared),
        Arc::downgrade(conn),
        id,
        token,
    ));
    Ok(())
}

/// `streamData`: a fragment, or a keep-alive (only `streamId`).
pub(super) fn data(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    message: &Map<String, Value>,
) -> Result<(), Ended> {
    let id = stream_id(message.get("streamId"))?;
    let sequence = match message.get("streamSequenceId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid("streamSequenceId must be an unsigned integer"))?,
        ),
    };
    let has_payload = message.contains_key("data") || message.contains_key("dataType");
    if sequence.is_some() != has_payload {
        return Err(invalid(
            "streamData carries streamSequenceId, dataType and data together, or none (keep-alive)",
        ));
    }
    // Decoded before the stream is looked at: a bad payload breaks the protocol.
    let fragment = match sequence {
        Some(n) => Some((n, payload(message)?)),
        None => None,
    };
    let mut streams = lock(&conn.streams);
    let Some(stream) = streams.open.get_mut(&id) else {
        drop(streams);
        refuse(
            conn,
            &id,
            STREAM_NOT_FOUND,
            &format!("Stream `{id}` is not open."),
        );
        return Ok(());
    };
    stream.last_seen = Instant::now();
    let Some((n, data)) = fragment else {
        return Ok(());
    };
    let expected = stream.expected;
    if n < expected {
        // A replay (recovery): published already.
        drop(streams);
        reply(conn, frames::stream_ack(&id, expected, None));
        return Ok(());
    }
    if n > expected {
        drop(streams);
        let message = format!("Expected streamSequenceId {expected}, got {n}.");
        reply(
            conn,
            frames::stream_ack(&id, expected, Some((OUT_OF_ORDER, &message))),
        );
        return Ok(());
    }
    stream.expected = n.saturating_add(1);
    let (group, no_echo) = (stream.group.clone(), stream.no_echo);
    // Published under the lock, so fragments of one stream keep their order
    // even if frames of the connection were ever read concurrently.
    publish(
        shared,
        conn,
        &group,
        no_echo,
        StreamTag {
            id: id.clone(),
            sequence: n,
            end: false,
            error: None,
        },
        data,
    );
    drop(streams);
    reply(conn, frames::stream_ack(&id, n.saturating_add(1), None));
    Ok(())
}

/// `streamEnd`: the terminal fragment, then the stream is closed.
pub(super) fn end(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    message: &Map<String, Value>,
) -> Result<(), Ended> {
    let id = stream_id(message.get("streamId"))?;
    let ending = match message.get("error") {
        None | Some(Value::Null) => Ending::Clean,
        Some(Value::Object(error)) => {
            let text = |name: &str| error.get(name).and_then(Value::as_str).map(str::to_owned);
            Ending::Failed(
                USER_ERROR,
                text("message").unwrap_or_else(|| "The sender ended the stream.".to_owned()),
                text("userErrorCode"),
            )
        }
        Some(_) => return Err(invalid("streamEnd's error must be an object")),
    };
    let Some(stream) = lock(&conn.streams).open.remove(&id) else {
        refuse(
            conn,
            &id,
            STREAM_NOT_FOUND,
            &format!("Stream `{id}` is not open."),
        );
        return Ok(());
    };
    let last = stream.expected;
    close(shared, conn, &id, stream, ending);
    // Past the end's own sequence id: the client's end is confirmed.
    reply(conn, frames::stream_ack(&id, last.saturating_add(1), None));
    reply(conn, frames::stream_closed(&id, None));
    Ok(())
}

/// Closes a stream that saw no data or keep-alive for its idle timeout.
async fn watch_idle(shared: Weak<Shared>, conn: Weak<Connection>, id: Arc<str>, token: u64) {
    loop {
        let deadline = {
            let Some(conn) = conn.upgrade() else { return };
            let streams = lock(&conn.streams);
            match streams.open.get(&id) {
                Some(stream) if stream.token == token => stream.last_seen + stream.idle,
                // Ended, or the id was reopened (with a watcher of its own).
                _ => return,
            }
        };
        tokio::time::sleep_until(deadline).await;
        let (Some(shared), Some(conn)) = (shared.upgrade(), conn.upgrade()) else {
            return;
        };
        let expired = {
            let mut streams = lock(&conn.streams);
            let due = streams.open.get(&id).is_some_and(|stream| {
                stream.token == token && stream.last_seen + stream.idle <= Instant::now()
            });
            if due {
                streams.open.remove(&id)
            } else {
                None
            }
        };
        if let Some(stream) = expired {
            let message = format!("No data or keep-alive for {} ms.", stream.idle.as_millis());
            refuse(&conn, &id, IDLE_TIMEOUT, &message);
            close(
                &shared,
                &conn,
                &id,
                stream,
                Ending::Failed(IDLE_TIMEOUT, message, None),
            );
            return;
        }
    }
}
