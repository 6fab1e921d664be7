//! Every way an upstream request is refused, with its status and message.

use std::borrow::Cow;
use std::fmt;

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
/// use webpubsub::upstream::Rejection;
///
/// let r = Rejection::MissingHeader("ce-hub");
/// assert_eq!(r.status().as_u16(), 400);
/// assert_eq!(r.to_string(), "missing header ce-hub");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// A required header is missing or empty: `400`.
    MissingHeader(&'static str),
    /// A single-valued header appears more than once: `400`.
    RepeatedHeader(&'static str),
    /// A header is not valid UTF-8: `400`.
    HeaderNotUtf8(&'static str),
    /// `ce-type` is not a Web PubSub event type: `400`.
    UnknownEventType(String),
    /// `ce-connectionState` is not base64 of a JSON object: `400`.
    InvalidState(InvalidState),
    /// The body is not the JSON the event requires: `400`.
    InvalidJson(String),
    /// The `Content-Type` of a user event is not text, JSON or binary: `400`.
    UnsupportedContentType(String),
    /// A `charset` other than UTF-8: `400`.
    UnsupportedCharset(String),
    /// A `text/plain` body is not valid UTF-8: `400`.
    TextNotUtf8,
    /// The body could not be read from the connection: `400`.
    BodyUnreadable,
    /// `ce-hub` names a hub this router does not serve: `404`.
    UnknownHub(String),
    /// Neither `POST` (events) nor `OPTIONS` (abuse protection): `405`.
    MethodNotAllowed,
    /// The body is larger than the configured limit: `413`.
    PayloadTooLarge(usize),
    /// A signed request has no `ce-signature`: `401`.
    SignatureMissing,
    /// No `ce-signature` entry matches a configured access key: `401`.
    SignatureMismatch,
    /// `ce-connectionId` has the shape of a JSON Web Token's signed part
    /// (`<base64 JSON object>.<…>`), so its HMAC could be a token's signature
    /// replayed as `ce-signature`: `401`, whatever the signature. See
    /// [`ValidateUpstreamLayer`](crate::upstream::ValidateUpstreamLayer#forged-events-from-tokens).
    TokenShapedConnectionId,
    /// A signed request has no `WebHook-Request-Origin`, so no host's key can
    /// check it: `401`.
    OriginMissing,
    /// `WebHook-Request-Origin` names no endpoint whose key could check the signature: `401`.
    OriginNotConfigured,
    /// The abuse-protection `OPTIONS` came from a host that is not allowed,
    /// or without `WebHook-Request-Origin`: `400` with an empty body.
    PreflightRefused,
    /// Entra ID validation is configured and the request has no
    /// `Authorization: Bearer` header: `401`.
    BearerMissing,
    /// The request's Entra ID bearer token is refused: `401`.
    BearerRefused(BearerRefusal),
}

/// Why an Entra ID bearer token was refused (see `webpubsub::entra`, feature
/// `entra`). Each is a `401`; the token itself is never logged or echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerRefusal {
    /// Not a compact JWS with a JSON header and claims, a `kid`, an `exp`;
    /// or several `Authorization` headers.
    Malformed,
    /// `alg` is not `RS256` (`none` and the HMAC family included).
    Algorithm,
    /// No key of the tenant has the token's `kid` (after a fetch, if the
    /// refresh interval allowed one).
    UnknownKey,
    /// The tenant's keys could not be fetched (endpoint down, slow or
    /// answering nonsense).
    KeysUnavailable,
    /// The signature does not verify with the key.
    BadSignature,
    /// `exp` is past, beyond the clock skew.
    Expired,
    /// `nbf` is ahead, beyond the clock skew.
    NotYetValid,
    /// `iss` is not the tenant's issuer, or `tid` not the tenant.
    WrongIssuer,
    /// `aud` is none of the configured audiences.
    WrongAudience,
    /// `oid`, `appid` and `azp` name none of the allowed callers.
    WrongCaller,
}

impl BearerRefusal {
    fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm is not RS256",
            Self::UnknownKey => "unknown signing key (kid)",
            Self::KeysUnavailable => "the tenant's signing keys are unavailable",
            Self::BadSignature => "bad signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not yet valid",
            Self::WrongIssuer => "wrong issuer or tenant",
            Self::WrongAudience => "wrong audience",
            Self::WrongCaller => "caller is not an allowed identity",
        }
    }
}

