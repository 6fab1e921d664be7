//! What every event says about its connection.

use http::HeaderValue;
use serde::de::DeserializeOwned;

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
    /// The rarely read CloudEvents attributes, kept as the header values
    /// they arrived in (no copy); read through the accessor methods. Boxed
    /// so that moving a request (into a handler's future) stays cheap.
    pub(crate) meta: Box<CloudEventMeta>,
}

/// CloudEvents attributes of an event, checked to be UTF-8 when decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CloudEventMeta {
    pub(crate) event_type: Option<HeaderValue>,
    pub(crate) id: Option<HeaderValue>,
    pub(crate) time: Option<HeaderValue>,
    pub(crate) source: Option<HeaderValue>,
    pub(crate) spec_version: Option<HeaderValue>,
    pub(crate) awps_version: Option<HeaderValue>,
    pub(crate) origin: Option<HeaderValue>,
}

fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .filter(|v| !v.is_empty())
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
            meta: Box::new(CloudEventMeta {
                event_type: HeaderValue::try_from(event_type).ok(),
                ..CloudEventMeta::default()
            }),
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
        text(self.meta.event_type.as_ref()).unwrap_or_default()
    }

    /// The CloudEvents id (`ce-id`). The service retries failed deliveries
    /// with the same id, so handlers can use it to drop duplicates.
    #[must_use]
    pub fn event_id(&self) -> Option<&str> {
        text(self.meta.id.as_ref())
    }

    /// The CloudEvents time (`ce-time`), as sent (ISO 8601, UTC).
    #[must_use]
    pub fn time(&self) -> Option<&str> {
        text(self.meta.time.as_ref())
    }

    /// The CloudEvents source (`ce-source`), e.g. `/hubs/chat/client/<id>`.
    #[must_use]
    pub fn source(&self) -> Option<&str> {
        text(self.meta.source.as_ref())
    }

    /// The CloudEvents spec version (`ce-specversion`).
    #[must_use]
    pub fn spec_version(&self) -> Option<&str> {
        text(self.meta.spec_version.as_ref())
    }

    /// The Web PubSub extension version (`ce-awpsversion`).
    #[must_use]
    pub fn awps_version(&self) -> Option<&str> {
        text(self.meta.awps_version.as_ref())
    }

    /// The `WebHook-Request-Origin` header: the service's host name(s),
    /// several lines joined with `, `.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        text(self.meta.origin.as_ref())
    }

    /// Whether the event comes from an MQTT client.
    #[must_use]
    pub fn is_mqtt(&self) -> bool {
        self.mqtt.is_some()
    }
}
