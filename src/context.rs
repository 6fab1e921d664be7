//! What every event says about its connection.

use serde::de::DeserializeOwned;

use crate::ConnectionStates;

/// The connection an event is about, read from the event's `ce-*` headers.
///
/// Every request type ([`ConnectEventRequest`](crate::ConnectEventRequest),
/// [`UserEventRequest`](crate::UserEventRequest), …) carries one in its
/// `context` field.
///
/// ```
/// use webpubsub::{testing, Event};
///
/// let (headers, body) = testing::connected("chat", "conn-1")
///     .user("alice")
///     .state("room", "lobby")
///     .into_parts();
/// let event = webpubsub::decode_event(&headers, body)?;
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
    /// The CloudEvents type (`ce-type`), e.g. `azure.webpubsub.sys.connect`.
    pub event_type: String,
    /// The CloudEvents id (`ce-id`). The service retries failed deliveries
    /// with the same id, so handlers can use it to drop duplicates.
    pub event_id: Option<String>,
    /// The CloudEvents time (`ce-time`), as sent (ISO 8601, UTC).
    pub time: Option<String>,
    /// The CloudEvents source (`ce-source`), e.g. `/hubs/chat/client/<id>`.
    pub source: Option<String>,
    /// The CloudEvents spec version (`ce-specversion`).
    pub spec_version: Option<String>,
    /// The Web PubSub extension version (`ce-awpsversion`).
    pub awps_version: Option<String>,
    /// The raw `WebHook-Request-Origin` header: the service's host name(s).
    pub origin: Option<String>,
    /// The subprotocol of the connection (`ce-subprotocol`), once chosen.
    pub subprotocol: Option<String>,
    /// The connection's states (`ce-connectionState`).
    pub states: ConnectionStates,
    /// MQTT ids, when the event comes from an MQTT client.
    pub mqtt: Option<MqttContext>,
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
        let event_type = match event_name.as_str() {
            "connect" | "connected" | "disconnected" => format!("azure.webpubsub.sys.{event_name}"),
            _ => format!("azure.webpubsub.user.{event_name}"),
        };
        Self {
            hub: hub.into(),
            connection_id: connection_id.into(),
            user_id: None,
            event_name,
            event_type,
            event_id: None,
            time: None,
            source: None,
            spec_version: None,
            awps_version: None,
            origin: None,
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

    /// Whether the event comes from an MQTT client.
    #[must_use]
    pub fn is_mqtt(&self) -> bool {
        self.mqtt.is_some()
    }
}
