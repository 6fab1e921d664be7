//! [`ServiceClientBuilder`]: the settings of a [`WebPubSubServiceClient`],
//! checked once when it is built.

use std::time::Duration;

use url::Url;

use super::transport::{Auth, Transport};
use super::{RetryPolicy, WebPubSubServiceClient};
use crate::client_access::ClientAccessSigner;
use crate::config::ConfigError;
use crate::config::ConnectionString;

/// How long one attempt of a call may take unless told otherwise: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a [`WebPubSubServiceClient`], checked by [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct ServiceClientBuilder {
    credentials: Credentials,
    hub: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    reverse_proxy: Option<String>,
}

impl ServiceClientBuilder {
    /// The defaults: [`DEFAULT_TIMEOUT`], a 10 s connect timeout,
    /// [`RetryPolicy::default`], a new HTTP client, no reverse proxy.
    pub(super) fn new(connection: &ConnectionString, hub: String) -> Self {
        Self::from_credentials(Credentials::Key(connection.clone()), hub)
    }

    /// As [`new`](Self::new), for a Microsoft Entra ID credential.
    #[cfg(feature = "entra")]
    pub(super) fn entra(
        endpoint: String,
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
        hub: String,
    ) -> Self {
        Self::from_credentials(
            Credentials::Entra {
                endpoint,
                credential,
            },
            hub,
        )
    }

    fn from_credentials(credentials: Credentials, hub: String) -> Self {
        Self {
            credentials,
            hub,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            http: None,
            reverse_proxy: None,
        }
    }

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
    ///
    /// With a Microsoft Entra ID credential, mind its redirect policy: the
    /// client this builder makes itself follows no redirects, so a bearer
    /// token never goes anywhere but the endpoint (or the reverse proxy).
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
    /// - [`ConfigError::InvalidEndpoint`] (feature `entra`) for a credential's
    ///   endpoint that is not a bare `http(s)` URL, or is `http://` to a host
    ///   other than `localhost`, `127.0.0.0/8` or `::1`: bearer tokens travel
    ///   over TLS only, except to a local emulator (the same rule applies to
    ///   a reverse proxy);
    /// - [`ConfigError::InvalidHub`] for an invalid hub name;
    /// - [`ConfigError::InvalidReverseProxy`] for a proxy that is not an `http(s)` URL;
    /// - [`ConfigError::HttpClient`] when the HTTP client cannot be set up.
    pub fn build(self) -> Result<WebPubSubServiceClient, ConfigError> {
        let hub: String = crate::names::HubName::new(self.hub)?.into();
        let (endpoint, auth, signer, follow_redirects) = match self.credentials {
            Credentials::Key(connection) => {
                let signer = ClientAccessSigner::new(&connection, hub.clone())?;
                let auth = Auth::Key(signer.key().clone());
                (signer.endpoint().to_owned(), auth, Some(signer), true)
            }
            #[cfg(feature = "entra")]
            Credentials::Entra {
                endpoint,
                credential,
            } => {
                let endpoint = entra_endpoint(&endpoint)?;
                let auth = Auth::Bearer(super::bearer::BearerTokens::new(credential));
                (endpoint, auth, None, false)
            }
        };
        #[cfg(feature = "entra")]
        let bearer = matches!(auth, Auth::Bearer(_));
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
                #[cfg(feature = "entra")]
                if bearer && !super::bearer::may_carry_bearer(&url) {
                    return Err(invalid(NO_BEARER_OVER_HTTP.to_owned()));
                }
                Ok(url)
            })
            .transpose()?;
        let http = match self.http {
            Some(http) => http,
            None => default_http_client(self.connect_timeout, follow_redirects)?,
        };
        let transport = Transport {
            http,
            endpoint,
            proxy,
            auth,
            retry: self.retry,
            timeout: self.timeout,
        };
        Ok(WebPubSubServiceClient::from_parts(hub, transport, signer))
    }
}

/// What a client authenticates with.
#[allow(clippy::large_enum_variant)] // one per builder, moved once
enum Credentials {
    /// A connection string with an `AccessKey`.
    Key(ConnectionString),
    /// A Microsoft Entra ID credential, and the endpoint as given.
    #[cfg(feature = "entra")]
    Entra {
        endpoint: String,
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(connection) => f.debug_tuple("Key").field(connection).finish(),
            #[cfg(feature = "entra")]
            Self::Entra {
                endpoint,
                credential,
            } => f
                .debug_struct("Entra")
                .field("endpoint", endpoint)
                .field("credential", credential)
                .finish(),
        }
    }
}

/// Why an `http://` URL to a remote host is refused with a credential.
#[cfg(feature = "entra")]
const NO_BEARER_OVER_HTTP: &str = "Microsoft Entra ID tokens are sent over https only \
     (http is allowed for localhost, 127.0.0.0/8 and ::1, e.g. a local emulator); use https://";

/// The endpoint of a credential client, `http(s)://host[:port]` without a
/// trailing `/`, checked.
#[cfg(feature = "entra")]
fn entra_endpoint(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidEndpoint {
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "give only the scheme, host and port, e.g. https://demo.webpubsub.azure.com",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry a user name or password"));
    }
    if !super::bearer::may_carry_bearer(&url) {
        return Err(invalid(NO_BEARER_OVER_HTTP));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The HTTP client used when the application gives none.
fn default_http_client(
    connect_timeout: Duration,
    follow_redirects: bool,
) -> Result<reqwest::Client, ConfigError> {
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::default()
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(redirects)
        .user_agent(concat!("webpubsub-rust/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::HttpClient {
            reason: e.to_string(),
        })
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
    /// # async fn run(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>)
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
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
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
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
    ) -> ServiceClientBuilder {
        ServiceClientBuilder::entra(endpoint.into(), credential, hub.into())
    }
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
}
