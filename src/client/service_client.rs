//! The service client: calls the Web PubSub REST API of one hub.

mod error;
mod filter;
mod message;
mod requests;
mod retry;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use url::Url;

pub use error::{ApiError, ServiceError};
pub use filter::Filter;
pub use message::Message;
pub use requests::{
    CloseRequest, GroupMember, ListConnectionsRequest, PermissionCheck, PermissionRequest,
    SendRequest, ServiceFuture, ToAll, ToConnection, ToGroup, ToUser,
};
pub use retry::RetryPolicy;
pub use transport::API_VERSION;

use transport::{Call, Transport};
use Part::{Connection, Group, Lit, User};

/// A segment of a REST path under `/api/hubs/{hub}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// A fixed segment, such as `groups` or `:send`.
    Lit(&'static str),
    /// A group name: checked, then percent-encoded.
    Group(&'a str),
    /// A connection id: checked, then percent-encoded.
    Connection(&'a str),
    /// A user id: checked, then percent-encoded.
    User(&'a str),
}

use crate::{ClientAccess, ClientAccessOptions, ClientAccessSigner, ConfigError, ConnectionString};

/// How long one attempt of a call may take unless told otherwise: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls the Web PubSub REST API for one hub: send messages, manage groups,
/// close connections, check existence, grant permissions, and sign client
/// access URLs.
///
/// Cheap to clone (one `Arc`): build it once, keep it in your handler or
/// axum state, clone it into tasks. Requests are authenticated with
/// short-lived HS256 tokens signed with the access key, use API version
/// [`API_VERSION`], and count as successful only with the exact status the
/// API documents; anything else is a [`ServiceError`]. Idempotent calls are
/// retried on connection errors and `5xx` (see [`RetryPolicy`]).
///
/// Calls with options return a request to configure and `.await`:
///
/// ```no_run
/// use webpubsub::{Filter, Message, WebPubSubServiceClient};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = WebPubSubServiceClient::from_connection_string(
///     "Endpoint=https://demo.webpubsub.azure.com;AccessKey=<key>;Version=1.0;",
///     "chat",
/// )?;
/// client.send_to_all("alice joined").await?;
/// client
///     .send_to_group("room1", Message::json(&serde_json::json!({ "from": "alice" }))?)
///     .exclude("conn-of-alice")
///     .filter(Filter::user_id_ne("bot"))
///     .await?;
/// client.add_user_to_group("room1", "bob").await?;
/// if client.user_exists("bob").await? {
///     client.close_user_connections("bob").reason("banned").await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WebPubSubServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    hub: String,
    transport: Transport,
    signer: ClientAccessSigner,
}

impl WebPubSubServiceClient {
    /// A client for `hub` with default settings, from a connection string.
    ///
    /// # Errors
    ///
    /// As [`ConnectionString::parse`] and [`ServiceClientBuilder::build`].
    ///
    /// ```
    /// use webpubsub::{ConfigError, WebPubSubServiceClient};
    ///
    /// let client = WebPubSubServiceClient::from_connection_string(
    ///     "Endpoint=http://localhost;Port=8080;AccessKey=local-key;Version=1.0;",
    ///     "chat",
    /// )?;
    /// assert_eq!(client.hub(), "chat");
    /// assert_eq!(client.endpoint(), "http://localhost:8080");
    ///
    /// let err = WebPubSubServiceClient::from_connection_string("Endpoint=http://localhost", "chat")
    ///     .unwrap_err();
    /// assert_eq!(err, ConfigError::MissingConnectionStringKey { key: "AccessKey" });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_connection_string(
        connection_string: &str,
        hub: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        Self::builder(&ConnectionString::parse(connection_string)?, hub).build()
    }

    /// A builder for a client of `hub`, to set timeouts, retries or a reverse proxy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webpubsub::{ConnectionString, RetryPolicy, WebPubSubServiceClient};
    ///
    /// let conn: ConnectionString = "Endpoint=https://demo.webpubsub.azure.com;AccessKey=k".parse()?;
    /// let client = WebPubSubServiceClient::builder(&conn, "chat")
    ///     .timeout(Duration::from_secs(5))
    ///     .retry(RetryPolicy::default().max_retries(5))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn builder(connection: &ConnectionString, hub: impl Into<String>) -> ServiceClientBuilder {
        ServiceClientBuilder {
            connection: connection.clone(),
            hub: hub.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            http: None,
            reverse_proxy: None,
        }
    }

    /// The hub this client calls.
    #[must_use]
    pub fn hub(&self) -> &str {
        &self.inner.hub
    }

    /// The service endpoint, `http(s)://host[:port]`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.inner.transport.endpoint
    }

    /// The signer of client access URLs for this hub.
    #[must_use]
    pub fn signer(&self) -> &ClientAccessSigner {
        &self.inner.signer
    }

    /// Signs a client access URL locally (no request is made); see
    /// [`ClientAccessSigner`].
    #[must_use]
    pub fn client_access(&self, options: &ClientAccessOptions) -> ClientAccess {
        self.inner.signer.client_access(options)
    }

    /// Signs a client access token locally and returns the URL to connect to.
    #[must_use]
    pub fn client_access_url(&self, options: &ClientAccessOptions) -> String {
        self.inner.signer.client_access_url(options)
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    fn call(&self, operation: &'static str, method: Method) -> Call {
        Call::hub(operation, method, &self.inner.hub)
    }

    /// A call to `/api/hubs/{hub}/…`, its caller-supplied parts checked and encoded.
    pub(crate) fn call_to(
        &self,
        operation: &'static str,
        method: Method,
        path: &[Part<'_>],
    ) -> Result<Call, ServiceError> {
        let mut call = self.call(operation, method);
        for part in path {
            call = match *part {
                Part::Lit(segment) => call.literal(segment),
                Part::Group(group) => {
                    check_group(operation, group)?;
                    call.segment(group)
                }
                Part::Connection(id) => {
                    check_id(operation, "connection id", id)?;
                    call.segment(id)
                }
                Part::User(id) => {
                    check_id(operation, "user id", id)?;
                    call.segment(id)
                }
            };
        }
        Ok(call)
    }

    async fn run(&self, call: Call) -> Result<bool, ServiceError> {
        self.inner.transport.send(call).await.map(|a| a.exists)
    }

    // ----- sending ---------------------------------------------------------

    /// Sends a message to every connection of the hub (`POST /api/hubs/{hub}/:send`, `202`).
    ///
    /// Options: [`exclude`](SendRequest::exclude), [`filter`](SendRequest::filter),
    /// [`ttl`](SendRequest::ttl). Never retried once sent.
    pub fn send_to_all(&self, message: impl Into<Message>) -> SendRequest<ToAll> {
        SendRequest::new(self.clone(), ToAll, message.into())
    }

    /// Sends a message to every connection in `group`.
    pub fn send_to_group(
        &self,
        group: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToGroup> {
        SendRequest::new(self.clone(), ToGroup(group.into()), message.into())
    }

    /// Sends a message to every connection of `user_id`.
    pub fn send_to_user(
        &self,
        user_id: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToUser> {
        SendRequest::new(self.clone(), ToUser(user_id.into()), message.into())
    }

    /// Sends a message to one connection.
    pub fn send_to_connection(
        &self,
        connection_id: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToConnection> {
        SendRequest::new(
            self.clone(),
            ToConnection(connection_id.into()),
            message.into(),
        )
    }

    // ----- groups ----------------------------------------------------------

    /// Adds a connection to a group (`200`; `404` when the connection does not exist).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `404` ([`ServiceError::is_not_found`]) for an unknown connection.
    pub async fn add_connection_to_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [
            Lit("groups"),
            Group(group),
            Lit("connections"),
            Connection(connection_id),
        ];
        let call = self.call_to("add_connection_to_group", Method::PUT, &path)?;
        self.run(call).await.map(drop)
    }

    /// Removes a connection from a group (`204`, also when it was not in it).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_connection_from_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [
            Lit("groups"),
            Group(group),
            Lit("connections"),
            Connection(connection_id),
        ];
        let call = self.call_to("remove_connection_from_group", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Removes a connection from every group it is in (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_connection_from_all_groups(
        &self,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [Lit("connections"), Connection(connection_id), Lit("groups")];
        let call = self.call_to("remove_connection_from_all_groups", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Adds every current connection of a user to a group (`200`; `404`
    /// when the user has no connection). Connections the user opens later
    /// are not added.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `404` ([`ServiceError::is_not_found`]) when the user has no connection.
    pub async fn add_user_to_group(&self, group: &str, user_id: &str) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups"), Group(group)];
        let call = self.call_to("add_user_to_group", Method::PUT, &path)?;
        self.run(call).await.map(drop)
    }

    /// Removes every connection of a user from a group (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_user_from_group(
        &self,
        group: &str,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups"), Group(group)];
        let call = self.call_to("remove_user_from_group", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Removes every connection of a user from every group (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_user_from_all_groups(&self, user_id: &str) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups")];
        let call = self.call_to("remove_user_from_all_groups", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Adds every connection matching `filter` to every one of `groups`
    /// (`POST /api/hubs/{hub}/:addToGroups`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for an empty or invalid group list.
    pub async fn add_connections_to_groups<I>(
        &self,
        groups: I,
        filter: impl Into<Filter>,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.bulk_groups(
            "add_connections_to_groups",
            ":addToGroups",
            groups,
            filter.into(),
        )
        .await
    }

    /// Removes every connection matching `filter` from every one of `groups`
    /// (`POST /api/hubs/{hub}/:removeFromGroups`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for an empty or invalid group list.
    pub async fn remove_connections_from_groups<I>(
        &self,
        groups: I,
        filter: impl Into<Filter>,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.bulk_groups(
            "remove_connections_from_groups",
            ":removeFromGroups",
            groups,
            filter.into(),
        )
        .await
    }

    async fn bulk_groups<I>(
        &self,
        op: &'static str,
        action: &str,
        groups: I,
        filter: Filter,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        if groups.is_empty() {
            return Err(ServiceError::invalid(op, "give at least one group"));
        }
        for group in &groups {
            check_group(op, group)?;
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            groups: &'a [String],
            filter: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            groups: &groups,
            filter: filter.as_str(),
        })?;
        let call = self.call(op, Method::POST).literal(action).body(
            http::HeaderValue::from_static("application/json"),
            body.into(),
        );
        self.run(call).await.map(drop)
    }

    /// Lists the connections in a group, following every page
    /// (`GET /api/hubs/{hub}/groups/{group}/connections`).
    ///
    /// Options: [`max_page_size`](ListConnectionsRequest::max_page_size),
    /// [`top`](ListConnectionsRequest::top).
    pub fn list_connections_in_group(&self, group: impl Into<String>) -> ListConnectionsRequest {
        ListConnectionsRequest::new(self.clone(), group.into())
    }

    // ----- closing ---------------------------------------------------------

    /// Closes one connection (`DELETE`, `204`, also for an unknown connection).
    ///
    /// Option: [`reason`](CloseRequest::reason).
    pub fn close_connection(&self, connection_id: impl Into<String>) -> CloseRequest<ToConnection> {
        CloseRequest::new(self.clone(), ToConnection(connection_id.into()))
    }

    /// Closes every connection of the hub.
    ///
    /// Options: [`reason`](CloseRequest::reason), [`exclude`](CloseRequest::exclude).
    pub fn close_all_connections(&self) -> CloseRequest<ToAll> {
        CloseRequest::new(self.clone(), ToAll)
    }

    /// Closes every connection in a group.
    pub fn close_group_connections(&self, group: impl Into<String>) -> CloseRequest<ToGroup> {
        CloseRequest::new(self.clone(), ToGroup(group.into()))
    }

    /// Closes every connection of a user.
    pub fn close_user_connections(&self, user_id: impl Into<String>) -> CloseRequest<ToUser> {
        CloseRequest::new(self.clone(), ToUser(user_id.into()))
    }

    // ----- existence -------------------------------------------------------

    /// Whether a connection is open (`HEAD`, `200` yes, `404` no).
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any other answer.
    pub async fn connection_exists(&self, connection_id: &str) -> Result<bool, ServiceError> {
        let path = [Lit("connections"), Connection(connection_id)];
        let call = self.call_to("connection_exists", Method::HEAD, &path)?;
        self.run(call.exists()).await
    }

    /// Whether a group has at least one connection.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any answer but `200` and `404`.
    pub async fn group_exists(&self, group: &str) -> Result<bool, ServiceError> {
        let call = self.call_to("group_exists", Method::HEAD, &[Lit("groups"), Group(group)])?;
        self.run(call.exists()).await
    }

    /// Whether a user has at least one connection.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any answer but `200` and `404`.
    pub async fn user_exists(&self, user_id: &str) -> Result<bool, ServiceError> {
        let call = self.call_to("user_exists", Method::HEAD, &[Lit("users"), User(user_id)])?;
        self.run(call.exists()).await
    }

    // ----- permissions -----------------------------------------------------

    /// Grants a connection a permission, over every group or (with
    /// [`target_group`](PermissionRequest::target_group)) one (`PUT`, `200`).
    pub fn grant_permission(
        &self,
        permission: crate::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), true, permission, connection_id.into())
    }

    /// Revokes a permission from a connection (`DELETE`, `204`).
    pub fn revoke_permission(
        &self,
        permission: crate::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), false, permission, connection_id.into())
    }

    /// Whether a connection has a permission (`HEAD`, `200` yes, `404` no).
    pub fn has_permission(
        &self,
        permission: crate::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionCheck {
        PermissionCheck::new(self.clone(), permission, connection_id.into())
    }

    // ----- tokens and health -----------------------------------------------

    /// Asks the service to sign a client token (`POST …/:generateToken`).
    ///
    /// Only needed when the service, not this application, must sign;
    /// [`client_access`](Self::client_access) signs locally with the same
    /// result and no round trip. Custom claims are not sent (the API has no
    /// parameter for them); the lifetime is rounded up to whole minutes.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for the Socket.IO protocol, which
    /// the API cannot sign for.
    pub async fn generate_client_token(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<String, ServiceError> {
        const OP: &str = "generate_client_token";
        let client_type = match options.protocol_value() {
            crate::ClientProtocol::Default => "Default",
            crate::ClientProtocol::Mqtt => "MQTT",
            _ => {
                return Err(ServiceError::invalid(
                    OP,
                    "the service signs tokens for the default and MQTT endpoints only; \
                     use `client_access` to sign locally",
                ))
            }
        };
        let minutes = options.lifetime().as_secs().div_ceil(60).max(1).to_string();
        let call = self
            .call(OP, Method::POST)
            .literal(":generateToken")
            .query_opt("userId", options.user_id.as_deref())
            .query_all("role", options.role_list())
            .query_all("group", options.group_list())
            .query("minutesToExpire", &minutes)
            .query("clientType", client_type)
            .accept("application/json, text/json");
        let answer = self.inner.transport.send(call).await?;
        let body =
            transport::read_body(OP, answer.response, 64 * 1024, self.inner.transport.timeout)
                .await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
        }
        serde_json::from_slice::<Token>(&body)
            .map(|t| t.token)
            .map_err(|e| ServiceError::InvalidResponse {
                operation: OP,
                reason: format!("expected {{\"token\": \"…\"}}: {e}"),
            })
    }

    /// Checks that the service is up (`HEAD /api/health`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`] when the service is unreachable or answers anything but `200`.
    pub async fn health(&self) -> Result<(), ServiceError> {
        let call = Call::root("health", Method::HEAD, "/api/health");
        self.run(call).await.map(drop)
    }
}

impl fmt::Debug for WebPubSubServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPubSubServiceClient")
            .field("endpoint", &self.inner.transport.endpoint)
            .field("hub", &self.inner.hub)
            .field("retry", &self.inner.transport.retry)
            .field("timeout", &self.inner.transport.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`WebPubSubServiceClient`], checked by [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct ServiceClientBuilder {
    connection: ConnectionString,
    hub: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    reverse_proxy: Option<String>,
}

impl ServiceClientBuilder {
    /// How long one attempt may take, from sending to the end of the answer
    /// (default [30 s](DEFAULT_TIMEOUT)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long opening a connection to the service may take (default 10 s).
    /// Ignored when an [`http_client`](Self::http_client) is given.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How failed calls are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Uses this `reqwest` client (its proxy, TLS and pool settings) instead of a new one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sends requests to a reverse proxy (such as API Management) in front of
    /// the service. Tokens are still signed for the service's own URL, as
    /// the service checks them; client access URLs keep the service endpoint.
    pub fn reverse_proxy(mut self, url: impl Into<String>) -> Self {
        self.reverse_proxy = Some(url.into());
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::MissingConnectionStringKey`] when the connection string has no `AccessKey`;
    /// - [`ConfigError::InvalidHub`] for an invalid hub name;
    /// - [`ConfigError::InvalidReverseProxy`] for a proxy that is not an `http(s)` URL;
    /// - [`ConfigError::HttpClient`] when the HTTP client cannot be set up.
    pub fn build(self) -> Result<WebPubSubServiceClient, ConfigError> {
        let signer = ClientAccessSigner::new(&self.connection, self.hub.clone())?;
        let proxy = self
            .reverse_proxy
            .map(|raw| {
                let invalid = |reason: String| ConfigError::InvalidReverseProxy {
                    value: raw.clone(),
                    reason,
                };
                let url = Url::parse(&raw).map_err(|e| invalid(e.to_string()))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(invalid("use an http(s) URL with a host".to_owned()));
                }
                if url.path() != "/" || url.query().is_some() {
                    return Err(invalid(
                        "only the scheme, host and port are replaced; drop the path".to_owned(),
                    ));
                }
                Ok(url)
            })
            .transpose()?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .user_agent(concat!("webpubsub-rust/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConfigError::HttpClient {
                    reason: e.to_string(),
                })?,
        };
        Ok(WebPubSubServiceClient {
            inner: Arc::new(Inner {
                hub: self.hub,
                transport: Transport {
                    http,
                    endpoint: signer.endpoint().to_owned(),
                    proxy,
                    key: signer.key().clone(),
                    retry: self.retry,
                    timeout: self.timeout,
                },
                signer,
            }),
        })
    }
}

/// Refuses group names the API does not take (the rule of
/// [`GroupName`](crate::names::GroupName)), or a dot segment that a URL
/// would swallow.
fn check_group(operation: &'static str, group: &str) -> Result<(), ServiceError> {
    if let Err(invalid) = crate::names::GroupName::new(group) {
        return Err(ServiceError::invalid(
            operation,
            format!("the group name is invalid: {}", invalid.rule()),
        ));
    }
    check_dots(operation, "group name", group)
}

/// Refuses empty ids and dot segments.
fn check_id(operation: &'static str, what: &str, id: &str) -> Result<(), ServiceError> {
    if id.is_empty() {
        return Err(ServiceError::invalid(
            operation,
            format!("the {what} is empty"),
        ));
    }
    check_dots(operation, what, id)
}

fn check_dots(operation: &'static str, what: &str, value: &str) -> Result<(), ServiceError> {
    if value == "." || value == ".." {
        return Err(ServiceError::invalid(
            operation,
            format!("the {what} `{value}` cannot be sent in a URL path"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnectionString {
        "Endpoint=https://demo.webpubsub.azure.com;AccessKey=k"
            .parse()
            .unwrap()
    }

    #[test]
    fn a_reverse_proxy_must_be_a_bare_http_origin() {
        for bad in [
            "https://apim.example/prefix",
            "ftp://apim.example",
            "not a url",
            "https://apim.example/?a=b",
        ] {
            let err = WebPubSubServiceClient::builder(&conn(), "chat")
                .reverse_proxy(bad)
                .build()
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidReverseProxy { .. }),
                "{bad}: {err}"
            );
        }
        let ok = WebPubSubServiceClient::builder(&conn(), "chat")
            .reverse_proxy("https://apim.example:8443/")
            .build();
        assert!(ok.is_ok());
    }

    #[test]
    fn group_names_are_measured_in_utf16_units_like_the_service() {
        assert!(check_group("op", &"a".repeat(1024)).is_ok());
        // 512 emoji = 1024 UTF-16 units: the limit; one more is over it.
        assert!(check_group("op", &"😀".repeat(512)).is_ok());
        assert!(check_group("op", &"😀".repeat(513)).is_err());
    }
}
