//! The client WebSocket endpoint: handshake (token, `connect` event,
//! subprotocol), then one task per socket that reads client frames and
//! writes queued messages, and reliable recovery.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hmac::{Hmac, Mac as _};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::auth;
use super::frames;
use super::hub::{
    lock, Connection, Data, Envelope, NewConnection, Origin, Outbound, Protocol, Target,
};
use super::permissions::Action;
use super::upstream::{UpstreamAnswer, UpstreamCall};
use super::Shared;
use crate::events::ConnectBody;
use crate::wire::EventType;
use crate::{ConnectEventResponse, DataType};

/// The largest client message accepted, and the largest frame: 1 MiB (the
/// service's limit). A frame announcing more is refused from its header,
/// before its payload is buffered, with close code 1009.
const MAX_FRAME: usize = 1024 * 1024;
/// Bytes read from a socket at a time (tungstenite's default is 128 KiB,
/// which every idle socket would hold).
const READ_BUFFER: usize = 4 * 1024;
/// Bytes of frames gathered before they are written to the socket.
const WRITE_BUFFER: usize = 16 * 1024;
/// WebSocket ping interval of the service (the longest the emulator uses).
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Sets the WebSocket limits of every socket the emulator upgrades.
///
/// The write buffer needs no cap of its own (`max_write_buffer_size`):
/// the writer waits for each flush, so it holds at most `WRITE_BUFFER` plus
/// one frame, and the queue in front of it is bounded by bytes.
fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
}

/// Whether a read failed because the peer sent a message or frame over
/// [`MAX_FRAME`]. axum hides tungstenite's error type, so this reads its
/// message: `Space limit exceeded: Message too long: … > …`.
fn too_big(error: &axum::Error) -> bool {
    error.to_string().contains("Space limit exceeded")
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    tracing::info!(target: "webpubsub::emulator::client", status = status.as_u16(), %reason, "refused client");
    if status == StatusCode::UNAUTHORIZED {
        return status.into_response();
    }
    (status, reason.to_owned()).into_response()
}

/// The raw query as decoded pairs.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The key of reconnection tokens: random, made when the emulator is
/// built and never derived from the access key, so a token is no signature
/// that anything else (an upstream's `ce-signature` check, the token check)
/// would accept.
#[derive(Clone)]
pub(crate) struct ReconnectKey(Hmac<Sha256>);

impl std::fmt::Debug for ReconnectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReconnectKey(<redacted>)")
    }
}

impl ReconnectKey {
    /// A fresh key from the system's random source (two v4 UUIDs: 244 random bits).
    pub(crate) fn random() -> Self {
        let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        let mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
        Self(mac)
    }

    fn mac(&self, hub: &str, connection_id: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(b"webpubsub-emulator/reconnect\0");
        mac.update(hub.as_bytes());
        mac.update(b"\0");
        mac.update(connection_id.as_bytes());
        mac
    }

    /// The reconnection token of a connection: bound to its hub and id, and
    /// unguessable without this emulator's key.
    pub(crate) fn token(&self, hub: &str, connection_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(hub, connection_id).finalize().into_bytes())
    }

    /// Whether `token` is the token of that connection (constant-time).
    pub(crate) fn verify(&self, hub: &str, connection_id: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(hub, connection_id).verify_slice(&tag).is_ok()
    }
}

