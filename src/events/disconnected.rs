//! The `disconnected` event: a connection ended.

use super::context::ConnectionContext;
use crate::wire::{DisconnectedBody, MqttDisconnectedProperties};

/// A connection that was accepted has ended (`azure.webpubsub.sys.disconnected`).
/// Non-blocking: the service ignores the answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DisconnectedEventRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// Why it ended; `None` or empty for a normal close.
    pub reason: Option<String>,
    /// MQTT details, for MQTT clients.
    pub mqtt: Option<MqttDisconnectedProperties>,
}

impl DisconnectedEventRequest {
    pub(crate) fn from_body(context: ConnectionContext, body: DisconnectedBody) -> Self {
        Self {
            context,
            reason: body.reason,
            mqtt: body.mqtt,
        }
    }

    /// A request for `context` with `reason`, for calling a handler directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext, reason: Option<String>) -> Self {
        Self {
            context,
            reason,
            mqtt: None,
        }
    }
}
