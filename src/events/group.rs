//! Group presence events: a connection joined or left a group.

use super::context::ConnectionContext;

/// A connection joined a group (`azure.webpubsub.gp.joined`). Non-blocking.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupJoinedEventRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// The group it joined.
    pub group: String,
}

/// A connection left a group (`azure.webpubsub.gp.left`). Non-blocking.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupLeftEventRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// The group it left.
    pub group: String,
}

impl GroupJoinedEventRequest {
    /// A request for `context` and `group`, for calling a handler directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext, group: impl Into<String>) -> Self {
        Self {
            context,
            group: group.into(),
        }
    }
}

impl GroupLeftEventRequest {
    /// A request for `context` and `group`, for calling a handler directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext, group: impl Into<String>) -> Self {
        Self {
            context,
            group: group.into(),
        }
    }
}
