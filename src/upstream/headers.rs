//! Strict readers for the headers of the upstream protocol (their names
//! are in [`crate::wire::headers`]).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::Rejection;

use crate::wire::headers::SingleHeaders;
pub(crate) use crate::wire::headers::*;

/// A header's value for a log line: `None` when absent or not visible ASCII.
pub(crate) fn for_log<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|h| h.to_str().ok())
}

/// The event headers of one request, found in a single pass over the map
/// (cheaper than one hashed lookup per name). A single-valued header that
/// appears twice is noted in `repeated` (and `hub_repeated`), for the caller
/// to refuse in its own order.
#[derive(Debug, Default)]
pub(crate) struct EventHeaders<'a> {
    /// The first value of each single-valued header (the wire table's).
    pub(crate) single: SingleHeaders<'a>,
    /// The first `Content-Length` line, as `HeaderMap::get` gives it (the
    /// router's early size check; the body's reader enforces the limit).
    pub(crate) content_length: Option<&'a HeaderValue>,
    /// The first `WebHook-Request-Origin` line, and whether there are more.
    pub(crate) origin: Option<&'a HeaderValue>,
    pub(crate) more_origins: bool,
    /// The first `ce-signature` line, and whether there are more.
    pub(crate) signature: Option<&'a HeaderValue>,
    pub(crate) more_signatures: bool,
    /// The first single-valued header found more than once, in map order.
    pub(crate) repeated: Option<&'static str>,
    /// Whether `ce-hub` is one of them.
    pub(crate) hub_repeated: bool,
}

impl<'a> EventHeaders<'a> {
    pub(crate) fn scan(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            if let Some(slot) = found.single.slot(name) {
                // The first value is kept, as `HeaderMap::get` gives it.
                if slot.is_some() {
                    found.repeated.get_or_insert(display_name(name));
                    found.hub_repeated |= name == CE_HUB;
                } else {
                    *slot = Some(value);
                }
            } else if name == WEBHOOK_REQUEST_ORIGIN {
                found.more_origins |= found.origin.is_some();
                found.origin.get_or_insert(value);
            } else if name == CE_SIGNATURE {
                found.more_signatures |= found.signature.is_some();
                found.signature.get_or_insert(value);
            } else if name == http::header::CONTENT_LENGTH {
                found.content_length.get_or_insert(value);
            }
        }
        found
    }

    /// The lines of `ce-signature`.
    pub(crate) fn signature_lines(&self, headers: &'a HeaderMap) -> Lines<'a> {
        Lines::new(self.signature, self.more_signatures, headers, CE_SIGNATURE)
    }

    /// The lines of `WebHook-Request-Origin`.
    pub(crate) fn origin_lines(&self, headers: &'a HeaderMap) -> Lines<'a> {
        Lines::new(
            self.origin,
            self.more_origins,
            headers,
            WEBHOOK_REQUEST_ORIGIN,
        )
    }
}

/// The lines of a header that may come more than once: the one line a
/// scan found (the usual case, no lookup), or every line from the map.
#[derive(Clone)]
pub(crate) enum Lines<'a> {
    One(Option<&'a HeaderValue>),
    All(&'a HeaderMap, HeaderName),
}

impl<'a> Lines<'a> {
    fn new(
        first: Option<&'a HeaderValue>,
        more: bool,
        headers: &'a HeaderMap,
        name: HeaderName,
    ) -> Self {
        if more {
            Self::All(headers, name)
        } else {
            Self::One(first)
        }
    }

    /// Every line of `name` in `headers`.
    pub(crate) fn all(headers: &'a HeaderMap, name: &HeaderName) -> Self {
        Self::All(headers, name.clone())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a HeaderValue> {
        let (one, all) = match self {
            Self::One(value) => (*value, None),
            Self::All(headers, name) => (None, Some(headers.get_all(name).iter())),
        };
        one.into_iter().chain(all.into_iter().flatten())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// A header value found by [`EventHeaders::scan`], as UTF-8.
pub(crate) fn text<'a>(
    value: Option<&'a HeaderValue>,
    name: &HeaderName,
) -> Result<Option<&'a str>, Rejection> {
    value
        .map(|v| {
            // Nearly every value is visible ASCII, which `to_str` checks in
            // a tighter loop than UTF-8 validation; the rest is UTF-8 or not.
            v.to_str()
                .or_else(|_| std::str::from_utf8(v.as_bytes()))
                .map_err(|_| Rejection::HeaderNotUtf8(display_name(name)))
        })
        .transpose()
}

/// Checks that a header value found by [`EventHeaders::scan`] is UTF-8,
/// as [`text`] does, for a value read later. ASCII (nearly every value) is
/// checked a word at a time, which [`text`] cannot do as it also gives the
/// value as `&str`.
pub(crate) fn check_text(value: Option<&HeaderValue>, name: &HeaderName) -> Result<(), Rejection> {
    match value {
        Some(v) if !v.as_bytes().is_ascii() && std::str::from_utf8(v.as_bytes()).is_err() => {
            Err(Rejection::HeaderNotUtf8(display_name(name)))
        }
        _ => Ok(()),
    }
}

/// Like [`text`], for a header that must be present and not blank.
pub(crate) fn text_required<'a>(
    value: Option<&'a HeaderValue>,
    name: &HeaderName,
) -> Result<&'a str, Rejection> {
    non_blank(text(value, name)?, name)
}

fn non_blank<'a>(value: Option<&'a str>, name: &HeaderName) -> Result<&'a str, Rejection> {
    // A value that starts with a visible ASCII character is not blank
    // (checked first: `trim` walks the value as Unicode).
    match value {
        Some(value) if value.bytes().next().is_some_and(|b| b.is_ascii_graphic()) => Ok(value),
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(Rejection::MissingHeader(display_name(name))),
    }
}

