//! The CONNECT packet: the client id rules, the upstream `connect` event
//! with its `mqtt` object, and the CONNACK code its answer decides.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::codec::{Connect, V4, V5};
use super::{ids_headers, user_properties, Client, SUBPROTOCOL};
use crate::service::Shared;
use crate::upstream::{UpstreamCall, UpstreamError};
use webpubsub::events::{MqttConnectError, MqttConnectResponse};
use webpubsub::wire::EventType;

/// 3.1.1 CONNACK return codes the emulator uses.
pub(super) mod v4 {
    pub(crate) const UNACCEPTABLE_VERSION: u8 = 1;
    pub(crate) const IDENTIFIER_REJECTED: u8 = 2;
    pub(crate) const SERVER_UNAVAILABLE: u8 = 3;
    pub(crate) const NOT_AUTHORIZED: u8 = 5;
}

/// 5.0 reason codes the emulator uses.
pub(super) mod v5 {
    pub(crate) const UNSPECIFIED: u8 = 0x80;
    pub(crate) const MALFORMED: u8 = 0x81;
    pub(crate) const PROTOCOL_ERROR: u8 = 0x82;
    pub(crate) const UNSUPPORTED_VERSION: u8 = 0x84;
    pub(crate) const CLIENT_ID_NOT_VALID: u8 = 0x85;
    pub(crate) const NOT_AUTHORIZED: u8 = 0x87;
    pub(crate) const SERVER_UNAVAILABLE: u8 = 0x88;
    pub(crate) const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    pub(crate) const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub(crate) const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub(crate) const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub(crate) const TOPIC_NAME_INVALID: u8 = 0x90;
    pub(crate) const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub(crate) const PACKET_TOO_LARGE: u8 = 0x95;
    pub(crate) const QUOTA_EXCEEDED: u8 = 0x97;
    pub(crate) const ADMINISTRATIVE_ACTION: u8 = 0x98;
    pub(crate) const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    pub(crate) const SHARED_NOT_SUPPORTED: u8 = 0x9E;
    pub(crate) const WILDCARDS_NOT_SUPPORTED: u8 = 0xA2;
}

/// The CONNACK failure codes a `connect` handler may choose, per version
/// (MQTT 3.1.1 §3.2.2.3, MQTT 5.0 §3.2.2.2).
fn valid_refusal(version: u8, code: u8) -> bool {
    if version == V5 {
        matches!(
            code,
            0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
        )
    } else {
        (1..=5).contains(&code)
    }
}

/// "Unspecified error" per version: 0x80, or 3 (server unavailable) for
/// 3.1.1, which has no such code (the emulator's choice).
pub(super) fn unspecified(version: u8) -> u8 {
    if version == V5 {
        v5::UNSPECIFIED
    } else {
        v4::SERVER_UNAVAILABLE
    }
}

/// Why a CONNECT is refused: the CONNACK code, and for 5.0 a reason string
/// and user properties.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) code: u8,
    pub(super) reason: Option<String>,
    pub(super) user_properties: Vec<(String, String)>,
}

impl Refused {
    pub(super) fn new(code: u8, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: Some(reason.into()),
            user_properties: Vec::new(),
        }
    }

    /// The client id may not be used: `0x85` (client identifier not
    /// valid) for 5.0, `2` (identifier rejected) for 3.1.1.
    pub(super) fn client_id(version: u8, reason: impl Into<String>) -> Self {
        let code = if version == V5 {
            v5::CLIENT_ID_NOT_VALID
        } else {
            v4::IDENTIFIER_REJECTED
        };
        Self::new(code, reason)
    }
}

/// Step: the client id: 1–128 of `0-9 a-z A-Z`; an empty one is assigned
/// (32 hex digits) when the session is clean (3.1.1) or always (5.0).
/// `Ok((id, assigned))`.
pub(super) fn client_id(connect: &Connect) -> Result<(String, bool), Refused> {
    let refuse = |why: &str| Err(Refused::client_id(connect.version, why));
    if connect.client_id.is_empty() {
        if connect.version == V4 && !connect.clean_start {
            return refuse("An empty client id needs a clean session.");
        }
        return Ok((uuid::Uuid::new_v4().simple().to_string(), true));
    }
    if connect.client_id.len() > 128
        || !connect.client_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return refuse("Client ids are 1-128 characters of 0-9, a-z, A-Z.");
    }
    Ok((connect.client_id.clone(), false))
}

/// The client as the `connect` event leaves it.
#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) user_id: Option<String>,
    pub(super) roles: Vec<String>,
    pub(super) groups: Vec<String>,
    pub(super) state: Option<String>,
    /// For the CONNACK of 5.0 clients.
    pub(super) user_properties: Vec<(String, String)>,
}

