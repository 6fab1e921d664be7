//! Calls with options, configured then awaited: sending and closing,
//! to the hub, a group, a user or a connection; and the future they give.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use http::{Method, StatusCode};

use super::paths::Part;
use super::transport::Call;
use super::{Filter, Message, ServiceError, WebPubSubServiceClient};

/// The future of a configured call; `Send` and `'static`, so it can be spawned.
pub type ServiceFuture<T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'static>>;

/// The most messages may wait for delivery: 300 s.
const MAX_TTL: Duration = Duration::from_secs(300);

/// Target of a call: every connection of the hub.
#[derive(Debug, Clone, Copy)]
pub struct ToAll;

/// Target of a call: the connections in a group.
#[derive(Debug, Clone)]
pub struct ToGroup(pub(super) String);

/// Target of a call: the connections of a user.
#[derive(Debug, Clone)]
pub struct ToUser(pub(super) String);

/// Target of a call: one connection.
#[derive(Debug, Clone)]
pub struct ToConnection(pub(super) String);

mod sealed {
    /// Who a send or close call is aimed at.
    #[derive(Debug, Clone, Copy)]
    pub enum Kind<'a> {
        All,
        Group(&'a str),
        User(&'a str),
        Connection(&'a str),
    }

    /// A target of send and close calls.
    pub trait Target: Send + 'static {
        /// The target as data.
        fn kind(&self) -> Kind<'_>;
    }
}
use sealed::{Kind, Target};

impl Target for ToAll {
    fn kind(&self) -> Kind<'_> {
        Kind::All
    }
}

impl Target for ToGroup {
    fn kind(&self) -> Kind<'_> {
        Kind::Group(&self.0)
    }
}

impl Target for ToUser {
    fn kind(&self) -> Kind<'_> {
        Kind::User(&self.0)
    }
}

impl Target for ToConnection {
    fn kind(&self) -> Kind<'_> {
        Kind::Connection(&self.0)
    }
}

