//! The one writer of binary-mode CloudEvent requests, as the service sends
//! them: used by [`testing`](crate::testing) and the emulator's upstream calls.

use http::{HeaderMap, HeaderValue};

use super::headers::{
    CE_AWPS_VERSION, CE_CONNECTION_ID, CE_CONNECTION_STATE, CE_EVENT_NAME, CE_HUB, CE_ID,
    CE_SIGNATURE, CE_SOURCE, CE_SPEC_VERSION, CE_SUBPROTOCOL, CE_TIME, CE_TYPE, CE_USER_ID,
    WEBHOOK_REQUEST_ORIGIN,
};

/// The headers of one event, as the service writes them. `ce_type` and
/// `event_name` are text (not an [`EventType`](super::EventType)) so tests
/// can send what the service never would; take both from an `EventType`
/// otherwise.
///
/// ```
/// use webpubsub::wire::{headers, CloudEvent, EventType};
///
/// let kind = EventType::User("chat");
/// let ce_type = kind.ce_type();
/// let event = CloudEvent {
///     ce_type: &ce_type,
///     event_name: kind.event_name(),
///     hub: "chat",
///     connection_id: "conn-1",
///     id: "1",
///     time: "2026-11-30T12:00:00Z",
///     user_id: Some("alice"),
///     subprotocol: None,
///     state: None,
///     signature: None,
///     origin: Some("demo.webpubsub.azure.com"),
///     content_type: Some("text/plain"),
/// };
/// let map = event.headers();
/// assert_eq!(map[headers::CE_TYPE], "azure.webpubsub.user.chat");
/// assert_eq!(map[headers::CE_SOURCE], "/hubs/chat/client/conn-1");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CloudEvent<'a> {
    /// `ce-type`.
    pub ce_type: &'a str,
    /// `ce-eventName`.
    pub event_name: &'a str,
    /// `ce-hub`.
    pub hub: &'a str,
    /// `ce-connectionId`.
    pub connection_id: &'a str,
    /// `ce-id`: unique per event.
    pub id: &'a str,
    /// `ce-time`: RFC 3339.
    pub time: &'a str,
    /// `ce-userId`, for a connection with a user.
    pub user_id: Option<&'a str>,
    /// `ce-subprotocol`, when the client chose one.
    pub subprotocol: Option<&'a str>,
    /// `ce-connectionState`, as sent (base64 of a JSON object).
    pub state: Option<&'a str>,
    /// `ce-signature`: the `sha256=…` entries joined with `,`.
    pub signature: Option<&'a str>,
    /// `WebHook-Request-Origin`: the service's host.
    pub origin: Option<&'a str>,
    /// `Content-Type` of the body.
    pub content_type: Option<&'a str>,
}

impl CloudEvent<'_> {
    /// The request headers (the body is the caller's). A value that is not a valid header value (only
    /// possible for text a test chose) is left out.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(16);
        let mut put = |name, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name, value);
            }
        };
        put(CE_SPEC_VERSION, "1.0");
        put(CE_AWPS_VERSION, "1.0");
        put(CE_TYPE, self.ce_type);
        put(CE_SOURCE, &ce_source(self.hub, self.connection_id, None));
        put(CE_ID, self.id);
        put(CE_TIME, self.time);
        put(CE_HUB, self.hub);
        put(CE_CONNECTION_ID, self.connection_id);
        put(CE_EVENT_NAME, self.event_name);
        let optional = [
            (CE_USER_ID, self.user_id),
            (CE_SUBPROTOCOL, self.subprotocol),
            (CE_CONNECTION_STATE, self.state),
            (CE_SIGNATURE, self.signature),
            (WEBHOOK_REQUEST_ORIGIN, self.origin),
            (http::header::CONTENT_TYPE, self.content_type),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                put(name, value);
            }
        }
        headers
    }
}

/// `ce-source`: `/hubs/{hub}/client/{connectionId}`, and for an MQTT client
/// `/hubs/{hub}/client/{clientId}/{physicalConnectionId}`.
///
/// ```
/// use webpubsub::wire::ce_source;
///
/// assert_eq!(ce_source("chat", "c1", None), "/hubs/chat/client/c1");
/// assert_eq!(ce_source("iot", "device-7", Some("p-77")), "/hubs/iot/client/device-7/p-77");
/// ```
#[must_use]
pub fn ce_source(hub: &str, connection_id: &str, physical_connection_id: Option<&str>) -> String {
    match physical_connection_id {
        None => format!("/hubs/{hub}/client/{connection_id}"),
        Some(physical) => format!("/hubs/{hub}/client/{connection_id}/{physical}"),
    }
}