/// Step: raises `connect` for the CONNECT packet. No handler: the token's
/// identity stays. A refusal becomes the CONNACK code: the handler's
/// `mqtt.code` when valid for the version (else "unspecified error"),
/// else 5 / 0x87 for 401 and 403 and 3 / 0x88 otherwise (the emulator's
/// choice).
pub(super) async fn call_connect(
    shared: &Shared,
    client: &Client,
    connect: &Connect,
    client_id: &str,
    physical_id: &str,
) -> Result<Accepted, Refused> {
    let version = connect.version;
    let call = UpstreamCall {
        hub: &client.hub,
        connection_id: client_id,
        user_id: client.user_id.as_deref(),
        subprotocol: Some(SUBPROTOCOL),
        state: None,
        event_id: 0,
        kind: EventType::Connect,
        content_type: "application/json",
        body: Bytes::from(connect_body(client, connect)),
        extra: ids_headers(&client.hub, client_id, physical_id),
    };
    let mut accepted = Accepted {
        user_id: client.user_id.clone(),
        roles: client.roles.clone(),
        groups: client.groups.clone(),
        state: None,
        user_properties: Vec::new(),
    };
    let answer = match shared
        .upstream
        .call(shared.settings(&client.hub), call)
        .await
    {
        Ok(None) => return Ok(accepted),
        Ok(Some(answer)) => answer,
        Err(error) => return Err(refusal(version, &error)),
    };
    if let Some(state) = answer.state {
        accepted.state = Some(state).filter(|s| !s.is_empty());
    }
    if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
        return Ok(accepted);
    }
    let Ok(reply) = serde_json::from_slice::<webpubsub::ConnectEventResponse>(&answer.body) else {
        tracing::info!(target: "webpubsub_emulator::mqtt", client = client_id, "the connect handler answered invalid JSON");
        return Err(Refused::new(
            unspecified(version),
            "The connect handler answered invalid JSON.",
        ));
    };
    if let Some(user) = reply.user_id {
        accepted.user_id = Some(user).filter(|u| !u.is_empty());
    }
    if let Some(roles) = reply.roles {
        accepted.roles = roles;
    }
    if let Some(groups) = reply.groups.filter(|g| !g.is_empty()) {
        accepted.groups = groups;
    }
    if let Some(MqttConnectResponse {
        user_properties, ..
    }) = reply.mqtt
    {
        accepted.user_properties = user_properties
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
    }
    Ok(accepted)
}

/// The CONNACK code of a failed `connect` call.
fn refusal(version: u8, error: &UpstreamError) -> Refused {
    tracing::info!(target: "webpubsub_emulator::mqtt", error = %error, "connect failed: {}", error.summary());
    let UpstreamError::Status { status, body, .. } = error else {
        return Refused::new(
            if version == V5 {
                v5::SERVER_UNAVAILABLE
            } else {
                v4::SERVER_UNAVAILABLE
            },
            error.client_text(),
        );
    };
    #[derive(serde::Deserialize)]
    struct Body {
        mqtt: Option<MqttConnectError>,
    }
    if let Ok(Body { mqtt: Some(mqtt) }) = serde_json::from_str::<Body>(body) {
        let code = if valid_refusal(version, mqtt.code) {
            mqtt.code
        } else {
            unspecified(version)
        };
        return Refused {
            code,
            reason: mqtt.reason,
            user_properties: mqtt
                .user_properties
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect(),
        };
    }
    let code = match (*status, version) {
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, V5) => v5::NOT_AUTHORIZED,
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => v4::NOT_AUTHORIZED,
        (_, V5) => v5::SERVER_UNAVAILABLE,
        _ => v4::SERVER_UNAVAILABLE,
    };
    Refused {
        code,
        reason: Some(body.clone()).filter(|b| !b.is_empty()),
        user_properties: Vec::new(),
    }
}

/// The `connect` body: the handshake's (claims, query, headers,
/// subprotocols) plus `mqtt`: protocolVersion, cleanStart, username,
/// password (base64), userProperties (5.0; `null` for 3.1.1).
fn connect_body(client: &Client, connect: &Connect) -> Vec<u8> {
    let mut body = match serde_json::from_slice::<Value>(&client.connect_body) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let properties = if connect.version == V5 {
        user_properties(&connect.properties.user_properties)
    } else {
        Value::Null
    };
    body.insert(
        "mqtt".to_owned(),
        json!({
            "protocolVersion": connect.version,
            "cleanStart": connect.clean_start,
            "username": connect.username,
            "password": connect.password.as_ref().map(|p| STANDARD.encode(p)),
            "userProperties": properties,
        }),
    );
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_checked_per_version() {
        assert!(valid_refusal(V4, 5));
        assert!(!valid_refusal(V4, 0x87));
        assert!(valid_refusal(V5, 0x8A));
        assert!(
            !valid_refusal(V5, 0x8B),
            "0x8B is server shutting down, not a CONNACK code"
        );
        assert!(!valid_refusal(V5, 5));
    }

    #[test]
    fn client_ids_follow_the_service_rules() {
        let connect = |id: &str, version, clean| Connect {
            version,
            clean_start: clean,
            client_id: id.to_owned(),
            ..Connect::default()
        };
        assert_eq!(client_id(&connect("abc1", V4, false)).unwrap().0, "abc1");
        assert!(client_id(&connect("a-b", V4, true)).is_err());
        assert_eq!(client_id(&connect("a-b", V5, true)).unwrap_err().code, 0x85);
        assert!(client_id(&connect("", V4, false)).is_err());
        assert!(client_id(&connect("", V5, false)).unwrap().1);
        assert!(client_id(&connect(&"a".repeat(129), V5, true)).is_err());
    }
}
