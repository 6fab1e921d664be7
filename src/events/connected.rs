//! The `connected` event: a client finished connecting.

use super::context::ConnectionContext;

/// A client has connected (`azure.webpubsub.sys.connected`). Non-blocking:
/// the service ignores the answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectedEventRequest {
    /// The connection.
    pub context: ConnectionContext,
}

impl ConnectedEventRequest {
    /// A request for `context`, for calling a handler directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext) -> Self {
        Self { context }
    }
}
