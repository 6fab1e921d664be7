//! The emulator's protocols in detail, end to end on 127.0.0.1: reliable
//! recovery, the JSON and raw client protocols, exactly what the upstream
//! receives (recorded by a bare axum server, not this crate's router), the
//! REST data plane through `WebPubSubServiceClient`, and robustness under a
//! slow upstream and a slow reader.

#![cfg(feature = "emulator")]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use bytes::Bytes;
use common::emulator::{
    self, eventually, ok_ack, open, refused_handshake, refused_recovery, Client, Env, Ws, JSON,
    RELIABLE, WAIT,
};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use webpubsub::emulator::{EmulatorBuilder, EventHandlerSettings, HubSettings, SystemEvent};
use webpubsub::{
    AccessKey, ClientAccessOptions, Filter, Message as RestMessage, Permission, ServiceError,
    WebPubSubServiceClient,
};

const KEY: &str = "emulator-protocol-test-key-0123456789abcdef";
const SECONDARY_KEY: &str = "emulator-protocol-secondary-key-0123456789";

// ---------------------------------------------------------------------------
// A recording upstream: a bare axum server that keeps every request.
// ---------------------------------------------------------------------------

/// One request the upstream received.
#[derive(Debug, Clone)]
struct Req {
    method: Method,
    /// Path and query, as received.
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn event(&self) -> &str {
        self.header("ce-eventName").unwrap_or_default()
    }

    fn connection(&self) -> &str {
        self.header("ce-connectionId").unwrap_or_default()
    }

    fn is(&self, connection: &str, event: &str) -> bool {
        self.method == Method::POST && self.connection() == connection && self.event() == event
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn state(&self) -> Option<&str> {
        self.header("ce-connectionState").filter(|s| !s.is_empty())
    }
}

/// How the upstream answers one request.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Option<Duration>,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut reply = self.header("content-type", content_type);
        reply.body = body.into();
        reply
    }

    fn json(self, value: Value) -> Self {
        self.body("application/json", value.to_string())
    }

    fn delayed(mut self, delay: Duration) -> Self {
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
fn default_reply(req: &Req) -> Reply {
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
struct Upstream {
    addr: SocketAddr,
    recorder: Arc<Recorder>,
}

impl Upstream {
    async fn start() -> Self {
        Self::with(default_reply).await
    }

    async fn with(responder: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Self {
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            responder: Mutex::new(Arc::new(responder)),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(recorder.clone());
        let addr = common::serve(app).await;
        Self { addr, recorder }
    }

    fn respond_with(&self, responder: impl Fn(&Req) -> Reply + Send + Sync + 'static) {
        *self.recorder.responder.lock().unwrap() = Arc::new(responder);
    }

    /// A handler for every event at `/eh/{hub}/{event}`.
    fn handler(&self) -> EventHandlerSettings {
        EventHandlerSettings::new(format!("http://{}/eh/{{hub}}/{{event}}", self.addr))
    }

    fn requests(&self) -> Vec<Req> {
        self.recorder.seen.lock().unwrap().clone()
    }

    fn preflights(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::OPTIONS)
            .collect()
    }

    /// The event POSTs of one connection, in arrival order.
    fn events_of(&self, connection: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::POST && r.connection() == connection)
            .collect()
    }

    fn count(&self, connection: &str, event: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(connection, event))
            .count()
    }

    async fn wait_event(&self, connection: &str, event: &str) -> Req {
        self.wait_event_within(connection, event, WAIT).await
    }

    async fn wait_event_within(&self, connection: &str, event: &str, limit: Duration) -> Req {
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

// ---------------------------------------------------------------------------
// The emulator and its clients.
// ---------------------------------------------------------------------------

fn builder() -> EmulatorBuilder {
    emulator::builder(KEY)
}

/// Starts `builder`, with a service client for hub `chat`.
async fn start(builder: EmulatorBuilder) -> Env {
    emulator::start(builder, "chat").await
}

/// Hub `chat`, every event sent to `up`.
async fn env(up: &Upstream) -> Env {
    start(builder().hub(HubSettings::new("chat").event_handler(up.handler()))).await
}

/// Hub `chat` whose handler is not sent `connect`: clients keep their token's roles and groups.
async fn env_without_connect(up: &Upstream) -> Env {
    start(
        builder().hub(
            HubSettings::new("chat").event_handler(
                up.handler()
                    .system_events([SystemEvent::Connected, SystemEvent::Disconnected]),
            ),
        ),
    )
    .await
}

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn recovery_url(url: &str, id: &str, token: &str) -> String {
    format!(
        "{url}&awps_connection_id={}&awps_reconnection_token={}",
        enc(id),
        enc(token)
    )
}

impl Env {
    async fn json_client(&self, options: ClientAccessOptions) -> Client {
        self.client(options, JSON).await
    }

    /// The connection ids of `user`, from the emulator's live view.
    async fn connections_of(&self, user: &str) -> Vec<String> {
        let body = reqwest::get(format!(
            "http://{}/_emulator/api/state",
            self.emulator.local_addr()
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
        let state: Value = serde_json::from_slice(&body).unwrap();
        let mut ids = Vec::new();
        for connections in state["hubs"]
            .as_object()
            .into_iter()
            .flat_map(|h| h.values())
        {
            for c in connections.as_array().into_iter().flatten() {
                if c["userId"] == user {
                    ids.push(c["connectionId"].as_str().unwrap().to_owned());
                }
            }
        }
        ids
    }

    /// A plain WebSocket client of `user` (the URL gets `extra_query`
    /// appended), once the emulator has registered it.
    async fn raw_client(&self, user: &str, options: ClientAccessOptions, extra: &str) -> Client {
        let before = self.connections_of(user).await;
        let url = format!("{}{extra}", self.url(&options.user_id(user)));
        let (ws, response) = open(&url, &[]).await.expect("the handshake succeeds");
        assert!(response.headers().get("sec-websocket-protocol").is_none());
        let before = &before;
        let id = eventually("the raw connection to register", move || async move {
            self.connections_of(user)
                .await
                .into_iter()
                .find(|id| !before.contains(id))
        })
        .await;
        Client {
            ws,
            url,
            id,
            connected: Value::Null,
        }
    }
}

impl Client {
    /// Sends a `ping` and returns every frame that arrived before the
    /// `pong`: everything queued for this connection before the ping was read.
    async fn until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame == json!({"type": "pong"}) {
                return before;
            }
            before.push(frame);
        }
    }

    /// Raw clients: a WebSocket ping; returns the frames before its pong.
    /// The pong proves the emulator processed every frame sent before it.
    async fn raw_sync(&mut self) -> Vec<Message> {
        self.ws
            .send(Message::Ping(Bytes::from_static(b"sync")))
            .await
            .unwrap();
        let mut before = Vec::new();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a pong in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match frame {
                Message::Pong(_) => return before,
                Message::Ping(_) => {}
                other => before.push(other),
            }
        }
    }

    fn token(&self) -> String {
        self.connected["reconnectionToken"]
            .as_str()
            .expect("a reconnectionToken")
            .to_owned()
    }

    fn recovery_url(&self) -> String {
        recovery_url(&self.url, &self.id, &self.token())
    }

    /// Drops the TCP connection without a close frame; returns the recovery URL.
    fn break_transport(self) -> String {
        let url = self.recovery_url();
        drop(self.ws);
        url
    }
}

fn text_of(frame: &Message) -> Value {
    match frame {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn server_text(data: &str) -> Value {
    json!({"type": "message", "from": "server", "dataType": "text", "data": data})
}

fn forbidden(frame: &Value, ack_id: u64) {
    assert_eq!(frame["type"], "ack", "{frame}");
    assert_eq!(frame["ackId"], ack_id, "{frame}");
    assert_eq!(frame["success"], false, "{frame}");
    assert_eq!(frame["error"]["name"], "Forbidden", "{frame}");
}

/// One recovery attempt: `Ok` with the frames resent before the pong of a
/// ping sent at once, or `Err` with the close code.
async fn try_recover(url: &str) -> Result<(Ws, Vec<Value>), Option<u16>> {
    let (mut ws, response) = open(url, &[RELIABLE])
        .await
        .expect("a recovery request is upgraded");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-protocol"], RELIABLE);
    let _ = ws
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await;
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer to the recovery in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame == json!({"type": "pong"}) {
                    return Ok((ws, frames));
                }
                frames.push(frame);
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Recovers a broken reliable connection. The emulator may take a moment
/// to notice the broken transport (until then it refuses with 1008), so
/// this retries for a few seconds.
async fn recover(url: &str) -> (Ws, Vec<Value>) {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_recover(url).await {
            Ok(recovered) => return recovered,
            Err(code) => {
                assert_eq!(code, Some(1008), "a refused recovery closes with 1008");
                assert!(Instant::now() < deadline, "recovery kept being refused");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn reason_of(disconnected: &Req) -> Option<String> {
    disconnected.json()["reason"].as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------
// 1. The reliable protocol.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn reliable_clients_get_a_reconnection_token_and_sequence_ids_on_messages_only() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("rel")
        .role(Permission::JoinLeaveGroup.role())
        .role(Permission::SendToGroup.role());
    let mut c = env.client(options, RELIABLE).await;
    assert!(!c.token().is_empty());
    assert_eq!(c.connected["userId"], "rel");

    env.service.send_to_connection(&c.id, "one").await.unwrap();
    env.service
        .send_to_connection(&c.id, json!({"n": 2}))
        .await
        .unwrap();
    env.service
        .send_to_connection(&c.id, vec![1u8, 2, 3])
        .await
        .unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 1, "type": "message", "from": "server", "dataType": "text", "data": "one"})
    );
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 2, "type": "message", "from": "server", "dataType": "json", "data": {"n": 2}})
    );
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 3, "type": "message", "from": "server", "dataType": "binary", "data": "AQID"})
    );

    // Acks (success and failure) and pongs carry no sequence id.
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let duplicate = c
        .request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
        .await;
    assert_eq!(duplicate["error"]["name"], "Duplicate");
    assert!(duplicate.get("sequenceId").is_none(), "{duplicate}");
    assert!(c.until_pong().await.is_empty());

    // A group message to itself continues the sequence, before the ack.
    c.send(json!({"type": "sendToGroup", "group": "g", "dataType": "text", "data": "four", "ackId": 2}))
        .await;
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 4, "type": "message", "from": "group", "group": "g",
               "fromUserId": "rel", "dataType": "text", "data": "four"})
    );
    assert_eq!(c.next_json().await, ok_ack(2));

    // System messages carry none either.
    env.service
        .close_connection(&c.id)
        .reason("done")
        .await
        .unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"type": "system", "event": "disconnected", "message": "done"})
    );
    assert_eq!(c.closed().await.1, Some(1000));
}