/// The path of a target under the hub: nothing, or `{kind}/{name}`.
fn target_path(kind: Kind<'_>) -> Vec<Part<'_>> {
    match kind {
        Kind::All => vec![],
        Kind::Group(group) => vec![Part::Lit("groups"), Part::Group(group)],
        Kind::User(user) => vec![Part::Lit("users"), Part::User(user)],
        Kind::Connection(id) => vec![Part::Lit("connections"), Part::Connection(id)],
    }
}

/// The `:send` call for a target.
fn send_call(client: &WebPubSubServiceClient, kind: Kind<'_>) -> Result<Call, ServiceError> {
    let operation = match kind {
        Kind::All => "send_to_all",
        Kind::Group(_) => "send_to_group",
        Kind::User(_) => "send_to_user",
        Kind::Connection(_) => "send_to_connection",
    };
    let mut path = target_path(kind);
    path.push(Part::Lit(":send"));
    client.call_to(operation, Method::POST, &path)
}

/// The call that closes a target's connections: `DELETE` for one
/// connection, `POST …/:closeConnections` for the others.
fn close_call(client: &WebPubSubServiceClient, kind: Kind<'_>) -> Result<Call, ServiceError> {
    let mut path = target_path(kind);
    let (operation, method) = match kind {
        Kind::All => ("close_all_connections", Method::POST),
        Kind::Group(_) => ("close_group_connections", Method::POST),
        Kind::User(_) => ("close_user_connections", Method::POST),
        Kind::Connection(_) => ("close_connection", Method::DELETE),
    };
    if method == Method::POST {
        path.push(Part::Lit(":closeConnections"));
    }
    client.call_to(operation, method, &path)
}

/// A message on its way to all, a group, a user or a connection; `.await` sends it.
///
/// Built by [`WebPubSubServiceClient::send_to_all`] and its siblings. The
/// service answers `202 Accepted`, meaning "accepted for fan-out", also
/// when nobody is there to receive it.
#[must_use = "a request does nothing until it is awaited"]
pub struct SendRequest<T> {
    client: WebPubSubServiceClient,
    target: T,
    message: Message,
    excluded: Vec<String>,
    filter: Option<Filter>,
    ttl: Option<Duration>,
}

impl<T> SendRequest<T> {
    pub(super) fn new(client: WebPubSubServiceClient, target: T, message: Message) -> Self {
        Self {
            client,
            target,
            message,
            excluded: Vec::new(),
            filter: None,
            ttl: None,
        }
    }

    /// Drops the message if it is not delivered within `ttl` (at most 300 s,
    /// sent in whole seconds rounded up; without it the message never expires).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// `exclude` / `excluding` for the requests and targets whose API takes `excluded`.
macro_rules! exclude_options {
    ($request:ident, $one:literal, $many:literal; $($target:ty),*) => {$(
        impl $request<$target> {
            #[doc = $one]
            pub fn exclude(mut self, connection_id: impl Into<String>) -> Self {
                self.excluded.push(connection_id.into());
                self
            }

            #[doc = $many]
            pub fn excluding<I>(mut self, connection_ids: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<String>,
            {
                self.excluded.extend(connection_ids.into_iter().map(Into::into));
                self
            }
        }
    )*};
}

/// `filter` for the targets that take it.
macro_rules! filter_option {
    ($($target:ty),*) => {$(
        impl SendRequest<$target> {
            /// Delivers only to connections for which the OData filter is true; see [`Filter`].
            pub fn filter(mut self, filter: impl Into<Filter>) -> Self {
                self.filter = Some(filter.into());
                self
            }
        }
    )*};
}
exclude_options!(
    SendRequest,
    "Leaves out this connection (may be called several times).",
    "Leaves out these connections.";
    ToAll, ToGroup
);
filter_option!(ToAll, ToGroup, ToUser);

impl<T: Target> IntoFuture for SendRequest<T> {
    type Output = Result<(), ServiceError>;
    type IntoFuture = ServiceFuture<()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let call = send_call(&self.client, self.target.kind())?;
            let ttl = match self.ttl {
                Some(ttl) if ttl > MAX_TTL => {
                    return Err(ServiceError::invalid(
                        call.operation,
                        format!("ttl {ttl:?} is over the 300 s the service allows"),
                    ))
                }
                // Whole seconds, rounded up: 0 would mean "never expires".
                Some(ttl) => Some((ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).to_string()),
                None => None,
            };
            let (content_type, body) = self.message.into_parts();
            let call = call
                .query_all("excluded", &self.excluded)
                .query_opt(
                    "filter",
                    self.filter
                        .as_ref()
                        .map(Filter::as_str)
                        .filter(|f| !f.is_empty()),
                )
                .query_opt("messageTtlSeconds", ttl.as_deref())
                .body(content_type, body)
                .expect(StatusCode::ACCEPTED)
                .not_idempotent();
            self.client.transport().send(call).await.map(drop)
        })
    }
}

impl<T: fmt::Debug> fmt::Debug for SendRequest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendRequest")
            .field("target", &self.target)
            .field("message", &self.message)
            .field("excluded", &self.excluded)
            .field("filter", &self.filter)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A request to close connections; `.await` sends it (`204`, also when
/// nothing was open).
///
/// Built by [`WebPubSubServiceClient::close_connection`] and its siblings.
#[must_use = "a request does nothing until it is awaited"]
pub struct CloseRequest<T> {
    client: WebPubSubServiceClient,
    target: T,
    reason: Option<String>,
    excluded: Vec<String>,
}

impl<T> CloseRequest<T> {
    pub(super) fn new(client: WebPubSubServiceClient, target: T) -> Self {
        Self {
            client,
            target,
            reason: None,
            excluded: Vec::new(),
        }
    }

    /// Tells the clients why (JSON clients see it in the `disconnected`
    /// message; the upstream's `disconnected` event carries it).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

exclude_options!(
    CloseRequest,
    "Keeps this connection open (may be called several times).",
    "Keeps these connections open.";
    ToAll, ToGroup, ToUser
);

impl<T: Target> IntoFuture for CloseRequest<T> {
    type Output = Result<(), ServiceError>;
    type IntoFuture = ServiceFuture<()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let call = close_call(&self.client, self.target.kind())?
                .query_all("excluded", &self.excluded)
                .query_opt("reason", self.reason.as_deref())
                .expect(StatusCode::NO_CONTENT);
            self.client.transport().send(call).await.map(drop)
        })
    }
}

impl<T: fmt::Debug> fmt::Debug for CloseRequest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseRequest")
            .field("target", &self.target)
            .field("reason", &self.reason)
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}