/// Serves `GET /client/hubs/{hub}` (and `/client?hub=`).
pub(crate) async fn handshake(
    shared: Arc<Shared>,
    hub: Option<String>,
    uri: http::Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request",
        );
    };
    let query = query_pairs(uri.query());
    let hub_name = hub.or_else(|| first(&query, "hub").map(str::to_owned));
    let Some(named_hub) = hub_name.filter(|h| crate::names::HubName::is_valid(h)) else {
        return refuse(StatusCode::BAD_REQUEST, "missing or invalid hub name");
    };
    // The service lower-cases hub names (`ce-hub`, `{hub}`); tokens keep the client's spelling.
    let hub = named_hub.to_ascii_lowercase();
    let offered: Vec<String> = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .map(str::to_owned)
        .collect();

    if let Some(id) = first(&query, "awps_connection_id") {
        let token = first(&query, "awps_reconnection_token").unwrap_or_default();
        return recover(shared, &hub, id, token, ws, &offered);
    }

    let token = first(&query, "access_token")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::to_owned)
        });
    let Some(token) = token else {
        return refuse(StatusCode::UNAUTHORIZED, "no access token");
    };
    let claims = match shared.verify_token(&token) {
        Ok(claims) => claims,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let path_hub = uri
        .path()
        .strip_prefix("/client/hubs/")
        .map_or(named_hub.as_str(), |h| h.trim_end_matches('/'));
    let accepted = [
        format!("http://{host}/client/hubs/{path_hub}"),
        format!("https://{host}/client/hubs/{path_hub}"),
        format!("http://{host}/client/hubs/{named_hub}"),
    ];
    let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
    if let Err(e) = auth::check_audience(&claims, &accepted) {
        return refuse(StatusCode::UNAUTHORIZED, &e.to_string());
    }

    let mut user_id = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
    let mut roles = auth::string_list(&claims, "role");
    let mut groups = auth::string_list(&claims, "webpubsub.group");
    if groups.iter().any(|g| !crate::names::GroupName::is_valid(g)) {
        return refuse(StatusCode::BAD_REQUEST, "invalid group name in the token");
    }
    if let Some(refusal) = shared.hubs.too_many_groups(&groups) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("The token names {} groups. {refusal}", groups.len()),
        );
    }
    // Checked before the upstream hears of it, and again below for the
    // user id the `connect` handler may pick.
    if let Some(refusal) = user_id
        .as_deref()
        .and_then(|u| shared.hubs.user_full(&hub, u))
    {
        return refuse(StatusCode::TOO_MANY_REQUESTS, &refusal.to_string());
    }

    // Simple clients may publish to a group instead of raising events.
    let mode = first(&query, "webpubsub_mode").unwrap_or("sendEvent");
    let raw_group = if mode.eq_ignore_ascii_case("sendToGroup") {
        match first(&query, "group").filter(|g| !g.trim().is_empty()) {
            Some(group) => Some(group.to_owned()),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "webpubsub_mode=sendToGroup needs a group",
                )
            }
        }
    } else if mode.eq_ignore_ascii_case("sendEvent") {
        None
    } else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "webpubsub_mode must be sendEvent or sendToGroup",
        );
    };
    let no_echo = first(&query, "noEcho").is_some_and(|v| v.eq_ignore_ascii_case("true"));

    let connection_id = uuid::Uuid::new_v4().simple().to_string();
    let settings = shared.settings(&hub);
    let mut state = None;
    let mut chosen: Option<String> = None;

    let body = connect_body(&claims, &query, &headers, &offered);
    let call = UpstreamCall {
        hub: &hub,
        connection_id: &connection_id,
        user_id: user_id.as_deref(),
        subprotocol: None,
        state: None,
        event_id: 0,
        kind: EventType::Connect,
        content_type: "application/json",
        body: Bytes::from(body),
    };
    match shared.upstream.call(settings, call).await {
        Ok(None) => {}
        Ok(Some(answer)) => {
            if let Some(s) = answer.state.clone() {
                state = Some(s).filter(|s| !s.is_empty());
            }
            if answer.status != StatusCode::NO_CONTENT && !answer.body.is_empty() {
                // The answer is read with the crate's own type, so the
                // emulator accepts exactly what the crate writes.
                let Ok(reply) = serde_json::from_slice::<ConnectEventResponse>(&answer.body) else {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the connect handler answered invalid JSON",
                    );
                };
                if let Some(user) = reply.user_id {
                    user_id = Some(user).filter(|u| !u.is_empty());
                }
                if let Some(list) = reply.roles {
                    roles = list;
                }
                if let Some(list) = reply.groups.filter(|list| !list.is_empty()) {
                    groups = list;
                }
                if let Some(sub) = reply.subprotocol {
                    if !offered.contains(&sub) {
                        return refuse(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the connect handler chose a subprotocol the client did not offer",
                        );
                    }
                    chosen = Some(sub);
                }
            }
        }
        Err(e) => {
            tracing::info!(target: "webpubsub::emulator::client", hub = %hub, error = %e, "connect refused by the upstream");
            return e.handshake_status().into_response();
        }
    }

    if let Some(refusal) = shared.hubs.too_many_groups(&groups) {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "The connect handler answered {} groups. {refusal}",
                groups.len()
            ),
        );
    }
    if let Some(refusal) = user_id
        .as_deref()
        .and_then(|u| shared.hubs.user_full(&hub, u))
    {
        return refuse(StatusCode::TOO_MANY_REQUESTS, &refusal.to_string());
    }

    if chosen.is_none() && !offered.is_empty() {
        chosen = offered
            .iter()
            .find(|o| *o == Protocol::JSON || *o == Protocol::RELIABLE_JSON)
            .cloned();
        if chosen.is_none() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "No supported Web PubSub subprotocol was requested.",
            );
        }
    }
    let protocol = Protocol::from_subprotocol(chosen.as_deref());
    let token = shared.reconnect_key.token(&hub, &connection_id);
    let (conn, rx) = Connection::new(NewConnection {
        id: Arc::from(connection_id.as_str()),
        hub: Arc::from(hub.as_str()),
        user_id: user_id.map(Arc::from),
        protocol,
        subprotocol: chosen.clone(),
        roles,
        reconnection_token: token,
        state,
        queue: shared.queue,
        queue_bytes: shared.queue_bytes,
        ack_ids: shared.ack_ids,
    });
    let mut ws = configure(ws);
    if let Some(chosen) = &chosen {
        if let Ok(value) = HeaderValue::from_str(chosen) {
            ws.set_selected_protocol(value);
        }
    }
    tracing::info!(target: "webpubsub::emulator::client", hub = %hub, connection = %conn.id,
        user = conn.user_id.as_deref(), protocol = chosen.as_deref().unwrap_or("none"), "client connected");
    let raw = RawMode {
        group: raw_group,
        no_echo,
    };
    ws.on_upgrade(move |socket| start(shared, conn, rx, socket, groups, raw))
}

