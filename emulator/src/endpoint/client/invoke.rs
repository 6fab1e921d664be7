//! `invoke` and `cancelInvocation` (`@azure/web-pubsub-client` 1.1.0's
//! `invokeEvent`): an invocation is the user event `event` raised exactly
//! as an `event` frame raises it, in a task of its own so the socket's
//! reader goes on with `ping`, other frames and `cancelInvocation`; the
//! upstream's answer comes back as `invokeResponse`.
//!
//! ```text
//! → {"type":"invoke","invocationId":"1","target":"event","event":"echo","dataType":"text","data":"hi"}
//! ← {"type":"invokeResponse","invocationId":"1","success":true,"dataType":"text","data":"hi"}
//! ← {"type":"invokeResponse","invocationId":"1","success":false,"error":{"name":"BadRequest","message":"…"}}
//! ```
//!
//! Bad frames, which `protocol/json` finds before anything here acts: one
//! without a usable `invocationId` (a string of 1 to
//! [`MAX_ID_BYTES`](crate::protocol::MAX_ID_BYTES) bytes), or whose
//! `dataType` / `data` break the rules every payload follows, ends the
//! socket (1003) as other invalid frames do; a `target` other than `event`, a missing `event`, an id already
//! pending and more than [`MAX_PENDING`] pending invocations are answered
//! with `success: false` and the connection stays.
//!
//! Error names (the service's own are not documented, see the README):
//! `BadRequest` (the frame, a duplicate id, or a 4xx answer, whose text is
//! the message), `TooManyRequests`, `Timeout` (no answer within the
//! upstream timeout), `InternalServerError` (5xx, unreachable handler, no
//! handler for the event).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::task::AbortHandle;

use crate::hub::{lock, Connection, Data, Outbound};
use crate::lifecycle::{user_event, UserEventError};
use crate::protocol::json::frames;
use crate::protocol::BadInvoke;
use crate::service::Shared;
use crate::upstream::{InvocationRecord, Outcome, UpstreamError};

/// Invocations one connection may have waiting for the upstream.
pub(crate) const MAX_PENDING: usize = 64;

/// How an invocation failed: the `error` of its `invokeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) name: &'static str,
    pub(super) message: String,
}

impl Failure {
    fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }
}

/// One invocation waiting for the upstream.
#[derive(Debug)]
struct Pending {
    task: AbortHandle,
    /// Tells this invocation from a later one that reuses its id.
    token: u64,
    event: String,
    started: Instant,
    /// What it counts against the connection's budget until it ends.
    cost: usize,
}

/// The pending invocations of one socket. Dropping it (the socket ended)
/// aborts them.
pub(super) struct Invocations {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    next_token: u64,
}

impl Invocations {
    pub(super) fn new(shared: &Arc<Shared>, conn: &Arc<Connection>) -> Self {
        Self {
            shared: shared.clone(),
            conn: conn.clone(),
            pending: Arc::default(),
            next_token: 0,
        }
    }

