//! User events: a client sent data; the answer may reply to it.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::context::ConnectionContext;
use super::error::EventErrorResponse;
use crate::state::StateChanges;

/// A client sent an event (`azure.webpubsub.user.<name>`); the name is
/// `context.event_name` (`message` for plain WebSocket clients).
///
/// ```
/// use webpubsub::{ConnectionContext, UserEventRequest};
/// use webpubsub::events::EventData;
///
/// #[derive(serde::Deserialize)]
/// struct Chat { text: String }
///
/// let ctx = ConnectionContext::new("chat", "conn-1", "chat");
/// let req = UserEventRequest::new(ctx, EventData::json(r#"{"text":"hi"}"#));
/// assert_eq!(req.json::<Chat>()?.text, "hi");
/// # Ok::<(), webpubsub::events::InvalidData>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UserEventRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// What the client sent.
    pub data: EventData,
}

impl UserEventRequest {
    /// A request for `context` carrying `data`, for calling a handler directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext, data: EventData) -> Self {
        Self { context, data }
    }

    /// The payload deserialised from JSON as `T`, whatever its data type (plain
    /// WebSocket clients often send JSON as text frames).
    ///
    /// # Errors
    ///
    /// [`InvalidData`] when the payload is not JSON of that shape; it converts
    /// into a `400` [`EventErrorResponse`] with `?`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, InvalidData> {
        serde_json::from_slice(self.data.as_bytes()).map_err(InvalidData)
    }
}

/// A payload that is not the JSON a handler expected.
///
/// Converts into a `400` user error, so `req.json::<T>()?` in a handler
/// refuses bad input with a message that says why.
///
/// ```
/// use webpubsub::{ConnectionContext, EventErrorResponse, UserEventRequest};
/// use webpubsub::events::EventData;
///
/// let req = UserEventRequest::new(ConnectionContext::new("h", "c", "e"), EventData::text("nope"));
/// let err: EventErrorResponse = req.json::<u32>().unwrap_err().into();
/// assert_eq!(err.status().as_u16(), 400);
/// assert!(err.message.starts_with("invalid JSON payload"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON payload: {0}")]
pub struct InvalidData(#[source] pub serde_json::Error);

impl From<InvalidData> for EventErrorResponse {
    fn from(err: InvalidData) -> Self {
        EventErrorResponse::user_error(err.to_string())
    }
}

/// The kind of a payload, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `text/plain`: UTF-8 text.
    Text,
    /// `application/json`: one JSON value.
    Json,
    /// `application/octet-stream`: raw bytes.
    Binary,
}

impl DataType {
    /// The `Content-Type` this crate writes for the type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
            Self::Binary => "application/octet-stream",
        }
    }

    /// The `dataType` of the JSON subprotocols' messages (`text`, `json`, `binary`).
    #[must_use]
    pub fn json_protocol_name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Binary => "binary",
        }
    }
}

/// A payload: text, JSON or binary.
///
/// JSON is kept as its raw bytes (checked to be valid JSON when it comes from
/// the network) and parsed only when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventData {
    /// UTF-8 text.
    Text(String),
    /// The bytes of one JSON value.
    Json(Bytes),
    /// Raw bytes.
    Binary(Bytes),
}

impl EventData {
    /// Text data.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Already encoded JSON (not checked).
    #[must_use]
    pub fn json(json: impl Into<Bytes>) -> Self {
        Self::Json(json.into())
    }

    /// Binary data.
    #[must_use]
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::Binary(bytes.into())
    }

    /// The data type.
    #[must_use]
    pub fn data_type(&self) -> DataType {
        match self {
            Self::Text(_) => DataType::Text,
            Self::Json(_) => DataType::Json,
            Self::Binary(_) => DataType::Binary,
        }
    }

    /// The text, for text data.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The payload's bytes, whatever its type.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_bytes(),
            Self::Json(b) | Self::Binary(b) => b,
        }
    }

    /// The payload parsed as a JSON value, whatever its type.
    ///
    /// # Errors
    ///
    /// [`InvalidData`] when the bytes are not JSON.
    pub fn to_json_value(&self) -> Result<Value, InvalidData> {
        serde_json::from_slice(self.as_bytes()).map_err(InvalidData)
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(s) => Bytes::from(s),
            Self::Json(b) | Self::Binary(b) => b,
        }
    }
}

/// The answer to a user event: nothing (`204`), or data sent back to the
/// sender, plus optional changes to the connection's states.
///
/// ```
/// use webpubsub::UserEventResponse;
/// use webpubsub::events::DataType;
///
/// let reply = UserEventResponse::text("got it").state("count", 2);
/// assert_eq!(reply.data().map(|d| d.data_type()), Some(DataType::Text));
///
/// let reply = UserEventResponse::json(&serde_json::json!({"ok": true}))?;
/// assert_eq!(reply.data().unwrap().as_bytes(), br#"{"ok":true}"#);
/// # Ok::<(), webpubsub::EventErrorResponse>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct UserEventResponse {
    pub(crate) data: Option<EventData>,
    /// Changes to the connection's states.
    pub states: StateChanges,
}

impl UserEventResponse {
    /// No reply: `204 No Content`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reply with text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::from(EventData::Text(text.into()))
    }

    /// Reply with `value` serialised as JSON.
    ///
    /// # Errors
    ///
    /// A `500` [`EventErrorResponse`] when `value` cannot be serialised (for
    /// example a map with non-string keys).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, EventErrorResponse> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            EventErrorResponse::server_error(format!("could not serialise the JSON reply: {e}"))
        })?;
        Ok(Self::from(EventData::Json(Bytes::from(bytes))))
    }

    /// Reply with already encoded JSON (not checked).
    pub fn raw_json(json: impl Into<Bytes>) -> Self {
        Self::from(EventData::Json(json.into()))
    }

    /// Reply with binary data.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::from(EventData::Binary(bytes.into()))
    }

    /// The reply's data, if any.
    #[must_use]
    pub fn data(&self) -> Option<&EventData> {
        self.data.as_ref()
    }

    /// Takes the reply's data out.
    #[must_use]
    pub fn into_data(self) -> Option<EventData> {
        self.data
    }

    crate::state::state_builder_methods!();
}

impl From<EventData> for UserEventResponse {
    /// Echo a payload back with the same data type.
    fn from(data: EventData) -> Self {
        Self {
            data: Some(data),
            states: StateChanges::default(),
        }
    }
}

impl From<String> for UserEventResponse {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for UserEventResponse {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<()> for UserEventResponse {
    fn from((): ()) -> Self {
        Self::none()
    }
}
