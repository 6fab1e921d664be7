//! What travels to connections: message payloads, their origin, the
//! envelope shared by every recipient (with its frames, encoded once per
//! protocol), and what a connection's writer sends.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Message;
use bytes::Bytes;
use webpubsub::events::DataType;

/// A message payload, shared by every recipient.
#[derive(Debug)]
pub(crate) struct Data {
    /// How the bytes are typed (`Json`: they are one valid JSON value).
    pub(crate) kind: DataType,
    pub(crate) bytes: Bytes,
}

/// Where a message comes from, as JSON clients see it.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Server,
    Group {
        group: Arc<str>,
        from_user: Option<Arc<str>>,
        /// Set on the fragments of a group stream (`endpoint/client/stream.rs`).
        stream: Option<Arc<StreamTag>>,
    },
}

/// The `stream` object of a group stream's fragment, as members see it.
#[derive(Debug, Clone)]
pub(crate) struct StreamTag {
    pub(crate) id: Arc<str>,
    /// `streamSequenceId`: 1, 2, … per stream; the terminal fragment takes the next one.
    pub(crate) sequence: u64,
    /// `endOfStream`: the stream's last fragment.
    pub(crate) end: bool,
    /// Why the stream ended, on a terminal fragment of a failed stream.
    pub(crate) error: Option<StreamError>,
}

/// The `error` of a failed stream: `{name, message, userErrorCode?}`.
#[derive(Debug, Clone)]
pub(crate) struct StreamError {
    pub(crate) name: &'static str,
    pub(crate) message: String,
    pub(crate) user_code: Option<String>,
}

/// A message on its way to one or many connections.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) origin: Origin,
    pub(crate) data: Data,
    /// Its frames, each built once for every recipient of that encoding.
    pub(crate) frames: FrameCache,
}

impl Envelope {
    pub(crate) fn new(origin: Origin, data: Data) -> Arc<Self> {
        Arc::new(Self {
            origin,
            data,
            frames: FrameCache::default(),
        })
    }
}

/// An encoding whose frame of a message is the same for every recipient,
/// so it is built once per message ([`FrameCache`]). A protocol whose frames
/// are per recipient (numbered reliable JSON, raw data) needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// A `message` frame of the JSON protocol (`protocol/json`).
    Json,
    /// A QoS 0 PUBLISH of MQTT 3.1.1 (`protocol/mqtt`); QoS 1 ones carry a
    /// packet id of their recipient's.
    MqttV4,
    /// A QoS 0 PUBLISH of MQTT 5.0.
    MqttV5,
}

/// A message's frames, one slot per [`Encoding`], each filled by the first
/// recipient that needs it: a broadcast to many clients of one protocol
/// encodes once.
#[derive(Debug, Default)]
pub(crate) struct FrameCache {
    json: OnceLock<Message>,
    mqtt_v4: OnceLock<Message>,
    mqtt_v5: OnceLock<Message>,
}

impl FrameCache {
    /// The message's frame in `encoding` (a text or binary WebSocket
    /// message, cheap to clone), built by `encode` if no recipient built it
    /// yet.
    pub(crate) fn get_or_encode(
        &self,
        encoding: Encoding,
        encode: impl FnOnce() -> Message,
    ) -> &Message {
        let slot = match encoding {
            Encoding::Json => &self.json,
            Encoding::MqttV4 => &self.mqtt_v4,
            Encoding::MqttV5 => &self.mqtt_v5,
        };
        slot.get_or_init(encode)
    }
}

/// What the writer of a connection sends.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Message(Arc<Envelope>),
    Ack {
        id: u64,
        /// Boxed, as the strings below: a queue's slots are the size of
        /// the largest variant, and every connection has one.
        error: Option<Box<(&'static str, String)>>,
    },
    Pong,
    /// A WebSocket ping: the service's keep-alive, queued by a socket whose
    /// client has been silent for a while (MQTT clients keep their own).
    KeepAlive,
    /// A JSON-protocol frame built by the caller (group stream replies:
    /// `streamAck`, `streamNack`, `streamClosed`); raw clients skip it.
    Frame(Box<str>),
    /// A service-initiated close (REST): JSON clients are told why first.
    Close {
        reason: Box<str>,
    },
}

impl Outbound {
    /// What this message counts against the connection's byte budget: its
    /// payload plus a fixed 64 bytes for the frame around it.
    pub(crate) fn cost(&self) -> usize {
        let payload = match self {
            Self::Message(envelope) => envelope.data.bytes.len(),
            Self::Ack { error, .. } => error.as_deref().map_or(0, |(_, m)| m.len()),
            Self::Pong | Self::KeepAlive => 0,
            Self::Frame(frame) => frame.len(),
            Self::Close { reason } => reason.len(),
        };
        payload.saturating_add(64)
    }
}
