//! Calling the application's event handler, as the service does: the
//! abuse-protection handshake on first use, then signed CloudEvents —
//! with a managed-identity bearer token for handlers configured so, and
//! without `ce-signature` when local auth is disabled.
//!
//! * `mod.rs`: the call: request building, signing, retries;
//! * `answer.rs`: what is read of an answer;
//! * `error.rs`: how a call failed, and what the client and the log say;
//! * `log.rs`: the call and invocation log the live view shows.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

mod answer;
mod error;
mod log;

pub(crate) use answer::UpstreamAnswer;
pub(crate) use error::UpstreamError;
pub(crate) use log::{rfc3339, CallRecord, InvocationRecord, Outcome};

use log::CallLog;

use answer::{read_answer, read_error_body};
use error::NoAnswer;

use crate::entra::Entra;
use crate::hub::lock;
use crate::settings::{EventHandlerSettings, HubSettings};
use crate::shown::shown_url;
use webpubsub::config::AccessKey;
use webpubsub::wire::{preflight_headers, CloudEvent, EventType, PREFLIGHT_METHOD};

/// One event to send.
#[derive(Debug)]
pub(crate) struct UpstreamCall<'a> {
    pub(crate) hub: &'a str,
    pub(crate) connection_id: &'a str,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) subprotocol: Option<&'a str>,
    pub(crate) state: Option<String>,
    pub(crate) event_id: u64,
    pub(crate) kind: EventType<'a>,
    pub(crate) content_type: &'static str,
    pub(crate) body: Bytes,
    /// Headers added to (or replacing) the CloudEvent's: MQTT events carry
    /// `ce-physicalConnectionId`, `ce-sessionId`, their own `ce-source`,
    /// and on user events their `Content-Type` and `mqtt-{name}` user
    /// properties (`crate::endpoint::mqtt`). Empty for other clients.
    pub(crate) extra: HeaderMap,
}

/// Whether a client waits for the event's answer (upstream.md §1): `connect`
/// and user events.
fn blocking(kind: EventType<'_>) -> bool {
    matches!(kind, EventType::Connect | EventType::User(_))
}

/// The caller of every hub's event handlers.
#[derive(Debug)]
pub(crate) struct Upstream {
    http: reqwest::Client,
    /// Empty when local auth is disabled: no `ce-signature` then.
    keys: Vec<AccessKey>,
    entra: Arc<Entra>,
    origin: String,
    retry_delays: Vec<Duration>,
    /// One cell per handler URL: set once its handshake succeeded; callers
    /// that arrive meanwhile wait for the first handshake.
    validated: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<()>>>>,
    /// The latest calls and invocations (`invoke` frames), for the live view.
    log: CallLog,
    /// How long one call may take; also the deadline of an invocation.
    timeout: Duration,
    /// Bumped on every call, so the live view knows when to refresh.
    pub(crate) changes: tokio::sync::watch::Sender<u64>,
}

