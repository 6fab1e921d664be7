//! Turning a handler's answer into the HTTP response the service expects.

use axum::body::Body;
use http::{header, HeaderValue, Response, StatusCode};

use super::headers::CE_CONNECTION_STATE;
use crate::events::{ConnectEventResponse, EventErrorResponse, UserEventResponse};
use crate::state::{ConnectionStates, StateChanges};
use crate::wire::{MqttConnectRefusal, CONNECT_ANSWER_FIELDS};

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `204 No Content`: accepted, nothing to say (non-blocking events too).
pub(crate) fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// The answer to `connect`. `mqtt_version` is the MQTT protocol version when
/// the client is an MQTT client (its refusals are JSON).
pub(crate) fn connect(
    result: Result<ConnectEventResponse, EventErrorResponse>,
    before: &ConnectionStates,
    mqtt_version: Option<u8>,
) -> Response<Body> {
    let accept = match result {
        Ok(accept) => accept,
        Err(err) => return error(&err, mqtt_version),
    };
    let mut response = if accept.has_body() {
        match connect_json(&accept) {
            Ok(json) => with_body(StatusCode::OK, JSON, Body::from(json)),
            Err(e) => return serialise_failed(&e),
        }
    } else {
        no_content()
    };
    set_states(&mut response, &accept.states, before);
    response
}

/// The JSON body of an accepted `connect`, as serde_json writes it.
fn connect_json(accept: &ConnectEventResponse) -> Result<Vec<u8>, serde_json::Error> {
    match plain_connect_json(accept) {
        Some(json) => Ok(json),
        None => serde_json::to_vec(accept),
    }
}

/// The usual answer (no MQTT fields, no string that needs escaping) written
/// directly, into a buffer of exactly its size: serde_json's field-by-field
/// serialisation was most of the cost of encoding, and a buffer with room to
/// spare costs `Bytes` a second allocation. `None` for anything else.
fn plain_connect_json(accept: &ConnectEventResponse) -> Option<Vec<u8>> {
    /// A field's value: one string or a list of them.
    enum Value<'a> {
        One(&'a str),
        List(&'a [String]),
    }
    /// The length of `s` written as a JSON string, if serde_json would
    /// write it as it is (nothing to escape).
    fn plain(s: &str) -> Option<usize> {
        let escapes = s.bytes().fold(false, |found, b| {
            found | (b == b'"') | (b == b'\\') | (b < 0x20)
        });
        (!escapes).then_some(s.len() + 2)
    }
    fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }

    if accept.mqtt.is_some() {
        return None;
    }
    // The fields serde_json writes, in its order (the derive's), named as
    // the wire says.
    let [user_id, groups, roles, subprotocol, _mqtt] = CONNECT_ANSWER_FIELDS;
    let fields = [
        (user_id, accept.user_id.as_deref().map(Value::One)),
        (groups, accept.groups.as_deref().map(Value::List)),
        (roles, accept.roles.as_deref().map(Value::List)),
        (
            subprotocol,
            accept
                .subprotocol
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(Value::One),
        ),
    ];
    // Braces, then each field's name and value, and a comma before each
    // field but the first.
    let mut len = 2;
    let mut count = 0usize;
    for (name, value) in &fields {
        let Some(value) = value else { continue };
        count += 1;
        // `"name":`
        len += name.len() + 3;
        len += match value {
            Value::One(s) => plain(s)?,
            Value::List(items) => {
                let mut list = 2 + items.len().saturating_sub(1);
                for item in *items {
                    list += plain(item)?;
                }
                list
            }
        };
    }
    len += count.saturating_sub(1);

    let mut out = Vec::with_capacity(len);
    out.push(b'{');
    for (name, value) in &fields {
        let Some(value) = value else { continue };
        if out.len() > 1 {
            out.push(b',');
        }
        string(&mut out, name);
        out.push(b':');
        match value {
            Value::One(s) => string(&mut out, s),
            Value::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(&mut out, item);
                }
                out.push(b']');
            }
        }
    }
    out.push(b'}');
    debug_assert_eq!(out.len(), len);
    Some(out)
}

