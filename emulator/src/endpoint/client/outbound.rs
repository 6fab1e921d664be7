//! Queued messages as frames of the connection's protocol: raw clients get
//! the data alone, JSON clients `message` frames (numbered for reliable
//! ones, which keep them until acknowledged), acks, pongs and goodbyes.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;

use crate::hub::{Connection, Encoding, Outbound, Protocol};
use crate::protocol::json::frames;
use crate::protocol::raw;

/// A close frame; the reason is cut to the 123 bytes a close frame holds.
pub(super) fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.get(..end).unwrap_or_default().to_owned()),
    }))
}

/// What a queued message becomes on the socket.
pub(super) enum Write {
    /// One frame to write.
    Frame(Message),
    /// Nothing: raw clients get no acks or pongs.
    Skip,
    /// The service closes the socket: these frames, then this reason.
    Close(Vec<Message>, String),
}

/// Turns a queued message into frames for this connection's protocol.
pub(super) fn write_one(conn: &Connection, message: Outbound) -> Write {
    match (conn.protocol, message) {
        (Protocol::Raw, Outbound::Message(envelope)) => Write::Frame(raw::frame(&envelope.data)),
        (Protocol::Raw, Outbound::Ack { .. } | Outbound::Pong | Outbound::Frame(_)) => Write::Skip,
        (_, Outbound::KeepAlive) => Write::Frame(Message::Ping(Bytes::new())),
        // MQTT connections are written by `crate::endpoint::mqtt`, never here.
        (Protocol::Mqtt, _) => Write::Skip,
        (Protocol::Raw, Outbound::Close { reason }) => {
            Write::Close(vec![close_frame(1000, &reason)], reason.into())
        }
        (Protocol::Json, Outbound::Message(envelope)) => {
            let frame = envelope.frames.get_or_encode(Encoding::Json, || {
                text(frames::message(&envelope.origin, &envelope.data, None))
            });
            Write::Frame(frame.clone())
        }
        (Protocol::ReliableJson, Outbound::Message(envelope)) => {
            let sequence = conn.reliable_push(&envelope);
            Write::Frame(text(frames::message(
                &envelope.origin,
                &envelope.data,
                Some(sequence),
            )))
        }
        (_, Outbound::Ack { id, error }) => Write::Frame(text(frames::ack(id, error.as_deref()))),
        (_, Outbound::Pong) => Write::Frame(text(frames::PONG.to_owned())),
        (_, Outbound::Frame(frame)) => Write::Frame(text(frame.into())),
        (_, Outbound::Close { reason }) => Write::Close(
            vec![
                text(frames::disconnected(&reason)),
                close_frame(1000, &reason),
            ],
            reason.into(),
        ),
    }
}

/// A text frame.
pub(super) fn text(frame: String) -> Message {
    Message::Text(Utf8Bytes::from(frame))
}
