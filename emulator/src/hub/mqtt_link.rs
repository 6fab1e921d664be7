//! What an MQTT connection adds to a hub connection ([`Link`]): its ids,
//! version, and how it ended, which the upstream events of the connection
//! carry; the slot through which a detached session is handed over.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::any::Any;
use std::sync::Mutex;

use http::{HeaderMap, HeaderValue};
use tokio::sync::oneshot;

use super::lock;
use webpubsub::wire::headers::{CE_PHYSICAL_CONNECTION_ID, CE_SESSION_ID, CE_SOURCE};
use webpubsub::wire::{
    ce_source, DisconnectedBody, MqttDisconnectPacket, MqttDisconnectedProperties, MqttUserProperty,
};

/// MQTT 5 user properties, `(name, value)` in order.
pub(crate) type UserProperties = Vec<(String, String)>;

/// Asks the task keeping a detached session for it: the task answers on
/// the sender it is given. The session is opaque here (the MQTT endpoint,
/// above the hub, knows its shape and is the only one to open it).
pub(crate) type ResumeRequest = oneshot::Sender<oneshot::Sender<Box<dyn Any + Send>>>;

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
    pub(crate) resume: Mutex<Option<ResumeRequest>>,
}

/// How an MQTT connection ended, as `disconnected` reports it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndReport {
    /// Whether the client ended it (DISCONNECT), not the service or the network.
    pub(crate) initiated_by_client: bool,
    /// The DISCONNECT packet exchanged: its code and (sent by the client)
    /// its user properties; `None` when none was.
    pub(crate) packet: Option<(u8, Option<UserProperties>)>,
}

impl Link {
    /// A new session's link, for its first network connection.
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
    /// of the events of connection `connection_id` of `hub` after `connect`.
    pub(crate) fn event_headers(&self, hub: &str, connection_id: &str) -> HeaderMap {
        let mut headers = ids_headers(hub, connection_id, &lock(&self.physical_id));
        if let Ok(value) = HeaderValue::from_str(&self.session_id) {
            headers.insert(CE_SESSION_ID, value);
        }
        headers
    }

    /// The `disconnected` body:
    /// `{"reason":…,"mqtt":{"initiatedByClient":…,"disconnectPacket":…}}`.
    pub(crate) fn disconnected_body(&self, reason: Option<&str>) -> DisconnectedBody {
        let report = lock(&self.end).clone().unwrap_or_default();
        let packet = report.packet.map(|(code, properties)| {
            MqttDisconnectPacket::new(code, properties.map(|list| user_properties(&list)))
        });
        let mut body = DisconnectedBody::new(reason.map(str::to_owned));
        body.mqtt = Some(MqttDisconnectedProperties::new(
            report.initiated_by_client,
            packet,
        ));
        body
    }
}

/// `ce-physicalConnectionId` and `ce-source`
/// (`/hubs/{hub}/client/{clientId}/{physicalConnectionId}`).
pub(crate) fn ids_headers(hub: &str, client_id: &str, physical_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(physical_id) {
        headers.insert(CE_PHYSICAL_CONNECTION_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&ce_source(hub, client_id, Some(physical_id))) {
        headers.insert(CE_SOURCE, value);
    }
    headers
}

/// User properties as the upstream sees them: `[{"name":…,"value":…}]`.
pub(crate) fn user_properties(list: &[(String, String)]) -> Vec<MqttUserProperty> {
    list.iter()
        .map(|(name, value)| MqttUserProperty::new(name, value))
        .collect()
}

/// User properties as the upstream wrote them, as `(name, value)` pairs.
pub(crate) fn property_pairs(list: Vec<MqttUserProperty>) -> UserProperties {
    list.into_iter().map(|p| (p.name, p.value)).collect()
}