#[tokio::test]
async fn a_dropped_reliable_connection_resumes_with_its_unacknowledged_messages_in_order() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .client(
            ClientAccessOptions::new().user_id("rita").group("g"),
            RELIABLE,
        )
        .await;
    let id = c.id.clone();
    for i in 1..=3 {
        env.service
            .send_to_connection(&id, format!("m{i}"))
            .await
            .unwrap();
    }
    for i in 1..=3u64 {
        let frame = c.next_json().await;
        assert_eq!(frame["sequenceId"], i);
        assert_eq!(frame["data"], format!("m{i}"));
    }
    // Acknowledge 1 and 2; the pong proves the ack was read.
    c.send(json!({"type": "sequenceAck", "sequenceId": 2}))
        .await;
    assert!(c.until_pong().await.is_empty());

    let url = c.break_transport();
    env.service.send_to_connection(&id, "m4").await.unwrap();
    env.service.send_to_group("g", "m5").await.unwrap();
    env.service.send_to_user("rita", "m6").await.unwrap();

    let (ws, resent) = recover(&url).await;
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 3, "type": "message", "from": "server", "dataType": "text", "data": "m3"}),
            json!({"sequenceId": 4, "type": "message", "from": "server", "dataType": "text", "data": "m4"}),
            json!({"sequenceId": 5, "type": "message", "from": "group", "group": "g", "dataType": "text", "data": "m5"}),
            json!({"sequenceId": 6, "type": "message", "from": "server", "dataType": "text", "data": "m6"}),
        ]
    );
    // The logical connection survived: same id, same groups, no new
    // connect/connected and no disconnected upstream.
    assert!(env.exists(&id).await);
    assert!(env.service.group_exists("g").await.unwrap());
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "connected"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);

    // It works both ways after the recovery.
    let mut c = Client {
        ws,
        url: String::new(),
        id: id.clone(),
        connected: Value::Null,
    };
    c.send(
        json!({"type": "event", "event": "echo", "dataType": "text", "data": "again", "ackId": 10}),
    )
    .await;
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 7, "type": "message", "from": "server", "dataType": "text", "data": "again"})
    );
    assert_eq!(c.next_json().await, ok_ack(10));
    let echo = up.wait_event(&id, "echo").await;
    assert_eq!(echo.header("ce-subprotocol"), Some(RELIABLE));

    // Everything acknowledged: the next recovery resends nothing.
    c.send(json!({"type": "sequenceAck", "sequenceId": 7}))
        .await;
    assert!(c.until_pong().await.is_empty());
    drop(c);
    env.service.send_to_connection(&id, "m8").await.unwrap();
    let (ws, resent) = recover(&url).await;
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 8, "type": "message", "from": "server", "dataType": "text", "data": "m8"})
        ]
    );
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "connected"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);
    drop(ws);
}

#[tokio::test]
async fn a_recovery_takes_over_from_a_socket_the_emulator_still_thinks_is_open() {
    // A half-open TCP connection: the client gave up on its socket, the
    // emulator has not noticed. Recovery must not be refused for that.
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut old = env
        .client(
            ClientAccessOptions::new().user_id("hal").group("g"),
            RELIABLE,
        )
        .await;
    let id = old.id.clone();
    env.service.send_to_connection(&id, "m1").await.unwrap();
    assert_eq!(old.next_json().await["data"], "m1");

    let (ws, resent) = try_recover(&old.recovery_url())
        .await
        .expect("the first recovery attempt succeeds");
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 1, "type": "message", "from": "server", "dataType": "text", "data": "m1"})
        ]
    );
    // The old socket is let go, the new one carries the connection on.
    let old_end = tokio::time::timeout(WAIT, async {
        loop {
            match old.ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the old socket ends");
    assert!(
        matches!(old_end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{old_end:?}"
    );
    let mut new = Client {
        ws,
        url: String::new(),
        id: id.clone(),
        connected: Value::Null,
    };
    env.service.send_to_group("g", "m2").await.unwrap();
    assert_eq!(new.next_json().await["data"], "m2");
    assert!(env.exists(&id).await);
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);
}

#[tokio::test]
async fn a_failed_recovery_completes_the_upgrade_and_closes_with_1008() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let c = env
        .client(ClientAccessOptions::new().user_id("fred"), RELIABLE)
        .await;
    let id = c.id.clone();
    let token = c.token();
    let base = c.url.clone();

    // Unknown connection id.
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, "no-such-connection", &token),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );

    let good = c.break_transport();
    // A wrong token, and the right token with another protocol.
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, &id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );
    let other_connections_token = env
        .client(ClientAccessOptions::new().user_id("fred"), RELIABLE)
        .await
        .token();
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, &id, &other_connections_token),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );
    assert_eq!(refused_recovery(&good, &[JSON]).await, Some(1008));

    // None of that used up the connection: the right request still recovers it.
    let (_ws, resent) = recover(&good).await;
    assert!(resent.is_empty());
    assert_eq!(up.count(&id, "disconnected"), 0);

    // A non-reliable JSON connection cannot be recovered.
    let plain = env
        .json_client(ClientAccessOptions::new().user_id("plain"))
        .await;
    let plain_id = plain.id.clone();
    drop(plain.ws);
    up.wait_event(&plain_id, "disconnected").await;
    assert_eq!(
        refused_recovery(&recovery_url(&base, &plain_id, &token), &[RELIABLE]).await,
        Some(1008)
    );
}

#[tokio::test]
async fn a_client_close_frame_ends_a_reliable_connection_at_once() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let close_frames = [
        // What `@azure/web-pubsub-client`'s stop() sends: no status code.
        None,
        Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }),
    ];
    for (i, frame) in close_frames.into_iter().enumerate() {
        let user = format!("closer{i}");
        let mut c = env
            .client(ClientAccessOptions::new().user_id(&user), RELIABLE)
            .await;
        let id = c.id.clone();
        let url = c.recovery_url();
        c.ws.close(frame).await.unwrap();
        // Well within the default 30 s recovery window.
        let disconnected = up
            .wait_event_within(&id, "disconnected", Duration::from_secs(2))
            .await;
        assert!(
            reason_of(&disconnected).is_none_or(|r| r.is_empty()),
            "a normal close has no reason: {:?}",
            disconnected.json()
        );
        assert!(!env.exists(&id).await);
        assert!(!env.service.user_exists(&user).await.unwrap());
        assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
    }
}

#[tokio::test]
async fn a_reliable_connection_ends_when_the_recovery_window_passes() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .recovery_window(Duration::from_secs(2))
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let c = env
        .client(ClientAccessOptions::new().user_id("wendy"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.break_transport();
    let dropped = Instant::now();
    // Kept during the window.
    assert!(env.service.user_exists("wendy").await.unwrap());
    assert!(env.exists(&id).await);

    let disconnected = up
        .wait_event_within(&id, "disconnected", Duration::from_secs(6))
        .await;
    let waited = disconnected.at.duration_since(dropped);
    assert!(
        waited >= Duration::from_millis(1500),
        "disconnected after only {waited:?}"
    );
    assert!(
        reason_of(&disconnected).is_some_and(|r| !r.is_empty()),
        "a lost connection says why: {:?}",
        disconnected.json()
    );
    assert!(!env.service.user_exists("wendy").await.unwrap());
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
    assert_eq!(up.count(&id, "disconnected"), 1);
}

#[tokio::test]
async fn closing_a_reliable_connection_that_awaits_recovery_ends_it_at_once() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let c = env
        .client(ClientAccessOptions::new().user_id("parked"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.break_transport();
    env.service
        .close_connection(&id)
        .reason("gone")
        .await
        .unwrap();
    let disconnected = up
        .wait_event_within(&id, "disconnected", Duration::from_secs(2))
        .await;
    assert_eq!(reason_of(&disconnected).as_deref(), Some("gone"));
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
}

#[tokio::test]
async fn too_many_unacknowledged_messages_end_a_reliable_connection_for_good() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .client(ClientAccessOptions::new().user_id("hoarder"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.recovery_url();
    // 1000 unacknowledged messages are kept; the 1001st is one too many.
    for i in 1..=1001u64 {
        env.service
            .send_to_connection(&id, RestMessage::json(&i).unwrap())
            .await
            .unwrap();
    }
    for i in 1..=1000u64 {
        assert_eq!(c.next_json().await["sequenceId"], i);
    }
    let (frames, code) = c.closed().await;
    assert!(code.is_some_and(|c| c != 1000), "closed with {code:?}");
    for frame in &frames {
        let frame = text_of(frame);
        assert!(
            frame["sequenceId"] == 1001 || frame["event"] == "disconnected",
            "{frame}"
        );
    }
    let disconnected = up.wait_event(&id, "disconnected").await;
    assert!(reason_of(&disconnected).is_some_and(|r| !r.is_empty()));
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
}

#[tokio::test]
async fn ack_ids_used_before_a_recovery_are_still_duplicates_after_it() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("acker")
        .role(Permission::JoinLeaveGroup.role());
    let mut c = env.client(options, RELIABLE).await;
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g", "ackId": 5}))
            .await,
        ok_ack(5)
    );
    let url = c.break_transport();
    let (ws, _) = recover(&url).await;
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let again = c
        .request(json!({"type": "joinGroup", "group": "g", "ackId": 5}))
        .await;
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["error"]["name"], "Duplicate", "{again}");
}

