//! Keyless upstream: Microsoft Entra ID bearer tokens on event requests
//! (feature `entra`).
//!
//! A hub's event handler can be set to authenticate with the Web PubSub
//! resource's managed identity (`auth` type `ManagedIdentity` with a
//! *resource*, the token's audience). The service then sends
//! `Authorization: Bearer <token>` on every event request: an access token
//! issued by Microsoft Entra ID for that resource, signed with RS256 by
//! the tenant's keys. When local auth is disabled on the resource the
//! access keys are deleted and `ce-signature` is no longer sent, so this
//! token is the only proof that an event comes from the service (Microsoft
//! Learn: "Disable local (access key) authentication with Azure Web
//! PubSub Service" and "How to use managed identities for Azure Web PubSub
//! Service").
//!
//! [`EntraValidation`] checks that token, on the
//! [`EventRouter`](crate::EventRouter) and the
//! [`ValidateUpstreamLayer`](crate::upstream::ValidateUpstreamLayer)
//! (`.entra(...)` on their builders):
//!
//! - the signature, RS256 only (any other `alg`, `none` included, is
//!   refused), with a key of the tenant's OpenID discovery document
//!   (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`), fetched
//!   as [the key cache](#keys) describes, never per request;
//! - `iss`: exactly the document's issuer (`https://login.microsoftonline.com/{tenant GUID}/v2.0`
//!   for v2.0 tokens) or, with the public cloud's authority, the v1.0
//!   issuer of the same tenant, `https://sts.windows.net/{tenant GUID}/`
//!   (the version a token gets depends on the resource application's
//!   `accessTokenAcceptedVersion`); no other form, the domain-name form
//!   included. `tid`, when present, must be the tenant's GUID. A tenant
//!   given by domain name is resolved to its GUID through the discovery
//!   document (see [`EntraValidation::new`]);
//! - `exp` and `nbf`, with a clock skew (default 60 s);
//! - `aud`: one of the configured audiences (the resource set on the event
//!   handler: an application ID URI or a client id);
//! - **the caller**: `oid`, `appid` (v1.0) or `azp` (v2.0) must be one of
//!   the allowed callers: the Web PubSub resource's managed identity
//!   (its object id or client id). An audience alone is not enough: any
//!   application in the tenant may be able to get a token for it.
//!
//! Every refusal is `401` with a short text body, logged with its reason.
//!
//! # With access keys
//!
//! Each configured check must pass: access keys configured → a valid
//! `ce-signature` is required; Entra ID configured → a valid bearer token
//! is required; both → both. A keyless resource (local auth disabled)
//! sends no signature: configure Entra ID only. A builder with neither
//! still refuses to build unless `insecure_skip_signature_check()` is
//! called. The abuse-protection `OPTIONS` handshake is answered without
//! either: Microsoft's documentation does not say that the service sends
//! a token there, and the answer (the allowed origin) reveals nothing.
//!
//! # Keys
//!
//! The first event fetches the discovery document and its `jwks_uri`. A
//! token whose `kid` is not cached makes a new fetch at most once per
//! [`key_refresh_interval`](EntraValidation::key_refresh_interval)
//! (default 5 minutes), so made-up `kid`s cannot make the server fetch per
//! request; keys older than 24 hours are fetched again before use. One
//! fetch runs at a time, with a timeout (default 5 s): when the endpoint
//! is down or slow, events are refused with `401` after at most that long.
//!
//! ```no_run
//! use webpubsub::entra::EntraValidation;
//! use webpubsub::EventRouter;
//! # #[derive(Clone)] struct Chat;
//! # #[webpubsub::async_trait] impl webpubsub::EventHandler for Chat {}
//!
//! let router = EventRouter::builder()
//!     .hub("chat", Chat)
//!     .entra(
//!         EntraValidation::new("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!             // The resource set on the hub's event handler.
//!             .audience("api://my-chat-upstream")
//!             // The Web PubSub resource's managed identity (object id).
//!             .allowed_caller("6e7f1a52-0c35-4bde-9d5c-2b5a0c2d3a11"),
//!     )
//!     .build()?;
//! # Ok::<(), webpubsub::ConfigError>(())
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod keys;
pub(crate) mod token;

