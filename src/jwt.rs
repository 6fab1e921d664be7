//! HS256 JSON Web Tokens signed with an [`AccessKey`].
//!
//! The service only ever uses HS256 with the access key, so this is the few
//! lines that takes: `base64url(header) . base64url(claims) . base64url(HMAC)`.
//! `jsonwebtoken` would bring an RSA/EC stack (and a crypto back end to pick)
//! into every upstream-only application for one HMAC; the tests cross-check
//! this module against `jsonwebtoken` in both directions instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::config::AccessKey;

/// `base64url({"alg":"HS256","typ":"JWT"})`: every token starts with it.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Signs `claims` as a compact HS256 JWT.
///
/// The claim types of this crate hold only strings, integers and
/// [`serde_json::Value`]s, so serializing them cannot fail.
pub(crate) fn sign(key: &AccessKey, claims: &impl Serialize) -> String {
    let payload = serde_json::to_vec(claims)
        .unwrap_or_else(|e| unreachable!("token claims always serialize: {e}"));
    let mut token = String::with_capacity(HEADER.len() + payload.len() * 4 / 3 + 48);
    token.push_str(HEADER);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let tag = key.mac(token.as_bytes()).into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a REST API request token: the URL as sent, and its lifetime.
#[derive(Serialize)]
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) struct RestClaims<'a> {
    pub(crate) aud: &'a str,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_constant_is_the_hs256_header() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HEADER).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    /// The REST vector of `service.md` §4.1.
    #[test]
    fn rest_token_matches_the_spec_vector() {
        let key = AccessKey::new("0123456789abcdef0123456789abcdef").unwrap();
        let claims = RestClaims {
            aud: "http://127.0.0.1:8080/api/hubs/chat/:send?api-version=2024-12-01",
            iat: 1_700_000_000,
            exp: 1_700_003_600,
        };
        assert_eq!(
            sign(&key, &claims),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAvYXBpL2h1YnMvY2hhdC86c2VuZD9hcGktdmVyc2lvbj0yMDI0LTEyLTAxIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.0ZKEX_N0vaH3FWU91pHjoBtygXdkfue_l7GqPdm-0xQ"
        );
    }
}