// ---------------------------------------------------------------------------
// 2. The JSON protocol.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ping_gets_pong_and_requests_without_ack_id_get_no_ack() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("pinger"))
        .await;
    assert_eq!(
        c.request(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    // Forbidden and successful operations alike are silent without an ackId.
    c.send(json!({"type": "joinGroup", "group": "g"})).await;
    c.send(json!({"type": "event", "event": "keep", "dataType": "text", "data": "x"}))
        .await;
    assert!(c.until_pong().await.is_empty());
    assert!(!env.service.group_exists("g").await.unwrap());
    up.wait_event(&c.id, "keep").await;
}

#[tokio::test]
async fn group_actions_without_a_role_get_forbidden_acks_and_the_connection_stays_open() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut member = env
        .json_client(ClientAccessOptions::new().user_id("member").group("g"))
        .await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("nobody"))
        .await;
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
            .await,
        1,
    );
    forbidden(
        &c.request(json!({"type": "leaveGroup", "group": "g", "ackId": 2}))
            .await,
        2,
    );
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "g", "dataType": "text", "data": "x", "ackId": 3}))
            .await,
        3,
    );
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "still here", "ackId": 4}))
            .await,
        server_text("still here")
    );
    assert_eq!(c.next_json().await, ok_ack(4));

    let members = env.service.list_connections_in_group("g").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].connection_id, member.id);
    assert!(
        member.until_pong().await.is_empty(),
        "nothing was published"
    );
    // Without a connect subscription the upstream hears only connected.
    assert_eq!(up.count(&c.id, "connect"), 0);
    up.wait_event(&c.id, "connected").await;
}