impl fmt::Display for BearerRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
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
            | Self::OriginNotConfigured
            | Self::BearerMissing
            | Self::BearerRefused(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The one-line message: the `Display` and, but for a refused
    /// preflight (empty), the body. Static where it can be, so most
    /// refusals allocate nothing.
    fn message(&self) -> Cow<'static, str> {
        match self {
            Self::MissingHeader(value) => Cow::Owned(format!("missing header {value}")),
            Self::RepeatedHeader(value) => Cow::Owned(format!("header {value} appears more than once")),
            Self::HeaderNotUtf8(value) => Cow::Owned(format!("header {value} is not valid UTF-8")),
            Self::UnknownEventType(value) => Cow::Owned(format!("unknown ce-type `{value}`")),
            Self::InvalidState(e) => Cow::Owned(e.to_string()),
            Self::InvalidJson(value) => Cow::Owned(format!("invalid JSON body: {value}")),
            Self::UnsupportedContentType(value) => Cow::Owned(format!("unsupported Content-Type `{value}`: expected text/plain, application/json or application/octet-stream")),
            Self::UnsupportedCharset(value) => Cow::Owned(format!("unsupported charset `{value}`: only utf-8 is accepted")),
            Self::TextNotUtf8 => Cow::Borrowed("text/plain body is not valid UTF-8"),
            Self::BodyUnreadable => Cow::Borrowed("could not read the request body"),
            Self::UnknownHub(value) => Cow::Owned(format!("hub `{value}` is not served here")),
            Self::MethodNotAllowed => Cow::Borrowed("method not allowed: events are POST, the abuse-protection handshake is OPTIONS"),
            Self::PayloadTooLarge(value) => Cow::Owned(format!("body exceeds {value} bytes")),
            Self::SignatureMissing => Cow::Borrowed("missing header ce-signature"),
            Self::SignatureMismatch => Cow::Borrowed("ce-signature does not match any configured access key"),
            Self::TokenShapedConnectionId => Cow::Borrowed("ce-connectionId has the shape of a signed token and is never signed by the service"),
            Self::OriginMissing => Cow::Borrowed("missing header WebHook-Request-Origin"),
            Self::OriginNotConfigured => Cow::Borrowed("WebHook-Request-Origin names no configured endpoint"),
            Self::PreflightRefused => Cow::Borrowed("abuse-protection request refused"),
            Self::BearerMissing => Cow::Borrowed("missing Authorization: Bearer token"),
            Self::BearerRefused(reason) => Cow::Owned(format!("bearer token refused: {reason}")),
        }
    }

    fn body(&self) -> Cow<'static, str> {
        match self {
            Self::PreflightRefused => Cow::Borrowed(""),
            other => other.message(),
        }
    }

    /// Logs the refusal (with the hub it was for, when known) and turns it
    /// into its response.
    pub(crate) fn into_logged_response(self, hub: Option<&str>) -> Response<Body> {
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

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidState(e) => Some(e),
            _ => None,
        }
    }
}

impl From<InvalidState> for Rejection {
    fn from(e: InvalidState) -> Self {
        Self::InvalidState(e)
    }
}

/// The refusal's status and plain-text body, as the router answers it;
/// the refusal is logged (target `webpubsub::rejection`). For code that
/// calls [`decode_event`](crate::upstream::decode_event) itself.
///
/// ```
/// use axum::response::IntoResponse;
/// use webpubsub::upstream::Rejection;
///
/// let response = Rejection::UnknownHub("news".into()).into_response();
/// assert_eq!(response.status(), 404);
/// ```
impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        self.into_logged_response(None)
    }
}

/// Cuts a value taken from a request to a length fit for a one-line
/// message, as [`Rejection`]'s messages quote values: at most 80
/// characters, then `…`. For tools whose messages quote values the same way.
///
/// ```
/// use webpubsub::upstream::excerpt;
///
/// assert_eq!(excerpt("short"), "short");
/// assert_eq!(excerpt(&"x".repeat(100)), format!("{}…", "x".repeat(80)));
/// ```
#[must_use]
pub fn excerpt(value: &str) -> String {
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
    fn bodies_are_the_display_but_for_a_refused_preflight() {
        for r in [
            Rejection::MethodNotAllowed,
            Rejection::SignatureMismatch,
            Rejection::TokenShapedConnectionId,
            Rejection::MissingHeader("ce-hub"),
            Rejection::PayloadTooLarge(10),
        ] {
            assert_eq!(r.body(), r.to_string());
        }
        assert_eq!(Rejection::PreflightRefused.body(), "");
        assert_eq!(
            Rejection::PreflightRefused.to_string(),
            "abuse-protection request refused"
        );
    }

    #[test]
    fn into_response_answers_like_the_router() {
        use axum::response::IntoResponse as _;
        let response = Rejection::MethodNotAllowed.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "OPTIONS, POST");
        let response = Rejection::SignatureMissing.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}
