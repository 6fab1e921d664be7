//! [`ServiceClientBuilder`]: the settings of a [`WebPubSubServiceClient`],
//! checked once when it is built.

use std::time::Duration;

use url::Url;

use super::transport::Transport;
use super::{RetryPolicy, WebPubSubServiceClient};
use crate::client_access::ClientAccessSigner;
use crate::config::ConnectionString;
use crate::ConfigError;

/// How long one attempt of a call may take unless told otherwise: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The defaults: [`DEFAULT_TIMEOUT`], a 10 s connect timeout,
    /// [`RetryPolicy::default`], a new HTTP client, no reverse proxy.
    pub(super) fn new(connection: &ConnectionString, hub: String) -> Self {
        Self {
            connection: connection.clone(),
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
            None => default_http_client(self.connect_timeout)?,
        };
        let transport = Transport {
            http,
            endpoint: signer.endpoint().to_owned(),
            proxy,
            key: signer.key().clone(),
            retry: self.retry,
            timeout: self.timeout,
        };
        Ok(WebPubSubServiceClient::from_parts(
            self.hub, transport, signer,
        ))
    }
}

/// The HTTP client used when the application gives none.
fn default_http_client(connect_timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("webpubsub-rust/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::HttpClient {
            reason: e.to_string(),
        })
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