/// The credential trait the service client takes
/// ([`WebPubSubServiceClient::from_credential`](crate::WebPubSubServiceClient::from_credential)),
/// and its crate (`azure_core` 1.x), so applications need not depend on
/// it themselves.
pub use azure_core::{self, credentials::TokenCredential};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::HeaderMap;
use sha2::{Digest as _, Sha256};

use crate::config::ConfigError;
use crate::router::EventRouterBuilder;
use crate::upstream::bearer::{BearerCheck, BearerSetup};
use crate::upstream::{BearerRefusal, Rejection, ValidateUpstreamBuilder};

/// Microsoft Entra ID's public cloud authority.
pub const PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";

/// How the event handler checks Entra ID bearer tokens; see the
/// [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use webpubsub::entra::EntraValidation;
///
/// let validation = EntraValidation::new("my-tenant-id")
///     .audience("api://my-chat-upstream")
///     .allowed_caller("object-id-of-the-web-pubsub-identity")
///     .clock_skew(Duration::from_secs(30));
/// assert!(format!("{validation:?}").contains("api://my-chat-upstream"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct EntraValidation {
    tenant: String,
    audiences: Vec<String>,
    callers: Vec<String>,
    any_caller: bool,
    authority: String,
    clock_skew: Duration,
    key_refresh_interval: Duration,
    fetch_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for EntraValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraValidation")
            .field("tenant", &self.tenant)
            .field("audiences", &self.audiences)
            .field("callers", &self.callers)
            .field("any_caller", &self.any_caller)
            .field("authority", &self.authority)
            .field("clock_skew", &self.clock_skew)
            .field("key_refresh_interval", &self.key_refresh_interval)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

