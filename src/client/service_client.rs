//! [`WebPubSubServiceClient`]: the facade of the REST API of one hub, and
//! its operations.

use std::fmt;
use std::sync::Arc;

use http::{Method, StatusCode};

use super::builder::ServiceClientBuilder;
use super::paths::Part::{self, Connection, Group, Lit, User};
use super::paths::{self, check_group};
use super::requests::{
    CloseRequest, ListConnectionsRequest, PermissionCheck, PermissionRequest, SendRequest, ToAll,
    ToConnection, ToGroup, ToUser,
};
use super::transport::{self, Call, Transport};
use super::{Filter, Message, ServiceError};
use crate::client_access::{ClientAccess, ClientAccessOptions, ClientAccessSigner};
use crate::config::ConfigError;
use crate::config::ConnectionString;

/// Calls the Web PubSub REST API for one hub: send messages, manage groups,
/// close connections, check existence, grant permissions, and sign client
/// access URLs.
///
/// Cheap to clone (one `Arc`): build it once, keep it in your handler or
/// axum state, clone it into tasks. Requests are authenticated with
/// short-lived HS256 tokens signed with the access key or, with feature
/// `entra`, with Microsoft Entra ID tokens from any `azure_core`
/// `TokenCredential` (`from_credential`). They use API version
/// [`API_VERSION`](super::API_VERSION), and count as successful only with
/// the exact status the API documents; anything else is a [`ServiceError`].
/// Idempotent calls are retried on connection errors and `5xx` (see
/// [`RetryPolicy`](super::RetryPolicy)).
///
/// Calls with options return a request to configure and `.await`:
///
/// ```no_run
/// use webpubsub::WebPubSubServiceClient;
/// use webpubsub::client::{Filter, Message};
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
    /// `None` for a client built with a credential: it has no key.
    signer: Option<ClientAccessSigner>,
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
    /// use webpubsub::WebPubSubServiceClient;
    /// use webpubsub::config::ConnectionString;
    /// use webpubsub::client::RetryPolicy;
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
        ServiceClientBuilder::new(connection, hub.into())
    }

    /// A client for `hub` with default settings, authenticated with a
    /// Microsoft Entra ID credential instead of an access key.
    ///
    /// `endpoint` is the service URL, `https://<name>.webpubsub.azure.com`
    /// (`http://` only to `localhost`, `127.0.0.0/8` or `::1`, e.g. a local
    /// emulator). Every REST call carries `Authorization: Bearer <token>`
    /// for the scope `https://webpubsub.azure.com/.default`; tokens are
    /// cached and refreshed 5 minutes before they expire, once for all
    /// callers. The identity needs a data-plane role on the resource, such
    /// as *Web PubSub Service Owner*.
    ///
    /// Such a client has no key: client access URLs come from the service
    /// (`:generateToken`) through `issue_client_access` (feature `entra`);
    /// the local signer ([`signer`](Self::signer), [`client_access`](Self::client_access),
    /// [`client_access_url`](Self::client_access_url)) is not available.
    ///
    /// # Errors
    ///
    /// As [`ServiceClientBuilder::build`]; e.g. [`ConfigError::InvalidEndpoint`]
    /// for `http://` to a remote host.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use webpubsub::WebPubSubServiceClient;
    /// use webpubsub::client_access::ClientAccessOptions;
    ///
    /// # async fn run(credential: Arc<dyn azure_core::credentials::TokenCredential>)
    /// #     -> Result<(), Box<dyn std::error::Error>> {
    /// // `credential`: e.g. `azure_identity::ManagedIdentityCredential::new(None)?`.
    /// let client = WebPubSubServiceClient::from_credential(
    ///     "https://demo.webpubsub.azure.com",
    ///     "chat",
    ///     credential,
    /// )?;
    /// client.send_to_all("hello").await?;
    /// let access = client
    ///     .issue_client_access(&ClientAccessOptions::new().user_id("alice"))
    ///     .await?;
    /// println!("connect to {}", access.url());
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub fn from_credential(
        endpoint: impl Into<String>,
        hub: impl Into<String>,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
    ) -> Result<Self, ConfigError> {
        Self::credential_builder(endpoint, hub, credential).build()
    }

    /// A builder for a client of `hub` authenticated with a Microsoft Entra
    /// ID credential, to set timeouts, retries or a reverse proxy; see
    /// [`from_credential`](Self::from_credential).
    ///
    /// ```
    /// # #[derive(Debug)] struct Fake;
    /// # #[webpubsub::async_trait]
    /// # impl azure_core::credentials::TokenCredential for Fake {
    /// #     async fn get_token(&self, _: &[&str], _: Option<azure_core::credentials::TokenRequestOptions<'_>>)
    /// #         -> azure_core::Result<azure_core::credentials::AccessToken> { unimplemented!() }
    /// # }
    /// # let credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential> = std::sync::Arc::new(Fake);
    /// use std::time::Duration;
    /// use webpubsub::{ConfigError, WebPubSubServiceClient};
    ///
    /// let client = WebPubSubServiceClient::credential_builder(
    ///     "https://demo.webpubsub.azure.com",
    ///     "chat",
    ///     credential.clone(),
    /// )
    /// .timeout(Duration::from_secs(5))
    /// .build()?;
    /// assert_eq!(client.endpoint(), "https://demo.webpubsub.azure.com");
    ///
    /// // A local emulator over plain http: fine. Anything else: https only.
    /// WebPubSubServiceClient::credential_builder("http://localhost:8080", "chat", credential.clone())
    ///     .build()?;
    /// let err = WebPubSubServiceClient::credential_builder("http://demo.webpubsub.azure.com", "chat", credential)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidEndpoint { .. }));
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub fn credential_builder(
        endpoint: impl Into<String>,
        hub: impl Into<String>,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
    ) -> ServiceClientBuilder {
        ServiceClientBuilder::entra(endpoint.into(), credential, hub.into())
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
    ///
    /// # Panics
    ///
    /// On a client built with a credential (feature `entra`), which has no
    /// key to sign with: use `issue_client_access` (feature `entra`)
    /// (or check with `try_signer`).
    #[must_use]
    pub fn signer(&self) -> &ClientAccessSigner {
        match &self.inner.signer {
            Some(signer) => signer,
            None => panic!(
                "this WebPubSubServiceClient authenticates with a Microsoft Entra ID credential \
                 and has no access key to sign client URLs with: use `issue_client_access`"
            ),
        }
    }

    /// The signer of client access URLs, or `None` for a client built with
    /// a credential (it has no key).
    ///
    /// ```
    /// use webpubsub::WebPubSubServiceClient;
    ///
    /// let client = WebPubSubServiceClient::from_connection_string(
    ///     "Endpoint=http://localhost;Port=8080;AccessKey=local-key;Version=1.0;",
    ///     "chat",
    /// )?;
    /// assert!(client.try_signer().is_some());
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    #[must_use]
    pub fn try_signer(&self) -> Option<&ClientAccessSigner> {
        self.inner.signer.as_ref()
    }

    /// Signs a client access URL locally (no request is made); see
    /// [`ClientAccessSigner`].
    ///
    /// # Panics
    ///
    /// As [`signer`](Self::signer): on a client built with a credential.
    #[must_use]
    pub fn client_access(&self, options: &ClientAccessOptions) -> ClientAccess {
        self.signer().client_access(options)
    }

    /// Signs a client access token locally and returns the URL to connect to.
    ///
    /// # Panics
    ///
    /// As [`signer`](Self::signer): on a client built with a credential.
    #[must_use]
    pub fn client_access_url(&self, options: &ClientAccessOptions) -> String {
        self.signer().client_access_url(options)
    }

    /// A client access URL, however this client authenticates: signed
    /// locally with the access key (no request), or, for a client built
    /// with a credential, issued by the service
    /// (`POST /api/hubs/{hub}/:generateToken`, see
    /// [`generate_client_token`](Self::generate_client_token)).
    ///
    /// From the service the URL is `ws(s)://host/client/hubs/{hub}?access_token=<token>`
    /// (`/clients/mqtt/hubs/{hub}` for MQTT), as the Python and .NET SDKs
    /// build it. The user id, every role and every group are sent (groups
    /// on every path: the .NET SDK's sync path once dropped them); the
    /// lifetime in whole minutes, rounded up, at least one.
    ///
    /// What this follows, and where it comes from: `POST
    /// /api/hubs/{hub}/:generateToken` with query `userId`, repeated `role`,
    /// repeated `group`, `minutesToExpire` (minimum 1) and `clientType`
    /// (`Default` or `MQTT`), no body, answered `200 {"token": "…"}` (the
    /// REST reference page *Generate Client Token*); `0` minutes is refused
    /// by the service (Azure SDK for Go, PR #21929), so it is refused here
    /// first; the URL shape is the Python SDK's `get_client_access_token`
    /// and .NET's `GetClientAccessUri`. Not confirmed: the service's own
    /// default and maximum lifetime (this client always sends one, default
    /// 60 minutes).
    ///
    /// # Errors
    ///
    /// Locally signed: never. From the service: as
    /// [`generate_client_token`](Self::generate_client_token), and
    /// `InvalidArgument` for custom claims, which the service cannot add
    /// (refused rather than silently dropped).
    ///
    /// ```no_run
    /// # async fn run(client: webpubsub::WebPubSubServiceClient) -> Result<(), webpubsub::client::ServiceError> {
    /// use webpubsub::client_access::{ClientAccessOptions, Permission};
    ///
    /// let options = ClientAccessOptions::new()
    ///     .user_id("alice")
    ///     .role(Permission::JoinLeaveGroup.role())
    ///     .group("room1");
    /// let access = client.issue_client_access(&options).await?;
    /// assert!(access.url().contains("/client/hubs/chat?access_token="));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub async fn issue_client_access(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<ClientAccess, ServiceError> {
        if let Some(signer) = &self.inner.signer {
            return Ok(signer.client_access(options));
        }
        if options.has_claims() {
            return Err(ServiceError::invalid(
                "generate_client_token",
                "custom claims cannot be added by the service (`:generateToken` has no \
                 parameter for them); remove them or sign with an access key",
            ));
        }
        let token = self.generate_client_token(options).await?;
        Ok(ClientAccess::from_service_token(
            self.endpoint(),
            self.hub(),
            options.protocol_value(),
            token,
        ))
    }

    /// The URL of [`issue_client_access`](Self::issue_client_access).
    ///
    /// # Errors
    ///
    /// As [`issue_client_access`](Self::issue_client_access).
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub async fn issue_client_access_url(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<String, ServiceError> {
        self.issue_client_access(options)
            .await
            .map(ClientAccess::into_url)
    }

    /// The client [`ServiceClientBuilder::build`] hands out.
    pub(super) fn from_parts(
        hub: String,
        transport: Transport,
        signer: Option<ClientAccessSigner>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                transport,
                signer,
            }),
        }
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
        paths::append(self.call(operation, method), operation, path)
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
        permission: crate::client_access::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), true, permission, connection_id.into())
    }

    /// Revokes a permission from a connection (`DELETE`, `204`).
    pub fn revoke_permission(
        &self,
        permission: crate::client_access::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), false, permission, connection_id.into())
    }

    /// Whether a connection has a permission (`HEAD`, `200` yes, `404` no).
    pub fn has_permission(
        &self,
        permission: crate::client_access::Permission,
        connection_id: impl Into<String>,
    ) -> PermissionCheck {
        PermissionCheck::new(self.clone(), permission, connection_id.into())
    }

    // ----- tokens and health -----------------------------------------------

    /// Asks the service to sign a client token (`POST …/:generateToken`).
    ///
    /// Only needed when the service, not this application, must sign (as
    /// with a Microsoft Entra ID credential and no key);
    /// [`client_access`](Self::client_access) signs locally with the same
    /// result and no round trip. The query carries `userId`, one `role` and
    /// one `group` per value, `minutesToExpire` and `clientType`; no body.
    /// Custom claims are not sent (the API has no parameter for them); the
    /// lifetime is rounded up to whole minutes.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for the Socket.IO protocol, which
    /// the API cannot sign for, and for a zero lifetime (the service wants
    /// at least one minute).
    pub async fn generate_client_token(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<String, ServiceError> {
        const OP: &str = "generate_client_token";
        let client_type = match options.protocol_value() {
            crate::client_access::ClientProtocol::Default => "Default",
            crate::client_access::ClientProtocol::Mqtt => "MQTT",
            _ => {
                return Err(ServiceError::invalid(
                    OP,
                    "the service signs tokens for the default and MQTT endpoints only; \
                     use `client_access` to sign locally",
                ))
            }
        };
        if options.lifetime().is_zero() {
            return Err(ServiceError::invalid(
                OP,
                "the token lifetime is zero; the service issues tokens for at least one minute",
            ));
        }
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