/// The `connect` event's JSON body.
fn connect_body(
    claims: &Map<String, Value>,
    query: &[(String, String)],
    headers: &HeaderMap,
    offered: &[String],
) -> Vec<u8> {
    let mut body = ConnectBody {
        subprotocols: offered.to_vec(),
        ..ConnectBody::default()
    };
    for (name, value) in claims {
        let values = match value {
            Value::Array(list) => list.iter().map(claim_text).collect(),
            other => vec![claim_text(other)],
        };
        body.claims.insert(name.clone(), values);
    }
    for (name, value) in query.iter().filter(|(k, _)| k != "access_token") {
        body.query
            .entry(name.clone())
            .or_default()
            .push(value.clone());
    }
    for (name, value) in headers {
        if name == http::header::AUTHORIZATION {
            continue;
        }
        body.headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Options of simple clients.
#[derive(Debug, Clone, Default)]
struct RawMode {
    group: Option<String>,
    no_echo: bool,
}

/// How a socket ended.
#[derive(Debug)]
enum Ended {
    /// The client sent a close frame.
    ClientClosed,
    /// The transport broke without a close handshake.
    Dropped,
    /// The service closed it (REST), with this reason.
    ServiceClosed(String),
    /// Closed by the service with this close code and reason (not recoverable).
    Terminated(u16, String),
}

/// Registers a new connection and serves its first socket.
async fn start(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut rx: mpsc::Receiver<Outbound>,
    mut socket: WebSocket,
    groups: Vec<String>,
    raw: RawMode,
) {
    if let Err(refusal) = shared.hubs.add(&conn, &groups) {
        // Another handshake of the same user got in first.
        tracing::info!(target: "webpubsub::emulator::client", connection = %conn.id, reason = %refusal, "refused client");
        let _ = socket.send(close_frame(1008, &refusal.to_string())).await;
        return;
    }
    shared.changed();
    if conn.protocol.is_json() {
        let token =
            (conn.protocol == Protocol::ReliableJson).then_some(conn.reconnection_token.as_str());
        let frame = frames::connected(&conn.id, conn.user_id.as_deref(), token);
        if socket
            .send(Message::Text(Utf8Bytes::from(frame)))
            .await
            .is_err()
        {
            finish(&shared, &conn, Some("The connection was lost.".to_owned()));
            return;
        }
    }
    // `connected` does not hold up the client; later events wait for it, so
    // the upstream sees them in order.
    {
        let shared = shared.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let call = event_call(
                &conn,
                EventType::Connected,
                "application/json",
                Bytes::from_static(b"{}"),
            );
            // The answer to a non-blocking event is not read (state included).
            let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
            conn.connected_done.send_replace(true);
        });
    }
    let ended = serve(&shared, &conn, &mut rx, socket, &raw).await;
    after(shared, conn, rx, ended);
}

