//! The MQTT reason codes the emulator uses (3.1.1 return codes, 5.0
//! reason codes) and which of them a CONNACK may refuse with.

use super::packet::V5;

/// 3.1.1 CONNACK return codes the emulator uses.
pub(crate) mod v4 {
    pub(crate) const UNACCEPTABLE_VERSION: u8 = 1;
    pub(crate) const IDENTIFIER_REJECTED: u8 = 2;
    pub(crate) const SERVER_UNAVAILABLE: u8 = 3;
    pub(crate) const NOT_AUTHORIZED: u8 = 5;
}

/// 5.0 reason codes the emulator uses.
pub(crate) mod v5 {
    pub(crate) const UNSPECIFIED: u8 = 0x80;
    pub(crate) const MALFORMED: u8 = 0x81;
    pub(crate) const PROTOCOL_ERROR: u8 = 0x82;
    pub(crate) const UNSUPPORTED_VERSION: u8 = 0x84;
    pub(crate) const CLIENT_ID_NOT_VALID: u8 = 0x85;
    pub(crate) const NOT_AUTHORIZED: u8 = 0x87;
    pub(crate) const SERVER_UNAVAILABLE: u8 = 0x88;
    pub(crate) const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    pub(crate) const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub(crate) const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub(crate) const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub(crate) const TOPIC_NAME_INVALID: u8 = 0x90;
    pub(crate) const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub(crate) const PACKET_TOO_LARGE: u8 = 0x95;
    pub(crate) const QUOTA_EXCEEDED: u8 = 0x97;
    pub(crate) const ADMINISTRATIVE_ACTION: u8 = 0x98;
    pub(crate) const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    pub(crate) const SHARED_NOT_SUPPORTED: u8 = 0x9E;
    pub(crate) const WILDCARDS_NOT_SUPPORTED: u8 = 0xA2;
}

/// The CONNACK failure codes a `connect` handler may choose, per version
/// (MQTT 3.1.1 §3.2.2.3, MQTT 5.0 §3.2.2.2).
pub(crate) fn valid_refusal(version: u8, code: u8) -> bool {
    if version == V5 {
        matches!(
            code,
            0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
        )
    } else {
        (1..=5).contains(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::V4;
    use super::*;

    #[test]
    fn refusal_codes_are_checked_per_version() {
        assert!(valid_refusal(V4, 5));
        assert!(!valid_refusal(V4, 0x87));
        assert!(valid_refusal(V5, 0x8A));
        assert!(
            !valid_refusal(V5, 0x8B),
            "0x8B is server shutting down, not a CONNACK code"
        );
        assert!(!valid_refusal(V5, 5));
    }
}