impl Upstream {
    pub(crate) fn new(
        keys: Vec<AccessKey>,
        entra: Arc<Entra>,
        origin: String,
        retry_delays: Vec<Duration>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("webpubsub-emulator/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            keys,
            entra,
            origin,
            retry_delays,
            validated: Mutex::new(HashMap::new()),
            log: CallLog::default(),
            timeout,
            changes: tokio::sync::watch::channel(0).0,
        })
    }

    /// The latest calls, newest first.
    pub(crate) fn recent(&self) -> Vec<CallRecord> {
        self.log.recent()
    }

    /// The latest invocations, newest first.
    pub(crate) fn recent_invocations(&self) -> Vec<InvocationRecord> {
        self.log.recent_invocations()
    }

    /// Keeps an invocation's outcome for the live view.
    pub(crate) fn record_invocation(&self, record: InvocationRecord) {
        self.log.record_invocation(record);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Keeps a call for the live view.
    fn record(&self, record: CallRecord) {
        self.log.record(record);
        self.changes.send_modify(|n| *n += 1);
    }

    /// How long one upstream call may take (`upstream_timeout`).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends an event to the hub's handler for it. `Ok(None)`: no handler
    /// subscribes to this event.
    pub(crate) async fn call(
        &self,
        settings: Option<&HubSettings>,
        call: UpstreamCall<'_>,
    ) -> Result<Option<UpstreamAnswer>, UpstreamError> {
        let Some(handler) = settings.and_then(|s| s.handler_for(call.kind)) else {
            return Ok(None);
        };
        // Signing such an id would hand out a token signature (see
        // `Rejection::TokenShapedConnectionId`). The emulator's own ids are
        // hex; this holds for ids that clients choose too.
        if webpubsub::signing::is_token_signing_input(call.connection_id.as_bytes()) {
            return Err(UpstreamError::TokenShapedConnectionId {
                connection_id: webpubsub::upstream::excerpt(call.connection_id),
            });
        }
        self.preflight(handler, call.hub).await?;
        let url = expand(&handler.url_template, call.hub, call.kind.event_name());
        let mut headers = self.headers(&call);
        for name in call.extra.keys() {
            headers.remove(name);
        }
        for (name, value) in &call.extra {
            headers.append(name.clone(), value.clone());
        }
        if let Some(resource) = &handler.auth_resource {
            let bearer = self
                .entra
                .upstream_token(resource)
                .and_then(|t| HeaderValue::try_from(format!("Bearer {t}")).ok());
            let Some(mut bearer) = bearer else {
                return Err(UpstreamError::Transport {
                    url: shown_url(&url),
                    reason: "the managed identity's token could not be signed".to_owned(),
                });
            };
            bearer.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, bearer);
        }
        let shown = shown_url(&url);
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let result = self
                .http
                .post(&url)
                .headers(headers.clone())
                .body(call.body.clone())
                .send()
                .await;
            let mut record = CallRecord::new(
                call.hub,
                call.connection_id,
                call.kind.event_name(),
                "POST",
                &url,
                &headers,
                started,
            );
            let latency_ms = record.latency_ms;
            let (retry, retried) = match result {
                Ok(response) => {
                    let status = response.status();
                    record.status = Some(status.as_u16());
                    tracing::debug!(target: "webpubsub_emulator::upstream", event = call.kind.event_name(),
                        connection = call.connection_id, status = status.as_u16(), latency_ms, "upstream answered");
                    if status.is_success() {
                        let answer = read_answer(response).await;
                        if let Err(failed) = &answer {
                            record.failed(&failed.reason(self.timeout), &url);
                        }
                        self.record(record);
                        return answer
                            .map(Some)
                            .map_err(|failed| failed.into_error(shown, "", self.timeout));
                    }
                    // Read for retried statuses too: a refused MQTT
                    // `connect` may carry its CONNACK code in a 5xx.
                    let body = read_error_body(response).await;
                    // The handler's own words (a router's one-line reason
                    // for a 400) in the live view, beside the status.
                    let text = body.trim();
                    if !text.is_empty() {
                        record.failed(&format!("answered {status}: {text}"), &url);
                    }
                    self.record(record);
                    let error = UpstreamError::Status {
                        url: shown.clone(),
                        status,
                        body,
                    };
                    let retried = status == StatusCode::REQUEST_TIMEOUT || status.is_server_error();
                    (error, retried)
                }
                Err(e) => {
                    let failed = NoAnswer::of(&e);
                    let reason = failed.reason(self.timeout);
                    record.failed(&reason, &url);
                    self.record(record);
                    let retried = match failed {
                        // A client waits for a blocking event: an unreachable
                        // handler gets one retry (after the first delay), and a
                        // timed-out one none; it already had `upstream_timeout`.
                        NoAnswer::Unreachable(_) if blocking(call.kind) => attempt == 0,
                        NoAnswer::TimedOut if blocking(call.kind) => false,
                        _ => true,
                    };
                    let error = failed.into_error(shown.clone(), "", self.timeout);
                    tracing::warn!(target: "webpubsub_emulator::upstream", event = call.kind.event_name(),
                        connection = call.connection_id, attempt = attempt + 1, retried, error = %error, "{}", error.summary());
                    (error, retried)
                }
            };
            let delay = self.retry_delays.get(attempt).filter(|_| retried);
            let Some(delay) = delay else {
                return Err(retry);
            };
            attempt += 1;
            tokio::time::sleep(*delay).await;
        }
    }

    /// The abuse-protection `OPTIONS`, once per handler URL until it succeeds.
    async fn preflight(
        &self,
        handler: &EventHandlerSettings,
        hub: &str,
    ) -> Result<(), UpstreamError> {
        let url = expand(&handler.url_template, hub, "validate");
        let cell = lock(&self.validated)
            .entry(url.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.handshake(url, hub))
            .await
            .map(|_| ())
    }

    async fn handshake(&self, url: String, hub: &str) -> Result<(), UpstreamError> {
        let headers = preflight_headers(&self.origin);
        let started = Instant::now();
        let result = self
            .http
            .request(PREFLIGHT_METHOD, &url)
            .headers(headers.clone())
            .send()
            .await;
        let mut record = CallRecord::new(
            hub,
            "",
            "validate",
            PREFLIGHT_METHOD.as_str(),
            &url,
            &headers,
            started,
        );
        let shown = shown_url(&url);
        let outcome = match result {
            Ok(response) => {
                record.status = Some(response.status().as_u16());
                let allowed = response
                    .headers()
                    .get_all("WebHook-Allowed-Origin")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .any(|o| o.trim() == "*" || o.trim().eq_ignore_ascii_case(&self.origin));
                if !response.status().is_success() {
                    Err(UpstreamError::Preflight {
                        url: shown,
                        reason: format!("it answered {}", response.status()),
                    })
                } else if !allowed {
                    Err(UpstreamError::Preflight {
                        url: shown,
                        reason: format!("WebHook-Allowed-Origin does not allow {}", self.origin),
                    })
                } else {
                    Ok(())
                }
            }
            Err(e) => {
                let failed = NoAnswer::of(&e);
                record.failed(&failed.reason(self.timeout), &url);
                Err(failed.into_error(shown, " (abuse-protection handshake)", self.timeout))
            }
        };
        if let Err(UpstreamError::Preflight { reason, .. }) = &outcome {
            record.failed(reason, &url);
        }
        self.record(record);
        if let Err(error) = &outcome {
            tracing::warn!(target: "webpubsub_emulator::upstream", error = %error, "{}", error.summary());
        }
        outcome
    }

    fn headers(&self, call: &UpstreamCall<'_>) -> HeaderMap {
        let signature = self
            .keys
            .iter()
            .map(|k| k.signature(call.connection_id))
            .collect::<Vec<_>>()
            .join(",");
        CloudEvent {
            ce_type: &call.kind.ce_type(),
            event_name: call.kind.event_name(),
            hub: call.hub,
            connection_id: call.connection_id,
            id: &call.event_id.to_string(),
            time: &rfc3339(SystemTime::now()),
            user_id: call.user_id,
            subprotocol: call.subprotocol,
            state: call.state.as_deref().filter(|s| !s.is_empty()),
            signature: (!self.keys.is_empty()).then_some(signature.as_str()),
            origin: Some(&self.origin),
            content_type: Some(call.content_type),
        }
        .headers()
    }
}

