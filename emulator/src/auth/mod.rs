//! Checking the HS256 tokens that REST callers and clients present, and
//! the internal key that signs client tokens when local auth is disabled.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod reconnect_key;

pub(crate) use reconnect_key::ReconnectKey;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use webpubsub::config::AccessKey;
use webpubsub::signing::{unix_now, verify_mac};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const SKEW: u64 = 5 * 60;

/// Why a token was refused (logged, never sent: the service answers 401 with no body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is not HS256")]
    Algorithm,
    #[error("the signature does not match the access key")]
    Signature,
    #[error("the token has no `exp`, or it has passed")]
    Expired,
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the audience `{0}` is not this URL")]
    Audience(String),
    #[error("local auth is disabled: access-key tokens are not accepted")]
    LocalAuthDisabled,
}

/// The emulator's internal key for the client tokens of `:generateToken`
/// when local auth is disabled (the service then signs them with a key of
/// its own, named by `kid`). Random, made at build time, used for nothing
/// else.
#[derive(Clone)]
pub(crate) struct ClientKey {
    kid: String,
    /// The same secret, as the core's verifier takes it.
    key: AccessKey,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

impl ClientKey {
    /// A fresh key from the system's random source (two v4 UUIDs: 244 random bits).
    pub(crate) fn random() -> Self {
        let secret: String = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .map(|u| u.simple().to_string())
            .collect();
        // A 64-character hex string: neither can fail.
        #[allow(clippy::expect_used)]
        let key = AccessKey::new(&secret).expect("a non-blank key");
        #[allow(clippy::expect_used)]
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        Self {
            kid: format!("s-{}", uuid::Uuid::new_v4()),
            key,
            mac,
        }
    }

    /// The key itself, for a client access signer whose tokens
    /// [`resign`](Self::resign) then names.
    pub(crate) fn access_key(&self) -> &AccessKey {
        &self.key
    }

    /// `token` (an HS256 JWT) with `kid` added to its header and signed again.
    pub(crate) fn resign(&self, token: &str) -> Option<String> {
        let payload = token.split('.').nth(1)?;
        let header = serde_json::json!({ "alg": "HS256", "kid": self.kid, "typ": "JWT" });
        let mut out = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let mut mac = self.mac.clone();
        mac.update(out.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        out.push('.');
        out.push_str(&signature);
        Some(out)
    }

    /// Whether `token`'s header names this key.
    pub(crate) fn names(&self, token: &str) -> bool {
        token
            .split('.')
            .next()
            .and_then(|h| decode_json(h).ok())
            .is_some_and(|h| h.get("kid").and_then(Value::as_str) == Some(self.kid.as_str()))
    }

    /// Verifies a token this key signed, as [`verify`] does.
    pub(crate) fn verify(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        verify(token, &self.key)
    }
}

/// Verifies an HS256 token with `key` and returns its claims, after
/// checking `exp` (required) and `nbf` (if present) with 5 minutes of skew.
pub(crate) fn verify(token: &str, key: &AccessKey) -> Result<Map<String, Value>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header: Value = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(AuthError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let signed_len = token.len() - signature_len(token);
    let signed = token.get(..signed_len).ok_or(AuthError::Malformed)?;
    if !verify_mac(key, signed.as_bytes(), &signature) {
        return Err(AuthError::Signature);
    }
    let Value::Object(claims) = decode_json(payload)? else {
        return Err(AuthError::Malformed);
    };
    let now = unix_now();
    let exp = claims
        .get("exp")
        .and_then(number)
        .ok_or(AuthError::Expired)?;
    if exp.saturating_add(SKEW) < now {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(number) {
        if nbf > now.saturating_add(SKEW) {
            return Err(AuthError::NotYetValid);
        }
    }
    Ok(claims)
}

/// The length of the last `.`-separated part plus its dot.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |i| token.len() - i)
}

fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

fn decode_json(part: &str) -> Result<Value, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

/// Checks `aud` against the URLs the token may be for: equal ignoring
/// ASCII case, also after percent-decoding the claim.
pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    accepted: &[&str],
) -> Result<(), AuthError> {
    let aud = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(AuthError::Audience(String::new())),
    };
    for claimed in &aud {
        let decoded = percent_encoding::percent_decode_str(claimed).decode_utf8_lossy();
        for url in accepted {
            let url_decoded = percent_encoding::percent_decode_str(url).decode_utf8_lossy();
            if claimed.eq_ignore_ascii_case(url)
                || decoded.eq_ignore_ascii_case(url)
                || decoded.eq_ignore_ascii_case(&url_decoded)
            {
                return Ok(());
            }
        }
    }
    Err(AuthError::Audience(aud.join(" ")))
}

/// A claim as a list of strings (a single string counts as a list of one).
pub(crate) fn string_list(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use webpubsub::signing::sign_jwt;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    /// §4.1's REST vector (issued in 2023, so only the signature and audience are checked here).
    const REST: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAvYXBpL2h1YnMvY2hhdC86c2VuZD9hcGktdmVyc2lvbj0yMDI0LTEyLTAxIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.0ZKEX_N0vaH3FWU91pHjoBtygXdkfue_l7GqPdm-0xQ";

    fn fresh(key: &str, aud: &str) -> String {
        let now = unix_now();
        sign_jwt(
            &AccessKey::new(key).unwrap(),
            &serde_json::json!({ "aud": aud, "iat": now, "exp": now + 60 }),
        )
    }

    #[test]
    fn the_spec_vector_is_signed_with_the_key_but_has_expired() {
        assert_eq!(
            verify(REST, &AccessKey::new(KEY).unwrap()),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify(REST, &AccessKey::new("other").unwrap()),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn fresh_tokens_verify_and_audiences_compare_loosely() {
        let token = fresh(
            KEY,
            "http://127.0.0.1:8080/api/hubs/Chat/:send?api-version=2024-12-01",
        );
        let claims = verify(&token, &AccessKey::new(KEY).unwrap()).unwrap();
        assert!(check_audience(
            &claims,
            &["HTTP://127.0.0.1:8080/api/hubs/chat/:send?api-version=2024-12-01"]
        )
        .is_ok());
        assert!(check_audience(&claims, &["http://127.0.0.1:8080/api/hubs/chat/:send"]).is_err());
        assert_eq!(
            verify(&token, &AccessKey::new("nope").unwrap()),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in ["", "a", "a.b", "a.b.c.d", "....", "eyJ.eyJ.x", "é.é.é"] {
            assert!(verify(bad, &AccessKey::new(KEY).unwrap()).is_err(), "{bad}");
        }
    }
}
