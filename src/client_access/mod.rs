//! Client access: signed WebSocket URLs that let a client connect to a hub.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::config::{AccessKey, ConfigError, ConnectionString};
use crate::jwt;

pub(crate) mod negotiate;

pub use negotiate::{Negotiate, NegotiateFuture};

/// How long a client access token is valid unless told otherwise: one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Which endpoint of the service a client connects to.
///
/// The protocol changes only the path (and so the token's audience):
/// `/client/hubs/{hub}`, `/clients/mqtt/hubs/{hub}` or
/// `/clients/socketio/hubs/{hub}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientProtocol {
    /// WebSocket clients, plain or with the `json.webpubsub.azure.v1` family of subprotocols.
    #[default]
    Default,
    /// MQTT over WebSocket.
    Mqtt,
    /// Socket.IO clients.
    SocketIo,
}

impl ClientProtocol {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Default => "/client/hubs/",
            Self::Mqtt => "/clients/mqtt/hubs/",
            Self::SocketIo => "/clients/socketio/hubs/",
        }
    }
}

/// A permission a connection can hold over groups.
///
/// Used as a role in client tokens ([`role`](Self::role),
/// [`role_for`](Self::role_for)) and by the service client's permission
/// calls.
///
/// ```
/// use webpubsub::client_access::Permission;
///
/// assert_eq!(Permission::SendToGroup.role(), "webpubsub.sendToGroup");
/// assert_eq!(Permission::JoinLeaveGroup.role_for("room1"), "webpubsub.joinLeaveGroup.room1");
/// assert_eq!(Permission::SendToGroup.to_string(), "sendToGroup");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// May send messages to groups.
    SendToGroup,
    /// May join and leave groups.
    JoinLeaveGroup,
}