    /// An `invoke` frame: starts the call, or answers `success: false`.
    pub(super) fn invoke(&mut self, id: String, event: Result<String, BadInvoke>, data: Data) {
        let event = match event {
            Ok(event) => event,
            Err(bad) => {
                let message = match bad {
                    BadInvoke::UnsupportedTarget => "Only the target `event` is supported.",
                    BadInvoke::NoEvent => "An event name is required.",
                };
                self.refuse(&id, "", Failure::new("BadRequest", message));
                return;
            }
        };
        let mut pending = lock(&self.pending);
        if pending.contains_key(&id) {
            drop(pending);
            let failure = Failure::new(
                "BadRequest",
                format!("The invocation `{id}` is already pending."),
            );
            self.refuse(&id, &event, failure);
            return;
        }
        if pending.len() >= MAX_PENDING {
            drop(pending);
            let failure = Failure::new(
                "TooManyRequests",
                format!("At most {MAX_PENDING} invocations may be pending on a connection."),
            );
            self.refuse(&id, &event, failure);
            return;
        }
        // The payload waits for the upstream: it counts against the
        // connection's one budget until the invocation ends.
        let cost = data.bytes.len() + id.len() + event.len() + 64;
        if self.conn.hold(cost).is_err() {
            drop(pending);
            let failure = Failure::new(
                "TooManyRequests",
                "The connection holds too many bytes to start another invocation.",
            );
            self.refuse(&id, &event, failure);
            return;
        }
        self.next_token += 1;
        let token = self.next_token;
        let started = Instant::now();
        // Spawned under the lock: the task cannot finish before it is listed.
        let task = tokio::spawn({
            let (shared, conn, map) =
                (self.shared.clone(), self.conn.clone(), self.pending.clone());
            let (id, event) = (id.clone(), event.clone());
            async move {
                let result = run(&shared, &conn, &event, data).await;
                let mut pending = lock(&map);
                // Cancelled, or the socket ended, while the answer was read.
                if pending.get(&id).is_none_or(|p| p.token != token) {
                    return;
                }
                if let Some(done) = pending.remove(&id) {
                    conn.release(done.cost);
                }
                conn.send(Outbound::Frame(response(&id, &result).into()));
                drop(pending);
                let (outcome, error) = match &result {
                    Ok(_) => (Outcome::Success, None),
                    Err(f) if f.name == "Timeout" => (Outcome::Timeout, Some(f.name)),
                    Err(f) => (Outcome::Error, Some(f.name)),
                };
                tracing::debug!(target: "webpubsub_emulator::client", connection = %conn.id,
                    invocation = %id, event = %event, ?outcome, "invocation answered");
                record(&shared, &conn, &id, &event, outcome, error, started);
            }
        });
        pending.insert(
            id,
            Pending {
                task: task.abort_handle(),
                token,
                event,
                started,
                cost,
            },
        );
    }

    /// A `cancelInvocation` frame: drops the pending call, answers nothing.
    /// Unknown ids are ignored.
    pub(super) fn cancel(&mut self, id: &str) {
        let Some(pending) = lock(&self.pending).remove(id) else {
            return;
        };
        pending.task.abort();
        self.conn.release(pending.cost);
        tracing::debug!(target: "webpubsub_emulator::client", connection = %self.conn.id,
            invocation = %id, "invocation cancelled");
        let (shared, conn) = (&self.shared, &self.conn);
        record(
            shared,
            conn,
            id,
            &pending.event,
            Outcome::Cancelled,
            None,
            pending.started,
        );
    }

    /// Answers `success: false` at once.
    fn refuse(&self, id: &str, event: &str, failure: Failure) {
        self.conn
            .send(Outbound::Frame(response(id, &Err(failure.clone())).into()));
        let outcome = Outcome::Error;
        record(
            &self.shared,
            &self.conn,
            id,
            event,
            outcome,
            Some(failure.name),
            Instant::now(),
        );
    }
}

impl Drop for Invocations {
    fn drop(&mut self) {
        let pending: Vec<_> = lock(&self.pending).drain().collect();
        for (id, pending) in pending {
            pending.task.abort();
            self.conn.release(pending.cost);
            record(
                &self.shared,
                &self.conn,
                &id,
                &pending.event,
                Outcome::Closed,
                None,
                pending.started,
            );
        }
    }
}

/// Raises the user event within the upstream timeout.
async fn run(
    shared: &Shared,
    conn: &Connection,
    event: &str,
    data: Data,
) -> Result<Option<Data>, Failure> {
    let timeout = shared.upstream.timeout();
    match tokio::time::timeout(timeout, user_event(shared, conn, event, data)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(UserEventError::NoHandler)) => Err(Failure::new(
            "InternalServerError",
            format!("No event handler is registered for the event `{event}`."),
        )),
        Ok(Err(UserEventError::Upstream(error))) => {
            tracing::warn!(target: "webpubsub_emulator::client", connection = %conn.id, event,
                error = %error, "invocation failed: {}", error.summary());
            Err(upstream_failure(&error))
        }
        Err(_) => Err(timed_out(timeout)),
    }
}

/// The failure of an invocation the upstream did not answer in time. The
/// HTTP client's own timeout is the same length as the invocation's, so
/// either may fire first: both are this one failure.
fn timed_out(after: std::time::Duration) -> Failure {
    Failure::new(
        "Timeout",
        format!("The event handler did not answer within {after:?}."),
    )
}

