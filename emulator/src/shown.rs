//! What the live view may show of a value: clipped to a length, secrets
//! (signatures, tokens, passwords) replaced by their length. Both the
//! state (`hub/`) and the upstream's call log use it.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderName, HeaderValue};
use webpubsub::wire::headers::{CE_CONNECTION_STATE, CE_SIGNATURE, MQTT_USER_PROPERTY_PREFIX};

/// Groups (and roles) listed per connection; the answer counts the rest.
pub(crate) const SHOWN_GROUPS: usize = 10;
/// The most bytes of a header value, name, id or group the view shows.
pub(crate) const SHOWN_VALUE: usize = 256;
/// The most bytes of a URL or error message the view shows.
pub(crate) const SHOWN_TEXT: usize = 1024;
/// Header values the view never shows: a `ce-signature` replayed with other
/// `ce-*` values forges events; the others carry what an app trusts.
const SECRET_HEADERS: [HeaderName; 5] = [
    CE_SIGNATURE,
    CE_CONNECTION_STATE,
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    COOKIE,
];
/// Query parameters whose values the view never shows: any whose name
/// contains one of these (ASCII case-insensitive).
const SECRET_PARAMS: [&str; 8] = [
    "token", "key", "sig", "secret", "pass", "code", "auth", "cred",
];

/// `text`, cut to at most `max` bytes on a char boundary (then `…`).
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text.get(..end).unwrap_or_default())
}

/// A request header as the view shows it: secret values replaced by their
/// length, others clipped.
pub(crate) fn shown_header(name: &HeaderName, value: &HeaderValue) -> (String, String) {
    let secret =
        SECRET_HEADERS.contains(name) || name.as_str().starts_with(MQTT_USER_PROPERTY_PREFIX);
    let shown = if secret {
        format!("<redacted, {} bytes>", value.len())
    } else {
        clip(&String::from_utf8_lossy(value.as_bytes()), SHOWN_VALUE)
    };
    (clip(name.as_str(), SHOWN_VALUE), shown)
}

/// A URL as the view shows it: no password, secret-looking query values
/// replaced by `redacted`, clipped.
pub(crate) fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(not a URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("redacted"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let value = if SECRET_PARAMS.iter().any(|s| lower.contains(s)) {
                    "redacted".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    clip(parsed.as_str(), SHOWN_TEXT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_long_values_clipped() {
        let (name, value) = shown_header(
            &HeaderName::from_static("ce-signature"),
            &HeaderValue::from_static("sha256=abcdef"),
        );
        assert_eq!(
            (name.as_str(), value.as_str()),
            ("ce-signature", "<redacted, 13 bytes>")
        );
        let (_, value) = shown_header(
            &HeaderName::from_static("ce-connectionstate"),
            &HeaderValue::from_static("e30="),
        );
        assert_eq!(value, "<redacted, 4 bytes>");
        // MQTT user properties: an upstream call's `mqtt-*` headers.
        let (name, value) = shown_header(
            &HeaderName::from_static("mqtt-authorization"),
            &HeaderValue::from_static("Bearer eyJhbGciOi"),
        );
        assert_eq!(
            (name.as_str(), value.as_str()),
            ("mqtt-authorization", "<redacted, 17 bytes>")
        );
        let long = "é".repeat(300);
        let (_, value) = shown_header(
            &HeaderName::from_static("ce-userid"),
            &HeaderValue::from_str(&long).unwrap(),
        );
        assert_eq!(value, format!("{}…", "é".repeat(128)));
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("aé", 2), "a…");

        let url = shown_url("http://u:pw@h/eh/chat?code=s3cret&access_token=t0k&hub=chat");
        assert_eq!(
            url,
            "http://u:redacted@h/eh/chat?code=redacted&access_token=redacted&hub=chat"
        );
        assert_eq!(shown_url("not a url"), "(not a URL)");
    }
}
