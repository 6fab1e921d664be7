//! Checking `ce-signature`: HMAC-SHA256 of `ce-connectionId` under an access key.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use hmac::digest::CtOutput;
use http::HeaderMap;

use super::headers::{self, list_items};
use super::options::Endpoint;
use super::Rejection;

/// Checks the request's `ce-signature` against the keys of the endpoints
/// that `WebHook-Request-Origin` names (host-less keys apply to every origin).
///
/// Passes when any `sha256=<hex>` entry (comma-joined or on several lines,
/// hex in either case) equals the HMAC under any of those keys. Comparisons
/// are constant-time.
pub(crate) fn verify(endpoints: &[Endpoint], headers: &HeaderMap) -> Result<(), Rejection> {
    let connection_id = match headers.get(headers::CE_CONNECTION_ID) {
        Some(id) if !id.is_empty() => id.as_bytes(),
        _ => return Err(Rejection::MissingHeader("ce-connectionId")),
    };
    if headers.get(headers::CE_SIGNATURE).is_none() {
        return Err(Rejection::SignatureMissing);
    }

    let mut any_endpoint = false;
    for endpoint in endpoints {
        let applies = match &endpoint.host {
            None => true,
            Some(host) => list_items(headers, &headers::WEBHOOK_REQUEST_ORIGIN)
                .any(|origin| origin.eq_ignore_ascii_case(host.as_bytes())),
        };
        if !applies {
            continue;
        }
        any_endpoint = true;
        for key in &endpoint.keys {
            let expected = key.mac(connection_id);
            if signatures(headers).any(|candidate| CtOutput::new(candidate.into()) == expected) {
                return Ok(());
            }
        }
    }
    if any_endpoint {
        Err(Rejection::SignatureMismatch)
    } else if headers.get(headers::WEBHOOK_REQUEST_ORIGIN).is_none() {
        Err(Rejection::OriginMissing)
    } else {
        Err(Rejection::OriginNotConfigured)
    }
}

/// The well-formed `sha256=<64 hex digits>` entries of `ce-signature`.
fn signatures(headers: &HeaderMap) -> impl Iterator<Item = [u8; 32]> + '_ {
    list_items(headers, &headers::CE_SIGNATURE).filter_map(|entry| {
        let (scheme, hex_digits) = (entry.get(..7)?, entry.get(7..)?);
        if !scheme.eq_ignore_ascii_case(b"sha256=") {
            return None;
        }
        let mut tag = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut tag).ok()?;
        Some(tag)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::AccessKey;
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
