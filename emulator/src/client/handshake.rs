//! The handshake of a client WebSocket, as a sequence of named steps (see
//! [`handshake`]); each may refuse the client with a status and a one-line
//! reason, logged once where the refusal becomes the answer.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Map, Value};

use super::connection;
use super::reader::RawMode;
use super::recovery;
use super::session;
use crate::auth;
use crate::hub::{Connection, NewConnection, Protocol};
use crate::server::Shared;
use crate::upstream::{UpstreamAnswer, UpstreamCall, UpstreamError};
use webpubsub::names::{GroupName, HubName};
use webpubsub::wire::ConnectBody;
use webpubsub::wire::EventType;
use webpubsub::ConnectEventResponse;

/// Serves `GET /client/hubs/{hub}` (and `/client?hub=`).
pub(crate) async fn handshake(
    shared: Arc<Shared>,
    hub: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match accept(shared, hub, &uri, &headers, ws).await {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            refusal.log();
            refusal.into_response()
        }
    }
}

/// The steps in order; the first refusal ends the handshake.
async fn accept(
    shared: Arc<Shared>,
    hub: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let Ok(ws) = ws else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request",
        ));
    };
    let request = ClientRequest::read(hub, uri, &ws)?;
    if let Some(id) = request.param("awps_connection_id") {
        let token = request.param("awps_reconnection_token").unwrap_or_default();
        return Ok(recovery::recover(
            shared,
            &request.hub,
            id,
            token,
            ws,
            &request.offered,
        ));
    }
    let claims = authenticate(&shared, &request, uri, headers, "/client/hubs/")?;
    let identity = Identity::from_claims(&shared, &request.hub, &claims)?;
    let raw = raw_mode(&request)?;
    let connection_id = uuid::Uuid::new_v4().simple().to_string();
    let mut accepted = call_connect(
        &shared,
        &request,
        headers,
        &claims,
        &connection_id,
        identity,
    )
    .await?;
    check_answered_limits(&shared, &request.hub, &accepted.identity)?;
    accepted.subprotocol = choose_subprotocol(&request.offered, accepted.subprotocol)?;
    Ok(upgrade(
        shared,
        ws,
        &request.hub,
        connection_id,
        accepted,
        raw,
    ))
}

/// Serves `GET /clients/mqtt/hubs/{hub}`: the token is checked as for
/// other clients (its audience is the MQTT path), the client must offer
/// subprotocol `mqtt`; the socket then goes to [`crate::endpoint::mqtt`], where the
/// CONNECT packet raises `connect`.
pub(crate) async fn mqtt_handshake(
    shared: Arc<Shared>,
    hub: String,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match accept_mqtt(shared, hub, &uri, &headers, ws) {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            refusal.log();
            refusal.into_response()
        }
    }
}

fn accept_mqtt(
    shared: Arc<Shared>,
    hub: String,
    uri: &Uri,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let Ok(ws) = ws else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request",
        ));
    };
    let request = ClientRequest::read(Some(hub), uri, &ws)?;
    let claims = authenticate(&shared, &request, uri, headers, "/clients/mqtt/hubs/")?;
    let identity = Identity::from_claims(&shared, &request.hub, &claims)?;
    if !request
        .offered
        .iter()
        .any(|p| p == crate::protocol::mqtt::SUBPROTOCOL)
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "MQTT clients must offer WebSocket subprotocol `mqtt`",
        ));
    }
    let client = crate::endpoint::mqtt::Client {
        hub: request.hub.clone(),
        user_id: identity.user_id,
        roles: identity.roles,
        groups: identity.groups,
        connect_body: connect_body(&claims, &request.query, headers, &request.offered),
    };
    let mut ws = session::configure(ws);
    ws.set_selected_protocol(HeaderValue::from_static(crate::protocol::mqtt::SUBPROTOCOL));
    Ok(ws.on_upgrade(move |socket| crate::endpoint::mqtt::serve(shared, socket, client)))
}

