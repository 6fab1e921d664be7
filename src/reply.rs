//! What event methods may return, and how it becomes the service's answer.

use bytes::Bytes;
use serde::Serialize;

use crate::events::{ConnectEventResponse, EventData, EventErrorResponse, UserEventResponse};
use crate::extract::Json;

/// Turns what a `#[user_event]` method returns into the answer to the event.
///
/// Implemented for [`UserEventResponse`], `()` (no reply: `204`), [`String`]
/// and `&'static str` (text), [`EventData`] (echo), [`Bytes`] and `Vec<u8>`
/// (binary), [`Json<T>`] (JSON), `Option<T>` (`None` is no reply) and
/// `Result<T, E>` where `E` converts into [`EventErrorResponse`].
///
/// ```
/// use webpubsub::events::DataType;
/// use webpubsub::reply::IntoUserEventResponse;
///
/// let reply = "pong".into_user_event_response()?;
/// assert_eq!(reply.data().unwrap().data_type(), DataType::Text);
/// assert!(().into_user_event_response()?.data().is_none());
/// # Ok::<(), webpubsub::EventErrorResponse>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an answer to a user event",
    label = "cannot become a user event answer",
    note = "return `UserEventResponse`, `()`, `String`, `&'static str`, `Bytes`, `Json<T>`, `EventData`, \
            `Option<_>` of those, or `Result<_, EventErrorResponse>`"
)]
pub trait IntoUserEventResponse {
    /// The answer.
    ///
    /// # Errors
    ///
    /// The refusal, for `Err` values and unserialisable JSON.
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse>;
}

impl IntoUserEventResponse for UserEventResponse {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(self)
    }
}

impl IntoUserEventResponse for () {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::none())
    }
}

impl IntoUserEventResponse for String {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::text(self))
    }
}

impl IntoUserEventResponse for &'static str {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::text(self))
    }
}

impl IntoUserEventResponse for EventData {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::from(self))
    }
}

impl IntoUserEventResponse for Bytes {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::binary(self))
    }
}

impl IntoUserEventResponse for Vec<u8> {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::binary(self))
    }
}

impl<T: Serialize> IntoUserEventResponse for Json<T> {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        UserEventResponse::json(&self.0)
    }
}

impl<T: IntoUserEventResponse> IntoUserEventResponse for Option<T> {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        self.map_or_else(
            || Ok(UserEventResponse::none()),
            T::into_user_event_response,
        )
    }
}

impl<T: IntoUserEventResponse, E: Into<EventErrorResponse>> IntoUserEventResponse for Result<T, E> {
    #[inline]
    fn into_user_event_response(self) -> Result<UserEventResponse, EventErrorResponse> {
        self.map_err(Into::into)?.into_user_event_response()
    }
}

/// Turns what a derived `connect` method returns into the answer.
///
/// Implemented for [`ConnectEventResponse`], `()` (accept, change nothing)
/// and `Result<T, E>` where `E` converts into [`EventErrorResponse`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an answer to `connect`",
    label = "`connect` must return `ConnectEventResponse`, `()` or `Result<ConnectEventResponse, EventErrorResponse>`",
    note = "accept with `ConnectEventResponse::new()`, refuse with `Err(EventErrorResponse::unauthorized(\"…\"))`"
)]
pub trait IntoConnectEventResponse {
    /// The answer.
    ///
    /// # Errors
    ///
    /// The refusal, for `Err` values.
    fn into_connect_event_response(self) -> Result<ConnectEventResponse, EventErrorResponse>;
}

impl IntoConnectEventResponse for ConnectEventResponse {
    #[inline]
    fn into_connect_event_response(self) -> Result<ConnectEventResponse, EventErrorResponse> {
        Ok(self)
    }
}

impl IntoConnectEventResponse for () {
    #[inline]
    fn into_connect_event_response(self) -> Result<ConnectEventResponse, EventErrorResponse> {
        Ok(ConnectEventResponse::new())
    }
}

impl<T: IntoConnectEventResponse, E: Into<EventErrorResponse>> IntoConnectEventResponse
    for Result<T, E>
{
    #[inline]
    fn into_connect_event_response(self) -> Result<ConnectEventResponse, EventErrorResponse> {
        self.map_err(Into::into)?.into_connect_event_response()
    }
}