/// What happens once a socket is gone: keep a reliable connection for
/// recovery, or end the connection.
fn after(shared: Arc<Shared>, conn: Arc<Connection>, rx: mpsc::Receiver<Outbound>, ended: Ended) {
    match ended {
        Ended::Dropped if conn.protocol == Protocol::ReliableJson && !conn.is_killed() => {
            let generation = conn.attach_generation();
            *lock(&conn.parked) = Some(rx);
            tracing::debug!(target: "webpubsub::emulator::client", connection = %conn.id, "transport lost; waiting for recovery");
            let window = shared.recovery_window;
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                if conn.attach_generation() == generation && lock(&conn.parked).take().is_some() {
                    finish(
                        &shared,
                        &conn,
                        Some("The connection was lost and not recovered.".to_owned()),
                    );
                }
            });
        }
        Ended::Dropped => finish(&shared, &conn, Some("The connection was lost.".to_owned())),
        Ended::ClientClosed => finish(&shared, &conn, None),
        Ended::ServiceClosed(reason) | Ended::Terminated(_, reason) => {
            finish(&shared, &conn, Some(reason));
        }
    }
}

/// Ends a connection for good: forgets it and tells the upstream.
pub(crate) fn finish(shared: &Arc<Shared>, conn: &Arc<Connection>, reason: Option<String>) {
    if conn.ended.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.hubs.remove(&conn.hub, &conn.id);
    shared.changed();
    tracing::info!(target: "webpubsub::emulator::client", connection = %conn.id, reason = reason.as_deref(), "client disconnected");
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        conn.connected_delivered().await;
        let body = match &reason {
            Some(reason) => serde_json::json!({ "reason": reason }).to_string(),
            None => "{}".to_owned(),
        };
        let call = event_call(
            &conn,
            EventType::Disconnected,
            "application/json",
            Bytes::from(body),
        );
        let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
    });
}

fn event_call<'a>(
    conn: &'a Connection,
    kind: EventType<'a>,
    content_type: &'static str,
    body: Bytes,
) -> UpstreamCall<'a> {
    UpstreamCall {
        hub: &conn.hub,
        connection_id: &conn.id,
        user_id: conn.user_id.as_deref(),
        subprotocol: conn.subprotocol.as_deref(),
        state: lock(&conn.state).clone(),
        event_id: conn.next_event_id(),
        kind,
        content_type,
        body,
    }
}

fn keep_state(conn: &Connection, answer: &UpstreamAnswer) {
    if let Some(state) = &answer.state {
        *lock(&conn.state) = Some(state.clone()).filter(|s| !s.is_empty());
    }
}

