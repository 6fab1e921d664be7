//! The CONNECT packet: the client id rules, the upstream `connect` event
//! with its `mqtt` object, the resume or take-over of the client id's
//! session, the registration, and the CONNACK all this decides.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::StatusCode;

use super::session::{ask, take_session, Kept};
use crate::hub::{
    ids_headers, lock, property_pairs, user_properties, Connection, EndReport, Link, NewConnection,
    Outbound, Protocol, Queue,
};
use crate::lifecycle::connect::{apply_answer, connect_event};
use crate::lifecycle::finish;
use crate::lifecycle::handshake::Identity;
use crate::protocol::mqtt::{
    v4, v5, valid_refusal, Connect, Outgoing, Properties, MAX_PACKET, SUBPROTOCOL, V4, V5,
};
use crate::service::Shared;
use crate::upstream::UpstreamError;
use webpubsub::wire::{
    ConnectBody, MqttConnectProperties, MqttConnectRefusal, MqttConnectResponse,
};

/// A client whose token passed: what the CONNECT packet completes.
#[derive(Debug)]
pub(crate) struct Client {
    /// The hub, lower-cased.
    pub(crate) hub: String,
    /// The token's user, roles and groups (its initial subscriptions).
    pub(crate) identity: Identity,
    /// The `connect` event's body without its `mqtt` object (claims,
    /// query, headers, subprotocols).
    pub(crate) connect_body: ConnectBody,
}

