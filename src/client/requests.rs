//! Calls with options: configure, then `.await`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use http::{Method, StatusCode};
use url::Url;

use super::paths::{check_group, Part};
use super::transport::{read_body, Call};
use super::{Filter, Message, ServiceError, WebPubSubServiceClient};
use crate::client_access::Permission;

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

/// A grant or revoke of a permission; `.await` sends it.
///
/// Without [`target_group`](Self::target_group) the permission covers every group.
#[must_use = "a request does nothing until it is awaited"]
pub struct PermissionRequest {
    client: WebPubSubServiceClient,
    grant: bool,
    permission: Permission,
    connection_id: String,
    target: Option<String>,
}

impl PermissionRequest {
    pub(super) fn new(
        client: WebPubSubServiceClient,
        grant: bool,
        permission: Permission,
        connection_id: String,
    ) -> Self {
        Self {
            client,
            grant,
            permission,
            connection_id,
            target: None,
        }
    }

    /// Limits the grant or revoke to one group.
    pub fn target_group(mut self, group: impl Into<String>) -> Self {
        self.target = Some(group.into());
        self
    }
}

fn permission_call(
    client: &WebPubSubServiceClient,
    operation: &'static str,
    method: Method,
    permission: Permission,
    connection_id: &str,
    target: Option<&str>,
) -> Result<Call, ServiceError> {
    let path = [
        Part::Lit("permissions"),
        Part::Lit(permission.as_str()),
        Part::Lit("connections"),
        Part::Connection(connection_id),
    ];
    if let Some(group) = target {
        check_group(operation, group)?;
    }
    Ok(client
        .call_to(operation, method, &path)?
        .query_opt("targetName", target))
}

impl IntoFuture for PermissionRequest {
    type Output = Result<(), ServiceError>;
    type IntoFuture = ServiceFuture<()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (operation, method, status) = if self.grant {
                ("grant_permission", Method::PUT, StatusCode::OK)
            } else {
                ("revoke_permission", Method::DELETE, StatusCode::NO_CONTENT)
            };
            let call = permission_call(
                &self.client,
                operation,
                method,
                self.permission,
                &self.connection_id,
                self.target.as_deref(),
            )?
            .expect(status);
            self.client.transport().send(call).await.map(drop)
        })
    }
}

impl fmt::Debug for PermissionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionRequest")
            .field("grant", &self.grant)
            .field("permission", &self.permission)
            .field("connection_id", &self.connection_id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A permission check; `.await` gives `true` (`200`) or `false` (`404`).
#[must_use = "a request does nothing until it is awaited"]
pub struct PermissionCheck {
    client: WebPubSubServiceClient,
    permission: Permission,
    connection_id: String,
    target: Option<String>,
}

impl PermissionCheck {
    pub(super) fn new(
        client: WebPubSubServiceClient,
        permission: Permission,
        connection_id: String,
    ) -> Self {
        Self {
            client,
            permission,
            connection_id,
            target: None,
        }
    }

    /// Checks the permission over one group rather than all of them.
    pub fn target_group(mut self, group: impl Into<String>) -> Self {
        self.target = Some(group.into());
        self
    }
}

impl IntoFuture for PermissionCheck {
    type Output = Result<bool, ServiceError>;
    type IntoFuture = ServiceFuture<bool>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let call = permission_call(
                &self.client,
                "has_permission",
                Method::HEAD,
                self.permission,
                &self.connection_id,
                self.target.as_deref(),
            )?
            .exists();
            self.client.transport().send(call).await.map(|a| a.exists)
        })
    }
}

impl fmt::Debug for PermissionCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionCheck")
            .field("permission", &self.permission)
            .field("connection_id", &self.connection_id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A connection in a group, as listed by the service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct GroupMember {
    /// The connection id.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
    /// The user id, absent for anonymous connections.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
}

/// A listing of a group's connections; `.await` follows every page and
/// returns them all.
#[must_use = "a request does nothing until it is awaited"]
pub struct ListConnectionsRequest {
    client: WebPubSubServiceClient,
    group: String,
    max_page_size: Option<u32>,
    top: Option<u32>,
}

/// The most bytes of one page that are read.
const PAGE_LIMIT: usize = 16 * 1024 * 1024;

impl ListConnectionsRequest {
    pub(super) fn new(client: WebPubSubServiceClient, group: String) -> Self {
        Self {
            client,
            group,
            max_page_size: None,
            top: None,
        }
    }

    /// How many connections each page holds (1–200; the service's default is 200).
    pub fn max_page_size(mut self, size: u32) -> Self {
        self.max_page_size = Some(size);
        self
    }

    /// Stops after this many connections (at least 1; default: all).
    pub fn top(mut self, count: u32) -> Self {
        self.top = Some(count);
        self
    }
}

#[derive(serde::Deserialize)]
struct Page {
    value: Vec<GroupMember>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

impl IntoFuture for ListConnectionsRequest {
    type Output = Result<Vec<GroupMember>, ServiceError>;
    type IntoFuture = ServiceFuture<Vec<GroupMember>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            const OP: &str = "list_connections_in_group";
            if let Some(size) = self.max_page_size.filter(|s| !(1..=200).contains(s)) {
                return Err(ServiceError::invalid(
                    OP,
                    format!("max_page_size {size} is not within 1-200"),
                ));
            }
            if self.top == Some(0) {
                return Err(ServiceError::invalid(OP, "top must be at least 1"));
            }
            let page_size = self.max_page_size.map(|s| s.to_string());
            let top = self.top.map(|t| t.to_string());
            let path = [
                Part::Lit("groups"),
                Part::Group(&self.group),
                Part::Lit("connections"),
            ];
            let call = self
                .client
                .call_to(OP, Method::GET, &path)?
                .query_opt("maxpagesize", page_size.as_deref())
                .query_opt("top", top.as_deref());
            let transport = self.client.transport();
            let endpoint = Url::parse(&transport.endpoint).map_err(|e| {
                ServiceError::invalid(OP, format!("the endpoint is not a URL: {e}"))
            })?;
            let mut url = format!("{}{}", transport.endpoint, call.path_and_query());
            let mut members = Vec::new();
            loop {
                let call = Call::root(OP, Method::GET, "");
                let answer = transport.send_to(call, &url).await?;
                let body = read_body(OP, answer.response, PAGE_LIMIT, transport.timeout).await?;
                let page: Page =
                    serde_json::from_slice(&body).map_err(|e| ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("expected a page of connections: {e}"),
                    })?;
                members.extend(page.value);
                if self.top.is_some_and(|top| members.len() >= top as usize) {
                    members.truncate(self.top.unwrap_or(u32::MAX) as usize);
                    return Ok(members);
                }
                let Some(next) = page.next_link.filter(|n| !n.is_empty()) else {
                    return Ok(members);
                };
                let next = endpoint
                    .join(&next)
                    .map_err(|e| ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("nextLink `{next}` is not a URL: {e}"),
                    })?;
                // The next link gets a token signed with the access key: never
                // send one to another host.
                if next.origin() != endpoint.origin() {
                    return Err(ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("nextLink `{next}` leaves the service endpoint"),
                    });
                }
                if next.as_str() == url {
                    return Err(ServiceError::InvalidResponse {
                        operation: OP,
                        reason: "nextLink repeats the page just read".to_owned(),
                    });
                }
                url = next.into();
            }
        })
    }
}

impl fmt::Debug for ListConnectionsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListConnectionsRequest")
            .field("group", &self.group)
            .field("max_page_size", &self.max_page_size)
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}
