//! What every event says about its connection.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use crate::wire::headers::{
    CE_AWPS_VERSION, CE_ID, CE_SOURCE, CE_SPEC_VERSION, CE_TIME, CE_TYPE, WEBHOOK_REQUEST_ORIGIN,
};
use crate::wire::EventType;

use crate::state::ConnectionStates;

/// The connection an event is about, read from the event's `ce-*` headers.
///
/// Every request type ([`ConnectEventRequest`](crate::ConnectEventRequest),
/// [`UserEventRequest`](crate::UserEventRequest), …) carries one in its
/// `context` field.
///
/// ```
/// use webpubsub::testing;
/// use webpubsub::events::Event;
///
/// let (headers, body) = testing::connected("chat", "conn-1")
///     .user("alice")
///     .state("room", "lobby")
///     .into_parts();
/// let event = webpubsub::upstream::decode_event(&headers, body)?;
/// let ctx = event.context();
/// assert_eq!((ctx.hub.as_str(), ctx.connection_id.as_str()), ("chat", "conn-1"));
/// assert_eq!(ctx.user_id.as_deref(), Some("alice"));
/// assert_eq!(ctx.state::<String>("room")?.as_deref(), Some("lobby"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectionContext {
    /// The hub (`ce-hub`), as the service spelled it.
    pub hub: String,
    /// The connection id (`ce-connectionId`); for MQTT, the MQTT client id.
    pub connection_id: String,
    /// The user id (`ce-userId`), when the connection has one.
    pub user_id: Option<String>,
    /// The event name (`ce-eventName`), e.g. `connect` or `message`.
    pub event_name: String,
    /// The subprotocol of the connection (`ce-subprotocol`), once chosen.
    pub subprotocol: Option<String>,
    /// The connection's states (`ce-connectionState`).
    pub states: ConnectionStates,
    /// MQTT ids, when the event comes from an MQTT client.
    pub mqtt: Option<MqttContext>,
    /// The rarely read CloudEvents attributes, in the request's own header
    /// map (moved here, not copied); read through the accessor methods.
    pub(crate) meta: CloudEventHeaders,
}

/// The headers an event arrived with, kept for its CloudEvents attributes.
///
/// Decoding checked that the attributes are UTF-8 and joined several
/// `WebHook-Request-Origin` lines into one. Only the attributes take part
/// in `Debug` and `==`: the map also holds `ce-signature` and whatever
/// else the request carried, which logs should not show.
#[derive(Clone, Default)]
pub(crate) struct CloudEventHeaders(pub(crate) HeaderMap);

/// The attributes [`CloudEventHeaders`] shows, by accessor name.
const ATTRIBUTES: [(&str, HeaderName); 7] = [
    ("event_type", CE_TYPE),
    ("event_id", CE_ID),
    ("time", CE_TIME),
    ("source", CE_SOURCE),
    ("spec_version", CE_SPEC_VERSION),
    ("awps_version", CE_AWPS_VERSION),
    ("origin", WEBHOOK_REQUEST_ORIGIN),
];

impl CloudEventHeaders {
    /// The attribute `name`; `None` when absent or empty.
    fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for CloudEventHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                ATTRIBUTES
                    .iter()
                    .filter_map(|(label, name)| Some((label, self.get(name)?))),
            )
            .finish()
    }
}

impl PartialEq for CloudEventHeaders {
    fn eq(&self, other: &Self) -> bool {
        ATTRIBUTES
            .iter()
            .all(|(_, name)| self.get(name) == other.get(name))
    }
}

/// The MQTT-specific ids of an event from an MQTT client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MqttContext {
    /// The physical network connection (`ce-physicalConnectionId`).
    pub physical_connection_id: String,
    /// The MQTT session (`ce-sessionId`); absent on `connect`.
    pub session_id: Option<String>,
}

impl ConnectionContext {
    /// A context for `connection_id` in `hub`, with every optional field empty.
    ///
    /// Meant for tests that call handler methods directly.
    #[must_use]
    pub fn new(
        hub: impl Into<String>,
        connection_id: impl Into<String>,
        event_name: impl Into<String>,
    ) -> Self {
        let event_name = event_name.into();
        let event_type = EventType::from_event_name(&event_name).ce_type();
        Self {
            hub: hub.into(),
            connection_id: connection_id.into(),
            user_id: None,
            event_name,
            meta: CloudEventHeaders(
                HeaderValue::try_from(event_type.as_ref())
                    .map(|value| HeaderMap::from_iter([(CE_TYPE, value)]))
                    .unwrap_or_default(),
            ),
            subprotocol: None,
            states: ConnectionStates::default(),
            mqtt: None,
        }
    }

    /// The state `key` deserialised as `T`; `Ok(None)` when it is not set.
    ///
    /// # Errors
    ///
    /// The deserialisation error when the stored value does not fit `T`.
    pub fn state<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.states.get(key)
    }

    /// The CloudEvents type (`ce-type`), e.g. `azure.webpubsub.sys.connect`.
    #[must_use]
    pub fn event_type(&self) -> &str {
        self.meta.get(&CE_TYPE).unwrap_or_default()
    }

    /// The CloudEvents id (`ce-id`). The service retries failed deliveries
    /// with the same id, so handlers can use it to drop duplicates.
    #[must_use]
    pub fn event_id(&self) -> Option<&str> {
        self.meta.get(&CE_ID)
    }

    /// The CloudEvents time (`ce-time`), as sent (ISO 8601, UTC).
    #[must_use]
    pub fn time(&self) -> Option<&str> {
        self.meta.get(&CE_TIME)
    }

    /// The CloudEvents source (`ce-source`), e.g. `/hubs/chat/client/<id>`.
    #[must_use]
    pub fn source(&self) -> Option<&str> {
        self.meta.get(&CE_SOURCE)
    }

    /// The CloudEvents spec version (`ce-specversion`).
    #[must_use]
    pub fn spec_version(&self) -> Option<&str> {
        self.meta.get(&CE_SPEC_VERSION)
    }

    /// The Web PubSub extension version (`ce-awpsversion`).
    #[must_use]
    pub fn awps_version(&self) -> Option<&str> {
        self.meta.get(&CE_AWPS_VERSION)
    }

    /// The `WebHook-Request-Origin` header: the service's host name(s),
    /// several lines joined with `, `.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.meta.get(&WEBHOOK_REQUEST_ORIGIN)
    }

    /// Whether the event comes from an MQTT client.
    #[must_use]
    pub fn is_mqtt(&self) -> bool {
        self.mqtt.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_for_tests_names_the_event_type_the_service_sends() {
        // Spec §5: system events are `sys.*`, group presence `gp.*`, and
        // every other name is a user event.
        for (name, ce_type) in [
            ("connect", "azure.webpubsub.sys.connect"),
            ("connected", "azure.webpubsub.sys.connected"),
            ("disconnected", "azure.webpubsub.sys.disconnected"),
            ("joined", "azure.webpubsub.gp.joined"),
            ("left", "azure.webpubsub.gp.left"),
            ("message", "azure.webpubsub.user.message"),
        ] {
            let ctx = ConnectionContext::new("chat", "c1", name);
            assert_eq!(ctx.event_type(), ce_type, "{name}");
            assert_eq!(ctx.event_name, name);
        }
    }
}
