//! The body of a `:send` call and how recipients see it.

use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize;

use crate::events::DataType;

/// A message to send through the service: text, JSON or binary.
///
/// The kind decides what clients receive: JSON-subprotocol clients get
/// `"dataType": "text" | "json" | "binary"`, plain WebSocket clients a text
/// frame (text, JSON) or a binary frame.
///
/// Plain strings convert to text, byte buffers to binary and
/// [`serde_json::Value`] to JSON; any other `Serialize` value goes through
/// [`Message::json`].
///
/// ```
/// use webpubsub::client::Message;
///
/// assert_eq!(Message::from("hi").content_type(), "text/plain");
/// assert_eq!(Message::from(vec![0u8, 1]).content_type(), "application/octet-stream");
///
/// #[derive(serde::Serialize)]
/// struct Joined<'a> { user: &'a str }
/// let message = Message::json(&Joined { user: "alice" })?;
/// assert_eq!(message.content_type(), "application/json");
/// assert_eq!(&message.body()[..], br#"{"user":"alice"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    kind: DataType,
    body: Bytes,
}

impl Message {
    /// A text message (`text/plain`).
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: DataType::Text,
            body: Bytes::from(text.into()),
        }
    }

    /// A JSON message (`application/json`) holding `value` serialized.
    ///
    /// # Errors
    ///
    /// When `value` cannot be serialized as JSON (a map with non-string keys,
    /// a failing `Serialize` implementation).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: DataType::Json,
            body: Bytes::from(serde_json::to_vec(value)?),
        })
    }

    /// A JSON message from text that is already JSON, sent as is.
    ///
    /// The service answers `400` if it is not valid JSON.
    #[must_use]
    pub fn json_text(json: impl Into<String>) -> Self {
        Self {
            kind: DataType::Json,
            body: Bytes::from(json.into()),
        }
    }

    /// A binary message (`application/octet-stream`).
    #[must_use]
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: DataType::Binary,
            body: bytes.into(),
        }
    }

    /// The `Content-Type` the message is sent with.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            DataType::Text => "text/plain",
            DataType::Json => "application/json",
            DataType::Binary => "application/octet-stream",
        }
    }

    /// The bytes sent.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub(crate) fn into_parts(self) -> (HeaderValue, Bytes) {
        (HeaderValue::from_static(self.content_type()), self.body)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&String> for Message {
    fn from(text: &String) -> Self {
        Self::text(text.as_str())
    }
}

impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Self {
        Self::binary(bytes)
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Self::binary(bytes)
    }
}

impl From<&'static [u8]> for Message {
    fn from(bytes: &'static [u8]) -> Self {
        Self::binary(Bytes::from_static(bytes))
    }
}

impl From<serde_json::Value> for Message {
    fn from(value: serde_json::Value) -> Self {
        Self::json_text(value.to_string())
    }
}

impl From<crate::events::EventData> for Message {
    /// Forwards what a client sent, with the same data type.
    fn from(data: crate::events::EventData) -> Self {
        match data {
            crate::events::EventData::Text(text) => Self::text(text),
            crate::events::EventData::Json(json) => Self {
                kind: DataType::Json,
                body: json,
            },
            crate::events::EventData::Binary(bytes) => Self::binary(bytes),
        }
    }
}
