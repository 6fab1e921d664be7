//! What a `#[user_event]` method may take: the whole request, or the
//! connection context plus the payload in the shape it wants.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::events::{EventData, EventErrorResponse, UserEventRequest};

/// A payload deserialised from JSON into `T` (as an argument), or a value
/// serialised as JSON (as a return value).
///
/// As an argument of a `#[user_event]` method, a payload that is not JSON of
/// that shape refuses the event with `400` and a message saying why; the
/// method is not called.
///
/// ```
/// use webpubsub::ConnectionContext;
/// use webpubsub::events::EventData;
/// use webpubsub::extract::{FromEventData, Json};
///
/// #[derive(serde::Deserialize)]
/// struct Typing { typing: bool }
///
/// let Json(t) = Json::<Typing>::from_event_data(EventData::json(r#"{"typing":true}"#))?;
/// assert!(t.typing);
///
/// let err = Json::<Typing>::from_event_data(EventData::text("nope")).err().unwrap();
/// assert_eq!(err.status().as_u16(), 400);
/// # Ok::<(), webpubsub::EventErrorResponse>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// Turns a user event's payload into a method argument.
///
/// Implemented for [`EventData`] (as sent), [`String`] (text, or any UTF-8
/// payload), [`Bytes`] and `Vec<u8>` (the raw bytes, whatever the type),
/// [`serde_json::Value`] and [`Json<T>`] (JSON, whatever the type). Failures
/// are `400` refusals.
///
/// ```
/// use webpubsub::events::EventData;
/// use webpubsub::extract::FromEventData;
///
/// assert_eq!(String::from_event_data(EventData::text("hi"))?, "hi");
/// assert_eq!(String::from_event_data(EventData::binary(vec![0xff])).unwrap_err().status().as_u16(), 400);
/// # Ok::<(), webpubsub::EventErrorResponse>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made from a user event's payload",
    label = "not a payload type",
    note = "take `String`, `Bytes`, `Vec<u8>`, `serde_json::Value`, `EventData` or `Json<T>` (T: DeserializeOwned), \
            or the whole `UserEventRequest` as the only argument"
)]
pub trait FromEventData: Sized {
    /// Converts the payload; `Err` refuses the event.
    ///
    /// # Errors
    ///
    /// A refusal (usually `400`) when the payload does not fit.
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse>;
}

impl FromEventData for EventData {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        Ok(data)
    }
}

impl FromEventData for String {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        match data {
            EventData::Text(text) => Ok(text),
            EventData::Json(bytes) | EventData::Binary(bytes) => {
                String::from_utf8(Vec::from(bytes))
                    .map_err(|_| EventErrorResponse::user_error("payload is not UTF-8 text"))
            }
        }
    }
}

impl FromEventData for Bytes {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        Ok(data.into_bytes())
    }
}

impl FromEventData for Vec<u8> {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        Ok(Vec::from(data.into_bytes()))
    }
}

impl FromEventData for serde_json::Value {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        Ok(data.to_json_value()?)
    }
}

impl<T: DeserializeOwned> FromEventData for Json<T> {
    #[inline]
    fn from_event_data(data: EventData) -> Result<Self, EventErrorResponse> {
        serde_json::from_slice(data.as_bytes())
            .map(Json)
            .map_err(|e| crate::events::InvalidData(e).into())
    }
}

/// Turns a whole user event into the single argument of a `#[user_event]`
/// method: the [`UserEventRequest`] itself, or any [`FromEventData`] payload.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made from a user event",
    note = "take the whole `UserEventRequest`, a payload type (`String`, `Bytes`, `Json<T>`, …), \
            or `(ctx: ConnectionContext, payload: P)` as two arguments"
)]
pub trait FromUserEvent: Sized {
    /// Converts the event; `Err` refuses it.
    ///
    /// # Errors
    ///
    /// A refusal (usually `400`) when the payload does not fit.
    fn from_user_event(req: UserEventRequest) -> Result<Self, EventErrorResponse>;
}

impl FromUserEvent for UserEventRequest {
    #[inline]
    fn from_user_event(req: UserEventRequest) -> Result<Self, EventErrorResponse> {
        Ok(req)
    }
}

impl<P: FromEventData> FromUserEvent for P {
    #[inline]
    fn from_user_event(req: UserEventRequest) -> Result<Self, EventErrorResponse> {
        P::from_event_data(req.data)
    }
}
