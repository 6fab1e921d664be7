//! The abuse-protection handshake: `OPTIONS` with `WebHook-Request-Origin`,
//! which origins it accepts and how it is answered.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, Response};

use super::headers::{list_items, WEBHOOK_ALLOWED_ORIGIN, WEBHOOK_REQUEST_ORIGIN};
use super::Rejection;

/// Which hosts the abuse-protection handshake accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowedOrigins {
    Any,
    Hosts(Vec<Box<str>>),
}

/// Answers the handshake: `200` with one `WebHook-Allowed-Origin` line (the
/// matched request host, or `*` when every origin is allowed), or a refusal
/// (`400`, empty body) when the header is missing or names no allowed host.
pub(crate) fn answer(
    allowed: &AllowedOrigins,
    headers: &HeaderMap,
) -> Result<Response<Body>, Rejection> {
    if headers.get(WEBHOOK_REQUEST_ORIGIN).is_none() {
        return Err(Rejection::PreflightRefused);
    }
    let value = match allowed {
        AllowedOrigins::Any => HeaderValue::from_static("*"),
        AllowedOrigins::Hosts(hosts) => {
            let matched = list_items(headers, &WEBHOOK_REQUEST_ORIGIN)
                .find(|origin| {
                    hosts
                        .iter()
                        .any(|h| origin.eq_ignore_ascii_case(h.as_bytes()))
                })
                .ok_or(Rejection::PreflightRefused)?;
            HeaderValue::from_bytes(matched).map_err(|_| Rejection::PreflightRefused)?
        }
    };
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(WEBHOOK_ALLOWED_ORIGIN, value);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(response)
}
