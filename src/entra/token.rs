//! One Entra ID access token: split, decoded, its RS256 signature and its
//! claims checked.
//!
//! A compact JWS is `base64url(header) . base64url(claims) . base64url(sig)`.
//! Only `RS256` is accepted (RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256),
//! which is what Microsoft Entra ID signs access tokens with; every other
//! `alg`, `none` and the HMAC family included, is refused before any key is
//! looked at, so a token cannot pick a weaker check.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::upstream::BearerRefusal;

/// The longest token read at all (Entra access tokens are 1–3 KiB).
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Unverified<'a> {
    /// `base64url(header) . base64url(claims)`: what the signature covers.
    pub(crate) signed: &'a str,
    pub(crate) signature: Vec<u8>,
    pub(crate) kid: String,
    pub(crate) claims: Claims,
}

/// The JOSE header fields read.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

/// The claims read. Entra tokens carry more; only these take part.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: Option<String>,
    #[serde(default)]
    pub(crate) aud: Audience,
    pub(crate) exp: Option<f64>,
    pub(crate) nbf: Option<f64>,
    pub(crate) tid: Option<String>,
    pub(crate) oid: Option<String>,
    /// The caller's client id in v1.0 tokens.
    pub(crate) appid: Option<String>,
    /// The caller's client id in v2.0 tokens.
    pub(crate) azp: Option<String>,
}

/// `aud`: one string or a list of them (RFC 7519 §4.1.3).
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audience {
    pub(crate) fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(aud) => aud == wanted,
            Self::Many(list) => list.iter().any(|aud| aud == wanted),
            Self::None => false,
        }
    }
}

/// Splits and decodes `token`; refuses anything but a well-formed RS256
/// JWS with a `kid`.
pub(crate) fn parse(token: &str) -> Result<Unverified<'_>, BearerRefusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(BearerRefusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BearerRefusal::Malformed);
    };
    let header: Header = decode_json(header)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(BearerRefusal::Algorithm);
    }
    let kid = header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or(BearerRefusal::Malformed)?;
    let claims: Claims = decode_json(claims)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| BearerRefusal::Malformed)?;
    let signed_len = token.len() - signature_len(token);
    Ok(Unverified {
        signed: token.get(..signed_len).unwrap_or_default(),
        signature,
        kid,
        claims,
    })
}

/// The length of `.<signature>` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, BearerRefusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| BearerRefusal::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| BearerRefusal::Malformed)
}

/// An RSA public key from a JWKS entry (`n`, `e` as big-endian bytes).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaKey {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.len() * 8)
    }
}

impl Unverified<'_> {
    /// Checks the signature with `key`.
    pub(crate) fn verify(&self, key: &RsaKey) -> Result<(), BearerRefusal> {
        RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            self.signed.as_bytes(),
            &self.signature,
        )
        .map_err(|_| BearerRefusal::BadSignature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn part(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn only_rs256_with_a_kid_is_read() {
        let claims = part(r#"{"aud":"a"}"#);
        let sig = part("sig");
        for (header, expected) in [
            (r#"{"alg":"none","kid":"k"}"#, BearerRefusal::Algorithm),
            (r#"{"alg":"HS256","kid":"k"}"#, BearerRefusal::Algorithm),
            (r#"{"alg":"RS512","kid":"k"}"#, BearerRefusal::Algorithm),
            (r#"{"alg":"rs256","kid":"k"}"#, BearerRefusal::Algorithm),
            (r#"{"kid":"k"}"#, BearerRefusal::Algorithm),
            (r#"{"alg":"RS256"}"#, BearerRefusal::Malformed),
            (r#"{"alg":"RS256","kid":""}"#, BearerRefusal::Malformed),
            (r#"[1]"#, BearerRefusal::Malformed),
        ] {
            let token = format!("{}.{claims}.{sig}", part(header));
            assert_eq!(parse(&token).unwrap_err(), expected, "{header}");
        }
        let token = format!("{}.{claims}.{sig}", part(r#"{"alg":"RS256","kid":"k"}"#));
        let read = parse(&token).unwrap();
        assert_eq!(read.kid, "k");
        assert!(read.claims.aud.contains("a"));
        assert_eq!(read.signed, token.rsplit_once('.').unwrap().0);
        assert_eq!(read.signature, b"sig");
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let header = part(r#"{"alg":"RS256","kid":"k"}"#);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for token in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            &format!("{header}.!!.c"),
            &format!("{header}.{}.c", part("not json")),
            &format!("{header}.{}.%%", part("{}")),
            &format!("{header}.{}.c", part(r#"{"exp":"soon"}"#)),
            &long,
        ] {
            assert!(parse(token).is_err(), "{token:.40}");
        }
    }

    proptest::proptest! {
        /// Any text, and any three base64url parts of any bytes, is read
        /// or refused: never a panic.
        #[test]
        fn any_input_is_read_or_refused(
            text in ".{0,200}",
            parts in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..80), 0..5),
        ) {
            let _ = parse(&text);
            let joined: Vec<String> = parts.iter().map(|p| URL_SAFE_NO_PAD.encode(p)).collect();
            let _ = parse(&joined.join("."));
            let header = part(r#"{"alg":"RS256","kid":"k"}"#);
            let _ = parse(&format!("{header}.{}", joined.join(".")));
        }
    }

    #[test]
    fn audience_is_a_string_or_a_list() {
        let one: Claims = serde_json::from_str(r#"{"aud":"x"}"#).unwrap();
        let many: Claims = serde_json::from_str(r#"{"aud":["y","x"]}"#).unwrap();
        let none: Claims = serde_json::from_str("{}").unwrap();
        assert!(one.aud.contains("x") && many.aud.contains("x"));
        assert!(!one.aud.contains("y") && !none.aud.contains("x"));
    }
}
