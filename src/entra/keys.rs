//! The tenant's signing keys: found through its OpenID discovery document,
//! cached, refreshed at a bounded rate.
//!
//! Microsoft Entra ID rolls its signing keys without a fixed schedule and
//! always lists more than one; a token names its key by `kid`, and the
//! identity platform's documentation calls checking for new keys every 24
//! hours reasonable (learn.microsoft.com, "Access tokens in the Microsoft
//! identity platform", and "Signing key rollover"). So:
//!
//! - the first token makes the first fetch (discovery document, then its
//!   `jwks_uri`);
//! - a token whose `kid` is not cached makes a fetch, at most once per
//!   refresh interval (default 5 minutes), so made-up `kid`s cannot make the
//!   server fetch per request;
//! - keys older than 24 hours are fetched again before use (kept if the
//!   fetch fails);
//! - one fetch at a time: concurrent requests wait for it and then read its
//!   result; each fetch has a timeout, so a slow endpoint cannot hold a
//!   request longer than that.
//!
//! A fetch also settles the tenant's GUID, which `tid` and the v1.0 issuer
//! are compared with: the configured tenant when it is a GUID, else (a
//! domain name) the GUID that the discovery document's `issuer` names as
//! its first path segment. A document whose issuer names none makes the
//! fetch fail: its keys are not used, so no token is accepted before the
//! GUID is known.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use super::token::RsaKey;
use crate::upstream::BearerRefusal;

/// Keys older than this are fetched again before use.
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest discovery document or key set read.
const MAX_DOCUMENT: usize = 1024 * 1024;
/// The most keys kept from one key set.
const MAX_KEYS: usize = 64;

/// Where keys come from, and how often they may be fetched.
#[derive(Debug)]
pub(crate) struct KeyStore {
    discovery_url: String,
    /// The configured tenant: a GUID, or a domain name whose GUID the
    /// discovery document names.
    tenant: String,
    http: reqwest::Client,
    fetch_timeout: Duration,
    refresh_interval: Duration,
    cached: RwLock<Cached>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cached {
    keys: HashMap<String, RsaKey>,
    issuer: Option<String>,
    tenant_id: Option<String>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Counts successful fetches: tokens checked under older keys are
    /// checked again (a key may have been withdrawn).
    generation: u64,
}

/// A key, and the issuer and tenant GUID of the document it came from.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) key: RsaKey,
    pub(crate) issuer: String,
    /// What `tid` must be: the configured tenant when it is a GUID, else
    /// the GUID in the discovery document's issuer.
    pub(crate) tenant_id: String,
    /// Which fetch the key came from.
    pub(crate) generation: u64,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeyStore {
    pub(crate) fn new(
        discovery_url: String,
        tenant: String,
        http: reqwest::Client,
        fetch_timeout: Duration,
        refresh_interval: Duration,
    ) -> Self {
        Self {
            discovery_url,
            tenant,
            http,
            fetch_timeout,
            refresh_interval,
            cached: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key `kid`, fetching keys first when the cache allows it.
    pub(crate) async fn key(&self, kid: &str) -> Result<Found, BearerRefusal> {
        if let Some(found) = self.cached(kid, false) {
            return Ok(found);
        }
        {
            // Waits for a fetch under way (the first requests after start
            // all wait for the first fetch), then fetches if still needed
            // and the interval allows.
            let _one_at_a_time = self.fetching.lock().await;
            if self.cached(kid, false).is_none() && self.may_fetch() {
                self.fetch().await;
            }
        }
        if let Some(found) = self.cached(kid, true) {
            return Ok(found);
        }
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        Err(if cached.fetched.is_none() {
            BearerRefusal::KeysUnavailable
        } else {
            BearerRefusal::UnknownKey
        })
    }

    /// The cached key `kid`; with `stale_ok` false, `None` when the keys are
    /// older than a day (so that they get fetched again first).
    fn cached(&self, kid: &str, stale_ok: bool) -> Option<Found> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        let fresh = cached.fetched.is_some_and(|at| at.elapsed() < MAX_AGE);
        if !fresh && !stale_ok {
            return None;
        }
        Some(Found {
            key: cached.keys.get(kid)?.clone(),
            issuer: cached.issuer.clone()?,
            tenant_id: cached.tenant_id.clone()?,
            generation: cached.generation,
        })
    }

    /// Which fetch the cached keys came from; `None` when they are older
    /// than a day (to be fetched again).
    pub(crate) fn fresh_generation(&self) -> Option<u64> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        let fresh = cached.fetched.is_some_and(|at| at.elapsed() < MAX_AGE);
        fresh.then_some(cached.generation)
    }

    /// Whether the refresh interval since the last attempt has passed.
    fn may_fetch(&self) -> bool {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.refresh_interval)
    }