#[tokio::test]
async fn roles_and_groups_in_the_token_apply_without_a_connect_handler() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("scoped")
        .role(Permission::JoinLeaveGroup.role_for("g1"))
        .role(Permission::SendToGroup.role_for("g1"))
        .group("start");
    let mut c = env.json_client(options).await;
    assert!(env.service.group_exists("start").await.unwrap());
    env.service.send_to_group("start", "hello").await.unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"type": "message", "from": "group", "group": "start", "dataType": "text", "data": "hello"})
    );

    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g1", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "g2", "ackId": 2}))
            .await,
        2,
    );
    c.send(json!({"type": "sendToGroup", "group": "g1", "dataType": "text", "data": "in g1", "ackId": 3}))
        .await;
    assert_eq!(c.next_json().await["data"], "in g1");
    assert_eq!(c.next_json().await, ok_ack(3));
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "g2", "dataType": "text", "data": "x", "ackId": 4}))
            .await,
        4,
    );
    // A group joined through the token still needs the role to be left.
    forbidden(
        &c.request(json!({"type": "leaveGroup", "group": "start", "ackId": 5}))
            .await,
        5,
    );
    assert_eq!(
        c.request(json!({"type": "leaveGroup", "group": "g1", "ackId": 6}))
            .await,
        ok_ack(6)
    );
    assert!(!env.service.group_exists("g1").await.unwrap());

    // The unscoped role covers every group, and only that action.
    let mut all = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("all")
                .role(Permission::JoinLeaveGroup.role()),
        )
        .await;
    assert_eq!(
        all.request(json!({"type": "joinGroup", "group": "anything", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    forbidden(
        &all.request(json!({"type": "sendToGroup", "group": "anything", "data": 1, "ackId": 2}))
            .await,
        2,
    );
}

#[tokio::test]
async fn no_echo_leaves_out_the_sender_and_group_messages_name_the_sending_user() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let sender = ClientAccessOptions::new()
        .role(Permission::SendToGroup.role())
        .group("room");
    let mut ann = env.json_client(sender.clone().user_id("ann")).await;
    let mut bob = env
        .json_client(ClientAccessOptions::new().user_id("bob").group("room"))
        .await;
    let mut anon = env.json_client(sender).await;
    assert_eq!(anon.connected["userId"], Value::Null);

    assert_eq!(
        ann.request(json!({"type": "sendToGroup", "group": "room", "dataType": "text", "data": "quiet", "noEcho": true, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    assert!(ann.until_pong().await.is_empty(), "noEcho skips the sender");
    let quiet = json!({"type": "message", "from": "group", "group": "room", "fromUserId": "ann", "dataType": "text", "data": "quiet"});
    assert_eq!(bob.next_json().await, quiet);
    assert_eq!(anon.next_json().await, quiet);

    ann.send(json!({"type": "sendToGroup", "group": "room", "dataType": "json", "data": {"loud": true}, "ackId": 2}))
        .await;
    let loud = json!({"type": "message", "from": "group", "group": "room", "fromUserId": "ann", "dataType": "json", "data": {"loud": true}});
    assert_eq!(ann.next_json().await, loud);
    assert_eq!(ann.next_json().await, ok_ack(2));
    assert_eq!(bob.next_json().await, loud);
    assert_eq!(anon.next_json().await, loud);

    // An anonymous sender's messages carry no fromUserId.
    anon.send(json!({"type": "sendToGroup", "group": "room", "dataType": "text", "data": "who", "noEcho": true}))
        .await;
    assert_eq!(
        bob.next_json().await,
        json!({"type": "message", "from": "group", "group": "room", "dataType": "text", "data": "who"})
    );
}

#[tokio::test]
async fn malformed_frames_close_a_json_connection() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let cases: Vec<(&str, Message)> = vec![
        ("not JSON", Message::Text("hello".into())),
        ("a JSON array", Message::Text("[1,2]".into())),
        (
            "an unknown type",
            Message::Text(r#"{"type":"nonsense"}"#.into()),
        ),
        ("no type", Message::Text(r#"{"group":"g"}"#.into())),
        (
            "joinGroup without a group",
            Message::Text(r#"{"type":"joinGroup","ackId":1}"#.into()),
        ),
        (
            "text data that is not a string",
            Message::Text(r#"{"type":"event","event":"echo","dataType":"text","data":5}"#.into()),
        ),
        (
            "binary data that is not base64",
            Message::Text(
                r#"{"type":"event","event":"echo","dataType":"binary","data":"*not base64*"}"#
                    .into(),
            ),
        ),
        ("a binary frame", Message::Binary(vec![1u8, 2, 3].into())),
    ];
    for (i, (what, frame)) in cases.into_iter().enumerate() {
        let mut c = env
            .json_client(ClientAccessOptions::new().user_id(format!("bad{i}")))
            .await;
        c.ws.send(frame).await.unwrap();
        let (frames, code) = c.closed().await;
        assert!(code.is_some(), "{what}: closed with a close frame");
        for frame in &frames {
            let frame = text_of(frame);
            assert_eq!(frame["event"], "disconnected", "{what}: {frame}");
        }
        let disconnected = up.wait_event(&c.id, "disconnected").await;
        assert!(
            reason_of(&disconnected).is_some_and(|r| !r.is_empty()),
            "{what}: the upstream hears why"
        );
        assert!(!env.exists(&c.id).await, "{what}");
        assert_eq!(up.count(&c.id, "echo"), 0, "{what}: nothing was raised");
    }
}

#[tokio::test]
async fn an_event_no_handler_subscribes_to_gets_an_internal_server_error_ack() {
    let up = Upstream::start().await;
    let env = start(
        builder().hub(HubSettings::new("chat").event_handler(up.handler().user_events("echo"))),
    )
    .await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let ack = c
        .request(
            json!({"type": "event", "event": "other", "dataType": "text", "data": "x", "ackId": 7}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["ackId"], 7);
    assert_eq!(ack["success"], false);
    assert_eq!(ack["error"]["name"], "InternalServerError");
    // Without an ackId the failure is silent; the connection stays open.
    c.send(json!({"type": "event", "event": "other", "data": 1}))
        .await;
    assert!(c.until_pong().await.is_empty());
    // Subscriptions match event names case-insensitively.
    assert_eq!(
        c.request(
            json!({"type": "event", "event": "ECHO", "dataType": "text", "data": "up", "ackId": 8})
        )
        .await,
        ok_ack(8)
    );
    assert_eq!(up.count(&c.id, "ECHO"), 1);
    assert_eq!(up.count(&c.id, "other"), 0);
}

#[tokio::test]
async fn an_upstream_error_for_an_event_gets_an_error_ack_and_5xx_is_retried_with_the_same_id() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let ack = c
        .request(
            json!({"type": "event", "event": "fail", "dataType": "text", "data": "x", "ackId": 1}),
        )
        .await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "InternalServerError");
    let fails: Vec<Req> = up
        .events_of(&c.id)
        .into_iter()
        .filter(|r| r.event() == "fail")
        .collect();
    assert_eq!(fails.len(), 2, "one retry after 500 with one retry delay");
    assert_eq!(fails[0].header("ce-id"), fails[1].header("ce-id"));

    let ack = c
        .request(json!({"type": "event", "event": "refuse", "dataType": "text", "data": "x", "ackId": 2}))
        .await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "InternalServerError");
    assert_eq!(up.count(&c.id, "refuse"), 1, "a 4xx is not retried");
    assert!(c.until_pong().await.is_empty(), "the connection stays open");
}

#[tokio::test]
async fn text_binary_and_json_payloads_round_trip_through_events_and_groups() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .role(Permission::SendToGroup.role())
        .group("mix");
    let mut c = env.json_client(options.clone().user_id("c")).await;
    let mut other = env.json_client(options.user_id("other")).await;

    // text
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "héllo", "ackId": 1}))
            .await,
        server_text("héllo")
    );
    assert_eq!(c.next_json().await, ok_ack(1));
    // binary, base64 on the wire, raw bytes upstream
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "binary", "data": "AAEC/w==", "ackId": 2}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "binary", "data": "AAEC/w=="})
    );
    assert_eq!(c.next_json().await, ok_ack(2));
    // json, and json by default
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "json", "data": {"a": [1, true, null]}, "ackId": 3}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": {"a": [1, true, null]}})
    );
    assert_eq!(c.next_json().await, ok_ack(3));
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "data": "s", "ackId": 4}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": "s"})
    );
    assert_eq!(c.next_json().await, ok_ack(4));
    // a JSON reply of the upstream
    assert_eq!(
        c.request(
            json!({"type": "event", "event": "json", "dataType": "text", "data": "?", "ackId": 5})
        )
        .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": {"hello": ["world", 1]}})
    );
    assert_eq!(c.next_json().await, ok_ack(5));

    let echoes: Vec<Req> = up
        .events_of(&c.id)
        .into_iter()
        .filter(|r| r.event() == "echo")
        .collect();
    assert_eq!(echoes.len(), 4);
    assert!(echoes[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(&echoes[0].body[..], "héllo".as_bytes());
    assert_eq!(
        echoes[1].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(&echoes[1].body[..], &[0u8, 1, 2, 255]);
    assert!(echoes[2]
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(echoes[2].json(), json!({"a": [1, true, null]}));
    assert_eq!(echoes[3].json(), json!("s"));

    // The same types reach other group members.
    for (data_type, data) in [
        ("text", json!("t")),
        ("binary", json!("CQg=")),
        ("json", json!([1, {"x": null}])),
    ] {
        c.send(json!({"type": "sendToGroup", "group": "mix", "dataType": data_type, "data": data, "noEcho": true}))
            .await;
        assert_eq!(
            other.next_json().await,
            json!({"type": "message", "from": "group", "group": "mix", "fromUserId": "c", "dataType": data_type, "data": data})
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Raw (plain WebSocket) clients.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn raw_clients_in_send_to_group_mode_publish_their_frames_to_the_group() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut watcher = env
        .json_client(ClientAccessOptions::new().user_id("watcher").group("g"))
        .await;
    let mut publisher = env
        .raw_client(
            "pub",
            ClientAccessOptions::new()
                .role(Permission::SendToGroup.role_for("g"))
                .group("g"),
            "&webpubsub_mode=sendToGroup&group=g&noEcho=true",
        )
        .await;
    publisher.ws.send(Message::Text("hi".into())).await.unwrap();
    assert_eq!(
        watcher.next_json().await,
        json!({"type": "message", "from": "group", "group": "g", "fromUserId": "pub", "dataType": "text", "data": "hi"})
    );
    publisher
        .ws
        .send(Message::Binary(vec![9u8, 8].into()))
        .await
        .unwrap();
    assert_eq!(
        watcher.next_json().await,
        json!({"type": "message", "from": "group", "group": "g", "fromUserId": "pub", "dataType": "binary", "data": "CQg="})
    );
    // noEcho: the publisher, itself in g, got neither frame.
    env.service
        .send_to_connection(&publisher.id, "marker")
        .await
        .unwrap();
    assert_eq!(publisher.next_frame().await, Message::Text("marker".into()));

    // Without the send role nothing is published.
    let mut silent = env
        .raw_client(
            "silent",
            ClientAccessOptions::new(),
            "&webpubsub_mode=sendToGroup&group=g",
        )
        .await;
    silent
        .ws
        .send(Message::Text("denied".into()))
        .await
        .unwrap();
    assert!(silent.raw_sync().await.is_empty());
    assert!(watcher.until_pong().await.is_empty());
    // Frames in this mode are never user events.
    assert_eq!(up.count(&publisher.id, "message"), 0);
    assert_eq!(up.count(&silent.id, "message"), 0);
}

#[tokio::test]
async fn raw_frames_are_message_events_answered_in_kind() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut raw = env
        .raw_client("plain", ClientAccessOptions::new(), "")
        .await;
    raw.ws.send(Message::Text("ping?".into())).await.unwrap();
    assert_eq!(raw.next_frame().await, Message::Text("ping?".into()));
    raw.ws
        .send(Message::Binary(vec![0u8, 1].into()))
        .await
        .unwrap();
    assert_eq!(raw.next_frame().await, Message::Binary(vec![0u8, 1].into()));
    let messages: Vec<Req> = up
        .events_of(&raw.id)
        .into_iter()
        .filter(|r| r.event() == "message")
        .collect();
    assert_eq!(messages.len(), 2);
    assert!(messages[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        messages[1].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        messages[1].header("ce-type"),
        Some("azure.webpubsub.user.message")
    );
    assert!(messages[1].header("ce-subprotocol").is_none());
}

#[tokio::test]
async fn a_raw_frame_nobody_handles_or_a_failing_handler_closes_the_connection() {
    let up = Upstream::start().await;
    let failing =
        EventHandlerSettings::new(format!("http://{}/failing/{{hub}}/{{event}}", up.addr));
    let env = start(
        builder()
            .hub(HubSettings::new("chat").event_handler(up.handler().user_events("")))
            .hub(HubSettings::new("failing").event_handler(failing)),
    )
    .await;
    let mut lonely = env
        .raw_client("lonely", ClientAccessOptions::new(), "")
        .await;
    lonely
        .ws
        .send(Message::Text("anyone?".into()))
        .await
        .unwrap();
    let (frames, code) = lonely.closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert!(code.is_some(), "closed with a close frame");
    up.wait_event(&lonely.id, "disconnected").await;
    assert!(!env.exists(&lonely.id).await);

    let failing_hub = env.service_for("failing");
    let url = failing_hub.client_access_url(&ClientAccessOptions::new().user_id("f"));
    let (mut ws, _) = open(&url, &[]).await.unwrap();
    ws.send(Message::Text("boom".into())).await.unwrap();
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let (_, code) = c.closed().await;
    assert!(code.is_some(), "closed with a close frame");
    let message = up
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/failing/") && r.event() == "message")
        .expect("the event was sent");
    up.wait_event(message.connection(), "disconnected").await;
    assert_eq!(
        up.count(message.connection(), "message"),
        2,
        "500 retried once"
    );
}

#[tokio::test]
async fn a_raw_frame_nobody_handles_closes_with_1011() {
    let up = Upstream::start().await;
    let env =
        start(builder().hub(HubSettings::new("chat").event_handler(up.handler().user_events(""))))
            .await;
    let mut raw = env
        .raw_client("lonely", ClientAccessOptions::new(), "")
        .await;
    raw.ws.send(Message::Text("anyone?".into())).await.unwrap();
    assert_eq!(raw.closed().await.1, Some(1011));
}

#[tokio::test]
async fn rest_messages_reach_raw_clients_as_bare_frames() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut raw = env
        .raw_client("bare", ClientAccessOptions::new().group("g"), "")
        .await;
    let s = &env.service;
    s.send_to_connection(&raw.id, "plain").await.unwrap();
    s.send_to_connection(&raw.id, RestMessage::json(&"quoted").unwrap())
        .await
        .unwrap();
    s.send_to_user("bare", json!({"a": 1})).await.unwrap();
    s.send_to_group("g", vec![7u8, 0, 7]).await.unwrap();
    s.send_to_all(RestMessage::binary(Bytes::new()))
        .await
        .unwrap();
    s.send_to_all("last").await.unwrap();
    assert_eq!(raw.next_frame().await, Message::Text("plain".into()));
    assert_eq!(raw.next_frame().await, Message::Text("\"quoted\"".into()));
    assert_eq!(raw.next_frame().await, Message::Text(r#"{"a":1}"#.into()));
    assert_eq!(
        raw.next_frame().await,
        Message::Binary(vec![7u8, 0, 7].into())
    );
    let next = raw.next_frame().await;
    // An empty message may be sent as an empty frame or not at all.
    if next == Message::Binary(Bytes::new()) {
        assert_eq!(raw.next_frame().await, Message::Text("last".into()));
    } else {
        assert_eq!(next, Message::Text("last".into()));
    }

    // A JSON client's group message reaches a raw member as its bare data.
    let mut json_client = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("j")
                .role(Permission::SendToGroup.role()),
        )
        .await;
    json_client
        .send(
            json!({"type": "sendToGroup", "group": "g", "dataType": "json", "data": {"b": [true]}}),
        )
        .await;
    assert_eq!(
        raw.next_frame().await,
        Message::Text(r#"{"b":[true]}"#.into())
    );

    // A REST close ends it with 1000 and the reason.
    env.service
        .close_connection(&raw.id)
        .reason("raw bye")
        .await
        .unwrap();
    let next = raw.ws.next().await.unwrap().unwrap();
    match next {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1000);
            assert_eq!(frame.reason.as_str(), "raw bye");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let disconnected = up.wait_event(&raw.id, "disconnected").await;
    assert_eq!(reason_of(&disconnected).as_deref(), Some("raw bye"));
}

// ---------------------------------------------------------------------------
// 4. What the upstream receives.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_abuse_protection_handshake_runs_once_per_handler_url_with_the_emulator_host() {
    let up = Upstream::start().await;
    let other = EventHandlerSettings::new(format!("http://{}/other/{{event}}", up.addr));
    let env = start(
        builder()
            .hub(HubSettings::new("chat").event_handler(up.handler()))
            .hub(HubSettings::new("other").event_handler(other)),
    )
    .await;
    for user in ["a", "b"] {
        let mut c = env
            .json_client(ClientAccessOptions::new().user_id(user))
            .await;
        c.send(json!({"type": "event", "event": "echo", "data": 1, "ackId": 1}))
            .await;
        assert_eq!(c.next_json().await["type"], "message");
        assert_eq!(c.next_json().await, ok_ack(1));
    }
    let other_service = env.service_for("other");
    let url = other_service.client_access_url(&ClientAccessOptions::new().user_id("o"));
    let _o = env.client_at(url, JSON).await;

    let requests = up.requests();
    let preflights: Vec<&Req> = requests
        .iter()
        .filter(|r| r.method == Method::OPTIONS)
        .collect();
    let mut paths: Vec<&str> = preflights.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/eh/chat/validate", "/other/validate"]);
    for preflight in &preflights {
        assert_eq!(
            preflight.header("WebHook-Request-Origin"),
            Some("127.0.0.1")
        );
        assert_eq!(preflight.header("ce-awpsversion"), Some("1.0"));
        assert!(preflight.header("ce-signature").is_none());
        assert!(preflight.body.is_empty());
    }
    // Each validation came before the first event to that URL.
    let first_options = requests
        .iter()
        .position(|r| r.path == "/eh/chat/validate")
        .unwrap();
    let first_post = requests
        .iter()
        .position(|r| r.path.starts_with("/eh/chat/") && r.method == Method::POST)
        .unwrap();
    assert!(first_options < first_post);
}

#[tokio::test]
async fn concurrent_first_connections_share_one_abuse_protection_handshake() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let connects = (0..5).map(|i| {
        let url = env.url(&ClientAccessOptions::new().user_id(format!("c{i}")));
        async move { open(&url, &[JSON]).await.map(|(ws, _)| ws) }
    });
    let sockets = futures_util::future::join_all(connects).await;
    assert!(sockets.iter().all(Result::is_ok));
    assert_eq!(up.preflights().len(), 1);
}

/// Seconds since the epoch of a `ce-time` value, after checking its format
/// (`YYYY-MM-DDTHH:MM:SSZ`).
fn ce_time_seconds(value: &str) -> i64 {
    let b = value.as_bytes();
    assert!(
        value.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z',
        "ce-time `{value}` is not UTC to the second"
    );
    let n = |from: usize, to: usize| value[from..to].parse::<i64>().unwrap();
    let (year, month, day) = (n(0, 4), n(5, 7), n(8, 10));
    // Days since 1970-01-01 of a civil date.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

#[tokio::test]
async fn events_carry_the_cloud_events_headers_and_a_valid_signature() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let url = format!(
        "{}&room=lobby",
        env.url(
            &ClientAccessOptions::new()
                .user_id("ursula")
                .claim("team", "blue")
        )
    );
    let mut c = env.client_at(url, JSON).await;
    let id = c.id.clone();
    c.send(json!({"type": "event", "event": "echo", "dataType": "text", "data": "x", "ackId": 1}))
        .await;
    assert_eq!(c.next_json().await, server_text("x"));
    assert_eq!(c.next_json().await, ok_ack(1));
    c.send(
        json!({"type": "event", "event": "keep", "dataType": "json", "data": {"k": 1}, "ackId": 2}),
    )
    .await;
    assert_eq!(c.next_json().await, ok_ack(2));
    c.send(
        json!({"type": "event", "event": "keep", "dataType": "binary", "data": "AQ==", "ackId": 3}),
    )
    .await;
    assert_eq!(c.next_json().await, ok_ack(3));
    c.ws.close(None).await.unwrap();
    up.wait_event(&id, "disconnected").await;

    let events = up.events_of(&id);
    let names: Vec<&str> = events.iter().map(Req::event).collect();
    assert_eq!(
        names,
        [
            "connect",
            "connected",
            "echo",
            "keep",
            "keep",
            "disconnected"
        ]
    );
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let signature = AccessKey::new(KEY).unwrap().signature(&id);
    for (i, event) in events.iter().enumerate() {
        let name = event.event();
        let what = format!("{name} #{i}");
        let ce_type = match name {
            "connect" | "connected" | "disconnected" => format!("azure.webpubsub.sys.{name}"),
            user => format!("azure.webpubsub.user.{user}"),
        };
        assert_eq!(event.header("ce-specversion"), Some("1.0"), "{what}");
        assert_eq!(event.header("ce-awpsversion"), Some("1.0"), "{what}");
        assert_eq!(event.header("ce-type"), Some(ce_type.as_str()), "{what}");
        assert_eq!(
            event.header("ce-source"),
            Some(format!("/hubs/chat/client/{id}").as_str()),
            "{what}"
        );
        assert_eq!(
            event.header("ce-id"),
            Some(i.to_string().as_str()),
            "{what}"
        );
        let time = ce_time_seconds(event.header("ce-time").expect("ce-time"));
        assert!((time - now).abs() < 60, "{what}: ce-time far from now");
        assert_eq!(event.header("ce-hub"), Some("chat"), "{what}");
        assert_eq!(event.header("ce-connectionId"), Some(id.as_str()), "{what}");
        assert_eq!(event.header("ce-userId"), Some("ursula"), "{what}");
        assert_eq!(
            event.header("ce-signature"),
            Some(signature.as_str()),
            "{what}"
        );
        assert_eq!(
            event.header("WebHook-Request-Origin"),
            Some("127.0.0.1"),
            "{what}"
        );
        assert_eq!(event.path, format!("/eh/chat/{name}"), "{what}");
        if name == "connect" {
            assert!(event.header("ce-subprotocol").is_none(), "{what}");
        } else {
            assert_eq!(event.header("ce-subprotocol"), Some(JSON), "{what}");
        }
        assert!(event.header("ce-connectionState").is_none(), "{what}");
    }
    let content_types: Vec<&str> = events
        .iter()
        .map(|e| e.header("content-type").unwrap_or_default())
        .collect();
    for system in [0, 1, 5] {
        assert!(
            content_types[system].starts_with("application/json"),
            "{content_types:?}"
        );
    }
    assert!(
        content_types[2].starts_with("text/plain"),
        "{content_types:?}"
    );
    assert!(
        content_types[3].starts_with("application/json"),
        "{content_types:?}"
    );
    assert_eq!(content_types[4], "application/octet-stream");

    let connect = events[0].json();
    assert_eq!(connect["claims"]["sub"], json!(["ursula"]));
    assert_eq!(connect["claims"]["team"], json!(["blue"]));
    assert_eq!(connect["query"]["room"], json!(["lobby"]));
    assert!(connect["query"].get("access_token").is_none(), "{connect}");
    assert_eq!(connect["subprotocols"], json!([JSON]));
    assert!(connect["headers"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.eq_ignore_ascii_case("host")));
    assert!(!connect["headers"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization")));
    assert_eq!(connect["clientCertificates"], json!([]));
    assert_eq!(events[1].json(), json!({}));
    assert_eq!(events[3].json(), json!({"k": 1}));
    assert_eq!(&events[4].body[..], &[1u8]);
    assert!(reason_of(&events[5]).is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn connection_state_from_blocking_answers_is_echoed_and_an_empty_value_clears_it() {
    let up = Upstream::with(|req| match req.event() {
        "connect" => Reply::status(204).header("ce-connectionState", "c1"),
        "set" => Reply::status(200).header("ce-connectionState", "s2"),
        "clear" => Reply::status(204).header("ce-connectionState", ""),
        "refuse" => Reply::status(400).header("ce-connectionState", "bad"),
        _ => default_reply(req),
    })
    .await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("stateful"))
        .await;
    let id = c.id.clone();
    for (i, event) in ["keep", "set", "keep", "refuse", "keep", "clear", "keep"]
        .into_iter()
        .enumerate()
    {
        let ack = c
            .request(json!({"type": "event", "event": event, "data": 1, "ackId": i}))
            .await;
        assert_eq!(ack["success"], event != "refuse", "{event}: {ack}");
    }
    c.ws.close(None).await.unwrap();
    up.wait_event(&id, "disconnected").await;
    let seen: Vec<(String, Option<String>)> = up
        .events_of(&id)
        .iter()
        .map(|e| (e.event().to_owned(), e.state().map(str::to_owned)))
        .collect();
    let expected: Vec<(String, Option<String>)> = [
        ("connect", None),
        ("connected", Some("c1")),
        ("keep", Some("c1")),
        ("set", Some("c1")),
        ("keep", Some("s2")),
        // a refused event does not change the state
        ("refuse", Some("s2")),
        ("keep", Some("s2")),
        ("clear", Some("s2")),
        ("keep", None),
        ("disconnected", None),
    ]
    .into_iter()
    .map(|(e, s)| (e.to_owned(), s.map(str::to_owned)))
    .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_answer_to_connected_does_not_change_the_connection_state() {
    let up = Upstream::with(|req| match req.event() {
        "connect" => Reply::status(204).header("ce-connectionState", "c1"),
        "connected" => Reply::status(200).header("ce-connectionState", "from-connected"),
        _ => default_reply(req),
    })
    .await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "keep", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let keep = up.wait_event(&c.id, "keep").await;
    assert_eq!(keep.state(), Some("c1"));
}

#[tokio::test]
async fn a_connect_answer_sets_user_groups_roles_and_subprotocol() {
    let up = Upstream::with(|req| {
        if req.event() != "connect" {
            return default_reply(req);
        }
        match req.json()["query"]["case"][0].as_str() {
            Some("apply") => Reply::status(200).json(json!({
                "userId": "from-upstream",
                "groups": ["ga", "gb"],
                "roles": ["webpubsub.sendToGroup.ga"],
                "subprotocol": JSON,
            })),
            Some("empty") => Reply::status(200).json(json!({"groups": [], "roles": []})),
            Some("unoffered") => Reply::status(200).json(json!({"subprotocol": "mqtt"})),
            Some("refuse") => Reply::status(401),
            Some("garbage") => Reply::status(200).body("application/json", "{not json"),
            _ => Reply::status(204),
        }
    })
    .await;
    let env = env(&up).await;
    let token_options = ClientAccessOptions::new()
        .user_id("token-user")
        .role(Permission::JoinLeaveGroup.role())
        .group("tg");

    let url = format!("{}&case=apply", env.url(&token_options));
    let (ws, response) = open(&url, &[RELIABLE, JSON]).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], JSON);
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let connected = c.next_json().await;
    assert_eq!(connected["userId"], "from-upstream");
    assert!(
        connected.get("reconnectionToken").is_none(),
        "the chosen protocol is not the reliable one: {connected}"
    );
    c.id = connected["connectionId"].as_str().unwrap().to_owned();
    assert!(env.service.group_exists("ga").await.unwrap());
    assert!(env.service.group_exists("gb").await.unwrap());
    assert!(!env.service.group_exists("tg").await.unwrap());
    assert!(env.service.user_exists("from-upstream").await.unwrap());
    assert!(!env.service.user_exists("token-user").await.unwrap());
    // The answer's roles replaced the token's.
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "x", "ackId": 1}))
            .await,
        1,
    );
    c.send(
        json!({"type": "sendToGroup", "group": "ga", "dataType": "text", "data": "ok", "ackId": 2}),
    )
    .await;
    assert_eq!(c.next_json().await["fromUserId"], "from-upstream");
    assert_eq!(c.next_json().await, ok_ack(2));
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "gb", "data": 1, "ackId": 3}))
            .await,
        3,
    );
    c.send(json!({"type": "event", "event": "keep", "data": 1, "ackId": 4}))
        .await;
    assert_eq!(c.next_json().await, ok_ack(4));
    let keep = up.wait_event(&c.id, "keep").await;
    assert_eq!(keep.header("ce-userId"), Some("from-upstream"));
    assert_eq!(keep.header("ce-subprotocol"), Some(JSON));

    // Empty groups keep the token's; empty roles remove them.
    let url = format!(
        "{}&case=empty",
        env.url(&token_options.clone().user_id("keeper"))
    );
    let mut keeper = env.client_at(url, JSON).await;
    assert_eq!(keeper.connected["userId"], "keeper");
    let members = env.service.list_connections_in_group("tg").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].connection_id, keeper.id);
    forbidden(
        &keeper
            .request(json!({"type": "joinGroup", "group": "x", "ackId": 1}))
            .await,
        1,
    );

    // A subprotocol the client did not offer fails the handshake; a refusal
    // passes its status on and raises no further events.
    let url = format!("{}&case=unoffered", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    let url = format!("{}&case=garbage", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    let url = format!("{}&case=refuse", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 401);
    let refused = up
        .requests()
        .into_iter()
        .find(|r| r.event() == "connect" && r.json()["query"]["case"][0] == "refuse")
        .unwrap();
    // A later connection's full life proves the emulator moved on.
    let later = env
        .json_client(ClientAccessOptions::new().user_id("later"))
        .await;
    let later_id = later.id.clone();
    drop(later);
    up.wait_event(&later_id, "disconnected").await;
    assert_eq!(up.events_of(refused.connection()).len(), 1);
}

#[tokio::test]
async fn url_templates_expand_hub_and_event_in_path_and_query() {
    let up = Upstream::start().await;
    let handler = EventHandlerSettings::new(format!(
        "http://{}/t/{{event}}?hub={{hub}}&e={{event}}",
        up.addr
    ));
    let env = start(builder().hub(HubSettings::new("chat").event_handler(handler))).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "keep", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let paths: Vec<String> = up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/t/validate?hub=chat&e=validate",
            "/t/connect?hub=chat&e=connect",
            "/t/connected?hub=chat&e=connected",
            "/t/keep?hub=chat&e=keep",
        ]
    );
}

