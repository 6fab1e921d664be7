//! A recording upstream: a bare axum server that keeps every request and
//! answers as a test tells it to.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use webpubsub_emulator::EventHandlerSettings;

use crate::common::emulator::WAIT;

/// One request the upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// Path and query, as received.
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) at: Instant,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn event(&self) -> &str {
        self.header("ce-eventName").unwrap_or_default()
    }

    pub(crate) fn connection(&self) -> &str {
        self.header("ce-connectionId").unwrap_or_default()
    }

    pub(crate) fn is(&self, connection: &str, event: &str) -> bool {
        self.method == Method::POST && self.connection() == connection && self.event() == event
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn state(&self) -> Option<&str> {
        self.header("ce-connectionState").filter(|s| !s.is_empty())
    }
}

/// How the upstream answers one request.
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Option<Duration>,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut reply = self.header("content-type", content_type);
        reply.body = body.into();
        reply
    }

    pub(crate) fn json(self, value: Value) -> Self {
        self.body("application/json", value.to_string())
    }

    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Responder = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

struct Recorder {
    seen: Mutex<Vec<Req>>,
    responder: Mutex<Responder>,
}

/// The default answers: preflight allowed for everyone, `connect` accepted
/// unchanged (so token roles and groups apply), and user events by name:
/// `echo`/`message` send the body back with its type, `json` answers a
/// JSON value, `fail` 500, `refuse` 400, `slow` takes 2 s; anything else is
/// an empty 200. Hubs whose handler URL starts with `/failing/` fail every
/// user event with 500.
pub(crate) fn default_reply(req: &Req) -> Reply {
    if req.method == Method::OPTIONS {
        return Reply::status(200).header("WebHook-Allowed-Origin", "*");
    }
    let system = matches!(req.event(), "connect" | "connected" | "disconnected");
    if req.path.starts_with("/failing/") && !system {
        return Reply::status(500);
    }
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    match req.event() {
        "connect" => Reply::status(204),
        "echo" | "message" => Reply::status(200).body(&content_type, req.body.clone()),
        "json" => Reply::status(200).json(json!({"hello": ["world", 1]})),
        "fail" => Reply::status(500),
        "refuse" => Reply::status(400),
        "slow" => Reply::status(204).delayed(Duration::from_secs(2)),
        _ => Reply::status(200),
    }
}

async fn record(
    State(recorder): State<Arc<Recorder>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    let responder = recorder.responder.lock().unwrap().clone();
    recorder.seen.lock().unwrap().push(req.clone());
    let reply = responder(&req);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = axum::response::Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    recorder: Arc<Recorder>,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        Self::with(default_reply).await
    }

    pub(crate) async fn with(responder: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Self {
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            responder: Mutex::new(Arc::new(responder)),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(recorder.clone());
        let addr = crate::common::serve(app).await;
        Self { addr, recorder }
    }

    pub(crate) fn respond_with(&self, responder: impl Fn(&Req) -> Reply + Send + Sync + 'static) {
        *self.recorder.responder.lock().unwrap() = Arc::new(responder);
    }

    /// A handler for every event at `/eh/{hub}/{event}`.
    pub(crate) fn handler(&self) -> EventHandlerSettings {
        EventHandlerSettings::new(format!("http://{}/eh/{{hub}}/{{event}}", self.addr))
    }

    pub(crate) fn requests(&self) -> Vec<Req> {
        self.recorder.seen.lock().unwrap().clone()
    }

    pub(crate) fn preflights(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::OPTIONS)
            .collect()
    }

    /// The event POSTs of one connection, in arrival order.
    pub(crate) fn events_of(&self, connection: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::POST && r.connection() == connection)
            .collect()
    }

    pub(crate) fn count(&self, connection: &str, event: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(connection, event))
            .count()
    }

    pub(crate) async fn wait_event(&self, connection: &str, event: &str) -> Req {
        self.wait_event_within(connection, event, WAIT).await
    }

    pub(crate) async fn wait_event_within(
        &self,
        connection: &str,
        event: &str,
        limit: Duration,
    ) -> Req {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(req) = self
                .requests()
                .into_iter()
                .find(|r| r.is(connection, event))
            {
                return req;
            }
            assert!(
                Instant::now() < deadline,
                "no `{event}` event for {connection} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
