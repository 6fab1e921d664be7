//! The hub's access key: the shared secret behind `ce-signature` and tokens.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ConfigError;

/// An access key of a Web PubSub resource, keyed once for HMAC-SHA256.
///
/// The key is used as its UTF-8 bytes (never base64-decoded), exactly as the
/// service does. Its `Debug` output is redacted, so it can sit inside logged
/// configuration without leaking.
///
/// An empty or blank key is refused ([`ConfigError::EmptyAccessKey`]): its
/// HMAC is public knowledge, so anything "signed" with it would pass for the
/// service. Every builder that takes a key refuses it the same way.
///
/// ```
/// use webpubsub::ConfigError;
/// use webpubsub::config::AccessKey;
///
/// let key = AccessKey::new("primary-key-1")?;
/// assert_eq!(format!("{key:?}"), "AccessKey(<redacted>)");
/// // The signature the service sends for connection `conn-1`:
/// assert_eq!(
///     key.signature("conn-1"),
///     "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
/// );
/// assert_eq!(AccessKey::new(" ").unwrap_err(), ConfigError::EmptyAccessKey);
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
pub struct AccessKey {
    mac: Hmac<Sha256>,
}

impl AccessKey {
    /// Keys HMAC-SHA256 with the UTF-8 bytes of `key`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyAccessKey`] when `key` is empty or only white space.
    pub fn new(key: impl AsRef<str>) -> Result<Self, ConfigError> {
        let key = key.as_ref();
        if key.trim().is_empty() {
            return Err(ConfigError::EmptyAccessKey);
        }
        Ok(Self::unchecked(key))
    }

    /// Keys HMAC-SHA256 with any key, blank ones included: only for
    /// [`testing`](crate::testing), which must be able to sign as an attacker
    /// holding the empty key would.
    pub(crate) fn unchecked(key: &str) -> Self {
        // HMAC accepts keys of any length; this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
        Self { mac }
    }

    /// The raw HMAC-SHA256 of `message` under this key.
    pub(crate) fn mac(&self, message: &[u8]) -> hmac::digest::CtOutput<Hmac<Sha256>> {
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.finalize()
    }

    /// Whether `tag` is the HMAC-SHA256 of `message` under this key (constant-time).
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }

    /// The `ce-signature` entry (`sha256=<lower-case hex>`) the service sends
    /// with events of connection `connection_id`.
    #[must_use]
    pub fn signature(&self, connection_id: &str) -> String {
        let tag = self.mac(connection_id.as_bytes()).into_bytes();
        format!("sha256={}", hex::encode(tag))
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKey(<redacted>)")
    }
}

impl std::str::FromStr for AccessKey {
    type Err = ConfigError;

    fn from_str(key: &str) -> Result<Self, ConfigError> {
        Self::new(key)
    }
}

impl TryFrom<&str> for AccessKey {
    type Error = ConfigError;

    fn try_from(key: &str) -> Result<Self, ConfigError> {
        Self::new(key)
    }
}

impl TryFrom<String> for AccessKey {
    type Error = ConfigError;

    fn try_from(key: String) -> Result<Self, ConfigError> {
        Self::new(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_match_the_spec_vectors() {
        let cases = [
            (
                "7aab239577fd4f24bc919802fb629f5f",
                "0f9c97a2f0bf4706afe87a14e0797b11",
                "sha256=7767effcb3946f3e1de039df4b986ef02c110b1469d02c0a06f41b3b727ab561",
            ),
            (
                "primary-key-1",
                "conn-1",
                "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
            ),
            (
                "secondary-key-2",
                "conn-1",
                "sha256=29bc37a6b8b4a59dc07cfe0d3f9a557af2329100d6ce96f240de256e36b0dea4",
            ),
            (
                "ключ",
                "conn-ü",
                "sha256=6ca32c466a6a8d8cb84eaf6afbfeb2b339e14b55a62208515a57b2f32e60c8a1",
            ),
        ];
        for (key, conn, expected) in cases {
            assert_eq!(
                AccessKey::new(key).unwrap().signature(conn),
                expected,
                "key {key}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = AccessKey::new("super-secret").unwrap();
        assert!(!format!("{key:?}").contains("super-secret"));
    }

    #[test]
    fn empty_and_blank_keys_are_refused() {
        for blank in ["", " ", "\t\n", "\u{3000}"] {
            assert_eq!(
                AccessKey::new(blank).unwrap_err(),
                ConfigError::EmptyAccessKey,
                "{blank:?}"
            );
            assert!(blank.parse::<AccessKey>().is_err());
            assert!(AccessKey::try_from(blank.to_owned()).is_err());
        }
        assert!(AccessKey::new(" k ").is_ok());
    }
}