#[tokio::test]
async fn url_templates_leave_unreserved_characters_unescaped() {
    let up = Upstream::start().await;
    let env = start(builder().hub(HubSettings::new("my_hub").event_handler(up.handler()))).await;
    let service = env.service_for("my_hub");
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("u"));
    let mut c = env.client_at(url, JSON).await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "my.event_1-x", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let event = up.wait_event(&c.id, "my.event_1-x").await;
    assert_eq!(event.path, "/eh/my_hub/my.event_1-x");
}

#[tokio::test]
async fn hub_names_are_case_insensitive_for_clients_and_rest() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let upper = env.service_for("CHAT");
    let url = upper.client_access_url(&ClientAccessOptions::new().user_id("shout"));
    assert!(url.contains("/client/hubs/CHAT?"), "{url}");
    let mut c = env.client_at(url, JSON).await;
    // The lower-case hub's REST client reaches it, and vice versa.
    env.service.send_to_user("shout", "lower").await.unwrap();
    assert_eq!(c.next_json().await, server_text("lower"));
    upper.send_to_connection(&c.id, "upper").await.unwrap();
    assert_eq!(c.next_json().await, server_text("upper"));
    assert!(env.service.connection_exists(&c.id).await.unwrap());
    up.wait_event(&c.id, "connected").await;
}

