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
//! `protocol/json` reads these frames (`Command::OpenStream`,
//! `StreamData`, `StreamEnd`); this file keeps the streams.
//!
//! The error names are the emulator's own ([`FORBIDDEN`] … [`IDLE_TIMEOUT`],
//! [`SENDER_GONE`](crate::lifecycle::streams::SENDER_GONE));
//! the real service's are not published.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::hub::{lock, Connection, Data, OpenStream, Outbound, StreamTag};
use crate::lifecycle::streams::{close, publish, Ending};
use crate::permissions::Action;
use crate::protocol::json::frames;
use crate::protocol::{IdleTimeout, StreamError, StreamOpen};
use crate::service::Shared;

/// Open streams a connection may have at once.
pub(crate) const MAX_STREAMS: usize = 16;
/// The idle timeout of a stream that asks for none.
pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// The shortest idle timeout: a smaller `idleTimeoutMs` is raised to it.
pub(crate) const MIN_IDLE: Duration = Duration::from_secs(1);
/// The longest idle timeout: a larger `idleTimeoutMs` is cut to it.
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(300);

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
    conn.send(Outbound::Frame(frame.into()));
}

/// `streamClosed` with an error.
fn refuse(conn: &Connection, stream_id: &str, name: &'static str, message: &str) {
    reply(
        conn,
        frames::stream_closed(stream_id, Some((name, message))),
    );
}

/// Answers `streamData` / `streamEnd` for a stream that is not open.
fn not_open(conn: &Connection, stream_id: &str) {
    refuse(
        conn,
        stream_id,
        STREAM_NOT_FOUND,
        &format!("Stream `{stream_id}` is not open."),
    );
}

/// `sendToGroup` with a `stream` object: opens a stream from `conn` to
/// `group`. `ack_id` (not sent by the client) is answered too.
pub(super) fn open(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    group: &str,
    stream: StreamOpen,
    ack_id: Option<u64>,
) {
    let StreamOpen {
        stream_id: id,
        with_data,
        idle_timeout,
        no_echo,
    } = stream;
    let ack = |error: Option<(&'static str, &str)>| {
        if let Some(id) = ack_id {
            conn.send(Outbound::Ack {
                id,
                error: error.map(|(name, message)| Box::new((name, message.to_owned()))),
            });
        }
    };
    let refused = |name: &'static str, message: &str| {
        refuse(conn, &id, name, message);
        ack(Some((name, message)));
    };
    if !lock(&conn.permissions).allows(Action::Send, group) {
        return refused(
            FORBIDDEN,
            &format!("No permission to send to group `{group}`."),
        );
    }
    if with_data {
        // The client's first write is `streamSequenceId` 1: data here would
        // have no id of its own.
        return refused(
            BAD_REQUEST,
            "A stream opens without data: send fragments with streamData.",
        );
    }
    let idle = match idle_timeout {
        IdleTimeout::Default => DEFAULT_IDLE,
        IdleTimeout::Millis(ms) => {
            let (min, max) = (MIN_IDLE.as_secs_f64(), MAX_IDLE.as_secs_f64());
            Duration::from_secs_f64((ms / 1000.0).clamp(min, max))
        }
        IdleTimeout::NotANumber => {
            return refused(BAD_REQUEST, "idleTimeoutMs must be a number.");
        }
    };
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
            return;
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
}

/// `streamData`: a fragment (its sequence id and data), or a keep-alive.
pub(super) fn data(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    id: Arc<str>,
    fragment: Option<(u64, Data)>,
) {
    let mut streams = lock(&conn.streams);
    let Some(stream) = streams.open.get_mut(&id) else {
        drop(streams);
        not_open(conn, &id);
        return;
    };
    stream.last_seen = Instant::now();
    let Some((n, data)) = fragment else {
        return;
    };
    let expected = stream.expected;
    if n < expected {
        // A replay (recovery): published already.
        drop(streams);
        reply(conn, frames::stream_ack(&id, expected, None));
        return;
    }
    if n > expected {
        drop(streams);
        let message = format!("Expected streamSequenceId {expected}, got {n}.");
        reply(
            conn,
            frames::stream_ack(&id, expected, Some((OUT_OF_ORDER, &message))),
        );
        return;
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
}

/// `streamEnd`: the terminal fragment, then the stream is closed.
pub(super) fn end(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    id: Arc<str>,
    error: Option<StreamError>,
) {
    let ending = match error {
        None => Ending::Clean,
        Some(error) => Ending::Failed(
            USER_ERROR,
            error
                .message
                .unwrap_or_else(|| "The sender ended the stream.".to_owned()),
            error.user_error_code,
        ),
    };
    let Some(stream) = lock(&conn.streams).open.remove(&id) else {
        not_open(conn, &id);
        return;
    };
    let last = stream.expected;
    close(shared, conn, &id, stream, ending);
    // Past the end's own sequence id: the client's end is confirmed.
    reply(conn, frames::stream_ack(&id, last.saturating_add(1), None));
    reply(conn, frames::stream_closed(&id, None));
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
