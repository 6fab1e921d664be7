//! The trait an application implements to handle events.

use std::sync::Arc;

use crate::events::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, DisconnectedEventRequest,
    EventErrorResponse, GroupJoinedEventRequest, GroupLeftEventRequest, UserEventRequest,
    UserEventResponse,
};

/// Handles the events of one or more hubs.
///
/// Every method has a default that does what the service expects when the
/// application does not care, so implement only what you need:
///
/// | method | default |
/// |---|---|
/// | [`connect`](Self::connect) | accept, change nothing (`204`) |
/// | [`connected`](Self::connected) | nothing |
/// | [`user_event`](Self::user_event) | no reply (`204`) |
/// | [`disconnected`](Self::disconnected) | nothing |
/// | [`group_joined`](Self::group_joined), [`group_left`](Self::group_left) | nothing |
///
/// A handler that panics answers `500` (logged at `error`); the server keeps
/// serving.
///
/// ```
/// use webpubsub::{async_trait, ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventHandler, UserEventRequest, UserEventResponse};
///
/// struct Echo;
///
/// #[async_trait]
/// impl EventHandler for Echo {
///     async fn connect(&self, req: ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse> {
///         match req.query_value("name") {
///             Some(name) => Ok(ConnectEventResponse::new().user_id(name)),
///             None => Err(EventErrorResponse::unauthorized("add ?name=<you> to the URL")),
///         }
///     }
///
///     async fn user_event(&self, req: UserEventRequest) -> Result<UserEventResponse, EventErrorResponse> {
///         Ok(req.data.into())
///     }
/// }
/// ```
#[async_trait::async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not handle Web PubSub events",
    note = "implement `webpubsub::EventHandler` for it (with `#[webpubsub::async_trait]`); see https://docs.rs/webpubsub/latest/webpubsub/trait.EventHandler.html"
)]
pub trait EventHandler: Send + Sync + 'static {
    /// A client asks to connect. Accept (optionally with a user id, groups,
    /// roles, subprotocol and states) or refuse. Default: accept, change nothing.
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let _ = req;
        Ok(ConnectEventResponse::new())
    }

    /// A client has connected. Default: does nothing.
    async fn connected(&self, req: ConnectedEventRequest) {
        let _ = req;
    }

    /// A client sent an event (`req.context.event_name` says which). Reply,
    /// answer nothing, or refuse. Default: no reply (`204`).
    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        let _ = req;
        Ok(UserEventResponse::none())
    }

    /// A connection ended. Default: does nothing.
    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let _ = req;
    }

    /// A connection joined a group (group presence events). Default: does nothing.
    async fn group_joined(&self, req: GroupJoinedEventRequest) {
        let _ = req;
    }

    /// A connection left a group (group presence events). Default: does nothing.
    async fn group_left(&self, req: GroupLeftEventRequest) {
        let _ = req;
    }
}

#[async_trait::async_trait]
impl<H: EventHandler + ?Sized> EventHandler for Arc<H> {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        (**self).connect(req).await
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        (**self).connected(req).await;
    }

    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        (**self).user_event(req).await
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        (**self).disconnected(req).await;
    }

    async fn group_joined(&self, req: GroupJoinedEventRequest) {
        (**self).group_joined(req).await;
    }

    async fn group_left(&self, req: GroupLeftEventRequest) {
        (**self).group_left(req).await;
    }
}