/// The error a failed upstream call hands the client: a 4xx answer's text
/// is shown, nothing else of the upstream (URLs may hold secrets).
fn upstream_failure(error: &UpstreamError) -> Failure {
    match error {
        UpstreamError::Status { status, body, .. } if status.is_client_error() => {
            let message = if body.trim().is_empty() {
                format!("The event handler answered {status}.")
            } else {
                body.clone()
            };
            Failure::new("BadRequest", message)
        }
        UpstreamError::Status { status, .. } => Failure::new(
            "InternalServerError",
            format!("The event handler answered {status}."),
        ),
        UpstreamError::TimedOut { after, .. } => timed_out(*after),
        _ => Failure::new("InternalServerError", error.client_text()),
    }
}

/// `{"type":"invokeResponse",…}` of an invocation's result.
pub(super) fn response(id: &str, result: &Result<Option<Data>, Failure>) -> String {
    let result = match result {
        Ok(reply) => Ok(reply.as_ref()),
        Err(failure) => Err((failure.name, failure.message.as_str())),
    };
    frames::invoke_response(id, result)
}

/// Keeps an invocation for the live view.
fn record(
    shared: &Shared,
    conn: &Connection,
    id: &str,
    event: &str,
    outcome: Outcome,
    error: Option<&'static str>,
    started: Instant,
) {
    let record = InvocationRecord::new(&conn.hub, &conn.id, id, event, outcome, error, started);
    shared.upstream.record_invocation(record);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::{json, Value};
    use webpubsub::events::DataType;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn data(kind: DataType, bytes: &'static [u8]) -> Option<Data> {
        Some(Data {
            kind,
            bytes: Bytes::from_static(bytes),
        })
    }

    #[test]
    fn responses_are_the_documented_json() {
        assert_eq!(
            parse(&response("1", &Ok(data(DataType::Text, b"pong")))),
            json!({"type":"invokeResponse","invocationId":"1","success":true,"dataType":"text","data":"pong"})
        );
        assert_eq!(
            parse(&response("2", &Ok(data(DataType::Json, br#"{"a":[1]}"#)))),
            json!({"type":"invokeResponse","invocationId":"2","success":true,"dataType":"json","data":{"a":[1]}})
        );
        assert_eq!(
            parse(&response("3", &Ok(data(DataType::Binary, &[0, 255])))),
            json!({"type":"invokeResponse","invocationId":"3","success":true,"dataType":"binary","data":"AP8="})
        );
        assert_eq!(
            parse(&response("4", &Ok(None))),
            json!({"type":"invokeResponse","invocationId":"4","success":true})
        );
        assert_eq!(
            parse(&response(
                "5\"",
                &Err(Failure::new("BadRequest", "no \"x\""))
            )),
            json!({"type":"invokeResponse","invocationId":"5\"","success":false,
                   "error":{"name":"BadRequest","message":"no \"x\""}})
        );
    }

    #[test]
    fn upstream_errors_become_error_names() {
        let status = |code: u16, body: &str| UpstreamError::Status {
            url: "http://secret@h/x".to_owned(),
            status: http::StatusCode::from_u16(code).unwrap(),
            body: body.to_owned(),
        };
        for (error, name, message) in [
            (
                status(400, "Invalid payload"),
                "BadRequest",
                "Invalid payload",
            ),
            (
                status(404, " "),
                "BadRequest",
                "The event handler answered 404 Not Found.",
            ),
            (
                status(500, "stack trace"),
                "InternalServerError",
                "The event handler answered 500 Internal Server Error.",
            ),
            (
                UpstreamError::Transport {
                    url: "http://secret@h/x".to_owned(),
                    reason: "refused".to_owned(),
                },
                "InternalServerError",
                "The event handler failed.",
            ),
            // The HTTP client's timeout, which may fire before the
            // invocation's own (they are the same length): still Timeout.
            (
                UpstreamError::TimedOut {
                    url: "http://h/x".to_owned(),
                    during: "",
                    after: std::time::Duration::from_millis(300),
                },
                "Timeout",
                "The event handler did not answer within 300ms.",
            ),
        ] {
            assert_eq!(
                upstream_failure(&error),
                Failure::new(name, message),
                "{error}"
            );
        }
    }
}
