//! Checking `ce-signature`: HMAC-SHA256 of `ce-connectionId` under an access key.
//!
//! The same key signs client access tokens and REST tokens (HS256 JWTs: an
//! HMAC-SHA256 of `<header>.<payload>`). A token's signature is therefore a
//! valid `ce-signature` for the "connection id" `<header>.<payload>`: anyone
//! holding one token could forge events. [`is_token_signing_input`] tells
//! those ids apart, and [`verify`] refuses them before looking at any MAC.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use http::HeaderMap;

use super::headers::{self, split_items, Lines};
use super::options::Endpoint;
use super::Rejection;

/// Checks the request's `ce-signature` against the keys of the endpoints
/// that `WebHook-Request-Origin` names (host-less keys apply to every origin).
///
/// Passes when any `sha256=<hex>` entry (comma-joined or on several lines,
/// hex in either case) equals the HMAC under any of those keys. Comparisons
/// are constant-time.
pub(crate) fn verify(endpoints: &[Endpoint], headers: &HeaderMap) -> Result<(), Rejection> {
    verify_lines(
        endpoints,
        headers.get(headers::CE_CONNECTION_ID),
        Lines::all(headers, &headers::CE_SIGNATURE),
        Lines::all(headers, &headers::WEBHOOK_REQUEST_ORIGIN),
    )
}

/// [`verify`] for headers already scanned: the event router's path, which
/// reads every header it needs in one pass.
pub(crate) fn verify_scanned(
    endpoints: &[Endpoint],
    headers: &HeaderMap,
    found: &headers::EventHeaders<'_>,
) -> Result<(), Rejection> {
    verify_lines(
        endpoints,
        found.single.connection_id,
        found.signature_lines(headers),
        found.origin_lines(headers),
    )
}

fn verify_lines(
    endpoints: &[Endpoint],
    connection_id: Option<&http::HeaderValue>,
    signature_lines: Lines<'_>,
    origin_lines: Lines<'_>,
) -> Result<(), Rejection> {
    let connection_id = match connection_id {
        Some(id) if !id.is_empty() => id.as_bytes(),
        _ => {
            return Err(Rejection::MissingHeader(headers::display_name(
                &headers::CE_CONNECTION_ID,
            )))
        }
    };
    if is_token_signing_input(connection_id) {
        return Err(Rejection::TokenShapedConnectionId);
    }
    if signature_lines.is_empty() {
        return Err(Rejection::SignatureMissing);
    }

    let mut any_endpoint = false;
    for endpoint in endpoints {
        let applies = match &endpoint.host {
            None => true,
            Some(host) => split_items(&origin_lines)
                .any(|origin| origin.eq_ignore_ascii_case(host.as_bytes())),
        };
        if !applies {
            continue;
        }
        any_endpoint = true;
        for key in &endpoint.keys {
            let expected = hex_lower(&key.mac(connection_id).into_bytes().into());
            if split_items(&signature_lines).any(|entry| entry_matches(entry, &expected)) {
                return Ok(());
            }
        }
    }
    if any_endpoint {
        Err(Rejection::SignatureMismatch)
    } else if origin_lines.is_empty() {
        Err(Rejection::OriginMissing)
    } else {
        Err(Rejection::OriginNotConfigured)
    }
}

/// Base64 as lenient verifiers read it: either alphabet (`+/` are mapped to
/// `-_` first), padding or not, stray low bits allowed.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `id` could be the signed part of a JSON Web Signature:
/// `<segment>.<anything>` where `<segment>` is base64 (either alphabet,
/// padded or not) of a JSON object, i.e. a JOSE header such as
/// `{"alg":"HS256","typ":"JWT"}`.
///
/// The service's connection ids (hex, base64url, GUIDs) hold no `.` or not
/// such a segment before it; MQTT client ids are chosen by clients, and one
/// chosen to look like a token header is exactly what this refuses.
pub(crate) fn is_token_signing_input(id: &[u8]) -> bool {
    let Some(dot) = id.iter().position(|&b| b == b'.') else {
        return false;
    };
    let segment = id.get(..dot).unwrap_or_default();
    let unpadded = segment
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(&[][..], |last| segment.get(..=last).unwrap_or_default());
    if unpadded.is_empty()
        || !unpadded
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'))
    {
        return false;
    }
    let text: Vec<u8> = unpadded
        .iter()
        .map(|&b| match b {
            b'+' => b'-',
            b'/' => b'_',
            other => other,
        })
        .collect();
    let Ok(decoded) = LENIENT_BASE64.decode(text) else {
        return false;
    };
    let decoded = decoded.as_slice();
    let json = decoded.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(decoded);
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok()
}

