//! The `connect` event, for every client protocol: its body, the call
//! ([`connect_event`]), and its answer applied once to the client's identity and state
//! ([`apply_answer`]); the protocol reads the rest of the reply
//! (a subprotocol, MQTT user properties).

use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::events::json_body;
use super::handshake::{Identity, Refusal};
use crate::service::Shared;
use crate::upstream::{UpstreamAnswer, UpstreamCall};
use webpubsub::wire::{ConnectBody, EventType};
use webpubsub::ConnectEventResponse;

/// The `connect` event of a client its handshake identified: no state
/// yet, event id 0, the body ([`connect_body`], with what the protocol
/// adds, e.g. `mqtt`) written through the crate's [`ConnectBody`].
/// A protocol adds its own `subprotocol` (`mqtt`) and `extra` headers.
pub(crate) fn connect_event<'a>(
    hub: &'a str,
    connection_id: &'a str,
    user_id: Option<&'a str>,
    body: &ConnectBody,
) -> UpstreamCall<'a> {
    UpstreamCall {
        hub,
        connection_id,
        user_id,
        subprotocol: None,
        state: None,
        event_id: 0,
        kind: EventType::Connect,
        content_type: "application/json",
        body: json_body(body),
        extra: HeaderMap::new(),
    }
}

/// A `connect` answer whose body is not a valid `connect` answer.
#[derive(Debug)]
pub(crate) struct InvalidAnswer;

/// Applies a 2xx `connect` answer: the state from `ce-connectionState`
/// (empty clears it), then from its body a user (empty: none), roles and
/// groups (an empty list keeps the token's). Returns the rest of the reply
/// for the protocol to read (`None`: no body, or `204`).
pub(crate) fn apply_answer(
    answer: UpstreamAnswer,
    identity: &mut Identity,
    state: &mut Option<String>,
) -> Result<Option<ConnectEventResponse>, InvalidAnswer> {
    if let Some(s) = answer.state {
        *state = Some(s).filter(|s| !s.is_empty());
    }
    if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
        return Ok(None);
    }
    // The answer is read with the crate's own type, so the emulator
    // accepts exactly what the crate writes.
    let Ok(mut reply) = serde_json::from_slice::<ConnectEventResponse>(&answer.body) else {
        return Err(InvalidAnswer);
    };
    if let Some(user) = reply.user_id.take() {
        identity.user_id = Some(user).filter(|u| !u.is_empty());
    }
    if let Some(list) = reply.roles.take() {
        identity.roles = list;
    }
    if let Some(list) = reply.groups.take().filter(|list| !list.is_empty()) {
        identity.groups = list;
    }
    Ok(Some(reply))
}

/// The `connect` event's JSON body: the claims, the query without the
/// token, the headers without `Authorization`, the offered subprotocols.
pub(crate) fn connect_body(
    claims: &Map<String, Value>,
    query: &[(String, String)],
    headers: &HeaderMap,
    offered: &[String],
) -> ConnectBody {
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
    body
}

/// A claim's value as text (strings as they are, others as JSON).
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Step: the limits again, for the user and groups the `connect` handler
/// answered. Refuses too many groups (500: the handler's fault) and a user
/// with no room left (429).
pub(crate) fn check_answered_limits(
    shared: &Shared,
    hub: &str,
    identity: &Identity,
) -> Result<(), Refusal> {
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
