//! Microsoft Entra ID access tokens for the REST API (feature `entra`):
//! asked from a [`TokenCredential`], cached, and refreshed once for every
//! caller waiting on it.
//!
//! The rules, from `keyless.md` §1 and §6.3 (which cite the sources):
//!
//! - `Authorization: Bearer <Entra token>` replaces the HS256 JWT; path,
//!   query and body of every operation stay the same (the REST API
//!   reference, *reference-rest-api-data-plane*);
//! - scope [`SCOPE`] (the Python SDK's default `credential_scopes`, the Java
//!   SDK's `WPS_DEFAULT_SCOPE`; the service checks the audience
//!   `https://webpubsub.azure.com`, Azure/azure-webpubsub issue #600);
//! - a cached token is reused while it has more than [`REFRESH_MARGIN`]
//!   (5 minutes, `azure_core` 1.1's `BearerTokenAuthorizationPolicy`
//!   margin) left to live;
//! - `azure_core`'s policy refuses non-TLS URLs; we refuse them too, except
//!   loopback hosts, so a local emulator over `http` works
//!   ([`may_carry_bearer`]);
//! - one refresh at a time (a `tokio` mutex around it, the cache checked
//!   again once it is held), so 20 calls arriving with an empty cache ask
//!   the credential once;
//! - a `401` from the service drops the cached token, so the next call asks
//!   for a new one; the failed call itself is not repeated.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use http::HeaderValue;

use super::ServiceError;

/// The scope asked for: the Web PubSub data plane's `.default` scope.
pub(crate) const SCOPE: &str = "https://webpubsub.azure.com/.default";

/// A token with less life left than this is refreshed before use.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A cached `Authorization` value and when its token expires (Unix seconds).
struct Cached {
    header: HeaderValue,
    expires_on: i64,
}

impl Cached {
    /// Whether the token still has more than [`REFRESH_MARGIN`] to live.
    fn is_fresh(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let margin = i64::try_from(REFRESH_MARGIN.as_secs()).unwrap_or(i64::MAX);
        self.expires_on > now.saturating_add(margin)
    }
}

/// The Entra tokens of one client, shared by its clones.
pub(crate) struct BearerTokens {
    credential: Arc<dyn TokenCredential>,
    cached: Mutex<Option<Cached>>,
    /// Held by the one caller that asks the credential.
    refresh: tokio::sync::Mutex<()>,
}

impl BearerTokens {
    pub(crate) fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            credential,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// `Bearer <token>`, from the cache or, when it is stale, from the credential.
    pub(crate) async fn authorization(
        &self,
        operation: &'static str,
    ) -> Result<HeaderValue, ServiceError> {
        if let Some(header) = self.fresh() {
            return Ok(header);
        }
        let _refreshing = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(header) = self.fresh() {
            return Ok(header);
        }
        let token = self
            .credential
            .get_token(&[SCOPE], None)
            .await
            .map_err(|source| ServiceError::Credential { operation, source })?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.token.secret()))
            .map_err(|_| ServiceError::Credential {
                operation,
                source: azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "the credential returned a token that cannot be sent in an HTTP header",
                ),
            })?;
        header.set_sensitive(true);
        tracing::debug!(target: "webpubsub::client", operation,
            expires_on = token.expires_on.unix_timestamp(), "got a Microsoft Entra token");
        *self.lock() = Some(Cached {
            header: header.clone(),
            expires_on: token.expires_on.unix_timestamp(),
        });
        Ok(header)
    }

    /// Forgets the cached token if it is still `rejected` (the service
    /// answered `401` to it), so the next call asks for a new one.
    pub(crate) fn rejected(&self, rejected: &HeaderValue) {
        let mut cached = self.lock();
        if cached.as_ref().is_some_and(|c| c.header == rejected) {
            *cached = None;
        }
    }

    fn fresh(&self) -> Option<HeaderValue> {
        self.lock()
            .as_ref()
            .filter(|c| c.is_fresh())
            .map(|c| c.header.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokens")
            .field("credential", &self.credential)
            .field("scope", &SCOPE)
            .finish_non_exhaustive()
    }
}

/// Whether bearer tokens may go to `url`: always over `https`; over
/// `http` only to a loopback host (`localhost`, `127.0.0.0/8`, `::1`),
/// such as a local emulator.
pub(crate) fn may_carry_bearer(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_go_over_https_or_to_loopback_only() {
        for (url, allowed) in [
            ("https://demo.webpubsub.azure.com", true),
            ("https://10.0.0.1:8443", true),
            ("http://localhost:8080", true),
            ("http://LOCALHOST", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.8.9.10", true),
            ("http://[::1]:8080", true),
            ("http://demo.webpubsub.azure.com", false),
            ("http://localhost.example.com", false),
            ("http://10.0.0.1", false),
            ("http://[::2]", false),
            ("http://[::ffff:127.0.0.1]", false),
        ] {
            let parsed = url::Url::parse(url).unwrap();
            assert_eq!(may_carry_bearer(&parsed), allowed, "{url}");
        }
    }

    #[test]
    fn a_token_is_fresh_until_five_minutes_before_it_expires() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let cached = |expires_on| Cached {
            header: HeaderValue::from_static("Bearer t"),
            expires_on,
        };
        assert!(cached(now + 3600).is_fresh());
        assert!(cached(now + 301 + 5).is_fresh());
        assert!(!cached(now + 299).is_fresh());
        assert!(!cached(now - 10).is_fresh());
    }
}
