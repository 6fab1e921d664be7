//! The `claims`, `query` and `headers` of a `connect` event, read lazily.
//!
//! The decoder checks the whole body once (so a bad body is still refused
//! before any handler runs). For a body in the plain form the service sends
//! ([`connect_body`](super::connect_body)) it keeps, for each of the three
//! maps, where its JSON text is in the body: a map is built only when asked
//! for whole ([`ConnectEventRequest::claims`](super::ConnectEventRequest::claims)
//! and friends), and [`ClientMaps::first`] (what `claim("sub")` and
//! `query_value("id")` use) finds one value in the text without building
//! anything. Any other body is read whole by serde_json, its maps built at
//! once. Both give the same maps and values.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;

use super::connect_body;

/// One of the three maps.
pub(crate) type Multimap = BTreeMap<String, Vec<String>>;

/// Which map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Claims,
    Query,
    Headers,
}

/// The three maps: spans of a checked body, and the maps built from them
/// when first asked for (all three at once, boxed: the request stays small).
#[derive(Clone, Default)]
pub(crate) struct ClientMaps {
    /// The body the spans point into (empty when built from maps).
    body: Bytes,
    /// Where each map's JSON text is, `None` for a missing or `null` map.
    spans: [Option<(u32, u32)>; 3],
    built: OnceLock<Box<[Multimap; 3]>>,
}

impl ClientMaps {
    /// Maps already built (tests, [`ConnectEventRequest::new`](super::ConnectEventRequest::new)).
    pub(crate) fn from_maps(claims: Multimap, query: Multimap, headers: Multimap) -> Self {
        let maps = Self::default();
        let _ = maps.built.set(Box::new([claims, query, headers]));
        maps
    }

    /// Maps at `spans` of `body`, as [`connect_body::read`] found them. A
    /// body over 4 GiB (never accepted: the router limits bodies) keeps no
    /// span.
    pub(crate) fn from_spans(body: Bytes, spans: [Option<Range<usize>>; 3]) -> Self {
        let narrow = |span: Option<Range<usize>>| {
            let span = span?;
            Some((
                u32::try_from(span.start).ok()?,
                u32::try_from(span.end).ok()?,
            ))
        };
        let [a, b, c] = spans;
        Self {
            body,
            spans: [narrow(a), narrow(b), narrow(c)],
            built: OnceLock::new(),
        }
    }

    /// The JSON text of a map, if the body has one.
    fn text(&self, which: Which) -> Option<&str> {
        let (start, end) = (*self.spans.get(which as usize)?)?;
        std::str::from_utf8(self.body.get(start as usize..end as usize)?).ok()
    }

    /// The three maps, built on first use.
    fn all(&self) -> &[Multimap; 3] {
        self.built.get_or_init(|| {
            let build = |which| {
                self.text(which)
                    .and_then(connect_body::build)
                    .unwrap_or_default()
            };
            Box::new([
                build(Which::Claims),
                build(Which::Query),
                build(Which::Headers),
            ])
        })
    }

    /// The whole map, built on first use.
    pub(crate) fn map(&self, which: Which) -> &Multimap {
        let [claims, query, headers] = self.all();
        match which {
            Which::Claims => claims,
            Which::Query => query,
            Which::Headers => headers,
        }
    }

    /// The whole map, built if need be, to change.
    pub(crate) fn map_mut(&mut self, which: Which) -> &mut Multimap {
        let _ = self.all();
        // Spans are of no more use for maps that may change.
        self.spans = [None; 3];
        let built = self.built.get_mut().map(|maps| &mut **maps);
        let [claims, query, headers] = match built {
            Some(maps) => maps,
            // `all` above filled the cell; not reached.
            None => unreachable!("the maps were built above"),
        };
        match which {
            Which::Claims => claims,
            Which::Query => query,
            Which::Headers => headers,
        }
    }

    /// The first value of key `name`, as `map(which)[name][0]` would give.
    pub(crate) fn first(&self, which: Which, name: &str) -> Option<&str> {
        if self.built.get().is_some() {
            return self
                .map(which)
                .get(name)
                .and_then(|v| v.first())
                .map(String::as_str);
        }
        connect_body::first(self.text(which)?, name)
    }
}

impl fmt::Debug for ClientMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMaps")
            .field("claims", self.map(Which::Claims))
            .field("query", self.map(Which::Query))
            .field("headers", self.map(Which::Headers))
            .finish()
    }
}

impl PartialEq for ClientMaps {
    fn eq(&self, other: &Self) -> bool {
        [Which::Claims, Which::Query, Which::Headers]
            .iter()
            .all(|&w| self.map(w) == other.map(w))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn lazy(body: &str) -> ClientMaps {
        let plain = connect_body::read(body).expect("a plain body");
        ClientMaps::from_spans(Bytes::copy_from_slice(body.as_bytes()), plain.spans)
    }

    #[test]
    fn values_and_maps_come_from_the_text() {
        let maps = lazy(
            r#"{"claims":{"sub":["alice"],"role":["a","b"]},"query":{"id":"7"},"headers":null}"#,
        );
        assert_eq!(maps.first(Which::Claims, "sub"), Some("alice"));
        assert_eq!(maps.first(Which::Claims, "role"), Some("a"));
        assert_eq!(maps.first(Which::Claims, "nope"), None);
        assert_eq!(maps.first(Which::Query, "id"), Some("7"));
        assert_eq!(maps.first(Which::Headers, "id"), None);
        assert_eq!(maps.map(Which::Claims)["role"], ["a", "b"]);
        assert!(maps.map(Which::Headers).is_empty());
    }

    #[test]
    fn a_changed_map_is_the_one_read_afterwards() {
        let mut maps = lazy(r#"{"claims":{"sub":["alice"]}}"#);
        maps.map_mut(Which::Claims)
            .insert("sub".to_owned(), vec!["bob".to_owned()]);
        assert_eq!(maps.first(Which::Claims, "sub"), Some("bob"));
        let clone = maps.clone();
        assert_eq!(clone, maps);
        assert_eq!(clone.first(Which::Claims, "sub"), Some("bob"));
    }

    #[test]
    fn maps_given_whole_are_read_as_given() {
        let claims = BTreeMap::from([("sub".to_owned(), vec!["x".to_owned()])]);
        let maps = ClientMaps::from_maps(claims.clone(), BTreeMap::new(), BTreeMap::new());
        assert_eq!(maps.first(Which::Claims, "sub"), Some("x"));
        assert_eq!(maps.map(Which::Claims), &claims);
        assert_eq!(maps, lazy(r#"{"claims":{"sub":"x"}}"#));
    }
}
