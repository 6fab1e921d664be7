//! What an application configures for the bearer check: the tenant,
//! audiences, allowed callers, authority and timings ([`EntraValidation`]),
//! and the checks of a URL it names.

use std::fmt;
use std::time::Duration;

/// Microsoft Entra ID's public cloud authority.
pub const PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";

/// How the event handler checks Entra ID bearer tokens; see the
/// [module documentation](crate::entra).
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
    pub(super) tenant: String,
    pub(super) audiences: Vec<String>,
    pub(super) callers: Vec<String>,
    pub(super) any_caller: bool,
    pub(super) authority: String,
    pub(super) clock_skew: Duration,
    pub(super) key_refresh_interval: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) http: Option<reqwest::Client>,
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
    /// identity platform"), with [`ConfigError::InvalidEntraValidation`](crate::config::ConfigError::InvalidEntraValidation).
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
    pub(super) fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant
        )
    }
}

/// The `{tenant}` values of Entra ID's endpoints that stand for many
/// tenants (Microsoft Learn, "OpenID Connect on the Microsoft identity
/// platform"): their discovery document's issuer is a template, so the
/// tokens' tenant could not be pinned.
pub(super) const MULTI_TENANT_ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
