//! What a client asks of the service, whatever its protocol: one
//! [`Command`] per action, with typed fields. A protocol module turns its
//! frames into commands; `endpoint/` acts on them.

use std::sync::Arc;

use crate::hub::Data;

/// The longest `invocationId`, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 256;
/// The longest `streamId`, in bytes (the client's are 36-byte UUIDs).
pub(crate) const MAX_STREAM_ID: usize = 256;

/// A frame that breaks the protocol, and why: the socket ends (close code
/// 1003, `Invalid message: {why}`).
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl Invalid {
    /// A frame that breaks the protocol for this reason.
    pub(crate) fn new(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// One client action.
///
/// Some fields are a `Result`: the endpoint checks them in its own order,
/// between other checks with effects (the duplicate `ackId` first, the
/// permission before the payload), so which error the client gets first
/// does not depend on how eagerly a protocol reads its frames.
#[derive(Debug)]
pub(crate) enum Command {
    /// Asks for a pong.
    Ping,
    /// A reliable client acknowledges the messages it got, up to
    /// `sequence_id` (not read by other clients, whose frame may lack it).
    SequenceAck { sequence_id: Result<u64, Invalid> },
    /// Joins a group (a valid group name).
    JoinGroup {
        group: Result<String, Invalid>,
        ack_id: Option<u64>,
    },
    /// Leaves a group (a valid group name).
    LeaveGroup {
        group: Result<String, Invalid>,
        ack_id: Option<u64>,
    },
    /// Publishes `data` to a group, leaving the sender out if `no_echo`.
    SendToGroup {
        group: Result<String, Invalid>,
        data: Result<Data, Invalid>,
        no_echo: bool,
        ack_id: Option<u64>,
    },
    /// Opens a group stream (`sendToGroup` with a stream).
    OpenStream {
        group: Result<String, Invalid>,
        stream: Result<StreamOpen, Invalid>,
        ack_id: Option<u64>,
    },
    /// A fragment of an open stream, or a keep-alive (no `fragment`).
    StreamData {
        stream_id: Arc<str>,
        /// The fragment's sequence id and data.
        fragment: Option<(u64, Data)>,
    },
    /// Ends an open stream, cleanly or with the sender's error.
    StreamEnd {
        stream_id: Arc<str>,
        error: Option<StreamError>,
    },
    /// Raises the user event `event` (not empty).
    Event {
        event: Result<String, Invalid>,
        data: Result<Data, Invalid>,
        ack_id: Option<u64>,
    },
    /// Raises the user event `event` and answers with its reply. A bad
    /// `event` is refused without ending the socket.
    Invoke {
        invocation_id: String,
        event: Result<String, BadInvoke>,
        data: Data,
    },
    /// Drops a pending invocation.
    CancelInvocation { invocation_id: String },
}

impl Command {
    /// The id the client wants this command acknowledged with, for the
    /// commands answered by acks (the others are answered otherwise, or
    /// not at all).
    pub(crate) fn ack_id(&self) -> Option<u64> {
        match self {
            Self::JoinGroup { ack_id, .. }
            | Self::LeaveGroup { ack_id, .. }
            | Self::SendToGroup { ack_id, .. }
            | Self::OpenStream { ack_id, .. }
            | Self::Event { ack_id, .. } => *ack_id,
            _ => None,
        }
    }
}

/// What opening a stream asks for, beyond its group.
#[derive(Debug)]
pub(crate) struct StreamOpen {
    /// 1 to [`MAX_STREAM_ID`] bytes.
    pub(crate) stream_id: Arc<str>,
    /// Whether the opening frame carries data (it must not).
    pub(crate) with_data: bool,
    /// How long the stream may go without data or keep-alive.
    pub(crate) idle_timeout: IdleTimeout,
    /// Whether the stream's fragments leave the sender out.
    pub(crate) no_echo: bool,
}

/// The idle timeout a stream asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum IdleTimeout {
    /// None given.
    Default,
    /// This many milliseconds (not yet bounded).
    Millis(f64),
    /// Not a number: the open is refused.
    NotANumber,
}

/// The error a sender ends its stream with.
#[derive(Debug, Default)]
pub(crate) struct StreamError {
    /// What went wrong, in the sender's words.
    pub(crate) message: Option<String>,
    /// The sender's own error code.
    pub(crate) user_error_code: Option<String>,
}

/// Why an invocation is refused (`success: false`, the socket stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadInvoke {
    /// A target other than a user event.
    UnsupportedTarget,
    /// No event name, or an empty one.
    NoEvent,
}