impl EntraValidation {
    /// Tokens of the tenant `tenant_id`: its GUID
    /// (`72f988bf-86f1-41af-91ab-2d7cd011db47`), or one of its verified
    /// domain names (`contoso.onmicrosoft.com`, `contoso.com`).
    ///
    /// Entra ID serves a tenant's discovery document under either name
    /// (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`), but a
    /// token always names its tenant by GUID: `tid` is the GUID, and `iss`
    /// is `https://login.microsoftonline.com/{GUID}/v2.0` (v2.0) or
    /// `https://sts.windows.net/{GUID}/` (v1.0) (Microsoft Learn, "Access
    /// token claims reference" and "Access tokens in the Microsoft identity
    /// platform"). So with a domain name, the validator learns the GUID
    /// from the `issuer` of the discovery document it fetches for the keys
    /// (the first path segment of that URL; Entra ID answers a document
    /// asked for by domain name with the GUID form there), and compares
    /// `tid` and `iss` with that GUID. Until a document has named a GUID,
    /// no token is accepted: a document whose `issuer` names none makes the
    /// fetch fail, logged under `webpubsub::entra` with the issuer it
    /// named, and events are refused with `401` (`the tenant's signing keys
    /// are unavailable`). The GUID is learned again with every fetch of the
    /// keys. A GUID given here is used as it is, never replaced by the
    /// document's.
    ///
    /// Building refuses a `tenant_id` that is empty or has characters
    /// other than ASCII letters, digits, `-` and `.`, and the multi-tenant
    /// aliases `common`, `organizations` and `consumers` (they name no
    /// single tenant; Microsoft Learn, "OpenID Connect on the Microsoft
    /// identity platform"), with [`ConfigError::InvalidEntraValidation`].
    ///
    /// ```
    /// use webpubsub::entra::EntraValidation;
    /// use webpubsub::{ConfigError, EventRouter};
    /// # #[derive(Clone)] struct Chat;
    /// # #[webpubsub::async_trait] impl webpubsub::EventHandler for Chat {}
    ///
    /// let by_domain = EntraValidation::new("contoso.onmicrosoft.com")
    ///     .audience("api://my-chat-upstream")
    ///     .allowed_caller("6e7f1a52-0c35-4bde-9d5c-2b5a0c2d3a11");
    /// assert!(EventRouter::builder().hub("chat", Chat).entra(by_domain).build().is_ok());
    ///
    /// let every_tenant = EntraValidation::new("common")
    ///     .audience("api://my-chat-upstream")
    ///     .allowed_caller("6e7f1a52-0c35-4bde-9d5c-2b5a0c2d3a11");
    /// let error = EventRouter::builder().hub("chat", Chat).entra(every_tenant).build().unwrap_err();
    /// assert!(matches!(error, ConfigError::InvalidEntraValidation { .. }));
    /// ```
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant: tenant_id.into(),
            audiences: Vec::new(),
            callers: Vec::new(),
            any_caller: false,
            authority: PUBLIC_CLOUD.to_owned(),
            clock_skew: Duration::from_secs(60),
            key_refresh_interval: Duration::from_secs(5 * 60),
            fetch_timeout: Duration::from_secs(5),
            http: None,
        }
    }

    /// Accepts tokens for `audience`: the resource configured on the hub's
    /// event handler (an application ID URI such as `api://my-app`, or a
    /// client id). Call again to accept several (a v2.0 token's `aud` is
    /// always the client id; a v1.0 token's is whichever the service asked
    /// for). At least one is required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens whose caller is `id`: compared with the token's `oid`
    /// (object id), `appid` (client id, v1.0) and `azp` (client id, v2.0).
    /// Give the Web PubSub resource's managed identity. At least one is
    /// required, unless [`insecure_allow_any_caller`](Self::insecure_allow_any_caller).
    pub fn allowed_caller(mut self, id: impl Into<String>) -> Self {
        self.callers.push(id.into());
        self
    }

    /// Accepts any caller with a valid token for the audience — **any
    /// application of the tenant that can get such a token can then send
    /// events**, unless the resource application requires assignment
    /// (`appRoleAssignmentRequired`) and only the Web PubSub identity is
    /// assigned.
    pub fn insecure_allow_any_caller(mut self) -> Self {
        self.any_caller = true;
        self
    }

    /// The Entra ID authority (default [`PUBLIC_CLOUD`]); e.g.
    /// `https://login.microsoftonline.us` for a national cloud, or a local
    /// emulator's URL. `https` only, except loopback hosts (`127.0.0.1`,
    /// `[::1]`, `localhost`), which may use `http`.
    pub fn authority(mut self, url: impl Into<String>) -> Self {
        self.authority = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// How far `exp` and `nbf` may be off (default 60 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The shortest time between two fetches of the keys (default 5
    /// minutes): a token with an unknown `kid` makes a fetch only when the
    /// last one is at least this old.
    pub fn key_refresh_interval(mut self, interval: Duration) -> Self {
        self.key_refresh_interval = interval;
        self
    }

    /// How long one fetch of the discovery document and keys may take
    /// (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The HTTP client that fetches the keys (default: a new `reqwest`
    /// client with rustls).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The discovery document's URL.
    fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant
        )
    }

    pub(crate) fn build(self) -> Result<BearerValidator, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidEntraValidation { reason };
        let tenant_ok = !self.tenant.is_empty()
            && self
                .tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
        if !tenant_ok {
            return Err(invalid(format!(
                "tenant id `{}` is not a GUID or domain name",
                self.tenant
            )));
        }
        if MULTI_TENANT_ALIASES
            .iter()
            .any(|alias| self.tenant.eq_ignore_ascii_case(alias))
        {
            return Err(invalid(format!(
                "tenant id `{}` names no single tenant: give your tenant's GUID or one of \
                 its verified domain names",
                self.tenant
            )));
        }
        if self.audiences.iter().all(|a| a.trim().is_empty()) {
            return Err(invalid(
                "no audience: add the resource set on the event handler with `.audience(..)`"
                    .to_owned(),
            ));
        }
        if !self.any_caller && self.callers.iter().all(|c| c.trim().is_empty()) {
            return Err(invalid(
                "no allowed caller: add the Web PubSub resource's managed identity with \
                 `.allowed_caller(..)` (or call `insecure_allow_any_caller()`)"
                    .to_owned(),
            ));
        }
        check_url(&self.authority).map_err(|e| invalid(format!("authority: {e}")))?;
        let http = match self.http.clone() {
            Some(client) => client,
            None => reqwest::Client::builder()
                .build()
                .map_err(|e| invalid(format!("HTTP client: {e}")))?,
        };
        let keys = keys::KeyStore::new(
            self.discovery_url(),
            self.tenant.clone(),
            http,
            self.fetch_timeout,
            self.key_refresh_interval,
        );
        Ok(BearerValidator {
            v1_issuer: self.authority == PUBLIC_CLOUD,
            settings: self,
            keys,
            verified: Mutex::default(),
        })
    }
}