/// Why the handshake refuses a client.
#[derive(Debug)]
enum Refusal {
    /// The emulator refuses: this status, with the reason as the body (a
    /// `401` has none).
    Emulator { status: StatusCode, reason: String },
    /// The `connect` handler refused, failed or could not be reached: its
    /// status (`500` unless it answered one); no body when it refused,
    /// else one naming the cause in general terms
    /// ([`UpstreamError::client_message`]).
    Upstream { hub: String, error: UpstreamError },
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self::Emulator {
            status,
            reason: reason.into(),
        }
    }

    fn log(&self) {
        match self {
            Self::Emulator { status, reason } => {
                tracing::info!(target: "webpubsub_emulator::client", status = status.as_u16(), %reason, "refused client");
            }
            Self::Upstream { hub, error } => {
                tracing::info!(target: "webpubsub_emulator::client", hub = %hub, error = %error, "connect failed: {}", error.summary());
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Emulator { status, .. } if status == StatusCode::UNAUTHORIZED => {
                status.into_response()
            }
            Self::Emulator { status, reason } => (status, reason).into_response(),
            Self::Upstream { error, .. } => match error.client_message() {
                Some(message) => (error.handshake_status(), message).into_response(),
                None => error.handshake_status().into_response(),
            },
        }
    }
}

/// What the upgrade request asks for.
struct ClientRequest {
    /// The hub, lower-cased as the service does (`ce-hub`, `{hub}`).
    hub: String,
    /// The hub as the client spelled it; tokens keep that spelling.
    named_hub: String,
    /// The query, decoded.
    query: Vec<(String, String)>,
    /// The subprotocols the client offers, in its order.
    offered: Vec<String>,
}

impl ClientRequest {
    /// Step: the hub (from the path or `?hub=`), the query and the offered
    /// subprotocols. Refuses a missing or invalid hub name (400).
    fn read(hub: Option<String>, uri: &Uri, ws: &WebSocketUpgrade) -> Result<Self, Refusal> {
        let query = query_pairs(uri.query());
        let hub_name = hub.or_else(|| first(&query, "hub").map(str::to_owned));
        let Some(named_hub) = hub_name.filter(|h| HubName::is_valid(h)) else {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "missing or invalid hub name",
            ));
        };
        let offered = ws
            .requested_protocols()
            .filter_map(|p| p.to_str().ok())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            hub: named_hub.to_ascii_lowercase(),
            named_hub,
            query,
            offered,
        })
    }

    /// The first value of query parameter `name`.
    fn param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }
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

/// Step: the access token (`?access_token=` or `Authorization: Bearer …`)
/// must be signed with an access key of the emulator (or, from
/// `:generateToken` with local auth disabled, its internal key) and meant for this
/// hub's URL; its claims. Refuses with 401.
fn authenticate(
    shared: &Shared,
    request: &ClientRequest,
    uri: &Uri,
    headers: &HeaderMap,
    prefix: &str,
) -> Result<Map<String, Value>, Refusal> {
    let token = request.param("access_token").or_else(|| {
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
    });
    let Some(token) = token else {
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, "no access token"));
    };
    let claims = shared
        .verify_client_token(token)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let named_hub = &request.named_hub;
    let path_hub = uri
        .path()
        .strip_prefix(prefix)
        .map_or(named_hub.as_str(), |h| h.trim_end_matches('/'));
    let sibling = shared.sibling_host(host);
    let accepted: Vec<String> = std::iter::once(host)
        .chain(sibling.as_deref())
        .flat_map(|host| {
            [
                format!("http://{host}{prefix}{path_hub}"),
                format!("https://{host}{prefix}{path_hub}"),
                format!("http://{host}{prefix}{named_hub}"),
            ]
        })
        .collect();
    let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
    auth::check_audience(&claims, &accepted)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok(claims)
}

/// Who the client is: from its token, then as the `connect` handler has it.
struct Identity {
    user_id: Option<String>,
    roles: Vec<String>,
    groups: Vec<String>,
}

