//! What a JSON-protocol client frame says: its type ([`Kind`]), its
//! `ackId`, and its fields, read as the endpoint needs them, so a frame is
//! checked in the same order whatever it carries. Nothing here acts.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::hub::Data;
use webpubsub::events::DataType;
use webpubsub::names::GroupName;

/// A frame that breaks the protocol, and why: the socket ends (close code
/// 1003, `Invalid message: {why}`).
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl Invalid {
    fn new(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// The type of a client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ping,
    /// Reliable clients acknowledge the messages they got.
    SequenceAck,
    Invoke,
    CancelInvocation,
    StreamData,
    StreamEnd,
    JoinGroup,
    LeaveGroup,
    SendToGroup,
    Event,
}

/// One client frame: its type, its `ackId`, and the rest of its fields.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) kind: Kind,
    pub(crate) ack_id: Option<u64>,
    /// The whole frame, for the fields its type reads.
    pub(crate) message: Map<String, Value>,
}

/// Reads a text frame: a JSON object, a valid `ackId` if any, a known `type`.
pub(crate) fn parse(text: &str) -> Result<Request, Invalid> {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return Err(Invalid::new("not a JSON object"));
    };
    let ack_id = match message.get("ackId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| Invalid::new("ackId must be an unsigned integer"))?,
        ),
    };
    let kind = match message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "ping" => Kind::Ping,
        "sequenceAck" => Kind::SequenceAck,
        "invoke" => Kind::Invoke,
        "cancelInvocation" => Kind::CancelInvocation,
        "streamData" => Kind::StreamData,
        "streamEnd" => Kind::StreamEnd,
        "joinGroup" => Kind::JoinGroup,
        "leaveGroup" => Kind::LeaveGroup,
        "sendToGroup" => Kind::SendToGroup,
        "event" => Kind::Event,
        other => return Err(Invalid(format!("unknown type `{other}`"))),
    };
    Ok(Request {
        kind,
        ack_id,
        message,
    })
}

impl Request {
    fn string(&self, name: &str) -> Option<&str> {
        self.message.get(name).and_then(Value::as_str)
    }

    /// `sequenceAck`'s `sequenceId`.
    pub(crate) fn sequence_id(&self) -> Result<u64, Invalid> {
        self.message
            .get("sequenceId")
            .and_then(Value::as_u64)
            .ok_or_else(|| Invalid::new("sequenceAck needs a sequenceId"))
    }

    /// The `group`: a valid group name.
    pub(crate) fn group(&self) -> Result<String, Invalid> {
        self.string("group")
            .filter(|g| GroupName::is_valid(g))
            .map(str::to_owned)
            .ok_or_else(|| Invalid::new("a group name is required"))
    }

    /// The `event` name: not empty.
    pub(crate) fn event(&self) -> Result<String, Invalid> {
        self.string("event")
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Invalid::new("an event name is required"))
    }

    /// Whether `sendToGroup` leaves the sender out (`noEcho`).
    pub(crate) fn no_echo(&self) -> bool {
        self.message
            .get("noEcho")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether `sendToGroup` opens a group stream (`stream`).
    pub(crate) fn opens_stream(&self) -> bool {
        self.message.contains_key("stream")
    }

    /// The frame's payload ([`payload`]).
    pub(crate) fn payload(&self) -> Result<Data, Invalid> {
        payload(&self.message)
    }
}

/// The `dataType` + `data` of a client message.
pub(crate) fn payload(message: &Map<String, Value>) -> Result<Data, Invalid> {
    let data = message.get("data").cloned().unwrap_or(Value::Null);
    match message
        .get("dataType")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Ok(Data {
            kind: DataType::Json,
            bytes: Bytes::from(data.to_string()),
        }),
        "text" => match data {
            Value::String(s) => Ok(Data {
                kind: DataType::Text,
                bytes: Bytes::from(s),
            }),
            _ => Err(Invalid::new("text data must be a string")),
        },
        "binary" | "protobuf" => match data {
            Value::String(s) => STANDARD
                .decode(s.as_bytes())
                .map(|b| Data {
                    kind: DataType::Binary,
                    bytes: Bytes::from(b),
                })
                .map_err(|_| Invalid::new("binary data must be base64")),
            _ => Err(Invalid::new("binary data must be a base64 string")),
        },
        other => Err(Invalid(format!("unknown dataType `{other}`"))),
    }
}