/// Escaped in template values: all but RFC 3986 unreserved characters.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Fills `{hub}` and `{event}` in a URL template, URL-escaped.
pub(crate) fn expand(template: &str, hub: &str, event: &str) -> String {
    template
        .replace("{hub}", &utf8_percent_encode(hub, ESCAPE).to_string())
        .replace("{event}", &utf8_percent_encode(event, ESCAPE).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_shaped_connection_ids_are_never_signed() {
        let entra = Entra::new(
            uuid::Uuid::nil(),
            crate::entra::SigningKey::generate().unwrap(),
            crate::entra::AppRegistration {
                client_id: uuid::Uuid::nil(),
                secret: "s".to_owned(),
                object_id: uuid::Uuid::nil(),
            },
            (uuid::Uuid::nil(), uuid::Uuid::nil()),
            "http://localhost".to_owned(),
        );
        let upstream = Upstream::new(
            vec![AccessKey::new("k").unwrap()],
            Arc::new(entra),
            "localhost".to_owned(),
            Vec::new(),
            Duration::from_secs(1),
        )
        .unwrap();
        // Port 9 (discard) on loopback: were anything sent, the call would fail otherwise.
        let hub = HubSettings::new("chat")
            .event_handler(EventHandlerSettings::new("http://127.0.0.1:9/eventhandler"));
        let call = UpstreamCall {
            hub: "chat",
            connection_id: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0",
            user_id: Some("admin"),
            subprotocol: None,
            state: None,
            event_id: 1,
            kind: EventType::User("message"),
            content_type: "text/plain",
            body: Bytes::from_static(b"hi"),
            extra: HeaderMap::new(),
        };
        let error = upstream.call(Some(&hub), call).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::TokenShapedConnectionId { .. }),
            "{error}"
        );
        assert!(upstream.recent().is_empty(), "nothing was sent or recorded");
    }

    #[tokio::test]
    async fn a_failed_call_names_its_cause_without_secrets() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://user:hunter2@127.0.0.1:{port}/eh?code=s3cret");
        let refused = reqwest::Client::new().post(&url).send().await.unwrap_err();
        let timeout = Duration::from_millis(500);
        let refused = NoAnswer::of(&refused);
        let reason = refused.reason(timeout);
        assert!(reason.contains("Connection refused"), "{reason}");
        assert!(!reason.contains("127.0.0.1"), "no URL: {reason}");

        let cases = [
            (
                refused.into_error(shown_url(&url), "", timeout),
                "could not reach the upstream",
                "Connection refused",
                "The event handler could not be reached.",
            ),
            (
                NoAnswer::TimedOut.into_error(shown_url(&url), "", timeout),
                "upstream timed out",
                "timed out after 500ms",
                "The event handler did not answer within 500ms.",
            ),
        ];
        for (error, summary, logged, told) in cases {
            let text = error.to_string();
            assert_eq!(error.summary(), summary, "{text}");
            assert!(text.contains(logged), "{text}");
            assert!(text.contains("code=redacted"), "{text}");
            assert!(
                !text.contains("s3cret") && !text.contains("hunter2"),
                "{text}"
            );
            assert_eq!(error.client_message().as_deref(), Some(told));
            assert_eq!(error.handshake_status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }

    #[test]
    fn templates_are_filled_url_escaped() {
        assert_eq!(
            expand("http://h/eh/{hub}/{event}", "chat", "my event"),
            "http://h/eh/chat/my%20event"
        );
    }
}
