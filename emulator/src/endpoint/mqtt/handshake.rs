//! The handshake of an MQTT client WebSocket (`/clients/mqtt/hubs/{hub}`):
//! the shared steps (`lifecycle/`), then the subprotocol `mqtt`; the
//! CONNECT packet raises `connect` later, in the session.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use crate::lifecycle::connect::connect_body;
use crate::lifecycle::handshake::{
    authenticate, configure, halves, upgrade_request, ClientRequest, Identity, Refusal,
};
use crate::service::Shared;

/// Bytes read from an MQTT client's socket at a time (see
/// [`configure`]).
const MQTT_READ_BUFFER: usize = 512;

/// Serves `GET /clients/mqtt/hubs/{hub}`: the token is checked as for
/// other clients (its audience is the MQTT path), the client must offer
/// subprotocol `mqtt`; the socket then goes to [`serve`](super::serve), where the
/// CONNECT packet raises `connect`.
pub(crate) async fn mqtt_handshake(
    shared: Arc<Shared>,
    hub: String,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    Refusal::answer(accept_mqtt(shared, hub, &uri, &headers, ws))
}

/// The steps in order; the first refusal ends the handshake.
fn accept_mqtt(
    shared: Arc<Shared>,
    hub: String,
    uri: &Uri,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let ws = upgrade_request(ws)?;
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
    let client = super::Client {
        hub: request.hub.clone(),
        identity,
        connect_body: connect_body(&claims, &request.query, headers, &request.offered),
    };
    // MQTT clients send small packets (PUBACK, PINGREQ, PUBLISH of a few
    // bytes): half the read buffer of the other protocols, which every
    // connection holds for its life; a larger packet takes more reads.
    let mut ws = configure(ws).read_buffer_size(MQTT_READ_BUFFER);
    ws.set_selected_protocol(HeaderValue::from_static(crate::protocol::mqtt::SUBPROTOCOL));
    Ok(ws.on_upgrade(move |socket| super::serve(shared, halves(socket), Box::new(client))))
}