/// The `{tenant}` values of Entra ID's endpoints that stand for many
/// tenants (Microsoft Learn, "OpenID Connect on the Microsoft identity
/// platform"): their discovery document's issuer is a template, so the
/// tokens' tenant could not be pinned.
const MULTI_TENANT_ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

/// `https`, or `http` to a loopback host.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(format!(
            "`{url}` is not https (plain http is allowed for loopback hosts only)"
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The built check, shared by every request.
#[derive(Debug)]
pub(crate) struct BearerValidator {
    settings: EntraValidation,
    /// Whether the v1.0 issuer (`https://sts.windows.net/{tenant GUID}/`)
    /// is accepted besides the discovery document's own: with the public
    /// cloud's authority only.
    v1_issuer: bool,
    keys: keys::KeyStore,
    /// Tokens that passed, by SHA-256 of their text: the service sends the
    /// same token with every event until it renews it (about an hour), and
    /// an RS256 check costs ~15 µs where this lookup costs well under one.
    /// Only the time claims are checked again on a hit; entries from keys
    /// of an older fetch are checked in full again.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// What is kept of a token that passed.
#[derive(Debug, Clone, Copy)]
struct Verified {
    exp: f64,
    nbf: Option<f64>,
    generation: u64,
}

/// The most tokens remembered (the service renews its token hourly; a few
/// identities at most call one handler).
const VERIFIED_CAPACITY: usize = 64;

/// `entra(…)` on the builders of the router and of the validation layer.
macro_rules! entra_builder_method {
    ($($builder:ty),+) => {$(
        impl $builder {
            /// Checks every event's Microsoft Entra ID bearer token
            /// (`Authorization: Bearer`, sent when the hub's event handler
            /// authenticates with a managed identity). With access keys
            /// configured too, both checks must pass; see [`crate::entra`].
            /// `build()` fails with [`ConfigError::InvalidEntraValidation`]
            /// when `validation` is incomplete or its tenant is not a GUID or a
            /// domain name ([`EntraValidation::new`] says how a domain name
            /// is resolved to the tenant's GUID).
            #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
            pub fn entra(self, validation: EntraValidation) -> Self {
                self.bearer_check(Arc::new(validation))
            }
        }
    )+};
}

entra_builder_method!(EventRouterBuilder, ValidateUpstreamBuilder);

impl BearerSetup for EntraValidation {
    fn build(&self) -> Result<Arc<dyn BearerCheck>, ConfigError> {
        Ok(Arc::new(self.clone().build()?))
    }
}

#[async_trait::async_trait]
impl BearerCheck for BearerValidator {
    async fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        self.validate(headers).await
    }
}

impl BearerValidator {
    /// Checks the request's `Authorization: Bearer` token.
    pub(crate) async fn validate(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let token = bearer_token(headers)?;
        self.check(token).await.map_err(Rejection::BearerRefused)
    }