/// Every comma- or space-separated item of every line of a list header.
pub(crate) fn list_items<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a [u8]> {
    split_items(&Lines::all(headers, name))
}

/// The items of the lines `values`, as [`list_items`] splits them.
pub(crate) fn split_items<'a>(values: &Lines<'a>) -> impl Iterator<Item = &'a [u8]> {
    values
        .iter()
        .flat_map(|v| {
            let line = v.as_bytes();
            // Most lines hold one item: look for a separator in a loop
            // without early exit (which the compiler vectorises) before
            // splitting byte by byte.
            let (whole, parts) = if has_separator(line) {
                (None, Some(line.split(is_separator)))
            } else {
                (Some(line), None)
            };
            whole.into_iter().chain(parts.into_iter().flatten())
        })
        .filter(|item| !item.is_empty())
}

fn is_separator(b: &u8) -> bool {
    matches!(b, b',' | b' ' | b'\t')
}

fn has_separator(line: &[u8]) -> bool {
    line.iter().fold(0u8, |found, &b| {
        found | u8::from(b == b',') | u8::from(b == b' ') | u8::from(b == b'\t')
    }) != 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn list_items_split_on_commas_spaces_and_lines() {
        let mut h = HeaderMap::new();
        h.append(
            WEBHOOK_REQUEST_ORIGIN,
            HeaderValue::from_static("a.com, b.com,,c.com"),
        );
        h.append(WEBHOOK_REQUEST_ORIGIN, HeaderValue::from_static(" d.com "));
        h.append(WEBHOOK_REQUEST_ORIGIN, HeaderValue::from_static("e.com"));
        h.append(WEBHOOK_REQUEST_ORIGIN, HeaderValue::from_static(""));
        h.append(
            WEBHOOK_REQUEST_ORIGIN,
            HeaderValue::from_static("f.com\tg.com"),
        );
        let items: Vec<_> = list_items(&h, &WEBHOOK_REQUEST_ORIGIN).collect();
        assert_eq!(
            items,
            [
                &b"a.com"[..],
                b"b.com",
                b"c.com",
                b"d.com",
                b"e.com",
                b"f.com",
                b"g.com"
            ]
        );
    }

    #[test]
    fn text_and_blankness_hold_for_any_utf8() {
        let value = |v: &str| HeaderValue::from_bytes(v.as_bytes()).unwrap();
        for (raw, blank) in [
            ("x", false),
            ("\tx", false),
            (" \u{e9}", false),
            ("\u{3000}", true),
            (" \t", true),
        ] {
            let v = value(raw);
            assert_eq!(text(Some(&v), &CE_HUB), Ok(Some(raw)));
            let expected = if blank {
                Err(Rejection::MissingHeader("ce-hub"))
            } else {
                Ok(raw)
            };
            assert_eq!(text_required(Some(&v), &CE_HUB), expected, "{raw:?}");
        }
    }

    #[test]
    fn check_text_refuses_exactly_what_text_refuses() {
        for raw in [
            &b"1.0"[..],
            b"",
            b"/hubs/chat/client/c1",
            b"caf\xc3\xa9",
            b"\xff",
            b"ok\xc3",
            b"\xe2\x82\xac\t1",
        ] {
            let v = HeaderValue::from_bytes(raw).unwrap();
            assert_eq!(
                check_text(Some(&v), &CE_SOURCE),
                text(Some(&v), &CE_SOURCE).map(|_| ()),
                "{raw:?}"
            );
        }
        assert_eq!(check_text(None, &CE_SOURCE), Ok(()));
    }

    #[test]
    fn repeated_and_non_utf8_headers_are_refused() {
        let mut h = HeaderMap::new();
        h.append(CE_HUB, HeaderValue::from_static("a"));
        h.append(CE_HUB, HeaderValue::from_static("b"));
        h.append(CE_TYPE, HeaderValue::from_static("t"));
        h.append(CE_USER_ID, HeaderValue::from_static("u"));
        h.append(CE_USER_ID, HeaderValue::from_static("v"));
        let found = EventHeaders::scan(&h);
        assert!(found.hub_repeated);
        assert!(matches!(found.repeated, Some("ce-hub" | "ce-userId")));
        let empty = HeaderMap::new();
        let found = EventHeaders::scan(&empty);
        assert_eq!((found.repeated, found.hub_repeated), (None, false));
        assert_eq!(
            text_required(found.single.hub, &CE_HUB),
            Err(Rejection::MissingHeader("ce-hub"))
        );
        let mut h = HeaderMap::new();
        h.insert(CE_USER_ID, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(
            text(EventHeaders::scan(&h).single.user_id, &CE_USER_ID),
            Err(Rejection::HeaderNotUtf8("ce-userId"))
        );
    }
}