#[tokio::test]
async fn events_name_the_hub_in_lower_case() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let upper = env.service_for("CHAT");
    let url = upper.client_access_url(&ClientAccessOptions::new().user_id("shout"));
    let c = env.client_at(url, JSON).await;
    let connected = up.wait_event(&c.id, "connected").await;
    assert_eq!(connected.header("ce-hub"), Some("chat"));
    assert_eq!(
        connected.header("ce-source"),
        Some(format!("/hubs/chat/client/{}", c.id).as_str())
    );
    assert_eq!(connected.path, "/eh/chat/connected");
}

#[tokio::test]
async fn a_secondary_key_adds_a_second_signature_entry() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .secondary_access_key(SECONDARY_KEY)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let connected = up.wait_event(&c.id, "connected").await;
    let expected = format!(
        "{},{}",
        AccessKey::new(KEY).unwrap().signature(&c.id),
        AccessKey::new(SECONDARY_KEY).unwrap().signature(&c.id)
    );
    for event in up.events_of(&c.id) {
        assert_eq!(event.header("ce-signature"), Some(expected.as_str()));
    }
    assert_eq!(connected.header("ce-signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn tokens_signed_with_the_secondary_key_are_accepted() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .secondary_access_key(SECONDARY_KEY)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let secondary = WebPubSubServiceClient::from_connection_string(
        &format!(
            "Endpoint=http://127.0.0.1;Port={};AccessKey={SECONDARY_KEY};Version=1.0;",
            env.emulator.local_addr().port()
        ),
        "chat",
    )
    .unwrap();
    secondary.send_to_all("rotated").await.unwrap();
    let url = secondary.client_access_url(&ClientAccessOptions::new().user_id("u"));
    env.client_at(url, JSON).await;
}

#[tokio::test]
async fn a_failing_abuse_protection_handshake_refuses_connects_until_the_upstream_is_fixed() {
    let up = Upstream::with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(400)
        } else {
            default_reply(req)
        }
    })
    .await;
    let env = env(&up).await;
    let url = env.url(&ClientAccessOptions::new().user_id("u"));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);

    // 200 without WebHook-Allowed-Origin, or allowing another host: still refused.
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200)
        } else {
            default_reply(req)
        }
    });
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200).header("WebHook-Allowed-Origin", "elsewhere.example.com")
        } else {
            default_reply(req)
        }
    });
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    assert!(
        up.requests().iter().all(|r| r.method == Method::OPTIONS),
        "no event is sent to an unvalidated URL"
    );

    // Fixed (one header line per allowed origin): validated anew, then cached.
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200)
                .header("WebHook-Allowed-Origin", "elsewhere.example.com")
                .header("WebHook-Allowed-Origin", "127.0.0.1")
        } else {
            default_reply(req)
        }
    });
    env.json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    env.json_client(ClientAccessOptions::new().user_id("v"))
        .await;
    assert_eq!(up.preflights().len(), 4);
}

#[tokio::test]
async fn any_2xx_with_an_allowed_origin_passes_the_abuse_protection_handshake() {
    let up = Upstream::with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(204).header("WebHook-Allowed-Origin", "*")
        } else {
            default_reply(req)
        }
    })
    .await;
    let env = env(&up).await;
    env.json_client(ClientAccessOptions::new().user_id("u"))
        .await;
}

// ---------------------------------------------------------------------------
// 5. The REST data plane through WebPubSubServiceClient.
// ---------------------------------------------------------------------------

/// `ann` in g; two connections of `bob`, the first in g and h.
async fn three_clients(env: &Env) -> (Client, Client, Client) {
    let ann = env
        .json_client(ClientAccessOptions::new().user_id("ann").group("g"))
        .await;
    let bob1 = env
        .json_client(ClientAccessOptions::new().user_id("bob").groups(["g", "h"]))
        .await;
    let bob2 = env
        .json_client(ClientAccessOptions::new().user_id("bob"))
        .await;
    (ann, bob1, bob2)
}

/// The data of every message each client got (checked with a ping round trip).
async fn got(clients: &mut [&mut Client]) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for client in clients.iter_mut() {
        let frames = client.until_pong().await;
        all.push(frames.iter().map(|f| f["data"].clone()).collect());
    }
    all
}