/// "Unspecified error" per version: 0x80, or 3 (server unavailable) for
/// 3.1.1, which has no such code (the emulator's choice).
fn unspecified(version: u8) -> u8 {
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
fn client_id(connect: &Connect) -> Result<(String, bool), Refused> {
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
struct Accepted {
    identity: Identity,
    state: Option<String>,
    /// For the CONNACK of 5.0 clients.
    user_properties: Vec<(String, String)>,
}

/// Step: raises `connect` for the CONNECT packet. No handler: the token's
/// identity stays. A refusal becomes the CONNACK code: the handler's
/// `mqtt.code` when valid for the version (else "unspecified error"),
/// else 5 / 0x87 for 401 and 403 and 3 / 0x88 otherwise (the emulator's
/// choice).
async fn call_connect(
    shared: &Shared,
    client: &Client,
    connect: &Connect,
    client_id: &str,
    physical_id: &str,
) -> Result<Accepted, Refused> {
    let version = connect.version;
    let body = connect_body(client, connect);
    let mut call = connect_event(
        &client.hub,
        client_id,
        client.identity.user_id.as_deref(),
        &body,
    );
    call.subprotocol = Some(SUBPROTOCOL);
    call.extra = ids_headers(&client.hub, client_id, physical_id);
    let mut accepted = Accepted {
        identity: client.identity.clone(),
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
    let reply = apply_answer(answer, &mut accepted.identity, &mut accepted.state).map_err(|_| {
        tracing::info!(target: "webpubsub_emulator::mqtt", client = client_id, "the connect handler answered invalid JSON");
        Refused::new(
            unspecified(version),
            "The connect handler answered invalid JSON.",
        )
    })?;
    if let Some(MqttConnectResponse {
        user_properties, ..
    }) = reply.and_then(|reply| reply.mqtt)
    {
        accepted.user_properties = property_pairs(user_properties);
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
    if let Ok(MqttConnectRefusal { mqtt, .. }) = serde_json::from_str::<MqttConnectRefusal>(body) {
        let code = if valid_refusal(version, mqtt.code) {
            mqtt.code
        } else {
            unspecified(version)
        };
        return Refused {
            code,
            reason: mqtt.reason,
            user_properties: property_pairs(mqtt.user_properties),
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
fn connect_body(client: &Client, connect: &Connect) -> ConnectBody {
    let mut body = client.connect_body.clone();
    let mut mqtt = MqttConnectProperties::new(connect.version);
    mqtt.clean_start = Some(connect.clean_start);
    mqtt.username.clone_from(&connect.username);
    mqtt.password = connect.password.as_ref().map(|p| STANDARD.encode(p));
    mqtt.user_properties = user_properties(&connect.properties.user_properties);
    body.mqtt = Some(mqtt);
    body
}

/// A refusing CONNACK: its code, and for 5.0 its reason and user properties.
pub(super) fn connack_refused(
    code: u8,
    reason: Option<String>,
    user: Vec<(String, String)>,
) -> Outgoing {
    Outgoing::ConnAck {
        session_present: false,
        code,
        properties: Properties {
            reason_string: reason,
            user_properties: user,
            ..Properties::default()
        },
    }
}

/// Step: client id, `connect` event, take-over, registration. The CONNACK
/// to send on success.
pub(super) async fn accept(
    shared: &Arc<Shared>,
    client: &Client,
    first: &Connect,
    physical_id: &str,
) -> Result<
    (
        Arc<Connection>,
        Queue,
        Outgoing,
        Option<(Kept, Vec<Outbound>)>,
    ),
    Refused,
> {
    let version = first.version;
    let (client_id, assigned) = client_id(first)?;
    if version == V5 && first.properties.authentication_method.is_some() {
        return Err(Refused::new(
            v5::BAD_AUTHENTICATION_METHOD,
            "Enhanced authentication is not supported.",
        ));
    }
    // A client id in use names a session that belongs to its user: one
    // without a user id belongs to nobody, so it is neither resumed nor
    // taken over (checked before the upstream hears of this CONNECT).
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if old.mqtt.is_some() && old.user_id.is_none() {
            return Err(in_use(version, &old, None));
        }
    }
    let accepted = call_connect(shared, client, first, &client_id, physical_id).await?;
    // …and one with a user id only to a CONNECT of that same user.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if old.mqtt.is_some() && old.user_id.as_deref() != accepted.identity.user_id.as_deref() {
            return Err(in_use(version, &old, accepted.identity.user_id.as_deref()));
        }
    }
    let quota = |why: String| {
        let code = if version == V5 {
            v5::QUOTA_EXCEEDED
        } else {
            v4::SERVER_UNAVAILABLE
        };
        Refused::new(code, why)
    };
    // A client id in use: its session is resumed (Clean Start = 0, same
    // version, session kept), else it ends and a new one starts.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if let Some(old_link) = old.mqtt.clone() {
            if !first.clean_start && old_link.version == version {
                if let Some(parked) = take_session(&old, &old_link).await {
                    old_link.resumed(physical_id);
                    shared.hubs.attach(&old);
                    // A take-over request that found the session detached
                    // already must not end the resumed one.
                    let _ = futures_util::FutureExt::now_or_never(old.takeover.notified());
                    if let Some(state) = accepted.state {
                        *lock(&old.state) = Some(state);
                    }
                    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %old.hub, client = %old.id,
                        version, "MQTT session resumed");
                    let connack = Outgoing::ConnAck {
                        session_present: true,
                        code: 0,
                        properties: connack_properties(
                            version,
                            false,
                            &client_id,
                            accepted.user_properties,
                        ),
                    };
                    return Ok((old, parked.rx, connack, Some((parked.kept, parked.backlog))));
                }
            } else {
                // A detached session the new connection does not resume.
                let request = lock(&old_link.resume).take();
                if let Some(request) = request {
                    let reason = ask(request).await.and_then(|parked| parked.reason);
                    finish(shared, &old, reason);
                }
            }
        }
    }
    if let Some(refusal) = shared.hubs.too_many_groups(&accepted.identity.groups) {
        return Err(quota(refusal.to_string()));
    }
    // A client id in use: the older connection goes, as MQTT brokers do.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        let Some(old_link) = &old.mqtt else {
            return Err(Refused::client_id(
                version,
                "The client id is the id of another (non-MQTT) connection.",
            ));
        };
        let code = (old_link.version == V5).then_some(v5::SESSION_TAKEN_OVER);
        old_link.ended(EndReport {
            initiated_by_client: false,
            packet: code.map(|c| (c, None)),
        });
        finish(
            shared,
            &old,
            Some("Session taken over by a new connection with the same client id.".to_owned()),
        );
        old.takeover.notify_one();
    }
    let link = Arc::new(Link::new(version, physical_id.to_owned()));
    let (conn, rx) = Connection::new(NewConnection {
        id: Arc::from(client_id.as_str()),
        hub: Arc::from(client.hub.as_str()),
        user_id: accepted.identity.user_id.map(Arc::from),
        protocol: Protocol::Mqtt,
        subprotocol: Some(SUBPROTOCOL.to_owned()),
        roles: accepted.identity.roles,
        reconnection_token: String::new(),
        state: accepted.state,
        queue: shared.queue,
        queue_bytes: shared.queue_bytes,
        detached_bytes: shared.detached_bytes,
        ack_ids: 1,
        mqtt: Some(link),
    });
    if let Err(refusal) = shared.hubs.add(&conn, &accepted.identity.groups) {
        return Err(quota(refusal.to_string()));
    }
    shared.changed();
    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %conn.hub, client = %conn.id,
        user = conn.user_id.as_deref(), version, "MQTT client connected");
    let properties = connack_properties(version, assigned, &client_id, accepted.user_properties);
    let connack = Outgoing::ConnAck {
        session_present: false,
        code: 0,
        properties,
    };
    Ok((conn, rx, connack, None))
}

/// The refusal of a CONNECT whose client id names a session it may not
/// have: another user's, or one without a user id. The session is left
/// alone; the reason does not say whose it is.
fn in_use(version: u8, old: &Connection, user: Option<&str>) -> Refused {
    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %old.hub, client = %old.id,
        session_user = old.user_id.as_deref(), user, "CONNECT refused: the client id is another user's session");
    Refused::client_id(
        version,
        "The client id is in use by a session of another user.",
    )
}

/// The CONNACK properties (5.0).
fn connack_properties(
    version: u8,
    assigned: bool,
    client_id: &str,
    user_properties: Vec<(String, String)>,
) -> Properties {
    if version == V5 {
        Properties {
            assigned_client_id: assigned.then(|| client_id.to_owned()),
            user_properties,
            retain_available: Some(0),
            wildcard_available: Some(0),
            shared_available: Some(0),
            subscription_ids_available: Some(0),
            maximum_packet_size: u32::try_from(MAX_PACKET).ok(),
            ..Properties::default()
        }
    } else {
        Properties::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
