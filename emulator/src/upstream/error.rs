//! How a call to an event handler failed ([`UpstreamError`]), what a
//! client and the log are told of it, and how a request that got no answer
//! failed ([`NoAnswer`]).

use std::time::Duration;

use http::StatusCode;

use crate::shown::{clip, SHOWN_TEXT};

/// Why an event could not be delivered. Every `url` is as the live view
/// shows it ([`shown_url`](crate::shown::shown_url): no password, no secret query values).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The handler answered the abuse-protection `OPTIONS`, but not with a
    /// `2xx` allowing this origin.
    #[error("the abuse-protection handshake with {url} failed: {reason}")]
    Preflight { url: String, reason: String },
    /// Nothing answered: the connection was refused, the host name did not
    /// resolve, or the connection failed before the request was sent.
    #[error("could not reach the upstream {url}{during}: {cause}")]
    Unreachable {
        url: String,
        /// `" (abuse-protection handshake)"` for the `OPTIONS`, else empty.
        during: &'static str,
        /// The error and its sources, e.g. `… tcp connect error: Connection
        /// refused (os error 111)`.
        cause: String,
    },
    /// No answer within `upstream_timeout`.
    #[error("the upstream {url}{during} timed out after {}", humantime::format_duration(*.after))]
    TimedOut {
        url: String,
        during: &'static str,
        after: Duration,
    },
    /// Reached, but the call failed otherwise: the connection broke during
    /// the exchange, or the answer could not be read.
    #[error("calling {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("the upstream {url} answered {status}{}", answered_text(body))]
    Status {
        url: String,
        status: StatusCode,
        /// The start of the answer's body (empty for retried statuses).
        body: String,
    },
    /// The connection id has the shape of a token's signed part: its
    /// `ce-signature` would be a token signature, so it is never signed.
    #[error("connection id `{connection_id}` looks like a signed token and is never signed")]
    TokenShapedConnectionId { connection_id: String },
}

impl UpstreamError {
    /// The HTTP status a refused `connect` hands the client: the handler's
    /// own refusal, else `500`, as the service answers a `connect` it could
    /// not deliver (upstream.md §6.1).
    pub(crate) fn handshake_status(&self) -> StatusCode {
        match self {
            Self::Status { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a client is told when its event failed, in general terms
    /// (never the handler's URL, which may hold secrets). `None` for a
    /// handler's own refusal, whose body is not the emulator's to word.
    pub(crate) fn client_message(&self) -> Option<String> {
        match self {
            Self::Status { .. } => None,
            Self::Unreachable { .. } => Some("The event handler could not be reached.".to_owned()),
            Self::TimedOut { after, .. } => Some(format!(
                "The event handler did not answer within {}.",
                humantime::format_duration(*after)
            )),
            Self::Preflight { .. } => {
                Some("The event handler did not pass the abuse-protection handshake.".to_owned())
            }
            Self::Transport { .. } | Self::TokenShapedConnectionId { .. } => {
                Some("The event handler failed.".to_owned())
            }
        }
    }

    /// What a client is told when its event failed: the
    /// [`client_message`](Self::client_message), or "The event handler
    /// failed." for a handler's own refusal.
    pub(crate) fn client_text(&self) -> String {
        self.client_message()
            .unwrap_or_else(|| "The event handler failed.".to_owned())
    }

    /// The log message of a failed event: which way it failed, in words
    /// that say whether anything answered.
    pub(crate) fn summary(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "could not reach the upstream",
            Self::TimedOut { .. } => "upstream timed out",
            Self::Status { status, .. } if status.is_client_error() => "upstream answered 4xx",
            Self::Status { .. } => "upstream answered an error status",
            Self::Preflight { .. } => "upstream failed the abuse-protection handshake",
            Self::Transport { .. } => "upstream call failed",
            Self::TokenShapedConnectionId { .. } => "event not sent",
        }
    }
}

/// `: <the body's first line>` for a log line, or nothing for an empty body.
fn answered_text(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or_default();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", clip(line, SHOWN_TEXT))
    }
}

/// How a request that got no answer failed.
#[derive(Debug)]
pub(super) enum NoAnswer {
    Unreachable(String),
    TimedOut,
    Broken(String),
}

impl NoAnswer {
    pub(super) fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::TimedOut
        } else if error.is_connect() {
            Self::Unreachable(cause(error))
        } else {
            Self::Broken(cause(error))
        }
    }

    /// The text the live view shows and the log writes.
    pub(super) fn reason(&self, timeout: Duration) -> String {
        match self {
            Self::Unreachable(cause) | Self::Broken(cause) => cause.clone(),
            Self::TimedOut => format!("timed out after {}", humantime::format_duration(timeout)),
        }
    }

    /// `url` (as shown), `during` a step: the error.
    pub(super) fn into_error(
        self,
        url: String,
        during: &'static str,
        timeout: Duration,
    ) -> UpstreamError {
        match self {
            Self::Unreachable(cause) => UpstreamError::Unreachable { url, during, cause },
            Self::TimedOut => UpstreamError::TimedOut {
                url,
                during,
                after: timeout,
            },
            Self::Broken(reason) => UpstreamError::Transport { url, reason },
        }
    }
}

/// An error and its sources, `: `-joined (a source already spelled out by
/// the one before it is skipped), without the URL reqwest adds: e.g.
/// `error sending request: client error (Connect): tcp connect error:
/// Connection refused (os error 111)`.
fn cause(error: &reqwest::Error) -> String {
    let mut text = match error.url() {
        Some(url) => error.to_string().replace(&format!(" for url ({url})"), ""),
        None => error.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(next) = source {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        source = next.source();
    }
    text
}
