//! What a client access token grants: the endpoint (protocol), the
//! permissions, user, groups, lifetime and custom claims, and the claims
//! they make.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

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

impl ClientAccessOptions {
    pub(crate) fn protocol_value(&self) -> ClientProtocol {
        self.protocol
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.expires_after
    }

    /// The issue time set with [`issued_at`](Self::issued_at), if any.
    pub(crate) fn issue_time(&self) -> Option<SystemTime> {
        self.issued_at
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn role_list(&self) -> &[String] {
        &self.roles
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
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
pub(super) struct ClientClaims<'a> {
    pub(super) options: &'a ClientAccessOptions,
    pub(super) iat: u64,
    pub(super) exp: u64,
    pub(super) aud: &'a str,
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
