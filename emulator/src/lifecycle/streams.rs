//! How a connection's group streams end: the terminal fragment each
//! group's members get, also when the sender's connection ends for good
//! ([`sender_gone`]). What stream frames mean is the client endpoint's.

use std::sync::Arc;

use bytes::Bytes;

use crate::hub::{
    lock, Connection, Data, Envelope, OpenStream, Origin, Outbound, Protocol, StreamError,
    StreamTag, Target,
};
use crate::service::Shared;
use webpubsub::events::DataType;

/// The sender's connection ended while the stream was open.
pub(crate) const SENDER_GONE: &str = "SenderDisconnected";

/// How a stream ended, for its terminal fragment.
pub(crate) enum Ending {
    /// `streamEnd` without error.
    Clean,
    /// An error: name, message, the sender's `userErrorCode`.
    Failed(&'static str, String, Option<String>),
}

/// Ends every stream of a connection that is gone for good.
pub(crate) fn sender_gone(shared: &Arc<Shared>, conn: &Arc<Connection>) {
    let open: Vec<(Arc<str>, OpenStream)> = lock(&conn.streams).open.drain().collect();
    for (id, stream) in open {
        close(
            shared,
            conn,
            &id,
            stream,
            Ending::Failed(
                SENDER_GONE,
                "The sender's connection ended before the stream did.".to_owned(),
                None,
            ),
        );
    }
}

/// Publishes the terminal fragment of a stream already taken out of the table.
pub(crate) fn close(
    shared: &Arc<Shared>,
    conn: &Connection,
    id: &Arc<str>,
    stream: OpenStream,
    ending: Ending,
) {
    let error = match ending {
        Ending::Clean => None,
        Ending::Failed(name, message, user_code) => Some(StreamError {
            name,
            message,
            user_code,
        }),
    };
    tracing::debug!(target: "webpubsub_emulator::client", connection = %conn.id, stream = %id,
        error = error.as_ref().map(|e| e.name), "stream closed");
    publish(
        shared,
        conn,
        &stream.group,
        stream.no_echo,
        StreamTag {
            id: id.clone(),
            sequence: stream.expected,
            end: true,
            error,
        },
        // The client drops a frame without a valid dataType.
        Data {
            kind: DataType::Text,
            bytes: Bytes::new(),
        },
    );
    shared.changed();
}

/// Sends a fragment to the group's members (minus the sender with
/// `noEcho`). Raw clients get data fragments as plain messages, and not
/// the payload-less end.
pub(crate) fn publish(
    shared: &Shared,
    conn: &Connection,
    group: &Arc<str>,
    no_echo: bool,
    tag: StreamTag,
    data: Data,
) {
    let excluded = if no_echo {
        vec![conn.id.to_string()]
    } else {
        Vec::new()
    };
    let end = tag.end;
    let envelope = Envelope::new(
        Origin::Group {
            group: group.clone(),
            from_user: conn.user_id.clone(),
            stream: Some(Arc::new(tag)),
        },
        data,
    );
    for target in shared
        .hubs
        .targets(&conn.hub, Target::Group(group), &excluded, None)
    {
        if end && target.protocol == Protocol::Raw {
            continue;
        }
        target.send(Outbound::Message(envelope.clone()));
    }
}
