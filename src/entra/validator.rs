//! The built bearer check: settings checked once, then every event's
//! `Authorization: Bearer` token checked against the tenant's keys, with
//! the tokens that passed remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;
use sha2::{Digest as _, Sha256};

use super::keys;
use super::settings::{check_url, EntraValidation, MULTI_TENANT_ALIASES, PUBLIC_CLOUD};
use super::token;
use crate::config::ConfigError;
use crate::upstream::bearer::{BearerCheck, BearerSetup};
use crate::upstream::{BearerRefusal, Rejection};

impl EntraValidation {
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