/// Whether an entry of `ce-signature` is `sha256=<expected>`: the scheme
/// in any case, the 64 hex digits in either case, compared in constant time.
///
/// The expected MAC is written as hex once per key rather than every entry
/// decoded from hex: `c | 0x20` lowers `A`-`F` and leaves digits and `a`-`f`
/// as they are, and a byte below `0x20` (which could lower into a digit)
/// counts as a difference, so exactly the entries a hex decoder would accept
/// as this MAC match.
fn entry_matches(entry: &[u8], expected: &[u8; 64]) -> bool {
    let Some((scheme, digits)) = entry.split_at_checked(7) else {
        return false;
    };
    if digits.len() != expected.len() || !scheme.eq_ignore_ascii_case(b"sha256=") {
        return false;
    }
    let diff = digits.iter().zip(expected).fold(0u8, |diff, (&c, &e)| {
        diff | ((c | 0x20) ^ e) | u8::from(c < 0x20)
    });
    std::hint::black_box(diff) == 0
}

/// A MAC as lowercase hex, computed without tables indexed by its bytes.
fn hex_lower(tag: &[u8; 32]) -> [u8; 64] {
    // b'0' + n for 0..=9 and b'a' + n - 10 for 10..=15 (39 = b'a' - b'0' - 10).
    let digit = |nibble: u8| b'0' + nibble + u8::from(nibble > 9) * 39;
    let mut hex = [0u8; 64];
    for (pair, &byte) in hex.chunks_exact_mut(2).zip(tag) {
        pair.copy_from_slice(&[digit(byte >> 4), digit(byte & 0x0f)]);
    }
    hex
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::AccessKey;
    use http::HeaderValue;

    fn request(signature: &[&'static str], origin: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            headers::CE_CONNECTION_ID,
            HeaderValue::from_static("conn-1"),
        );
        for s in signature {
            h.append(headers::CE_SIGNATURE, HeaderValue::from_static(s));
        }
        if let Some(o) = origin {
            h.insert(headers::WEBHOOK_REQUEST_ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    const PRIMARY: &str = "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a";
    const SECONDARY: &str =
        "sha256=29bc37a6b8b4a59dc07cfe0d3f9a557af2329100d6ce96f240de256e36b0dea4";
    const SECONDARY_UPPER: &str =
        "SHA256=29BC37A6B8B4A59DC07CFE0D3F9A557AF2329100D6CE96F240DE256E36B0DEA4";

    fn endpoint(host: Option<&str>, keys: &[&str]) -> Endpoint {
        Endpoint {
            host: host.map(Into::into),
            keys: keys.iter().map(|k| AccessKey::new(k).unwrap()).collect(),
        }
    }

    #[test]
    fn any_entry_matching_any_key_passes() {
        let eps = [endpoint(None, &["secondary-key-2"])];
        assert_eq!(
            verify(&eps, &request(&["sha256=00", SECONDARY], None)),
            Ok(())
        );
        assert_eq!(
            verify(
                &eps,
                &request(&["sha256=00, sha256=11", SECONDARY_UPPER], None)
            ),
            Ok(())
        );
        let eps = [endpoint(None, &["old", "primary-key-1"])];
        assert_eq!(verify(&eps, &request(&[PRIMARY], None)), Ok(()));
    }

    #[test]
    fn wrong_missing_and_malformed_signatures_fail() {
        let eps = [endpoint(None, &["primary-key-1"])];
        assert_eq!(
            verify(&eps, &request(&[SECONDARY], None)),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(
            verify(&eps, &request(&[], None)),
            Err(Rejection::SignatureMissing)
        );
        assert_eq!(
            verify(&eps, &request(&["sha256=zz", "md5=1", "sha256"], None)),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn entries_match_as_a_hex_decoder_would_read_them() {
        let tag: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
        let expected = hex_lower(&tag);
        assert_eq!(&expected[..], hex::encode(tag).as_bytes());
        let lower = format!("sha256={}", hex::encode(tag));
        assert!(entry_matches(lower.as_bytes(), &expected));
        assert!(entry_matches(lower.to_uppercase().as_bytes(), &expected));
        let mut off_by_case = lower.clone().into_bytes();
        off_by_case[7] = b'0' - 0x20; // lowers into '0' but is no hex digit
        assert!(!entry_matches(&off_by_case, &expected));
        for bad in [
            &lower[..70],
            &format!("{lower}0"),
            &lower.replace("sha256=", "sha257="),
        ] {
            assert!(!entry_matches(bad.as_bytes(), &expected), "{bad}");
        }
        let mut other = tag;
        other[31] ^= 1;
        assert!(!entry_matches(lower.as_bytes(), &hex_lower(&other)));
    }

    #[test]
    fn token_signing_inputs_are_recognised() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":"x","exp":1}"#);
        let shaped = [
            format!("{header}.{payload}"),
            format!("{header}.{payload}.more"),
            format!("{header}."),
            format!("{}.{payload}", STANDARD.encode(br#"{"alg":"HS256"}"#)),
            format!("{}.x", URL_SAFE_NO_PAD.encode(b" \n{\"alg\":\"none\"}")),
            format!("{}.x", URL_SAFE_NO_PAD.encode(b"\xEF\xBB\xBF{}")),
            format!("{}.x", STANDARD.encode(b"{\"k\":\"\xff?>\"}")),
            // Not UTF-8 inside a string: lenient parsers read it, so it is refused.
            format!("{}.x", URL_SAFE_NO_PAD.encode(b"\n{\"\xd5\"\r:\n 5 }")),
            format!("{}.x", URL_SAFE_NO_PAD.encode(b"{}")),
            format!(
                "{}.x",
                URL_SAFE_NO_PAD.encode(
                    [b' '; 200]
                        .iter()
                        .chain(b"{}")
                        .copied()
                        .collect::<Vec<u8>>()
                )
            ),
            "e30.e30".to_owned(),
        ];
        for id in &shaped {
            assert!(is_token_signing_input(id.as_bytes()), "{id}");
        }
        let real = [
            "0f9c97a2f0bf4706afe87a14e0797b11",
            "conn-1",
            "Wf3ZzLMiVKcHdqnJKdUc8wqPZ3F3Mzg0ZGM=",
            "3f0a3c2e-9d1b-4c1e-8a63-0d1f4c7a9b21",
            "device.sensor-42",
            "a.b.c",
            "sensor/room.1",
            ".eyJ",
            "eyJ.x",
            "eyeball.cam",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            "=.x",
            "e30",
            "reconnect:abc",
            &format!("{}.x", URL_SAFE_NO_PAD.encode(b"[1,2]")),
            &format!("{}.x", URL_SAFE_NO_PAD.encode(b"alg")),
        ];
        for id in real {
            assert!(!is_token_signing_input(id.as_bytes()), "{id}");
        }
    }

    #[test]
    fn token_shaped_ids_are_refused_even_with_a_valid_signature() {
        let key = AccessKey::new("primary-key-1").unwrap();
        let id = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1In0";
        let mut h = HeaderMap::new();
        h.insert(headers::CE_CONNECTION_ID, HeaderValue::from_static(id));
        h.insert(
            headers::CE_SIGNATURE,
            HeaderValue::from_str(&key.signature(id)).unwrap(),
        );
        let eps = [endpoint(None, &["primary-key-1"])];
        assert_eq!(verify(&eps, &h), Err(Rejection::TokenShapedConnectionId));
    }

    #[test]
    fn keys_apply_only_to_their_origin() {
        let eps = [endpoint(Some("a.webpubsub.azure.com"), &["primary-key-1"])];
        assert_eq!(
            verify(
                &eps,
                &request(&[PRIMARY], Some("x.com, A.webpubsub.azure.com"))
            ),
            Ok(())
        );
        assert_eq!(
            verify(&eps, &request(&[PRIMARY], Some("b.webpubsub.azure.com"))),
            Err(Rejection::OriginNotConfigured)
        );
        assert_eq!(
            verify(&eps, &request(&[PRIMARY], None)),
            Err(Rejection::OriginMissing)
        );
    }
}