#[tokio::test]
async fn rest_sends_reach_all_groups_users_and_connections_with_each_content_type() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.send_to_all("to all").await.unwrap();
    for c in [&mut ann, &mut bob1, &mut bob2] {
        assert_eq!(c.until_pong().await, vec![server_text("to all")]);
    }

    s.send_to_group("g", json!({"k": "v"})).await.unwrap();
    let group_json = json!({"type": "message", "from": "group", "group": "g", "dataType": "json", "data": {"k": "v"}});
    assert_eq!(ann.until_pong().await, vec![group_json.clone()]);
    assert_eq!(bob1.until_pong().await, vec![group_json]);
    assert!(bob2.until_pong().await.is_empty());

    s.send_to_user("bob", vec![0u8, 255]).await.unwrap();
    let binary = json!({"type": "message", "from": "server", "dataType": "binary", "data": "AP8="});
    assert!(ann.until_pong().await.is_empty());
    assert_eq!(bob1.until_pong().await, vec![binary.clone()]);
    assert_eq!(bob2.until_pong().await, vec![binary]);

    s.send_to_connection(&ann.id, RestMessage::json_text("[1,2]"))
        .await
        .unwrap();
    s.send_to_connection(&bob2.id, RestMessage::text("just you"))
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![vec![json!([1, 2])], vec![], vec![json!("just you")]]
    );

    // Nobody there: still accepted.
    s.send_to_user("nobody", "x").await.unwrap();
    s.send_to_group("empty", "x").await.unwrap();
    s.send_to_connection("no-such-connection", "x")
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );
}

#[tokio::test]
async fn excluded_connections_and_filters_narrow_the_recipients() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.send_to_all("e1").exclude(&ann.id).await.unwrap();
    s.send_to_group("g", "e2").exclude(&bob1.id).await.unwrap();
    s.send_to_all("e3")
        .excluding([ann.id.clone(), bob2.id.clone()])
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![
            vec![json!("e2")],
            vec![json!("e1"), json!("e3")],
            vec![json!("e1")]
        ]
    );

    s.send_to_all("f1")
        .filter(Filter::user_id_eq("ann"))
        .await
        .unwrap();
    s.send_to_all("f2")
        .filter(Filter::in_group("h"))
        .await
        .unwrap();
    s.send_to_user("bob", "f3")
        .filter(Filter::connection_id_ne(&bob1.id))
        .await
        .unwrap();
    s.send_to_group("g", "f4")
        .filter(Filter::user_id_in(["bob", "carl"]).and(Filter::in_group("h")))
        .await
        .unwrap();
    s.send_to_all("f5")
        .filter(!Filter::in_group("g"))
        .await
        .unwrap();
    s.send_to_all("f6")
        .filter(Filter::new("userId eq 'bob' and not ('h' in groups)"))
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![
            vec![json!("f1")],
            vec![json!("f2"), json!("f4")],
            vec![json!("f3"), json!("f5"), json!("f6")]
        ]
    );

    let error = s
        .send_to_all("never")
        .filter(Filter::new("userId eq"))
        .await
        .unwrap_err();
    match &error {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::BAD_REQUEST),
        other => panic!("expected a 400, got {other}"),
    }
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );
}

#[tokio::test]
async fn group_membership_changes_through_rest() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.add_connection_to_group("g2", &ann.id).await.unwrap();
    assert!(s.group_exists("g2").await.unwrap());
    s.send_to_group("g2", "in g2").await.unwrap();
    assert_eq!(ann.until_pong().await[0]["group"], "g2");
    s.remove_connection_from_group("g2", &ann.id).await.unwrap();
    assert!(!s.group_exists("g2").await.unwrap());
    // Removing what is not there is fine; adding an unknown connection is 404.
    s.remove_connection_from_group("g2", &ann.id).await.unwrap();
    let error = s
        .add_connection_to_group("g2", "no-such-connection")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");

    s.add_user_to_group("g3", "bob").await.unwrap();
    let mut members: Vec<String> = s
        .list_connections_in_group("g3")
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            assert_eq!(m.user_id.as_deref(), Some("bob"));
            m.connection_id
        })
        .collect();
    members.sort();
    let mut bobs = vec![bob1.id.clone(), bob2.id.clone()];
    bobs.sort();
    assert_eq!(members, bobs);
    let error = s.add_user_to_group("g3", "nobody").await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    // A connection the user opens later is not added.
    let bob3 = env
        .json_client(ClientAccessOptions::new().user_id("bob"))
        .await;
    assert_eq!(s.list_connections_in_group("g3").await.unwrap().len(), 2);
    s.remove_user_from_group("g3", "bob").await.unwrap();
    assert!(!s.group_exists("g3").await.unwrap());
    s.remove_user_from_group("g3", "bob").await.unwrap();

    // From every group: ann was in g; bob1 in g and h.
    s.add_connection_to_group("extra", &ann.id).await.unwrap();
    s.remove_connection_from_all_groups(&ann.id).await.unwrap();
    assert!(!s.group_exists("extra").await.unwrap());
    s.remove_user_from_all_groups("bob").await.unwrap();
    assert!(!s.group_exists("g").await.unwrap());
    assert!(!s.group_exists("h").await.unwrap());
    s.remove_connection_from_all_groups("no-such-connection")
        .await
        .unwrap();
    s.send_to_group("g", "nobody left").await.unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );

    assert!(s.user_exists("bob").await.unwrap());
    assert!(!s.user_exists("carl").await.unwrap());
    assert!(s.connection_exists(&bob3.id).await.unwrap());
    assert!(!s.connection_exists("no-such-connection").await.unwrap());
}

#[tokio::test]
async fn bulk_group_operations_follow_the_filter() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (ann, bob1, bob2) = three_clients(&env).await;
    let s = &env.service;
    let members = |group: &'static str| async move {
        let mut ids: Vec<String> = s
            .list_connections_in_group(group)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.connection_id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<&String>| {
        ids.sort();
        ids.into_iter().cloned().collect::<Vec<String>>()
    };

    s.add_connections_to_groups(["x", "y"], Filter::user_id_eq("bob"))
        .await
        .unwrap();
    assert_eq!(members("x").await, sorted(vec![&bob1.id, &bob2.id]));
    assert_eq!(members("y").await, sorted(vec![&bob1.id, &bob2.id]));
    s.remove_connections_from_groups(["x"], Filter::connection_id_eq(&bob1.id))
        .await
        .unwrap();
    assert_eq!(members("x").await, vec![bob2.id.clone()]);
    assert_eq!(members("y").await, sorted(vec![&bob1.id, &bob2.id]));
    s.add_connections_to_groups(["z"], Filter::all())
        .await
        .unwrap();
    assert_eq!(
        members("z").await,
        sorted(vec![&ann.id, &bob1.id, &bob2.id])
    );
    s.add_connections_to_groups(["in-g"], Filter::in_group("g"))
        .await
        .unwrap();
    assert_eq!(members("in-g").await, sorted(vec![&ann.id, &bob1.id]));
    s.remove_connections_from_groups(["y", "z"], Filter::all())
        .await
        .unwrap();
    assert!(!s.group_exists("y").await.unwrap());
    assert!(!s.group_exists("z").await.unwrap());

    let error = s
        .add_connections_to_groups(["w"], Filter::new("nonsense ("))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST), "{error}");
    assert!(!s.group_exists("w").await.unwrap());
}

#[tokio::test]
async fn listing_a_group_follows_next_links_page_by_page() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for user in ["p1", "p2", "p3"] {
        let c = env
            .json_client(ClientAccessOptions::new().user_id(user).group("paged"))
            .await;
        ids.push(c.id.clone());
        clients.push(c);
    }
    let anonymous = env
        .json_client(ClientAccessOptions::new().group("paged"))
        .await;
    ids.push(anonymous.id.clone());
    ids.sort();
    let s = &env.service;

    let all = s
        .list_connections_in_group("paged")
        .max_page_size(1)
        .await
        .unwrap();
    let mut listed: Vec<String> = all.iter().map(|m| m.connection_id.clone()).collect();
    listed.sort();
    assert_eq!(listed, ids);
    let anonymous_member = all
        .iter()
        .find(|m| m.connection_id == anonymous.id)
        .unwrap();
    assert_eq!(anonymous_member.user_id, None);
    let named: Vec<_> = all.iter().filter_map(|m| m.user_id.clone()).collect();
    assert_eq!(named.len(), 3);

    assert_eq!(
        s.list_connections_in_group("paged")
            .max_page_size(1)
            .top(2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.list_connections_in_group("paged")
            .max_page_size(3)
            .top(4)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(s.list_connections_in_group("paged").await.unwrap(), all);
    assert!(s
        .list_connections_in_group("nobody-here")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn closing_through_rest_tells_json_clients_why_and_the_upstream_hears_the_reason() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let s = &env.service;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let mut keeper = env
        .json_client(ClientAccessOptions::new().user_id("keeper").group("g"))
        .await;

    async fn expect_closed(up: &Upstream, c: &mut Client, reason: &str) {
        let (frames, code) = c.closed().await;
        let frames: Vec<Value> = frames.iter().map(text_of).collect();
        assert_eq!(
            frames,
            vec![json!({"type": "system", "event": "disconnected", "message": reason})]
        );
        assert_eq!(code, Some(1000));
        let disconnected = up.wait_event(&c.id, "disconnected").await;
        assert_eq!(reason_of(&disconnected).as_deref(), Some(reason));
    }

    s.close_connection(&ann.id).reason("bye ann").await.unwrap();
    expect_closed(&up, &mut ann, "bye ann").await;
    assert!(!s.connection_exists(&ann.id).await.unwrap());

    s.close_group_connections("g")
        .reason("bye g")
        .exclude(&keeper.id)
        .await
        .unwrap();
    expect_closed(&up, &mut bob1, "bye g").await;

    s.close_user_connections("bob")
        .reason("bye bob")
        .await
        .unwrap();
    expect_closed(&up, &mut bob2, "bye bob").await;
    assert!(!s.user_exists("bob").await.unwrap());

    let mut last = env
        .json_client(ClientAccessOptions::new().user_id("last"))
        .await;
    s.close_all_connections()
        .reason("bye all")
        .exclude(&keeper.id)
        .await
        .unwrap();
    expect_closed(&up, &mut last, "bye all").await;
    assert!(keeper.until_pong().await.is_empty(), "the excluded stays");

    // Without a reason the client is still told something; unknown ids are fine.
    s.close_connection("no-such-connection").await.unwrap();
    s.close_connection(&keeper.id).await.unwrap();
    let (frames, code) = keeper.closed().await;
    assert_eq!(code, Some(1000));
    let frame = text_of(&frames[0]);
    assert_eq!(frame["event"], "disconnected");
    assert!(frame["message"].is_string());
    up.wait_event(&keeper.id, "disconnected").await;
}

#[tokio::test]
async fn permissions_granted_and_revoked_through_rest_change_what_a_client_may_do() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let s = &env.service;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("p"))
        .await;
    let id = c.id.clone();
    let send = |group: &str, ack: u64| json!({"type": "sendToGroup", "group": group, "dataType": "text", "data": "x", "noEcho": true, "ackId": ack});
    let join = |group: &str, ack: u64| json!({"type": "joinGroup", "group": group, "ackId": ack});

    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());
    forbidden(&c.request(send("g", 1)).await, 1);

    // One group.
    s.grant_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap();
    assert!(s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .await
        .unwrap());
    assert_eq!(c.request(send("g", 2)).await, ok_ack(2));
    forbidden(&c.request(send("other", 3)).await, 3);

    // Every group, minus one revoked.
    s.grant_permission(Permission::JoinLeaveGroup, &id)
        .await
        .unwrap();
    assert!(s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .await
        .unwrap());
    assert_eq!(c.request(join("any", 4)).await, ok_ack(4));
    s.revoke_permission(Permission::JoinLeaveGroup, &id)
        .target_group("k")
        .await
        .unwrap();
    forbidden(&c.request(join("k", 5)).await, 5);
    assert_eq!(c.request(join("m", 6)).await, ok_ack(6));
    assert!(!s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .target_group("k")
        .await
        .unwrap());
    assert!(s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .target_group("m")
        .await
        .unwrap());

    // Revoked everywhere.
    s.revoke_permission(Permission::SendToGroup, &id)
        .await
        .unwrap();
    forbidden(&c.request(send("g", 7)).await, 7);
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());

    // Token roles answer the check too; unknown connections are 404 / false.
    let roled = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("roled")
                .role(Permission::SendToGroup.role()),
        )
        .await;
    assert!(s
        .has_permission(Permission::SendToGroup, &roled.id)
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, "no-such-connection")
        .await
        .unwrap());
    let error = s
        .grant_permission(Permission::SendToGroup, "no-such-connection")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test]
