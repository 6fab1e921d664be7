//! Signing client access URLs with an access key: [`ClientAccessSigner`]
//! and the [`ClientAccess`] it gives.

use std::fmt;
use std::time::UNIX_EPOCH;

use super::options::{ClientAccessOptions, ClientClaims};
use crate::config::{AccessKey, ConfigError, ConnectionString};
use crate::jwt;

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

    /// A signer for `hub` of the service at `endpoint` (`http(s)://host[:port]`),
    /// with `key`: for a tool that knows its key and endpoint without a
    /// connection string (the emulator).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHub`] for a hub name the service refuses.
    ///
    /// ```
    /// use webpubsub::client_access::{ClientAccessOptions, ClientAccessSigner};
    /// use webpubsub::config::AccessKey;
    ///
    /// let endpoint = url::Url::parse("http://localhost:8080")?;
    /// let signer = ClientAccessSigner::with_key(AccessKey::new("k")?, &endpoint, "chat")?;
    /// let url = signer.client_access_url(&ClientAccessOptions::new());
    /// assert!(url.starts_with("ws://localhost:8080/client/hubs/chat?access_token="));
    /// assert!(ClientAccessSigner::with_key(AccessKey::new("k")?, &endpoint, "no spaces").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_key(
        key: AccessKey,
        endpoint: &url::Url,
        hub: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let hub = crate::names::HubName::new(hub)?.into();
        Ok(Self::from_parts(key, endpoint, hub))
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
        let path = options.protocol_value().path();
        let aud = format!("{}{path}{}", self.http_base, self.hub);
        let iat = options.issue_time().map_or_else(jwt::unix_now, |t| {
            t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
        });
        let claims = ClientClaims {
            options,
            iat,
            exp: iat.saturating_add(options.lifetime().as_secs()),
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
        protocol: super::options::ClientProtocol,
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
    use crate::client_access::options::{ClientProtocol, Permission};
    use std::time::Duration;
    use std::time::SystemTime;

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
