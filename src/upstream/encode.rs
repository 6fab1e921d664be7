//! Turning a handler's answer into the HTTP response the service expects.

use axum::body::Body;
use http::{header, HeaderValue, Response, StatusCode};

use super::headers::CE_CONNECTION_STATE;
use crate::events::{
    ConnectEventResponse, EventErrorResponse, MqttConnectError, UserEventResponse,
};
use crate::state::{ConnectionStates, StateChanges};

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
        let mut json = Vec::with_capacity(128);
        match serde_json::to_writer(&mut json, &accept) {
            Ok(()) => with_body(StatusCode::OK, JSON, Body::from(json)),
            Err(e) => return serialise_failed(&e),
        }
    } else {
        no_content()
    };
    set_states(&mut response, &accept.states, before);
    response
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
        let body = MqttRefusal {
            mqtt: err.mqtt_answer(version),
        };
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

/// The JSON body of a refused MQTT `connect`: `{"mqtt":{"code":…,…}}`.
#[derive(serde::Serialize)]
struct MqttRefusal {
    mqtt: MqttConnectError,
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
