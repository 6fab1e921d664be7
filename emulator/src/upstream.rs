//! Calling the application's event handler, as the service does: the
//! abuse-protection handshake on first use, then signed CloudEvents —
//! with a managed-identity bearer token for handlers configured so, and
//! without `ce-signature` when local auth is disabled.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::client::InvocationRecord;
use super::entra::Entra;
use super::hub::lock;
use super::live::{clip, shown_header, shown_url, SHOWN_TEXT, SHOWN_VALUE};
use super::{EventHandlerSettings, HubSettings};
use webpubsub::config::AccessKey;
use webpubsub::wire::{CloudEvent, EventType};

/// The most of an upstream answer that is read.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// How many upstream calls the live view keeps.
const LOG_SIZE: usize = 200;
/// The most of a refusing (non-2xx, not retried) answer's body that is
/// kept: an invocation hands it to the client as its error message.
const ERROR_BODY_LIMIT: usize = 4096;
/// How many invocations the live view keeps.
const INVOCATION_LOG_SIZE: usize = 200;

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

/// A 2xx answer of the upstream.
#[derive(Debug)]
pub(crate) struct UpstreamAnswer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
    /// `Some` when the answer carried `ce-connectionState` (empty: cleared).
    pub(crate) state: Option<String>,
    /// The answer's `mqtt-{name}` headers as MQTT user properties
    /// `(name, value)`: a user event's answer hands them to MQTT 5 clients.
    pub(crate) mqtt_properties: Vec<(String, String)>,
}

/// Why an event could not be delivered. Every `url` is as the live view
/// shows it ([`shown_url`]: no password, no secret query values).
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
enum NoAnswer {
    Unreachable(String),
    TimedOut,
    Broken(String),
}

impl NoAnswer {
    fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::TimedOut
        } else if error.is_connect() {
            Self::Unreachable(cause(error))
        } else {
            Self::Broken(cause(error))
        }
    }

    /// The text the live view shows and the log writes.
    fn reason(&self, timeout: Duration) -> String {
        match self {
            Self::Unreachable(cause) | Self::Broken(cause) => cause.clone(),
            Self::TimedOut => format!("timed out after {}", humantime::format_duration(timeout)),
        }
    }

    /// `url` (as shown), `during` a step: the error.
    fn into_error(self, url: String, during: &'static str, timeout: Duration) -> UpstreamError {
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

/// Whether a client waits for the event's answer (upstream.md §1): `connect`
/// and user events.
fn blocking(kind: EventType<'_>) -> bool {
    matches!(kind, EventType::Connect | EventType::User(_))
}

/// One upstream call, as the live view shows it: secrets redacted and
/// every text clipped when it is made ([`CallRecord::new`]), so the log of
/// [`LOG_SIZE`] records has a bounded size.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallRecord {
    at: String,
    hub: String,
    connection_id: String,
    event: String,
    method: &'static str,
    url: String,
    request_headers: Vec<(String, String)>,
    status: Option<u16>,
    error: Option<String>,
    latency_ms: f64,
}