impl Permission {
    /// The name used in REST paths: `sendToGroup` or `joinLeaveGroup`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendToGroup => "sendToGroup",
            Self::JoinLeaveGroup => "joinLeaveGroup",
        }
    }

    /// The role granting this permission over every group, e.g. `webpubsub.sendToGroup`.
    #[must_use]
    pub fn role(self) -> String {
        format!("webpubsub.{}", self.as_str())
    }

    /// The role granting this permission over one group, e.g. `webpubsub.sendToGroup.room1`.
    #[must_use]
    pub fn role_for(self, group: &str) -> String {
        format!("webpubsub.{}.{group}", self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client access token says about the client: user id, roles,
/// groups, lifetime and protocol.
///
/// Every setting is optional; the default is an anonymous token for the
/// default endpoint, valid for [one hour](DEFAULT_TOKEN_LIFETIME).
///
/// ```
/// use std::time::Duration;
/// use webpubsub::client_access::{ClientAccessOptions, Permission};
///
/// let options = ClientAccessOptions::new()
///     .user_id("alice")
///     .role(Permission::JoinLeaveGroup.role())
///     .role(Permission::SendToGroup.role_for("room1"))
///     .group("room1")
///     .expires_after(Duration::from_secs(10 * 60));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientAccessOptions {
    pub(crate) user_id: Option<String>,
    roles: Vec<String>,
    groups: Vec<String>,
    expires_after: Duration,
    protocol: ClientProtocol,
    issued_at: Option<SystemTime>,
    claims: Vec<(String, Value)>,
}

impl Default for ClientAccessOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Claim names the token sets itself; custom claims with these names are dropped.
const RESERVED_CLAIMS: [&str; 7] = ["aud", "exp", "iat", "nbf", "sub", "role", "webpubsub.group"];

impl ClientAccessOptions {
    /// An anonymous token for the default endpoint, valid for one hour.
    pub fn new() -> Self {
        Self {
            user_id: None,
            roles: Vec::new(),
            groups: Vec::new(),
            expires_after: DEFAULT_TOKEN_LIFETIME,
            protocol: ClientProtocol::Default,
            issued_at: None,
            claims: Vec::new(),
        }
    }

    /// The user id of the connection (the `sub` claim).
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds a role, such as `webpubsub.joinLeaveGroup` or
    /// `webpubsub.sendToGroup.room1`; see [`Permission`].
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Adds several roles.
    pub fn roles<I>(mut self, roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Adds a group the connection joins as soon as it connects.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Adds several groups joined on connect.
    pub fn groups<I>(mut self, groups: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// How long the token can be used to connect (whole seconds; default one
    /// hour). The service checks it only when the client connects: an open
    /// connection outlives its token.
    pub fn expires_after(mut self, lifetime: Duration) -> Self {
        self.expires_after = lifetime;
        self
    }

    /// The endpoint the client connects to (default: [`ClientProtocol::Default`]).
    pub fn protocol(mut self, protocol: ClientProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The issue time written in the token (default: now). Useful for
    /// reproducible tokens in tests.
    pub fn issued_at(mut self, time: SystemTime) -> Self {
        self.issued_at = Some(time);
        self
    }

    /// Adds a custom claim; the service passes it to the `connect` event's
    /// `claims`. Names the token sets itself (`aud`, `exp`, `iat`, `nbf`,
    /// `sub`, `role`, `webpubsub.group`) are ignored here; setting a name
    /// twice keeps the last value.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return self;
        }
        let value = value.into();
        match self.claims.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => *existing = value,
            None => self.claims.push((name, value)),
        }
        self
    }
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
impl ClientAccessOptions {
    pub(crate) fn protocol_value(&self) -> ClientProtocol {
        self.protocol
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.expires_after
    }

    pub(crate) fn role_list(&self) -> &[String] {
        &self.roles
    }

    pub(crate) fn group_list(&self) -> &[String] {
        &self.groups
    }

    /// Whether custom claims were added.
    #[cfg(feature = "entra")]
    pub(crate) fn has_claims(&self) -> bool {
        !self.claims.is_empty()
    }
}

/// The claims of a client token, in the order the other SDKs write them.
struct ClientClaims<'a> {
    options: &'a ClientAccessOptions,
    iat: u64,
    exp: u64,
    aud: &'a str,
}

impl Serialize for ClientClaims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.options;
        let mut map = serializer.serialize_map(None)?;
        if !o.roles.is_empty() {
            map.serialize_entry("role", &o.roles)?;
        }
        if !o.groups.is_empty() {
            map.serialize_entry("webpubsub.group", &o.groups)?;
        }
        map.serialize_entry("iat", &self.iat)?;
        map.serialize_entry("exp", &self.exp)?;
        map.serialize_entry("aud", self.aud)?;
        if let Some(user) = &o.user_id {
            map.serialize_entry("sub", user)?;
        }
        for (name, value) in &o.claims {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A signed client access URL: the base URL, the token and the two joined.
///
/// Serializes as `{"baseUrl": …, "token": …, "url": …}`, the shape the
/// official SDKs return. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAccess {
    base_url: String,
    token: String,
    url: String,
}

impl ClientAccess {
    /// The WebSocket URL without the token, e.g. `wss://demo.webpubsub.azure.com/client/hubs/chat`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The access token, for clients that send it in an `Authorization: Bearer` header.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The URL to connect to: `{base_url}?access_token={token}`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL to connect to, by value.
    #[must_use]
    pub fn into_url(self) -> String {
        self.url
    }
}

impl fmt::Debug for ClientAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAccess")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Signs client access URLs for one hub, locally, with the access key.
///
/// No request to the service is made, so an application that only runs an
/// upstream can hand out URLs too. The token is an HS256 JWT whose audience
/// is `{endpoint}/client/hubs/{hub}` with the endpoint's `http(s)` scheme;
/// the URL uses `ws(s)`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use webpubsub::client_access::{ClientAccessOptions, ClientAccessSigner};
///
/// let signer = ClientAccessSigner::from_connection_string(
///     "Endpoint=https://demo.webpubsub.azure.com;AccessKey=secret;Version=1.0;",
///     "chat",
/// )?;
/// let access = signer.client_access(
///     &ClientAccessOptions::new()
///         .user_id("alice")
///         .issued_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
/// );
/// assert_eq!(access.base_url(), "wss://demo.webpubsub.azure.com/client/hubs/chat");
/// assert!(access.url().starts_with("wss://demo.webpubsub.azure.com/client/hubs/chat?access_token=ey"));
/// # Ok::<(), webpubsub::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientAccessSigner {
    key: AccessKey,
    /// `http(s)://host[:port]`, no trailing `/`.
    http_base: String,
    /// `ws(s)://host[:port]`, no trailing `/`.
    ws_base: String,
    hub: String,
}

impl ClientAccessSigner {
    /// A signer for `hub` of the service named by a connection string.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::MissingConnectionStringKey`] when it has no `AccessKey`;
    /// - [`ConfigError::InvalidHub`] when `hub` is not a valid hub name.
    pub fn new(connection: &ConnectionString, hub: impl Into<String>) -> Result<Self, ConfigError> {
        let hub = crate::names::HubName::new(hub)?.into();
        let key = connection
            .access_key()
            .ok_or(ConfigError::MissingConnectionStringKey { key: "AccessKey" })?
            .clone();
        Ok(Self::from_parts(key, connection.endpoint(), hub))
    }

    /// A signer for a checked hub name of the service at `endpoint` (`http(s)`).
    pub(crate) fn from_parts(key: AccessKey, endpoint: &url::Url, hub: String) -> Self {
        let http_base = endpoint.as_str().trim_end_matches('/').to_owned();
        let ws_base = ws_base(&http_base);
        Self {
            key,
            http_base,
            ws_base,
            hub,
        }
    }