impl Identity {
    /// Step: the user (`sub`), roles (`role`) and groups
    /// (`webpubsub.group`) the token names, within the limits. Refuses
    /// invalid or too many groups (400) and a user with no room left (429).
    fn from_claims(
        shared: &Shared,
        hub: &str,
        claims: &Map<String, Value>,
    ) -> Result<Self, Refusal> {
        let identity = Self {
            user_id: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            roles: auth::string_list(claims, "role"),
            groups: auth::string_list(claims, "webpubsub.group"),
        };
        if identity.groups.iter().any(|g| !GroupName::is_valid(g)) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid group name in the token",
            ));
        }
        if let Some(refusal) = shared.hubs.too_many_groups(&identity.groups) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The token names {} groups. {refusal}",
                    identity.groups.len()
                ),
            ));
        }
        // Checked before the upstream hears of it, and again after it for
        // the user id the `connect` handler may pick.
        identity.check_user_room(shared, hub)?;
        Ok(identity)
    }

    /// Refuses (429) a user who has as many connections as allowed.
    fn check_user_room(&self, shared: &Shared, hub: &str) -> Result<(), Refusal> {
        match self
            .user_id
            .as_deref()
            .and_then(|u| shared.hubs.user_full(hub, u))
        {
            Some(refusal) => Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                refusal.to_string(),
            )),
            None => Ok(()),
        }
    }
}

/// Step: simple clients may publish to a group instead of raising events
/// (`webpubsub_mode=sendToGroup&group=…`, optionally `noEcho=true`).
/// Refuses an unknown mode or a missing group (400).
fn raw_mode(request: &ClientRequest) -> Result<RawMode, Refusal> {
    let mode = request.param("webpubsub_mode").unwrap_or("sendEvent");
    let group = if mode.eq_ignore_ascii_case("sendToGroup") {
        match request.param("group").filter(|g| !g.trim().is_empty()) {
            Some(group) => Some(group.to_owned()),
            None => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "webpubsub_mode=sendToGroup needs a group",
                ))
            }
        }
    } else if mode.eq_ignore_ascii_case("sendEvent") {
        None
    } else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "webpubsub_mode must be sendEvent or sendToGroup",
        ));
    };
    let no_echo = request
        .param("noEcho")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(RawMode { group, no_echo })
}

/// The client as the `connect` event leaves it.
struct Accepted {
    identity: Identity,
    /// The connection state the handler set, if any.
    state: Option<String>,
    /// The subprotocol the handler chose (one the client offered).
    subprotocol: Option<String>,
}

/// Step: raises the `connect` event. With no handler the token's identity
/// stays; a handler may change the user, roles and groups, set state and
/// choose an offered subprotocol. Refuses with the handler's refusal, or
/// 500 when its answer is not a valid `connect` answer.
async fn call_connect(
    shared: &Shared,
    request: &ClientRequest,
    headers: &HeaderMap,
    claims: &Map<String, Value>,
    connection_id: &str,
    identity: Identity,
) -> Result<Accepted, Refusal> {
    let settings = shared.settings(&request.hub);
    let body = connect_body(claims, &request.query, headers, &request.offered);
    let call = UpstreamCall {
        hub: &request.hub,
        connection_id,
        user_id: identity.user_id.as_deref(),
        subprotocol: None,
        state: None,
        event_id: 0,
        kind: EventType::Connect,
        content_type: "application/json",
        body: Bytes::from(body),
        extra: HeaderMap::new(),
    };
    let answer = shared.upstream.call(settings, call).await;
    let mut accepted = Accepted {
        identity,
        state: None,
        subprotocol: None,
    };
    match answer {
        Ok(None) => {}
        Ok(Some(answer)) => accepted.take_answer(answer, &request.offered)?,
        Err(error) => {
            return Err(Refusal::Upstream {
                hub: request.hub.clone(),
                error,
            })
        }
    }
    Ok(accepted)
}

