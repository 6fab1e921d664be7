//! The issuer: its tenant and URLs, the app registration that may ask for
//! tokens, the emulator's managed identity, and the tokens it mints and
//! accepts.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

use super::names::WEBPUBSUB_AUDIENCE;
use super::signing_key::{EntraError, SigningKey};
use crate::sync::lock;
use webpubsub::signing::unix_now;

/// Lifetime of the access tokens it mints, in seconds (as Entra: 1 h).
pub(crate) const TOKEN_LIFETIME: u64 = 3600;
/// An upstream token is minted again when it has less than this left.
const REFRESH_MARGIN: u64 = 5 * 60;

/// The app registration that may use the client-credentials grant.
#[derive(Clone)]
pub(crate) struct AppRegistration {
    pub(crate) client_id: uuid::Uuid,
    pub(crate) secret: String,
    pub(crate) object_id: uuid::Uuid,
}

impl fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("object_id", &self.object_id)
            .finish()
    }
}

/// The emulator's Entra ID.
#[derive(Debug)]
pub(crate) struct Entra {
    pub(crate) tenant: uuid::Uuid,
    key: SigningKey,
    pub(crate) app: AppRegistration,
    /// The managed identity's client id and object id.
    pub(crate) identity: (uuid::Uuid, uuid::Uuid),
    /// `http://{ip}:{port}`: set by `Emulator::start`, else from the
    /// builder's host at first use.
    base: OnceLock<String>,
    fallback_base: String,
    /// Upstream tokens by resource, with their `exp`. One entry per
    /// configured resource at most.
    upstream: Mutex<HashMap<String, (String, u64)>>,
}

impl Entra {
    pub(crate) fn new(
        tenant: uuid::Uuid,
        key: SigningKey,
        app: AppRegistration,
        identity: (uuid::Uuid, uuid::Uuid),
        fallback_base: String,
    ) -> Self {
        Self {
            tenant,
            key,
            app,
            identity,
            base: OnceLock::new(),
            fallback_base,
            upstream: Mutex::new(HashMap::new()),
        }
    }

    /// Fixes the base URL (the emulator's http URL); the first call wins.
    pub(crate) fn set_base(&self, base: String) {
        let _ = self.base.set(base);
    }

    /// `http://{ip}:{port}`.
    pub(crate) fn base(&self) -> &str {
        self.base.get_or_init(|| self.fallback_base.clone())
    }

    /// `{base}/{tenant}/v2.0`.
    pub(crate) fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base(), self.tenant)
    }

    /// The discovery document.
    pub(crate) fn openid_configuration(&self) -> Value {
        let base = self.base();
        let tenant = self.tenant;
        serde_json::json!({
            "issuer": self.issuer(),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "tid", "oid", "sub", "azp", "ver", "idtyp"],
            "tenant_region_scope": "emulator",
        })
    }

    /// The `keys` document.
    pub(crate) fn jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.key.jwk()] })
    }

    /// An app-only v2.0 access token for `audience`, of the principal
    /// `object_id` / `client_id`; with its `exp`.
    pub(crate) fn mint(
        &self,
        audience: &str,
        object_id: uuid::Uuid,
        client_id: uuid::Uuid,
    ) -> Option<(String, u64)> {
        let now = unix_now();
        let exp = now.saturating_add(TOKEN_LIFETIME);
        let claims = serde_json::json!({
            "aud": audience,
            "iss": self.issuer(),
            "iat": now,
            "nbf": now,
            "exp": exp,
            "azp": client_id.to_string(),
            "azpacr": "1",
            "idtyp": "app",
            "oid": object_id.to_string(),
            "sub": object_id.to_string(),
            "tid": self.tenant.to_string(),
            "ver": "2.0",
        });
        Some((self.key.sign(&claims)?, exp))
    }

    /// `claims` signed with the key, as given (for tests).
    pub(crate) fn sign(&self, claims: &Value) -> Option<String> {
        self.key.sign(claims)
    }

    /// The managed identity's token for `resource`, reused until 5 minutes
    /// before it expires.
    pub(crate) fn upstream_token(&self, resource: &str) -> Option<String> {
        let now = unix_now();
        let mut cache = lock(&self.upstream);
        if let Some((token, exp)) = cache.get(resource) {
            if *exp > now.saturating_add(REFRESH_MARGIN) {
                return Some(token.clone());
            }
        }
        let (object_id, client_id) = (self.identity.1, self.identity.0);
        let (token, exp) = self.mint(resource, object_id, client_id)?;
        cache.insert(resource.to_owned(), (token.clone(), exp));
        Some(token)
    }

    /// Checks a REST bearer token: this issuer's, for the Web PubSub
    /// audience, and minted for the app registration — an app-only token
    /// (`idtyp` `app`) of this tenant (`tid`) whose client (`azp`, or v1's
    /// `appid`) is the app's. The managed identity's tokens, which go to
    /// event handlers, are refused whatever their audience.
    pub(crate) fn verify_rest(&self, token: &str) -> Result<Map<String, Value>, EntraError> {
        let claims = self.key.verify(token, &self.issuer(), WEBPUBSUB_AUDIENCE)?;
        let uuid = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .and_then(|v| uuid::Uuid::parse_str(v).ok())
        };
        if uuid("azp").or_else(|| uuid("appid")) != Some(self.app.client_id) {
            return Err(EntraError::NotTheApp(
                "its `azp` (or `appid`) is not the app registration's client id",
            ));
        }
        if claims.get("idtyp").and_then(Value::as_str) != Some("app") {
            return Err(EntraError::NotTheApp("its `idtyp` is not `app`"));
        }
        if uuid("tid") != Some(self.tenant) {
            return Err(EntraError::NotTheApp(
                "its `tid` is not the emulator's tenant",
            ));
        }
        Ok(claims)
    }
}