    async fn check(&self, text: &str) -> Result<(), BearerRefusal> {
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .copied();
        if let Some(seen) = remembered {
            if self.keys.fresh_generation() == Some(seen.generation) {
                return self.check_time(seen.exp, seen.nbf);
            }
        }
        let token = token::parse(text)?;
        let found = self.keys.key(&token.kid).await?;
        token.verify(&found.key)?;
        let claims = &token.claims;
        let exp = claims.exp.ok_or(BearerRefusal::Malformed)?;
        self.check_time(exp, claims.nbf)?;
        let issuer_ok = claims
            .iss
            .as_deref()
            .is_some_and(|iss| issuer_accepted(iss, &found, self.v1_issuer));
        let tenant_ok = claims
            .tid
            .as_deref()
            .is_none_or(|tid| tid.eq_ignore_ascii_case(&found.tenant_id));
        if !issuer_ok || !tenant_ok {
            return Err(BearerRefusal::WrongIssuer);
        }
        if !self
            .settings
            .audiences
            .iter()
            .any(|aud| claims.aud.contains(aud))
        {
            return Err(BearerRefusal::WrongAudience);
        }
        let caller_ok = self.settings.any_caller
            || [&claims.oid, &claims.appid, &claims.azp]
                .into_iter()
                .flatten()
                .any(|id| {
                    self.settings
                        .callers
                        .iter()
                        .any(|allowed| allowed.eq_ignore_ascii_case(id))
                });
        if !caller_ok {
            return Err(BearerRefusal::WrongCaller);
        }
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(
            digest,
            Verified {
                exp,
                nbf: claims.nbf,
                generation: found.generation,
            },
        );
        Ok(())
    }

    /// `exp` and `nbf` against the clock, with the skew.
    fn check_time(&self, exp: f64, nbf: Option<f64>) -> Result<(), BearerRefusal> {
        let now = crate::jwt::unix_now() as f64;
        let skew = self.settings.clock_skew.as_secs_f64();
        if exp + skew < now {
            return Err(BearerRefusal::Expired);
        }
        if nbf.is_some_and(|nbf| nbf - skew > now) {
            return Err(BearerRefusal::NotYetValid);
        }
        Ok(())
    }
}

/// The v1.0 issuer is this, the tenant's GUID, and `/`.
const V1_ISSUER_PREFIX: &str = "https://sts.windows.net/";

/// Whether `iss` is the discovery document's issuer or, when `v1` (the
/// public cloud), the v1.0 issuer of the same tenant GUID. Nothing else:
/// not the tenant's domain-name form, not another host's issuer.
fn issuer_accepted(iss: &str, found: &keys::Found, v1: bool) -> bool {
    iss == found.issuer
        || (v1
            && iss
                .strip_prefix(V1_ISSUER_PREFIX)
                .and_then(|rest| rest.strip_suffix('/'))
                == Some(found.tenant_id.as_str()))
}

/// Whether `text` is a GUID in its usual form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case), as
/// Entra ID writes tenant ids.
pub(crate) fn is_guid(text: &str) -> bool {
    let groups = [8, 4, 4, 4, 12];
    let mut parts = text.split('-');
    groups.iter().all(|&len| {
        parts
            .next()
            .is_some_and(|part| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()))
    }) && parts.next().is_none()
}

