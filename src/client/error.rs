//! What can go wrong when calling the service.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// Why a call to the service failed.
///
/// Every status other than the operation's documented success status is an
/// error (`Api`), never silently ignored. The exception is the existence and
/// permission checks, where `404` is the answer `false`.
///
/// ```
/// # async fn run(client: webpubsub::WebPubSubServiceClient) {
/// use webpubsub::client::ServiceError;
///
/// match client.add_user_to_group("room1", "alice").await {
///     Ok(()) => {}
///     Err(e) if e.is_not_found() => println!("alice has no connection"),
///     Err(ServiceError::Api(e)) => println!("{}: {} ({:?})", e.status(), e.message(), e.code()),
///     Err(e) => println!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service answered with a status the operation does not expect.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The service could not be reached, or the connection broke.
    #[error("{operation}: could not reach the service: {source}")]
    Transport {
        /// The operation, e.g. `send_to_all`.
        operation: &'static str,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer came within the configured timeout (on the last attempt).
    #[error("{operation}: no answer from the service within {timeout:?}")]
    Timeout {
        /// The operation, e.g. `send_to_all`.
        operation: &'static str,
        /// The per-attempt timeout that ran out.
        timeout: Duration,
    },
    /// An argument was refused before anything was sent.
    #[error("{operation}: {reason}")]
    InvalidArgument {
        /// The operation, e.g. `add_user_to_group`.
        operation: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A value could not be serialized as JSON.
    #[error("could not serialize the message as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The Microsoft Entra ID credential gave no token, so nothing was sent.
    ///
    /// Only for a client built with a credential
    /// ([`WebPubSubServiceClient::credential_builder`](super::WebPubSubServiceClient::credential_builder)).
    /// The source is the credential's own error: a managed identity that is
    /// not enabled, an expired secret, no `az login`…
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    #[error("{operation}: could not get a Microsoft Entra ID token: {source}")]
    Credential {
        /// The operation, e.g. `send_to_all`.
        operation: &'static str,
        /// The credential's error.
        #[source]
        source: azure_core::Error,
    },
    /// The service answered the expected status with a body this client cannot read.
    #[error("{operation}: unreadable answer from the service: {reason}")]
    InvalidResponse {
        /// The operation, e.g. `list_connections_in_group`.
        operation: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },
}

impl ServiceError {
    /// The HTTP status the service answered, if it answered.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// Whether the service answered `404 Not Found`.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    pub(crate) fn invalid(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            operation,
            reason: reason.into(),
        }
    }
}

/// An answer from the service with an unexpected status.
///
/// The service reports errors as JSON (`{"code": …, "message": …}`, possibly
/// wrapped in `{"error": …}`) or as plain text; both are read into
/// [`code`](Self::code) and [`message`](Self::message), and the raw body is
/// kept.
#[derive(Clone)]
pub struct ApiError {
    operation: &'static str,
    status: StatusCode,
    code: Option<String>,
    message: String,
    body: String,
}

/// The most of an error body that is kept.
pub(crate) const ERROR_BODY_LIMIT: usize = 16 * 1024;

impl ApiError {
    pub(crate) fn new(
        operation: &'static str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let body = String::from_utf8_lossy(body).into_owned();
        let header_code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (json_code, json_message) = parse_error_body(&body);
        let message = json_message
            .or_else(|| {
                let text = body.trim();
                (!text.is_empty() && !text.starts_with('{')).then(|| first_line(text))
            })
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Self {
            operation,
            status,
            code: json_code.or(header_code),
            message,
            body,
        }
    }

    /// The operation that failed, e.g. `send_to_all`.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The HTTP status the service answered.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The service's error code (`code` of the body, else the `x-ms-error-code` header).
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's message, or the body's first line, or the status's reason phrase.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The body as received (at most 16 KiB, invalid UTF-8 replaced).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    line.chars().take(500).collect()
}

/// `(code, message)` from `{"error":{"code","message"}}` or `{"code","message"}`.
fn parse_error_body(body: &str) -> (Option<String>, Option<String>) {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(body) else {
        return (None, None);
    };
    let inner = match object.get("error") {
        Some(serde_json::Value::Object(inner)) => inner,
        _ => &object,
    };
    let field = |name: &str| {
        inner
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (field("code"), field("message"))
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the service answered {}",
            self.operation, self.status
        )?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> Self {
        Self::Api(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, headers: &[(&str, &str)], body: &str) -> ApiError {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        ApiError::new(
            "op",
            StatusCode::from_u16(status).unwrap(),
            &map,
            body.as_bytes(),
        )
    }

    #[test]
    fn error_bodies_of_every_documented_shape_are_read() {
        let flat = error(
            400,
            &[],
            r#"{"code":"Error.BadRequest","message":"Invalid filter"}"#,
        );
        assert_eq!(
            (flat.code(), flat.message()),
            (Some("Error.BadRequest"), "Invalid filter")
        );
        let wrapped = error(
            400,
            &[],
            r#"{"error":{"code":"BadRequest","message":"bad ttl"}}"#,
        );
        assert_eq!(
            (wrapped.code(), wrapped.message()),
            (Some("BadRequest"), "bad ttl")
        );
        let text = error(
            404,
            &[("x-ms-error-code", "UserNotFound")],
            "User `dev` is not found.\nmore",
        );
        assert_eq!(
            (text.code(), text.message()),
            (Some("UserNotFound"), "User `dev` is not found.")
        );
        let empty = error(503, &[], "");
        assert_eq!(
            (empty.code(), empty.message()),
            (None, "Service Unavailable")
        );
        assert_eq!(
            empty.to_string(),
            "op: the service answered 503 Service Unavailable: Service Unavailable"
        );
    }
}
