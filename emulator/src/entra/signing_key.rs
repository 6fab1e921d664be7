//! The RS256 key of the emulator's Microsoft Entra ID: signs its access
//! tokens, publishes itself as a JWK, and checks tokens presented back.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use webpubsub::signing::unix_now;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const SKEW: u64 = 5 * 60;

/// Why a bearer token of the emulator's issuer was refused (logged, never
/// sent: the REST API answers 401 with no body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EntraError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is not RS256 (`alg` must be RS256)")]
    Algorithm,
    #[error("the token's `kid` is not the emulator's signing key")]
    UnknownKey,
    #[error("the RS256 signature does not match the emulator's signing key")]
    Signature,
    #[error("the issuer is not the emulator's ({0})")]
    Issuer(String),
    #[error("the audience is not `{0}`")]
    Audience(String),
    #[error("the token has no `exp`, or it has passed")]
    Expired,
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the token was not issued to the emulator's app registration: {0}")]
    NotTheApp(&'static str),
}

/// An RSA-2048 key made at startup, with its key id.
pub(crate) struct SigningKey {
    pair: KeyPair,
    kid: String,
    /// Modulus and exponent, big-endian without leading zeros.
    public: PublicKeyComponents<Vec<u8>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh RSA-2048 key; `None` if the crypto library fails.
    pub(crate) fn generate() -> Option<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).ok()?;
        let public = PublicKeyComponents {
            n: pair
                .public_key()
                .modulus()
                .big_endian_without_leading_zero()
                .to_vec(),
            e: pair
                .public_key()
                .exponent()
                .big_endian_without_leading_zero()
                .to_vec(),
        };
        let kid = format!("emulator-{}", uuid::Uuid::new_v4().simple());
        Some(Self { pair, kid, public })
    }

    /// The key as a JWK of a `keys` document.
    pub(crate) fn jwk(&self) -> Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.public.n),
            "e": URL_SAFE_NO_PAD.encode(&self.public.e),
        })
    }

    /// `claims` as a compact RS256 JWT with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> Option<String> {
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .ok()?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Some(token)
    }

    /// Checks an access token presented back: `alg` RS256 with this key's
    /// `kid` and signature, `iss` exactly `issuer`, `aud` exactly
    /// `audience` (or a list holding it), `exp` (required) and `nbf` (if
    /// present) with 5 minutes of skew. Returns the claims.
    pub(crate) fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Map<String, Value>, EntraError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(EntraError::Malformed);
        };
        let header = decode_json(header)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(EntraError::Algorithm);
        }
        if header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str()) {
            return Err(EntraError::UnknownKey);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| EntraError::Malformed)?;
        let signed = token
            .get(..token.len().saturating_sub(signature_part_len(token)))
            .ok_or(EntraError::Malformed)?;
        self.public
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
            .map_err(|_| EntraError::Signature)?;
        let Value::Object(claims) = decode_json(payload)? else {
            return Err(EntraError::Malformed);
        };
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss != issuer {
            return Err(EntraError::Issuer(webpubsub::upstream::excerpt(iss)));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(EntraError::Audience(audience.to_owned()));
        }
        let now = unix_now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(EntraError::Expired)?;
        if exp.saturating_add(SKEW) < now {
            return Err(EntraError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
            if nbf > now.saturating_add(SKEW) {
                return Err(EntraError::NotYetValid);
            }
        }
        Ok(claims)
    }
}

/// The length of the last `.`-separated part plus its dot.
fn signature_part_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |i| token.len() - i)
}

fn decode_json(part: &str) -> Result<Value, EntraError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| EntraError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| EntraError::Malformed)
}

/// The `alg` of a JWT's header, if it has one.
pub(crate) fn algorithm(token: &str) -> Option<String> {
    let header = decode_json(token.split('.').next()?).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const ISS: &str = "http://127.0.0.1:1/t/v2.0";
    const AUD: &str = "https://webpubsub.azure.com";

    fn claims(iss: &str, aud: &str, exp_offset: i64) -> Value {
        let now = unix_now() as i64;
        serde_json::json!({ "iss": iss, "aud": aud, "iat": now, "nbf": now, "exp": now + exp_offset })
    }

    /// `token` with one character of its signature changed.
    fn tampered(token: &str) -> String {
        let at = token.len() - 20;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        format!("{}{swapped}{}", &token[..at], &token[at + 1..])
    }

    #[test]
    fn own_tokens_verify_and_others_are_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let good = key.sign(&claims(ISS, AUD, 3600)).unwrap();
        assert!(key.verify(&good, ISS, AUD).is_ok());
        let rows = [
            (
                other.sign(&claims(ISS, AUD, 3600)).unwrap(),
                EntraError::UnknownKey,
            ),
            (
                key.sign(&claims("http://x/v2.0", AUD, 3600)).unwrap(),
                EntraError::Issuer("http://x/v2.0".into()),
            ),
            (
                key.sign(&claims(ISS, "api://x", 3600)).unwrap(),
                EntraError::Audience(AUD.into()),
            ),
            (
                key.sign(&claims(ISS, AUD, -600)).unwrap(),
                EntraError::Expired,
            ),
            (tampered(&good), EntraError::Signature),
            ("a.b".to_owned(), EntraError::Malformed),
        ];
        for (token, error) in rows {
            assert_eq!(key.verify(&token, ISS, AUD), Err(error));
        }
    }
}