    /// Fetches the discovery document and its key set; on failure the cache
    /// keeps what it had, and the failure is logged.
    async fn fetch(&self) {
        self.cached
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .last_attempt = Some(Instant::now());
        let fetched = tokio::time::timeout(self.fetch_timeout, self.fetch_keys()).await;
        match fetched {
            Ok(Ok(Fetched {
                issuer,
                tenant_id,
                keys,
            })) => {
                tracing::debug!(
                    target: "webpubsub::entra",
                    keys = keys.len(),
                    %issuer,
                    %tenant_id,
                    "fetched the Entra ID signing keys"
                );
                let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
                cached.keys = keys;
                cached.issuer = Some(issuer);
                cached.tenant_id = Some(tenant_id);
                cached.fetched = Some(Instant::now());
                cached.generation += 1;
            }
            Ok(Err(reason)) => tracing::warn!(
                target: "webpubsub::entra",
                url = %self.discovery_url,
                "could not fetch the Entra ID signing keys: {reason}"
            ),
            Err(_) => tracing::warn!(
                target: "webpubsub::entra",
                url = %self.discovery_url,
                timeout = ?self.fetch_timeout,
                "could not fetch the Entra ID signing keys: timed out"
            ),
        }
    }

    async fn fetch_keys(&self) -> Result<Fetched, String> {
        let discovery: Discovery = self.get_json(&self.discovery_url).await?;
        let tenant_id = if super::is_guid(&self.tenant) {
            self.tenant.clone()
        } else {
            tenant_id_of_issuer(&discovery.issuer).ok_or_else(|| {
                format!(
                    "the tenant is given by domain name (`{}`) and the discovery document's \
                     issuer `{}` names no tenant GUID, so tokens cannot be checked; \
                     configure the tenant's GUID instead",
                    self.tenant, discovery.issuer
                )
            })?
        };
        super::check_url(&discovery.jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
        let set: KeySet = self.get_json(&discovery.jwks_uri).await?;
        let keys: HashMap<String, RsaKey> = set
            .keys
            .into_iter()
            .filter_map(rsa_key)
            .take(MAX_KEYS)
            .collect();
        if keys.is_empty() {
            return Err(format!("{} lists no RSA signing key", discovery.jwks_uri));
        }
        let issuer = discovery.issuer.replace("{tenantid}", &tenant_id);
        Ok(Fetched {
            issuer,
            tenant_id,
            keys,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
    }
}

/// What one successful fetch yields.
struct Fetched {
    /// The discovery document's issuer, `{tenantid}` filled in.
    issuer: String,
    tenant_id: String,
    keys: HashMap<String, RsaKey>,
}

/// The tenant GUID a discovery document's issuer names: its first path
/// segment (`https://login.microsoftonline.com/{GUID}/v2.0`,
/// `https://sts.windows.net/{GUID}/`), lowercased as Entra ID writes `tid`.
fn tenant_id_of_issuer(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let first = url.path_segments()?.next()?;
    super::is_guid(first).then(|| first.to_ascii_lowercase())
}

/// An RSA signature key of a key set, by `kid`; other entries are skipped.
fn rsa_key(jwk: Jwk) -> Option<(String, RsaKey)> {
    if jwk.kty.as_deref() != Some("RSA") || jwk.usage.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let decode = |v: Option<String>| URL_SAFE_NO_PAD.decode(v?.trim_end_matches('=')).ok();
    let key = RsaKey {
        n: decode(jwk.n)?,
        e: decode(jwk.e)?,
    };
    Some((jwk.kid.filter(|k| !k.is_empty())?, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_signature_keys_with_a_kid_are_kept() {
        let set: KeySet = serde_json::from_str(
            r#"{"keys":[
                {"kty":"RSA","use":"sig","kid":"a","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","use":"enc","kid":"c","n":"AQAB","e":"AQAB"},
                {"kty":"EC","use":"sig","kid":"d","x":"AQAB","y":"AQAB"},
                {"kty":"RSA","use":"sig","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","use":"sig","kid":"f","n":"!!","e":"AQAB"}
            ]}"#,
        )
        .unwrap();
        let mut kids: Vec<_> = set
            .keys
            .into_iter()
            .filter_map(rsa_key)
            .map(|(k, _)| k)
            .collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
    }

    #[test]
    fn the_tenant_guid_is_the_first_path_segment_of_the_issuer() {
        let guid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        for (issuer, expected) in [
            (
                format!("https://login.microsoftonline.com/{guid}/v2.0"),
                Some(guid),
            ),
            (format!("https://sts.windows.net/{guid}/"), Some(guid)),
            (
                format!("https://login.microsoftonline.us/{guid}/v2.0"),
                Some(guid),
            ),
            (
                format!("http://127.0.0.1:9000/{}/v2.0", guid.to_uppercase()),
                Some(guid),
            ),
            (
                "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
                None,
            ),
            (
                "https://login.microsoftonline.com/contoso.com/v2.0".to_owned(),
                None,
            ),
            (
                format!("https://login.microsoftonline.com/v2.0/{guid}"),
                None,
            ),
            (
                format!("https://login.microsoftonline.com/{guid}x/v2.0"),
                None,
            ),
            ("https://login.microsoftonline.com".to_owned(), None),
            (format!("{guid}/v2.0"), None),
            (String::new(), None),
        ] {
            assert_eq!(
                tenant_id_of_issuer(&issuer).as_deref(),
                expected,
                "{issuer}"
            );
        }
    }
}