async fn service_generated_tokens_connect_clients_and_health_answers() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    env.service.health().await.unwrap();
    let token = env
        .service
        .generate_client_token(
            &ClientAccessOptions::new()
                .user_id("gen")
                .role(Permission::JoinLeaveGroup.role())
                .group("gg")
                .expires_after(Duration::from_secs(120)),
        )
        .await
        .unwrap();
    let url = format!(
        "ws://{}/client/hubs/chat?access_token={token}",
        env.emulator.local_addr()
    );
    let mut c = env.client_at(url, JSON).await;
    assert_eq!(c.connected["userId"], "gen");
    assert!(env.service.group_exists("gg").await.unwrap());
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "more", "ackId": 1}))
            .await,
        ok_ack(1)
    );
}

#[tokio::test]
async fn rest_errors_become_service_errors() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let port = env.emulator.local_addr().port();

    // A wrong key: 401 for REST and for clients.
    let wrong = WebPubSubServiceClient::from_connection_string(
        &format!("Endpoint=http://127.0.0.1;Port={port};AccessKey=not-the-emulator-key-0123456789;Version=1.0;"),
        "chat",
    )
    .unwrap();
    match wrong.send_to_all("x").await.unwrap_err() {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::UNAUTHORIZED),
        other => panic!("expected a 401, got {other}"),
    }
    assert_eq!(
        wrong.user_exists("u").await.unwrap_err().status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let url = wrong.client_access_url(&ClientAccessOptions::new().user_id("u"));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 401);

    // An invalid filter: 400.
    match env
        .service
        .send_to_group("g", "x")
        .filter(Filter::new("userId eq 'a' and"))
        .await
        .unwrap_err()
    {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::BAD_REQUEST),
        other => panic!("expected a 400, got {other}"),
    }

    // A TTL over 300 s is refused before sending; 300 s is fine.
    match env
        .service
        .send_to_all("x")
        .ttl(Duration::from_secs(301))
        .await
        .unwrap_err()
    {
        ServiceError::InvalidArgument { .. } => {}
        other => panic!("expected InvalidArgument, got {other}"),
    }
    env.service
        .send_to_all("x")
        .ttl(Duration::from_secs(300))
        .await
        .unwrap();

    // The emulator checks it as well.
    let rest = |ttl: u32| {
        let url = format!(
            "http://127.0.0.1:{port}/api/hubs/chat/:send?api-version=2024-12-01&messageTtlSeconds={ttl}"
        );
        async move {
            emulator::signed_rest_call(Method::POST, &url, KEY)
                .await
                .status()
        }
    };
    assert_eq!(rest(301).await, StatusCode::BAD_REQUEST);
    assert_eq!(rest(300).await, StatusCode::ACCEPTED);
}

// ---------------------------------------------------------------------------
// 6. Robustness.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_event_handler_does_not_hold_up_other_connections() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut slow = env
        .json_client(ClientAccessOptions::new().user_id("slow"))
        .await;
    let mut quick = env
        .json_client(ClientAccessOptions::new().user_id("quick"))
        .await;
    slow.send(json!({"type": "event", "event": "slow", "data": 1, "ackId": 1}))
        .await;
    let in_flight = up.wait_event(&slow.id, "slow").await;

    let started = Instant::now();
    assert_eq!(
        quick
            .request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "fast", "ackId": 1}))
            .await,
        server_text("fast")
    );
    assert_eq!(quick.next_json().await, ok_ack(1));
    let newcomer = env
        .json_client(ClientAccessOptions::new().user_id("newcomer"))
        .await;
    env.service
        .send_to_connection(&slow.id, "meanwhile")
        .await
        .unwrap();
    // Messages to the busy connection are not held up either.
    assert_eq!(slow.next_json().await, server_text("meanwhile"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "other connections waited {:?}",
        started.elapsed()
    );
    assert!(
        up.wait_event(&newcomer.id, "connected").await.at < in_flight.at + Duration::from_secs(1)
    );

    assert_eq!(slow.next_json().await, ok_ack(1));
    assert!(in_flight.at.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn messages_to_one_connection_arrive_in_the_order_they_were_sent() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut json_client = env
        .json_client(ClientAccessOptions::new().user_id("order"))
        .await;
    let mut reliable = env
        .client(ClientAccessOptions::new().user_id("order"), RELIABLE)
        .await;
    let mut raw = env
        .raw_client("order", ClientAccessOptions::new(), "")
        .await;
    for i in 0..200u64 {
        env.service
            .send_to_user("order", RestMessage::json(&i).unwrap())
            .await
            .unwrap();
    }
    for i in 0..200u64 {
        assert_eq!(json_client.next_json().await["data"], i);
        let frame = reliable.next_json().await;
        assert_eq!(frame["data"], i);
        assert_eq!(frame["sequenceId"], i + 1);
        assert_eq!(raw.next_frame().await, Message::Text(i.to_string().into()));
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_when_its_queue_fills() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .send_queue(16)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let slow = env
        .json_client(ClientAccessOptions::new().user_id("never-reads"))
        .await;
    let mut fast = env
        .json_client(ClientAccessOptions::new().user_id("reads"))
        .await;
    let fast_id = fast.id.clone();
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        loop {
            let frame = fast.next_json().await;
            if frame["data"] == "done" {
                // Hand the client back so it stays connected.
                return (received, fast);
            }
            received.push(frame["data"].as_str().unwrap().to_owned());
        }
    });

    let big = "x".repeat(256 * 1024);
    let mut sent = Vec::new();
    let mut dropped = false;
    for i in 0..400 {
        env.service
            .send_to_connection(&slow.id, big.as_str())
            .await
            .unwrap();
        let small = format!("n{i}");
        env.service
            .send_to_connection(&fast_id, small.as_str())
            .await
            .unwrap();
        sent.push(small);
        if i % 8 == 7 && !env.exists(&slow.id).await {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the client that never reads is still connected");
    let disconnected = up.wait_event(&slow.id, "disconnected").await;
    assert!(reason_of(&disconnected).is_some_and(|r| !r.is_empty()));

    env.service
        .send_to_connection(&fast_id, "done")
        .await
        .unwrap();
    let (received, fast) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(
        received, sent,
        "the reading client got everything, in order"
    );
    assert!(env.exists(&fast_id).await);
    drop((slow, fast));
}

#[tokio::test]
async fn shutdown_closes_every_client_and_returns() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut json_client = env
        .json_client(ClientAccessOptions::new().user_id("j"))
        .await;
    let mut reliable = env
        .client(ClientAccessOptions::new().user_id("r"), RELIABLE)
        .await;
    let mut raw = env.raw_client("w", ClientAccessOptions::new(), "").await;
    let addr = env.emulator.local_addr();
    let url = env.url(&ClientAccessOptions::new().user_id("late"));

    tokio::time::timeout(WAIT, env.emulator.shutdown())
        .await
        .expect("shutdown returns");

    let (frames, code) = json_client.closed().await;
    assert!(code.is_some(), "the JSON client got a close frame");
    assert_eq!(text_of(&frames[0])["event"], "disconnected");
    let (frames, code) = reliable.closed().await;
    assert!(code.is_some(), "the reliable client got a close frame");
    assert_eq!(text_of(&frames[0])["event"], "disconnected");
    let (frames, code) = raw.closed().await;
    assert!(code.is_some(), "the raw client got a close frame");
    assert!(frames.is_empty());
    for id in [&json_client.id, &reliable.id, &raw.id] {
        up.wait_event(id, "disconnected").await;
    }
    assert!(
        open(&url, &[JSON]).await.is_err(),
        "nothing listens on {addr}"
    );
}
