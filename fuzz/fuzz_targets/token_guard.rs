//! The upstream's guard against events forged from tokens
//! (`Rejection::TokenShapedConnectionId`): on any bytes it must not panic,
//! and it must hold against a plain, independent reading of the rule (the
//! part before the first `.` is base64, either alphabet, any trailing
//! padding, of a JSON object):
//! - everything the plain reading calls a JSON object is refused (the guard
//!   may refuse more: it does not check the bytes inside JSON strings, which
//!   lenient parsers accept too);
//! - nothing is refused whose first segment does not decode to text that
//!   starts with `{`.
//!
//! Half the inputs are raw bytes; the other half put base64 of fuzzed bytes
//! (often a JSON object) before a dot, so the interesting side is reached.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use webpubsub::__fuzz::is_token_signing_input;

#[derive(Debug, Arbitrary)]
enum Input<'a> {
    /// A connection id as given.
    Raw(&'a [u8]),
    /// `<base64 of header>.<rest>`, in one of the two alphabets, padded or not.
    Shaped {
        header: &'a [u8],
        object: bool,
        url_safe: bool,
        padded: bool,
        rest: &'a [u8],
    },
}

/// The first segment decoded as the rule reads it (BOM stripped), if it is base64.
fn decoded_segment(id: &[u8]) -> Option<Vec<u8>> {
    let dot = id.iter().position(|&b| b == b'.')?;
    // Padding is optional, and any amount of it is ignored.
    let end = id[..dot].iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let segment: Vec<u8> = id[..end]
        .iter()
        .map(|&b| match b {
            b'+' => b'-',
            b'/' => b'_',
            b => b,
        })
        .collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(&segment).ok()?;
    Some(
        bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .map_or_else(|| bytes.clone(), <[u8]>::to_vec),
    )
}

/// The rule, read plainly: the decoded segment parses as a JSON object.
fn oracle(id: &[u8]) -> bool {
    decoded_segment(id).is_some_and(|bytes| {
        matches!(
            serde_json::from_slice::<serde_json::Value>(&bytes),
            Ok(serde_json::Value::Object(_))
        )
    })
}

/// What the guard may never refuse: a segment that is no base64 of text
/// starting (after JSON white space) with `{`.
fn object_like(id: &[u8]) -> bool {
    decoded_segment(id).is_some_and(|bytes| {
        bytes
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            == Some(&b'{')
    })
}

fuzz_target!(|input: Input<'_>| {
    let id = match input {
        Input::Raw(id) => id.to_vec(),
        Input::Shaped {
            header,
            object,
            url_safe,
            padded,
            rest,
        } => {
            let header = if object {
                // A JSON object whose one string member holds the fuzzed bytes.
                serde_json::json!({ "alg": String::from_utf8_lossy(header) })
                    .to_string()
                    .into_bytes()
            } else {
                header.to_vec()
            };
            let engine = match (url_safe, padded) {
                (true, false) => base64::engine::general_purpose::URL_SAFE_NO_PAD,
                (true, true) => base64::engine::general_purpose::URL_SAFE,
                (false, false) => base64::engine::general_purpose::STANDARD_NO_PAD,
                (false, true) => base64::engine::general_purpose::STANDARD,
            };
            let mut id = engine.encode(&header).into_bytes();
            id.push(b'.');
            id.extend_from_slice(rest);
            if object {
                assert!(
                    is_token_signing_input(&id),
                    "a token's signed part passed the guard: {}",
                    String::from_utf8_lossy(&id)
                );
            }
            id
        }
    };
    let refused = is_token_signing_input(&id);
    assert!(
        refused || !oracle(&id),
        "a JSON object header passed the guard: {:?}",
        String::from_utf8_lossy(&id)
    );
    assert!(
        !refused || object_like(&id),
        "refused an id that is no token's signed part: {:?}",
        String::from_utf8_lossy(&id)
    );
});
