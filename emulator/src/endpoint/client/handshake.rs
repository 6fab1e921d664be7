//! The handshake of a JSON or raw client WebSocket, as a sequence of named
//! steps (see [`handshake`]); each may refuse the client with a status and
//! a one-line reason, logged once where the refusal becomes the answer.
//! The steps every protocol shares are `lifecycle/`'s.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Map, Value};

use super::connection;
use super::recovery;
use crate::hub::{Connection, NewConnection, Protocol};
use crate::lifecycle::connect::{self, check_answered_limits, connect_body, connect_event};
use crate::lifecycle::handshake::{
    authenticate, configure, halves, upgrade_request, ClientRequest, Identity, Refusal,
};
use crate::protocol::raw::RawMode;
use crate::service::Shared;
use crate::upstream::UpstreamAnswer;

/// Serves `GET /client/hubs/{hub}` (and `/client?hub=`).
pub(crate) async fn handshake(
    shared: Arc<Shared>,
    hub: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    Refusal::answer(accept(shared, hub, &uri, &headers, ws).await)
}

/// The steps in order; the first refusal ends the handshake.
async fn accept(
    shared: Arc<Shared>,
    hub: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let ws = upgrade_request(ws)?;
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

/// Step: simple clients may publish to a group instead of raising events
/// (`webpubsub_mode=sendToGroup&group=…`, optionally `noEcho=true`).
/// Refuses an unknown mode or a missing group (400).
fn raw_mode(request: &ClientRequest) -> Result<RawMode, Refusal> {
    RawMode::from_query(|name| request.param(name))
        .map_err(|reason| Refusal::new(StatusCode::BAD_REQUEST, reason))
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
    let call = connect_event(
        &request.hub,
        connection_id,
        identity.user_id.as_deref(),
        &connect_body(claims, &request.query, headers, &request.offered),
    );
    let answer = shared
        .upstream
        .call(shared.settings(&request.hub), call)
        .await;
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
    /// Applies the handler's answer ([`connect::apply_answer`]), then the
    /// subprotocol it chose.
    fn take_answer(&mut self, answer: UpstreamAnswer, offered: &[String]) -> Result<(), Refusal> {
        let reply = connect::apply_answer(answer, &mut self.identity, &mut self.state).map_err(
            |connect::InvalidAnswer| {
                Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the connect handler answered invalid JSON",
                )
            },
        )?;
        if let Some(sub) = reply.and_then(|reply| reply.subprotocol) {
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
    let mut ws = configure(ws);
    if let Some(chosen) = &subprotocol {
        if let Ok(value) = HeaderValue::from_str(chosen) {
            ws.set_selected_protocol(value);
        }
    }
    tracing::info!(target: "webpubsub_emulator::client", hub = %hub, connection = %conn.id,
        user = conn.user_id.as_deref(), protocol = subprotocol.as_deref().unwrap_or("none"), "client connected");
    let groups = identity.groups;
    ws.on_upgrade(move |socket| connection::start(shared, conn, rx, halves(socket), groups, raw))
}