/// A reliable client asks to resume a connection whose transport broke.
fn recover(
    shared: Arc<Shared>,
    hub: &str,
    id: &str,
    token: &str,
    ws: WebSocketUpgrade,
    offered: &[String],
) -> Response {
    // Only a lookup: nothing is created for an unknown hub or connection.
    let conn = shared.hubs.get(hub, id).filter(|conn| {
        conn.protocol == Protocol::ReliableJson
            && !conn.is_killed()
            && shared.reconnect_key.verify(hub, id, token)
            && offered.iter().any(|o| o == Protocol::RELIABLE_JSON)
    });
    let mut ws = configure(ws);
    if offered.iter().any(|o| o == Protocol::RELIABLE_JSON) {
        ws.set_selected_protocol(HeaderValue::from_static(Protocol::RELIABLE_JSON));
    } else if let Some(first) = offered.first().and_then(|o| HeaderValue::from_str(o).ok()) {
        ws.set_selected_protocol(first);
    }
    let Some(conn) = conn else {
        tracing::info!(target: "webpubsub::emulator::client", connection = %id, "recovery refused");
        return ws.on_upgrade(refuse_recovery);
    };
    // The old socket may still be attached (a half-open TCP connection the
    // emulator has not noticed yet): ask it to let go, then take over.
    let parked = lock(&conn.parked).take();
    if parked.is_none() {
        conn.takeover.notify_waiters();
    }
    ws.on_upgrade(move |socket| async move {
        let rx = match parked {
            Some(rx) => Some(rx),
            None => wait_parked(&conn).await,
        };
        match rx {
            Some(rx) => {
                conn.bump_generation();
                tracing::info!(target: "webpubsub::emulator::client", connection = %conn.id, "connection recovered");
                resume(shared, conn, rx, socket).await;
            }
            None => {
                tracing::info!(target: "webpubsub::emulator::client", connection = %conn.id, "recovery refused: the connection did not come free");
                refuse_recovery(socket).await;
            }
        }
    })
}

/// Waits (up to 2 s) for the socket serving a connection to let it go.
async fn wait_parked(conn: &Connection) -> Option<mpsc::Receiver<Outbound>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(rx) = lock(&conn.parked).take() {
            return Some(rx);
        }
        if conn.ended.load(Ordering::Acquire) || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A failed recovery is an upgrade followed by close 1008, so the client
/// stops retrying and connects anew.
async fn refuse_recovery(mut socket: WebSocket) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: Utf8Bytes::from_static("The connection cannot be recovered."),
        })))
        .await;
}

/// Serves a recovered connection: unacknowledged messages first, in order.
async fn resume(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut rx: mpsc::Receiver<Outbound>,
    mut socket: WebSocket,
) {
    let pending: Vec<(u64, Arc<Envelope>)> = lock(&conn.reliable).frames.iter().cloned().collect();
    for (sequence, envelope) in pending {
        let frame = frames::message(&envelope.origin, &envelope.data, Some(sequence));
        if socket.send(text(frame)).await.is_err() {
            after(shared, conn, rx, Ended::Dropped);
            return;
        }
    }
    let ended = serve(&shared, &conn, &mut rx, socket, &RawMode::default()).await;
    after(shared, conn, rx, ended);
}

