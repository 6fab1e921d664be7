//! MQTT 3.1.1 and 5.0 clients over WebSocket (`/clients/mqtt/hubs/{hub}`,
//! subprotocol `mqtt`), one concept a file:
//!
//! * `codec.rs`: the packets, read with a size bound and written per version;
//! * `connect.rs`: the CONNECT packet: client id rules, the upstream
//!   `connect` event with its `mqtt` object, the CONNACK it decides;
//! * `session.rs`: one connected client: packets in (PUBLISH, SUBSCRIBE,
//!   UNSUBSCRIBE, PINGREQ, DISCONNECT, acks), queued messages out as
//!   PUBLISH, keep-alive, take-over, the end; a session kept after its
//!   network connection (detached until it expires or is resumed), and
//!   the `disconnected` event when it ends;
//! * this file: what an MQTT connection adds to a hub connection
//!   ([`Link`]): its ids, version, and how it ended, which the upstream
//!   events of the connection carry.
//!
//! The token is checked before the upgrade by `mqtt/handshake.rs`
//! (`mqtt_handshake`), as for other clients.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod codec;
mod connect;
mod handshake;
mod session;

use std::sync::Mutex;

use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::hub::{lock, Connection};
use webpubsub::wire::headers::{CE_PHYSICAL_CONNECTION_ID, CE_SESSION_ID, CE_SOURCE};

pub(crate) use handshake::mqtt_handshake;
pub(crate) use session::serve;

/// MQTT 5 user properties, `(name, value)` in order.
pub(crate) type UserProperties = Vec<(String, String)>;

/// The WebSocket subprotocol of MQTT clients.
pub(crate) const SUBPROTOCOL: &str = "mqtt";

/// The topic of messages sent by the REST API to all, a user or a connection.
pub(crate) const SERVER_MESSAGES: &str = "$webpubsub/server/messages";

/// The topic prefix of user events.
pub(crate) const EVENTS_PREFIX: &str = "$webpubsub/server/events/";

/// The largest MQTT packet accepted (the emulator's frame limit, 1 MiB);
/// announced to 5.0 clients as Maximum Packet Size.
pub(crate) const MAX_PACKET: usize = 1024 * 1024;

/// A client whose token passed: what the CONNECT packet completes.
#[derive(Debug)]
pub(crate) struct Client {
    /// The hub, lower-cased.
    pub(crate) hub: String,
    pub(crate) user_id: Option<String>,
    pub(crate) roles: Vec<String>,
    /// Initial subscriptions (the token's groups).
    pub(crate) groups: Vec<String>,
    /// The `connect` event's body without its `mqtt` object (claims,
    /// query, headers, subprotocols).
    pub(crate) connect_body: Vec<u8>,
}

/// What an MQTT connection adds to a hub connection.
#[derive(Debug)]
pub(crate) struct Link {
    /// 4 (3.1.1) or 5 (5.0).
    pub(crate) version: u8,
    /// `ce-physicalConnectionId`: one per WebSocket (the latest).
    physical_id: Mutex<String>,
    /// `ce-sessionId`: one per session.
    pub(crate) session_id: String,
    /// How the last network connection ended, once it has.
    end: Mutex<Option<EndReport>>,
    /// Set while the session is detached (no network connection): asks the
    /// task keeping it for the session, to resume or discard it.
    pub(crate) resume: Mutex<Option<session::ResumeRequest>>,
}

/// How an MQTT connection ended, as `disconnected` reports it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndReport {
    pub(crate) initiated_by_client: bool,
    /// The DISCONNECT packet exchanged: its code and (sent by the client)
    /// its user properties; `None` when none was.
    pub(crate) packet: Option<(u8, Option<UserProperties>)>,
}

impl Link {
    pub(crate) fn new(version: u8, physical_id: String) -> Self {
        Self {
            version,
            physical_id: Mutex::new(physical_id),
            session_id: uuid::Uuid::new_v4().simple().to_string(),
            end: Mutex::new(None),
            resume: Mutex::new(None),
        }
    }

    /// A new network connection resumes the session.
    pub(crate) fn resumed(&self, physical_id: &str) {
        physical_id.clone_into(&mut lock(&self.physical_id));
        *lock(&self.end) = None;
    }

    /// Notes how the connection ended (the first report wins).
    pub(crate) fn ended(&self, report: EndReport) {
        let mut end = lock(&self.end);
        if end.is_none() {
            *end = Some(report);
        }
    }

    /// `ce-physicalConnectionId`, `ce-sessionId` and the MQTT `ce-source`
    /// of the connection's events after `connect`.
    pub(crate) fn event_headers(&self, conn: &Connection) -> HeaderMap {
        let mut headers = ids_headers(&conn.hub, &conn.id, &lock(&self.physical_id));
        if let Ok(value) = HeaderValue::from_str(&self.session_id) {
            headers.insert(CE_SESSION_ID, value);
        }
        headers
    }

    /// The `disconnected` body:
    /// `{"reason":…,"mqtt":{"initiatedByClient":…,"disconnectPacket":…}}`.
    pub(crate) fn disconnected_body(&self, reason: Option<&str>) -> String {
        let report = lock(&self.end).clone().unwrap_or_default();
        let packet = match report.packet {
            None => Value::Null,
            Some((code, properties)) => json!({
                "code": code,
                "userProperties": properties.map(|list| user_properties(&list)),
            }),
        };
        json!({
            "reason": reason,
            "mqtt": {
                "initiatedByClient": report.initiated_by_client,
                "disconnectPacket": packet,
            },
        })
        .to_string()
    }
}

/// `ce-physicalConnectionId` and `ce-source`
/// (`/hubs/{hub}/client/{clientId}/{physicalConnectionId}`).
fn ids_headers(hub: &str, client_id: &str, physical_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(physical_id) {
        headers.insert(CE_PHYSICAL_CONNECTION_ID, value);
    }
    if let Ok(value) =
        HeaderValue::from_str(&format!("/hubs/{hub}/client/{client_id}/{physical_id}"))
    {
        headers.insert(CE_SOURCE, value);
    }
    headers
}

/// User properties as the upstream sees them: `[{"name":…,"value":…}]`.
fn user_properties(list: &[(String, String)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect(),
    )
}
