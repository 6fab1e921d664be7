//! The upstream wire format, written once: event types (`ce-type`), header
//! names, `ce-source`, the JSON bodies of events and answers, and the one
//! writer of binary-mode CloudEvent requests and of the preflight.
//!
//! The decoder reads with it, and everything that sends an event writes with
//! it: [`testing`](crate::testing) and the `webpubsub-emulator` crate's
//! upstream calls. A new event type, header or body field is added here and
//! nowhere else. Applications rarely need it: it is for tools that speak the
//! protocol themselves (a proxy, a recorder, a test double of the service).
//! It is the bottom of the crate: it builds on nothing else of it.

mod cloud_event;
mod connect;
mod event_bodies;
mod event_type;
pub mod headers;
mod mqtt;
mod preflight;
pub(crate) mod serde_util;

pub use cloud_event::{ce_source, CloudEvent};
pub use connect::{ClientCertificate, ConnectBody, CONNECT_ANSWER_FIELDS};
pub use event_bodies::{ConnectedBody, DisconnectedBody, GroupBody};
pub use event_type::EventType;
pub use mqtt::{
    MqttConnectError, MqttConnectProperties, MqttConnectRefusal, MqttConnectResponse,
    MqttDisconnectPacket, MqttDisconnectedProperties, MqttUserProperty,
};
pub use preflight::{preflight_headers, PREFLIGHT_METHOD};
