//! Signing as the service signs, for tools that play its part (the
//! `webpubsub-emulator` crate, test doubles): HMAC-SHA256 with an access
//! key, HS256 JSON Web Tokens, their clock, and which connection ids must
//! never be signed. These are the functions this crate checks with, so
//! what such a tool signs is exactly what this crate accepts.
//!
//! (Client access URLs are signed with
//! [`ClientAccessSigner`](crate::client_access::ClientAccessSigner), and
//! event signatures with [`AccessKey::signature`].)
//!
//! ```
//! use base64::Engine as _;
//! use webpubsub::config::AccessKey;
//! use webpubsub::signing;
//!
//! let key = AccessKey::new("local-key")?;
//! let now = signing::unix_now();
//! let token = signing::sign_jwt(&key, &serde_json::json!({ "aud": "http://localhost/api", "exp": now + 60 }));
//!
//! // The service's check: the tag over `header.payload`.
//! let (signed, tag) = token.rsplit_once('.').unwrap();
//! let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag)?;
//! assert!(signing::verify_mac(&key, signed.as_bytes(), &tag));
//! assert!(!signing::verify_mac(&AccessKey::new("other")?, signed.as_bytes(), &tag));
//!
//! // A connection id shaped like a token's signed part is never signed.
//! assert!(signing::is_token_signing_input(signed.as_bytes()));
//! assert!(!signing::is_token_signing_input(b"0f9c97a2"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;

use crate::config::AccessKey;

/// Checks an HMAC-SHA256 `tag` of `message` under `key`, in constant time.
#[must_use]
pub fn verify_mac(key: &AccessKey, message: &[u8], tag: &[u8]) -> bool {
    key.verify(message, tag)
}

/// Signs `claims` as a compact HS256 JWT with `key`, as the service signs
/// its tokens (header `{"alg":"HS256","typ":"JWT"}`).
///
/// # Panics
///
/// When `claims` cannot be serialised as JSON (a map with non-string keys,
/// a `Serialize` impl that fails); claims of strings, numbers and
/// `serde_json::Value`s always can.
#[must_use]
pub fn sign_jwt(key: &AccessKey, claims: &impl Serialize) -> String {
    crate::jwt::sign(key, claims)
}

/// Seconds since the Unix epoch (0 before 1970): the clock of `iat`, `nbf`
/// and `exp`.
#[must_use]
pub fn unix_now() -> u64 {
    crate::jwt::unix_now()
}

/// Whether `connection_id` has the shape of a token's signed part
/// (`<base64 JOSE header>.<anything>`): the upstream refuses such an id
/// ([`Rejection::TokenShapedConnectionId`](crate::upstream::Rejection::TokenShapedConnectionId)),
/// as signing it would hand out a token signature, so a tool must not send
/// an event for it.
#[must_use]
pub fn is_token_signing_input(connection_id: &[u8]) -> bool {
    crate::upstream::is_token_signing_input(connection_id)
}
