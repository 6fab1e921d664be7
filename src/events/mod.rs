//! The events the service sends, and the answers a handler gives.

mod client_maps;
pub(crate) mod connect;
pub(crate) mod connect_body;
mod connected;
pub(crate) mod context;
mod disconnected;
mod error;
mod group;
mod user;

pub use connect::{ConnectEventRequest, ConnectEventResponse};
pub use connected::ConnectedEventRequest;
pub use context::{ConnectionContext, MqttContext};
pub use disconnected::DisconnectedEventRequest;
pub use error::{ErrorCode, EventErrorResponse};
pub use group::{GroupJoinedEventRequest, GroupLeftEventRequest};
// The bodies' parts are wire facts; they are named here too, beside the
// requests that carry them.
pub use crate::wire::{
    ClientCertificate, MqttConnectError, MqttConnectProperties, MqttConnectResponse,
    MqttDisconnectPacket, MqttDisconnectedProperties, MqttUserProperty,
};
pub use user::{DataType, EventData, InvalidData, UserEventRequest, UserEventResponse};

/// One decoded upstream event, as [`decode_event`](crate::upstream::decode_event) returns it.
///
/// ```
/// use webpubsub::testing;
/// use webpubsub::events::Event;
///
/// let (headers, body) = testing::user_event("chat", "conn-1", "message").text("hi").into_parts();
/// match webpubsub::upstream::decode_event(&headers, body)? {
///     Event::UserEvent(req) => assert_eq!(req.data.as_text(), Some("hi")),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), webpubsub::upstream::Rejection>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// `azure.webpubsub.sys.connect`: a client asks to connect (blocking).
    Connect(ConnectEventRequest),
    /// `azure.webpubsub.sys.connected`: a client has connected.
    Connected(ConnectedEventRequest),
    /// `azure.webpubsub.user.<name>`: a client sent an event (blocking).
    UserEvent(UserEventRequest),
    /// `azure.webpubsub.sys.disconnected`: a connection ended.
    Disconnected(DisconnectedEventRequest),
    /// `azure.webpubsub.gp.joined`: a connection joined a group.
    GroupJoined(GroupJoinedEventRequest),
    /// `azure.webpubsub.gp.left`: a connection left a group.
    GroupLeft(GroupLeftEventRequest),
}

impl Event {
    /// The connection the event is about.
    #[must_use]
    pub fn context(&self) -> &ConnectionContext {
        match self {
            Self::Connect(r) => &r.context,
            Self::Connected(r) => &r.context,
            Self::UserEvent(r) => &r.context,
            Self::Disconnected(r) => &r.context,
            Self::GroupJoined(r) => &r.context,
            Self::GroupLeft(r) => &r.context,
        }
    }

    pub(crate) fn context_mut(&mut self) -> &mut ConnectionContext {
        match self {
            Self::Connect(r) => &mut r.context,
            Self::Connected(r) => &mut r.context,
            Self::UserEvent(r) => &mut r.context,
            Self::Disconnected(r) => &mut r.context,
            Self::GroupJoined(r) => &mut r.context,
            Self::GroupLeft(r) => &mut r.context,
        }
    }
}

pub(crate) use client_maps::ClientMaps;