    /// The access key tokens are signed with.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn key(&self) -> &AccessKey {
        &self.key
    }

    /// The service endpoint, `http(s)://host[:port]` without a trailing `/`.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn endpoint(&self) -> &str {
        &self.http_base
    }

    /// Parses `connection_string` and builds a signer for `hub`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionString::parse`] and [`new`](Self::new).
    pub fn from_connection_string(
        connection_string: &str,
        hub: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        Self::new(&ConnectionString::parse(connection_string)?, hub)
    }

    /// The hub this signer signs for.
    #[must_use]
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// Signs a token and builds the URL a client connects to.
    #[must_use]
    pub fn client_access(&self, options: &ClientAccessOptions) -> ClientAccess {
        let path = options.protocol.path();
        let aud = format!("{}{path}{}", self.http_base, self.hub);
        let iat = options.issued_at.map_or_else(jwt::unix_now, |t| {
            t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
        });
        let claims = ClientClaims {
            options,
            iat,
            exp: iat.saturating_add(options.expires_after.as_secs()),
            aud: &aud,
        };
        let token = jwt::sign(&self.key, &claims);
        let base_url = format!("{}{path}{}", self.ws_base, self.hub);
        let url = format!("{base_url}?access_token={token}");
        ClientAccess {
            base_url,
            token,
            url,
        }
    }

    /// Signs a token and returns only the URL to connect to.
    #[must_use]
    pub fn client_access_url(&self, options: &ClientAccessOptions) -> String {
        self.client_access(options).into_url()
    }
}

/// `ws(s)://host[:port]` for `http(s)://host[:port]`.
fn ws_base(http_base: &str) -> String {
    match http_base.strip_prefix("https") {
        Some(rest) => format!("wss{rest}"),
        None => format!("ws{}", http_base.strip_prefix("http").unwrap_or(http_base)),
    }
}

#[cfg(feature = "entra")]
impl ClientAccess {
    /// The access of a token the service issued (`:generateToken`) for
    /// `hub` of `endpoint` (`http(s)://host[:port]`, no trailing `/`).
    pub(crate) fn from_service_token(
        endpoint: &str,
        hub: &str,
        protocol: ClientProtocol,
        token: String,
    ) -> Self {
        let base_url = format!("{}{}{hub}", ws_base(endpoint), protocol.path());
        // A JWT is URL-safe already; anything else the service might send is escaped.
        const ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let url = format!(
            "{base_url}?access_token={}",
            percent_encoding::utf8_percent_encode(&token, ESCAPE)
        );
        Self {
            base_url,
            token,
            url,
        }
    }
}

impl fmt::Debug for ClientAccessSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAccessSigner")
            .field("endpoint", &self.http_base)
            .field("hub", &self.hub)
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn signer(endpoint: &str) -> ClientAccessSigner {
        ClientAccessSigner::from_connection_string(
            &format!("Endpoint={endpoint};AccessKey={KEY};Version=1.0;"),
            "chat",
        )
        .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The client vector of `service.md` §4.2, byte for byte.
    #[test]
    fn token_matches_the_spec_vector() {
        let access = signer("http://127.0.0.1:8080").client_access(
            &ClientAccessOptions::new()
                .user_id("alice")
                .role(Permission::JoinLeaveGroup.role())
                .role(Permission::SendToGroup.role_for("room1"))
                .group("room1")
                .issued_at(at(1_700_000_000)),
        );
        assert_eq!(access.token(), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjpbIndlYnB1YnN1Yi5qb2luTGVhdmVHcm91cCIsIndlYnB1YnN1Yi5zZW5kVG9Hcm91cC5yb29tMSJdLCJ3ZWJwdWJzdWIuZ3JvdXAiOlsicm9vbTEiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODA4MC9jbGllbnQvaHVicy9jaGF0Iiwic3ViIjoiYWxpY2UifQ.bTkvVk9rpFRgvXoIaXxZRlYmyiuut37OnOmrgTtlnbE");
        assert_eq!(access.base_url(), "ws://127.0.0.1:8080/client/hubs/chat");
        assert_eq!(
            access.url(),
            format!(
                "ws://127.0.0.1:8080/client/hubs/chat?access_token={}",
                access.token()
            )
        );
    }

    #[test]
    fn https_endpoints_give_wss_urls_and_protocols_change_the_path() {
        let s = signer("https://Demo.WebPubSub.azure.com/");
        let mqtt = s.client_access(&ClientAccessOptions::new().protocol(ClientProtocol::Mqtt));
        assert_eq!(
            mqtt.base_url(),
            "wss://demo.webpubsub.azure.com/clients/mqtt/hubs/chat"
        );
        let sio = s.client_access(&ClientAccessOptions::new().protocol(ClientProtocol::SocketIo));
        assert_eq!(
            sio.base_url(),
            "wss://demo.webpubsub.azure.com/clients/socketio/hubs/chat"
        );
    }

    #[test]
    fn debug_hides_the_token_and_the_key() {
        let s = signer("https://demo.webpubsub.azure.com");
        let access = s.client_access(&ClientAccessOptions::new());
        assert!(!format!("{access:?}").contains(access.token()));
        assert!(!format!("{s:?}").contains(KEY));
    }

    #[test]
    fn signer_needs_a_key_and_a_valid_hub() {
        let err =
            ClientAccessSigner::from_connection_string("Endpoint=http://x", "chat").unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingConnectionStringKey { key: "AccessKey" }
        );
        let err =
            ClientAccessSigner::from_connection_string("Endpoint=http://x;AccessKey=k", "9chat")
                .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidHub { .. }));
    }
}