/// Reads client frames and writes queued messages until the socket ends.
async fn serve(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    rx: &mut mpsc::Receiver<Outbound>,
    socket: WebSocket,
    raw: &RawMode,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let mut reader = Reader { shared, conn, raw };
    // A live client answers pings, so a silent one is gone (or stalling).
    let silence = shared.client_timeout.max(Duration::from_millis(30));
    let ping_every = (silence / 3).clamp(Duration::from_millis(10), KEEP_ALIVE);
    let read = async {
        loop {
            let frame = match tokio::time::timeout(silence, stream.next()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ended::Dropped,
                Err(_) => {
                    tracing::info!(target: "webpubsub::emulator::client", connection = %conn.id,
                        timeout = ?silence, "client silent for too long: dropping its socket");
                    return Ended::Dropped;
                }
            };
            let outcome = match frame {
                Ok(Message::Text(text)) => reader.text(text.as_str()).await,
                Ok(Message::Binary(bytes)) => reader.binary(bytes).await,
                Ok(Message::Close(_)) => return Ended::ClientClosed,
                Ok(Message::Ping(_) | Message::Pong(_)) => Ok(()),
                Err(e) if too_big(&e) => {
                    return Ended::Terminated(
                        1009,
                        format!("Message too big: the limit is {MAX_FRAME} bytes."),
                    )
                }
                Err(_) => return Ended::Dropped,
            };
            if let Err(ended) = outcome {
                return ended;
            }
        }
    };
    let write = async {
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        loop {
            tokio::select! {
                message = rx.recv() => {
                    let Some(mut message) = message else { return Ended::Dropped };
                    // Write what is queued (up to a batch) before one flush.
                    let mut batch = 0;
                    loop {
                        let cost = message.cost();
                        match write_one(conn, message) {
                            Write::Frame(frame) => {
                                if sink.feed(frame).await.is_err() {
                                    return Ended::Dropped;
                                }
                            }
                            Write::Skip => {}
                            Write::Close(frames, reason) => {
                                for frame in frames {
                                    let _ = sink.send(frame).await;
                                }
                                return Ended::ServiceClosed(reason);
                            }
                        }
                        conn.written(cost);
                        batch += 1;
                        match rx.try_recv() {
                            Ok(next) if batch < 64 => message = next,
                            Ok(next) => {
                                if sink.flush().await.is_err() {
                                    return Ended::Dropped;
                                }
                                batch = 0;
                                message = next;
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        return Ended::Dropped;
                    }
                }
                _ = keep_alive.tick() => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
    };
    // A slow reader is cut off even while a write to it is blocked.
    let killed = async {
        conn.kill.notified().await;
        let reason = lock(&conn.kill_reason).clone().unwrap_or_default();
        Ended::Terminated(1008, reason)
    };
    // A recovering client takes the connection over from this socket.
    let taken_over = async {
        conn.takeover.notified().await;
        Ended::Dropped
    };
    let ended = tokio::select! {
        ended = read => ended,
        ended = write => ended,
        ended = killed => ended,
        ended = taken_over => ended,
    };
    if let Ended::Terminated(code, reason) = &ended {
        // Gone for good from now on, whatever the goodbye below takes.
        finish(shared, conn, Some(reason.clone()));
        // The peer may not be reading: say goodbye, but not forever.
        let goodbye = async {
            if conn.protocol.is_json() {
                let _ = sink
                    .send(Message::Text(Utf8Bytes::from(frames::disconnected(reason))))
                    .await;
            }
            let _ = sink.send(close_frame(*code, reason)).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
    if let Ended::ClientClosed = ended {
        let _ = sink.close().await;
    }
    ended
}

fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.get(..end).unwrap_or_default().to_owned()),
    }))
}

enum Write {
    Frame(Message),
    Skip,
    Close(Vec<Message>, String),
}

/// Turns a queued message into frames for this connection's protocol.
fn write_one(conn: &Connection, message: Outbound) -> Write {
    match (conn.protocol, message) {
        (Protocol::Raw, Outbound::Message(envelope)) => {
            let bytes = envelope.data.bytes.clone();
            match envelope.data.kind {
                DataType::Binary => Write::Frame(Message::Binary(bytes)),
                _ => Write::Frame(Message::Text(
                    Utf8Bytes::try_from(bytes.clone()).unwrap_or_else(|_| {
                        Utf8Bytes::from(String::from_utf8_lossy(&bytes).into_owned())
                    }),
                )),
            }
        }
        (Protocol::Raw, Outbound::Ack { .. } | Outbound::Pong) => Write::Skip,
        (Protocol::Raw, Outbound::Close { reason }) => {
            Write::Close(vec![close_frame(1000, &reason)], reason)
        }
        (Protocol::Json, Outbound::Message(envelope)) => Write::Frame(Message::Text(
            envelope
                .json_frame
                .get_or_init(|| {
                    Utf8Bytes::from(frames::message(&envelope.origin, &envelope.data, None))
                })
                .clone(),
        )),
        (Protocol::ReliableJson, Outbound::Message(envelope)) => {
            let (sequence, over) = lock(&conn.reliable).push(&envelope);
            if over && conn.terminate("Too many unacknowledged messages.") {
                tracing::warn!(target: "webpubsub::emulator::client", connection = %conn.id,
                    "too many unacknowledged messages: disconnecting the client");
            }
            Write::Frame(text(frames::message(
                &envelope.origin,
                &envelope.data,
                Some(sequence),
            )))
        }
        (_, Outbound::Ack { id, error }) => Write::Frame(text(frames::ack(id, error.as_ref()))),
        (_, Outbound::Pong) => Write::Frame(text(frames::PONG.to_owned())),
        (_, Outbound::Close { reason }) => Write::Close(
            vec![
                text(frames::disconnected(&reason)),
                close_frame(1000, &reason),
            ],
            reason,
        ),
    }
}

fn text(frame: String) -> Message {
    Message::Text(Utf8Bytes::from(frame))
}

/// Handles the frames of one socket.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a Arc<Connection>,
    raw: &'a RawMode,
}