impl CallRecord {
    /// A call to `url` with `headers`, sent at `started`: no signature,
    /// token or connection state in it (see [`live`](super::live)).
    fn new(
        hub: &str,
        connection_id: &str,
        event: &str,
        method: &'static str,
        url: &str,
        headers: &HeaderMap,
        started: Instant,
    ) -> Self {
        Self {
            at: rfc3339(SystemTime::now()),
            hub: clip(hub, SHOWN_VALUE),
            connection_id: clip(connection_id, SHOWN_VALUE),
            event: clip(event, SHOWN_VALUE),
            method,
            url: shown_url(url),
            request_headers: headers
                .iter()
                .map(|(name, value)| shown_header(name, value))
                .collect(),
            status: None,
            error: None,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    /// Notes why the call failed; `url` in `reason` (as given or as
    /// `url::Url` prints it, as reqwest does) is shown as [`shown_url`] does.
    fn failed(&mut self, reason: &str, url: &str) {
        let mut reason = reason.replace(url, &self.url);
        if let Ok(normalized) = url::Url::parse(url) {
            reason = reason.replace(normalized.as_str(), &self.url);
        }
        self.error = Some(clip(&reason, SHOWN_TEXT));
    }
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
    log: Mutex<VecDeque<CallRecord>>,
    /// The latest invocations (`invoke` frames), for the live view.
    invocations: Mutex<VecDeque<InvocationRecord>>,
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
            log: Mutex::new(VecDeque::new()),
            invocations: Mutex::new(VecDeque::new()),
            timeout,
            changes: tokio::sync::watch::channel(0).0,
        })
    }

    /// The latest calls, newest first.
    pub(crate) fn recent(&self) -> Vec<CallRecord> {
        lock(&self.log).iter().rev().cloned().collect()
    }

    /// How long one upstream call may take (`upstream_timeout`).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The latest invocations, newest first.
    pub(crate) fn recent_invocations(&self) -> Vec<InvocationRecord> {
        lock(&self.invocations).iter().rev().cloned().collect()
    }

    /// Keeps an invocation's outcome for the live view (the last
    /// [`INVOCATION_LOG_SIZE`]).
    pub(crate) fn record_invocation(&self, record: InvocationRecord) {
        let mut log = lock(&self.invocations);
        if log.len() == INVOCATION_LOG_SIZE {
            log.pop_front();
        }
        log.push_back(record);
        drop(log);
        self.changes.send_modify(|n| *n += 1);
    }

    fn record(&self, record: CallRecord) {
        let mut log = lock(&self.log);
        if log.len() == LOG_SIZE {
            log.pop_front();
        }
        log.push_back(record);
        drop(log);
        self.changes.send_modify(|n| *n += 1);
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
        let mut headers = HeaderMap::new();
        if let Ok(origin) = HeaderValue::from_str(&self.origin) {
            headers.insert("WebHook-Request-Origin", origin);
        }
        headers.insert("ce-awpsversion", HeaderValue::from_static("1.0"));
        let started = Instant::now();
        let result = self
            .http
            .request(Method::OPTIONS, &url)
            .headers(headers.clone())
            .send()
            .await;
        let mut record = CallRecord::new(hub, "", "validate", "OPTIONS", &url, &headers, started);
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

async fn read_answer(mut response: reqwest::Response) -> Result<UpstreamAnswer, NoAnswer> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let state = response
        .headers()
        .get("ce-connectionState")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mqtt_properties = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("mqtt-")?;
            Some((name.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > ANSWER_LIMIT {
                    return Err(NoAnswer::Broken(format!(
                        "the answer exceeds {ANSWER_LIMIT} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(NoAnswer::of(&e)),
        }
    }
    Ok(UpstreamAnswer {
        status,
        content_type,
        body: Bytes::from(body),
        state,
        mqtt_properties,
    })
}

/// The start of a refusing answer's body ([`ERROR_BODY_LIMIT`] bytes at
/// most, lossy UTF-8); empty when it cannot be read.
async fn read_error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
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

/// `2024-01-01T00:00:00Z` (UTC, seconds). A clock outside 1970..=9999
/// (which RFC 3339 and humantime cannot write) reads as the nearest end.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
    humantime::format_rfc3339_seconds(time.clamp(UNIX_EPOCH, last)).to_string()
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
    fn times_are_utc_seconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_704_067_200_999)),
            "2024-01-01T00:00:00Z",
            "fractions are cut, not rounded"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z",
            "a clock before 1970 does not panic"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(300_000_000_000)),
            "9999-12-31T23:59:59Z",
            "nor one after 9999"
        );
    }

    #[test]
    fn templates_are_filled_url_escaped() {
        assert_eq!(
            expand("http://h/eh/{hub}/{event}", "chat", "my event"),
            "http://h/eh/chat/my%20event"
        );
    }
}