/// The answer to a user event.
pub(crate) fn user_event(
    result: Result<UserEventResponse, EventErrorResponse>,
    before: &ConnectionStates,
) -> Response<Body> {
    let UserEventResponse { data, states } = match result {
        Ok(reply) => reply,
        Err(err) => return error(&err, None),
    };
    let mut response = match data {
        None => no_content(),
        Some(data) => {
            let content_type = HeaderValue::from_static(data.data_type().content_type());
            with_body(StatusCode::OK, content_type, Body::from(data.into_bytes()))
        }
    };
    set_states(&mut response, &states, before);
    response
}

/// A refusal: its status with a text body, or the MQTT JSON body.
pub(crate) fn error(err: &EventErrorResponse, mqtt_version: Option<u8>) -> Response<Body> {
    let status = err.status();
    tracing::debug!(target: "webpubsub::handler", status = status.as_u16(), message = %err.message, "handler refused event");
    if let Some(version) = mqtt_version {
        // The code is chosen here, for the client's actual protocol version.
        let body = MqttConnectRefusal::new(err.mqtt_answer(version));
        return match serde_json::to_vec(&body) {
            Ok(json) => with_body(status, JSON, Body::from(json)),
            Err(e) => serialise_failed(&e),
        };
    }
    if err.message.is_empty() {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        return response;
    }
    with_body(status, TEXT, Body::from(err.message.clone()))
}

/// A handler that panicked: `500`, logged at `error`.
pub(crate) fn handler_panicked(hub: &str, event: &str) -> Response<Body> {
    tracing::error!(target: "webpubsub::handler", hub, event, "event handler panicked; answered 500");
    with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        TEXT,
        Body::from("event handler failed"),
    )
}

fn serialise_failed(e: &serde_json::Error) -> Response<Body> {
    tracing::error!(target: "webpubsub::handler", error = %e, "could not serialise the handler's answer");
    with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        TEXT,
        Body::from("could not serialise the answer"),
    )
}

fn with_body(status: StatusCode, content_type: HeaderValue, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn set_states(response: &mut Response<Body>, changes: &StateChanges, before: &ConnectionStates) {
    let Some(after) = changes.apply(before) else {
        return;
    };
    match HeaderValue::try_from(after.to_header()) {
        Ok(value) => {
            response.headers_mut().insert(CE_CONNECTION_STATE, value);
        }
        Err(_) => {
            tracing::error!(target: "webpubsub::handler", "connection state is not a valid header value")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_answers_are_written_as_serde_json_writes_them() {
        let answers = [
            ConnectEventResponse::new().user_id("user1"),
            ConnectEventResponse::new()
                .user_id("user1")
                .groups(["lobby"])
                .roles(Vec::<String>::new()),
            ConnectEventResponse::new().groups(Vec::<String>::new()),
            ConnectEventResponse::new().groups(["a", "b", "caf\u{e9}\u{7f}"]),
            ConnectEventResponse::new()
                .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.x"])
                .subprotocol("json.webpubsub.azure.v1"),
            ConnectEventResponse::new().subprotocol("p"),
            ConnectEventResponse::new().user_id("").subprotocol(""),
            ConnectEventResponse::new().user_id("a\"b"),
            ConnectEventResponse::new().groups(["ok", "back\\slash"]),
            ConnectEventResponse::new().roles(["tab\t"]),
            ConnectEventResponse::new()
                .user_id("u")
                .mqtt_user_property("k", "v"),
        ];
        for accept in answers {
            let expected = serde_json::to_vec(&accept).unwrap();
            let json = connect_json(&accept).unwrap();
            assert_eq!(
                String::from_utf8(json.clone()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            if let Some(plain) = plain_connect_json(&accept) {
                assert_eq!(plain.len(), plain.capacity(), "{accept:?}");
            }
        }
    }
}
