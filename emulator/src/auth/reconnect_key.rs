//! The key of reconnection tokens, which let a reliable client resume its
//! connection after its transport broke.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The key of reconnection tokens: random, made when the emulator is
/// built and never derived from the access key, so a token is no signature
/// that anything else (an upstream's `ce-signature` check, the token check)
/// would accept.
#[derive(Clone)]
pub(crate) struct ReconnectKey(Hmac<Sha256>);

impl std::fmt::Debug for ReconnectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReconnectKey(<redacted>)")
    }
}

impl ReconnectKey {
    /// A fresh key from the system's random source (two v4 UUIDs: 244 random bits).
    pub(crate) fn random() -> Self {
        let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        let mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
        Self(mac)
    }

    fn mac(&self, hub: &str, connection_id: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(b"webpubsub-emulator/reconnect\0");
        mac.update(hub.as_bytes());
        mac.update(b"\0");
        mac.update(connection_id.as_bytes());
        mac
    }

    /// The reconnection token of a connection: bound to its hub and id, and
    /// unguessable without this emulator's key.
    pub(crate) fn token(&self, hub: &str, connection_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(hub, connection_id).finalize().into_bytes())
    }

    /// Whether `token` is the token of that connection (constant-time).
    pub(crate) fn verify(&self, hub: &str, connection_id: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(hub, connection_id).verify_slice(&tag).is_ok()
    }
}