/// The token of the one `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(http::header::AUTHORIZATION) {
            Rejection::BearerRefused(BearerRefusal::Malformed)
        } else {
            Rejection::BearerMissing
        });
    };
    let value = value
        .to_str()
        .map_err(|_| Rejection::BearerRefused(BearerRefusal::Malformed))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::BearerMissing);
    }
    match token.trim() {
        "" => Err(Rejection::BearerRefused(BearerRefusal::Malformed)),
        token => Ok(token),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_when_built() {
        let ok = || {
            EntraValidation::new("tenant-1")
                .audience("api://a")
                .allowed_caller("mi")
        };
        assert!(ok().build().is_ok());
        let bad = [
            EntraValidation::new("").audience("a").allowed_caller("c"),
            EntraValidation::new("t/../x")
                .audience("a")
                .allowed_caller("c"),
            EntraValidation::new("t").allowed_caller("c"),
            EntraValidation::new("t").audience(" ").allowed_caller("c"),
            EntraValidation::new("t").audience("a"),
            ok().authority("http://login.example.com"),
            ok().authority("ftp://127.0.0.1"),
            ok().authority("not a url"),
            EntraValidation::new("common")
                .audience("a")
                .allowed_caller("c"),
            EntraValidation::new("Organizations")
                .audience("a")
                .allowed_caller("c"),
            EntraValidation::new("consumers")
                .audience("a")
                .allowed_caller("c"),
        ];
        for settings in bad {
            let shown = format!("{settings:?}");
            assert!(
                matches!(
                    settings.build(),
                    Err(ConfigError::InvalidEntraValidation { .. })
                ),
                "{shown}"
            );
        }
        assert!(ok().authority("http://127.0.0.1:9000/").build().is_ok());
        assert!(ok().authority("http://[::1]:9000").build().is_ok());
        assert!(ok().authority("http://localhost:9000").build().is_ok());
        assert!(EntraValidation::new("t")
            .audience("a")
            .insecure_allow_any_caller()
            .build()
            .is_ok());
    }

    #[test]
    fn a_multi_tenant_alias_is_refused_with_what_to_give_instead() {
        let error = EntraValidation::new("common")
            .audience("a")
            .allowed_caller("c")
            .build()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("GUID or one of its verified domain names"),
            "{error}"
        );
        // A domain name merely containing an alias is a domain name.
        assert!(EntraValidation::new("common.example")
            .audience("a")
            .allowed_caller("c")
            .build()
            .is_ok());
    }

    #[test]
    fn guids_are_recognised_in_either_case_and_nothing_else_is() {
        for guid in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "00000000-0000-0000-0000-000000000000",
        ] {
            assert!(is_guid(guid), "{guid}");
        }
        for other in [
            "",
            "contoso.com",
            "contoso.onmicrosoft.com",
            "common",
            "72f988bf86f141af91ab2d7cd011db47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db477",
            "72f988bf-86f1-41af-91ab-2d7cd011db47-",
            "72f988bg-86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab2-d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db47.example",
        ] {
            assert!(!is_guid(other), "{other}");
        }
    }

    #[test]
    fn only_the_document_issuer_and_on_the_public_cloud_its_v1_sibling_are_accepted() {
        let guid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let found = keys::Found {
            key: token::RsaKey {
                n: vec![1],
                e: vec![1],
            },
            issuer: format!("https://login.microsoftonline.com/{guid}/v2.0"),
            tenant_id: guid.to_owned(),
            generation: 1,
        };
        let v1 = format!("https://sts.windows.net/{guid}/");
        assert!(issuer_accepted(&found.issuer, &found, true));
        assert!(issuer_accepted(&found.issuer, &found, false));
        assert!(issuer_accepted(&v1, &found, true));
        assert!(
            !issuer_accepted(&v1, &found, false),
            "v1.0 on the public cloud only"
        );
        for refused in [
            "https://sts.windows.net/contoso.com/".to_owned(),
            "https://login.microsoftonline.com/contoso.com/v2.0".to_owned(),
            format!("https://sts.windows.net/{guid}"),
            format!("https://sts.windows.net/{guid}//"),
            format!("https://sts.windows.net/{guid}/v2.0"),
            "https://sts.windows.net/5b1d2c3e-2222-4d3c-9b22-6f1e4d3cae02/".to_owned(),
            format!("https://login.microsoftonline.com/{guid}/"),
            format!("https://login.microsoftonline.us/{guid}/v2.0"),
            format!("http://login.microsoftonline.com/{guid}/v2.0"),
            String::new(),
        ] {
            assert!(!issuer_accepted(&refused, &found, true), "{refused}");
        }
    }

    #[test]
    fn the_bearer_token_is_read_from_one_authorization_header() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            map
        };
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["bearer  abc "])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(Rejection::BearerMissing));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcg=="])),
            Err(Rejection::BearerMissing)
        );
        for refused in [&["Bearer"][..], &["Bearer  "], &["Bearer a", "Bearer b"]] {
            assert_eq!(
                bearer_token(&headers(refused)),
                Err(Rejection::BearerRefused(BearerRefusal::Malformed)),
                "{refused:?}"
            );
        }
    }
}
