//! Every way an upstream request is refused, with its status and message.

use std::borrow::Cow;

use axum::body::Body;
use http::{header, HeaderValue, Response, StatusCode};

use crate::state::InvalidState;

/// Why a request to the event handler was refused before reaching the handler.
///
/// Each variant knows its HTTP status and its one-line plain-text body
/// (its `Display`). Refusals are logged once, at `warn` (`debug` for
/// `405` and refused preflights), under the `webpubsub::rejection` target.
///
/// ```
/// use webpubsub::Rejection;
///
/// let r = Rejection::MissingHeader("ce-hub");
/// assert_eq!(r.status().as_u16(), 400);
/// assert_eq!(r.to_string(), "missing header ce-hub");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// A required header is missing or empty: `400`.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A single-valued header appears more than once: `400`.
    #[error("header {0} appears more than once")]
    RepeatedHeader(&'static str),
    /// A header is not valid UTF-8: `400`.
    #[error("header {0} is not valid UTF-8")]
    HeaderNotUtf8(&'static str),
    /// `ce-type` is not a Web PubSub event type: `400`.
    #[error("unknown ce-type `{0}`")]
    UnknownEventType(String),
    /// `ce-connectionState` is not base64 of a JSON object: `400`.
    #[error(transparent)]
    InvalidState(#[from] InvalidState),
    /// The body is not the JSON the event requires: `400`.
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    /// The `Content-Type` of a user event is not text, JSON or binary: `400`.
    #[error("unsupported Content-Type `{0}`: expected text/plain, application/json or application/octet-stream")]
    UnsupportedContentType(String),
    /// A `charset` other than UTF-8: `400`.
    #[error("unsupported charset `{0}`: only utf-8 is accepted")]
    UnsupportedCharset(String),
    /// A `text/plain` body is not valid UTF-8: `400`.
    #[error("text/plain body is not valid UTF-8")]
    TextNotUtf8,
    /// The body could not be read from the connection: `400`.
    #[error("could not read the request body")]
    BodyUnreadable,
    /// `ce-hub` names a hub this router does not serve: `404`.
    #[error("hub `{0}` is not served here")]
    UnknownHub(String),
    /// Neither `POST` (events) nor `OPTIONS` (abuse protection): `405`.
    #[error("method not allowed: events are POST, the abuse-protection handshake is OPTIONS")]
    MethodNotAllowed,
    /// The body is larger than the configured limit: `413`.
    #[error("body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// A signed request has no `ce-signature`: `401`.
    #[error("missing header ce-signature")]
    SignatureMissing,
    /// No `ce-signature` entry matches a configured access key: `401`.
    #[error("ce-signature does not match any configured access key")]
    SignatureMismatch,
    /// `ce-connectionId` has the shape of a JSON Web Token's signed part
    /// (`<base64 JSON object>.<…>`), so its HMAC could be a token's signature
    /// replayed as `ce-signature`: `401`, whatever the signature. See
    /// [`ValidateUpstreamLayer`](crate::ValidateUpstreamLayer#forged-events-from-tokens).
    #[error("ce-connectionId has the shape of a signed token and is never signed by the service")]
    TokenShapedConnectionId,
    /// A signed request has no `WebHook-Request-Origin`, so no host's key can
    /// check it: `401`.
    #[error("missing header WebHook-Request-Origin")]
    OriginMissing,
    /// `WebHook-Request-Origin` names no endpoint whose key could check the signature: `401`.
    #[error("WebHook-Request-Origin names no configured endpoint")]
    OriginNotConfigured,
    /// The abuse-protection `OPTIONS` came from a host that is not allowed,
    /// or without `WebHook-Request-Origin`: `400` with an empty body.
    #[error("abuse-protection request refused")]
    PreflightRefused,
}

impl Rejection {
    /// The HTTP status of the refusal.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownHub(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::SignatureMissing
            | Self::SignatureMismatch
            | Self::TokenShapedConnectionId
            | Self::OriginMissing
            | Self::OriginNotConfigured => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn body(&self) -> Cow<'static, str> {
        match self {
            Self::PreflightRefused => Cow::Borrowed(""),
            Self::MethodNotAllowed => Cow::Borrowed(
                "method not allowed: events are POST, the abuse-protection handshake is OPTIONS",
            ),
            Self::SignatureMissing => Cow::Borrowed("missing header ce-signature"),
            Self::SignatureMismatch => {
                Cow::Borrowed("ce-signature does not match any configured access key")
            }
            Self::TokenShapedConnectionId => Cow::Borrowed(
                "ce-connectionId has the shape of a signed token and is never signed by the service",
            ),
            Self::TextNotUtf8 => Cow::Borrowed("text/plain body is not valid UTF-8"),
            other => Cow::Owned(other.to_string()),
        }
    }

    /// Logs the refusal and turns it into its response.
    pub(crate) fn into_response(self, hub: Option<&str>) -> Response<Body> {
        let status = self.status();
        if matches!(self, Self::MethodNotAllowed | Self::PreflightRefused) {
            tracing::debug!(target: "webpubsub::rejection", status = status.as_u16(), reason = %self, hub, "refused upstream request");
        } else {
            tracing::warn!(target: "webpubsub::rejection", status = status.as_u16(), reason = %self, hub, "refused upstream request");
        }
        let body = self.body();
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        if !body.is_empty() {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            *response.body_mut() = Body::from(body);
        } else {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
        }
        response
    }
}

/// Cuts a value taken from the request to a length fit for a one-line message.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", value.get(..end).unwrap_or_default()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_bodies_say_exactly_what_display_says() {
        // `body` spells some messages out to avoid allocating; they must not drift.
        for r in [
            Rejection::MethodNotAllowed,
            Rejection::SignatureMissing,
            Rejection::SignatureMismatch,
            Rejection::TokenShapedConnectionId,
            Rejection::TextNotUtf8,
            Rejection::MissingHeader("ce-hub"),
        ] {
            assert_eq!(r.body(), r.to_string());
        }
        assert_eq!(Rejection::PreflightRefused.body(), "");
    }
}