impl Accepted {
    /// Applies the handler's answer: the state from `ce-connectionState`,
    /// the rest from its body.
    fn take_answer(&mut self, answer: UpstreamAnswer, offered: &[String]) -> Result<(), Refusal> {
        if let Some(s) = answer.state {
            self.state = Some(s).filter(|s| !s.is_empty());
        }
        if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
            return Ok(());
        }
        // The answer is read with the crate's own type, so the emulator
        // accepts exactly what the crate writes.
        let Ok(reply) = serde_json::from_slice::<ConnectEventResponse>(&answer.body) else {
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the connect handler answered invalid JSON",
            ));
        };
        if let Some(user) = reply.user_id {
            self.identity.user_id = Some(user).filter(|u| !u.is_empty());
        }
        if let Some(list) = reply.roles {
            self.identity.roles = list;
        }
        if let Some(list) = reply.groups.filter(|list| !list.is_empty()) {
            self.identity.groups = list;
        }
        if let Some(sub) = reply.subprotocol {
            if !offered.contains(&sub) {
                return Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the connect handler chose a subprotocol the client did not offer",
                ));
            }
            self.subprotocol = Some(sub);
        }
        Ok(())
    }
}

/// The `connect` event's JSON body: the claims, the query without the
/// token, the headers without `Authorization`, the offered subprotocols.
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

/// Step: the limits again, for the user and groups the `connect` handler
/// answered. Refuses too many groups (500: the handler's fault) and a user
/// with no room left (429).
fn check_answered_limits(shared: &Shared, hub: &str, identity: &Identity) -> Result<(), Refusal> {
    if let Some(refusal) = shared.hubs.too_many_groups(&identity.groups) {
        return Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "The connect handler answered {} groups. {refusal}",
                identity.groups.len()
            ),
        ));
    }
    identity.check_user_room(shared, hub)
}

/// Step: the subprotocol of the connection: the handler's choice, else the
/// first JSON protocol the client offers, else none if it offers none.
/// Refuses a client that offers only unknown subprotocols (400).
fn choose_subprotocol(
    offered: &[String],
    chosen: Option<String>,
) -> Result<Option<String>, Refusal> {
    if chosen.is_some() || offered.is_empty() {
        return Ok(chosen);
    }
    match offered
        .iter()
        .find(|o| *o == Protocol::JSON || *o == Protocol::RELIABLE_JSON)
    {
        Some(json) => Ok(Some(json.clone())),
        None => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "No supported Web PubSub subprotocol was requested.",
        )),
    }
}

/// Step: creates the connection and answers the upgrade; the socket then
/// registers and serves it ([`connection::start`]).
fn upgrade(
    shared: Arc<Shared>,
    ws: WebSocketUpgrade,
    hub: &str,
    connection_id: String,
    accepted: Accepted,
    raw: RawMode,
) -> Response {
    let Accepted {
        identity,
        state,
        subprotocol,
    } = accepted;
    let protocol = Protocol::from_subprotocol(subprotocol.as_deref());
    let token = shared.reconnect_key.token(hub, &connection_id);
    let (conn, rx) = Connection::new(NewConnection {
        id: Arc::from(connection_id.as_str()),
        hub: Arc::from(hub),
        user_id: identity.user_id.map(Arc::from),
        protocol,
        subprotocol: subprotocol.clone(),
        roles: identity.roles,
        reconnection_token: token,
        state,
        queue: shared.queue,
        queue_bytes: shared.queue_bytes,
        detached_bytes: shared.detached_bytes,
        ack_ids: shared.ack_ids,
        mqtt: None,
    });
    let mut ws = session::configure(ws);
    if let Some(chosen) = &subprotocol {
        if let Ok(value) = HeaderValue::from_str(chosen) {
            ws.set_selected_protocol(value);
        }
    }
    tracing::info!(target: "webpubsub_emulator::client", hub = %hub, connection = %conn.id,
        user = conn.user_id.as_deref(), protocol = subprotocol.as_deref().unwrap_or("none"), "client connected");
    let groups = identity.groups;
    ws.on_upgrade(move |socket| connection::start(shared, conn, rx, socket, groups, raw))
}