fn invalid(reason: &str) -> Ended {
    Ended::Terminated(1003, format!("Invalid message: {reason}"))
}

impl Reader<'_> {
    async fn text(&mut self, text: &str) -> Result<(), Ended> {
        if self.conn.protocol.is_json() {
            return self.json(text).await;
        }
        self.raw_frame(DataType::Text, Bytes::from(text.to_owned()))
            .await
    }

    async fn binary(&mut self, bytes: Bytes) -> Result<(), Ended> {
        if self.conn.protocol.is_json() {
            return Err(invalid("binary frames are not part of the JSON protocol"));
        }
        self.raw_frame(DataType::Binary, bytes).await
    }

    /// A frame of a simple client: a `message` event, or a group message in `sendToGroup` mode.
    async fn raw_frame(&mut self, kind: DataType, bytes: Bytes) -> Result<(), Ended> {
        let data = Data { kind, bytes };
        if let Some(group) = &self.raw.group {
            if lock(&self.conn.permissions).allows(Action::Send, group) {
                self.publish(group, data, self.raw.no_echo);
            }
            return Ok(());
        }
        match self.event("message", data).await {
            Ok(()) => Ok(()),
            Err(reason) => Err(Ended::Terminated(1011, reason)),
        }
    }

    /// Sends a user event upstream and queues its reply. `Err`: why it failed.
    async fn event(&mut self, name: &str, data: Data) -> Result<(), String> {
        self.conn.connected_delivered().await;
        let content_type = match data.kind {
            DataType::Text => "text/plain; charset=utf-8",
            DataType::Json => "application/json",
            DataType::Binary => "application/octet-stream",
        };
        let call = event_call(
            self.conn,
            EventType::User(name),
            content_type,
            data.bytes.clone(),
        );
        match self
            .shared
            .upstream
            .call(self.shared.settings(&self.conn.hub), call)
            .await
        {
            Ok(Some(answer)) => {
                keep_state(self.conn, &answer);
                if !answer.body.is_empty() && answer.status != StatusCode::NO_CONTENT {
                    let content_type = answer.content_type.as_deref().unwrap_or("");
                    let kind = if content_type.starts_with("text/plain") {
                        DataType::Text
                    } else if content_type.starts_with("application/json") {
                        if serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).is_ok() {
                            DataType::Json
                        } else {
                            DataType::Text
                        }
                    } else {
                        DataType::Binary
                    };
                    self.conn.send(Outbound::Message(Envelope::new(
                        Origin::Server,
                        Data {
                            kind,
                            bytes: answer.body,
                        },
                    )));
                }
                Ok(())
            }
            Ok(None) => Err(format!(
                "No event handler is registered for the event `{name}`."
            )),
            Err(e) => {
                tracing::warn!(target: "webpubsub::emulator::client", connection = %self.conn.id, event = name, error = %e, "user event failed");
                Err("The event handler failed.".to_owned())
            }
        }
    }

    fn publish(&self, group: &str, data: Data, no_echo: bool) {
        let excluded = if no_echo {
            vec![self.conn.id.to_string()]
        } else {
            Vec::new()
        };
        let origin = Origin::Group {
            group: Arc::from(group),
            from_user: self.conn.user_id.clone(),
        };
        let envelope = Envelope::new(origin, data);
        let targets =
            self.shared
                .hubs
                .targets(&self.conn.hub, Target::Group(group), &excluded, None);
        for target in targets {
            target.send(Outbound::Message(envelope.clone()));
        }
    }

    fn ack(&self, id: Option<u64>, error: Option<(&'static str, String)>) {
        if let Some(id) = id {
            self.conn.send(Outbound::Ack { id, error });
        }
    }

    /// One frame of the JSON protocols.
    async fn json(&mut self, text: &str) -> Result<(), Ended> {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Err(invalid("not a JSON object"));
        };
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ack_id = match message.get("ackId") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| invalid("ackId must be an unsigned integer"))?,
            ),
        };
        let string = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
        match kind {
            "ping" => {
                self.conn.send(Outbound::Pong);
                return Ok(());
            }
            "sequenceAck" => {
                if self.conn.protocol == Protocol::ReliableJson {
                    let sequence = message
                        .get("sequenceId")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| invalid("sequenceAck needs a sequenceId"))?;
                    lock(&self.conn.reliable).ack(sequence);
                }
                return Ok(());
            }
            "joinGroup" | "leaveGroup" | "sendToGroup" | "event" => {}
            other => return Err(invalid(&format!("unknown type `{other}`"))),
        }
        if let Some(id) = ack_id {
            if !lock(&self.conn.acks).first_use(id) {
                self.ack(
                    Some(id),
                    Some(("Duplicate", format!("The ackId {id} was already used."))),
                );
                return Ok(());
            }
        }
        match kind {
            "joinGroup" | "leaveGroup" => {
                let group = string("group")
                    .filter(|g| crate::names::GroupName::is_valid(g))
                    .ok_or_else(|| invalid("a group name is required"))?;
                if !lock(&self.conn.permissions).allows(Action::JoinLeave, &group) {
                    self.ack(
                        ack_id,
                        Some((
                            "Forbidden",
                            format!("No permission to join or leave group `{group}`."),
                        )),
                    );
                    return Ok(());
                }
                if kind == "joinGroup" {
                    if let Err(refusal) =
                        self.shared.hubs.join(&self.conn.hub, &self.conn.id, &group)
                    {
                        tracing::info!(target: "webpubsub::emulator::client", connection = %self.conn.id,
                            reason = %refusal, "joinGroup refused");
                        self.ack(ack_id, Some(("Forbidden", refusal.to_string())));
                        return Ok(());
                    }
                } else {
                    self.shared
                        .hubs
                        .leave(&self.conn.hub, &self.conn.id, &group);
                }
                self.shared.changed();
                self.ack(ack_id, None);
            }
            "sendToGroup" => {
                let group = string("group")
                    .filter(|g| !g.trim().is_empty())
                    .ok_or_else(|| invalid("a group name is required"))?;
                let data = payload(&message)?;
                if !lock(&self.conn.permissions).allows(Action::Send, &group) {
                    self.ack(
                        ack_id,
                        Some((
                            "Forbidden",
                            format!("No permission to send to group `{group}`."),
                        )),
                    );
                    return Ok(());
                }
                let no_echo = message
                    .get("noEcho")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.publish(&group, data, no_echo);
                self.ack(ack_id, None);
            }
            _ => {
                let name = string("event")
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| invalid("an event name is required"))?;
                let data = payload(&message)?;
                let result = self.event(&name, data).await;
                self.ack(
                    ack_id,
                    result.err().map(|reason| ("InternalServerError", reason)),
                );
            }
        }
        Ok(())
    }
}

/// The `dataType` + `data` of a client message.
fn payload(message: &Map<String, Value>) -> Result<Data, Ended> {
    let data = message.get("data").cloned().unwrap_or(Value::Null);
    match message
        .get("dataType")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Ok(Data {
            kind: DataType::Json,
            bytes: Bytes::from(data.to_string()),
        }),
        "text" => match data {
            Value::String(s) => Ok(Data {
                kind: DataType::Text,
                bytes: Bytes::from(s),
            }),
            _ => Err(invalid("text data must be a string")),
        },
        "binary" | "protobuf" => match data {
            Value::String(s) => STANDARD
                .decode(s.as_bytes())
                .map(|b| Data {
                    kind: DataType::Binary,
                    bytes: Bytes::from(b),
                })
                .map_err(|_| invalid("binary data must be base64")),
            _ => Err(invalid("binary data must be a base64 string")),
        },
        other => Err(invalid(&format!("unknown dataType `{other}`"))),
    }
}
