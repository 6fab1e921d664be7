//! A direct reader for `connect` bodies in the plain form the service sends.
//!
//! serde_json reads a body through [`ConnectBody`]'s `Deserialize` impl:
//! field names matched by a generated visitor, every string of the lenient
//! multimaps through two visitor layers, every map built. For the usual
//! body (a few claims and query parameters as lists of strings) that was
//! most of the work of decoding a `connect`, for maps most handlers read
//! one value of. This reader walks the text once, checks it, and keeps only
//! where each of the three maps is; [`first`] finds one value in a map's
//! text and [`build`] builds the map, when a handler asks
//! ([`ClientMaps`](super::ClientMaps)).
//!
//! It reads a subset of what serde_json accepts, and for that subset gives
//! exactly what serde_json gives: an object with no field but `claims`,
//! `query`, `headers`, `subprotocols` (maps of string → a string, `null` or
//! a list of strings and `null`s; a list of those), `clientCertificates`
//! (`null` or `[]`) and `mqtt` (`null`), each at most once, with strings
//! free of escapes and control characters, between JSON whitespace. Anything
//! else (escapes, numbers, unknown or repeated fields, a malformed body) is
//! `None`, and the caller reads the body with serde_json, which then decides
//! (the same value, or its own error). The tests hold it to that, by
//! proptest against serde_json.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ops::Range;

use crate::wire::ConnectBody;

/// A `connect` body in the plain form: where its maps are, and its
/// subprotocols.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PlainConnect {
    /// The text of `claims`, `query` and `headers`, in that order; `None`
    /// for a map that is missing or `null`.
    pub(crate) spans: [Option<Range<usize>>; 3],
    pub(crate) subprotocols: Vec<String>,
}

/// The body `text`, when it is in the plain form; `None` for anything else.
pub(crate) fn read(text: &str) -> Option<PlainConnect> {
    let mut p = Reader { text, pos: 0 };
    let mut body = PlainConnect::default();
    p.skip_ws();
    p.expect(b'{')?;
    p.skip_ws();
    if !p.eat(b'}') {
        let mut seen = 0u8;
        loop {
            p.skip_ws();
            // The field's place in `ConnectBody::FIELDS`: claims, query,
            // headers, subprotocols, clientCertificates, mqtt.
            let name = p.string()?;
            let index = ConnectBody::FIELDS.iter().position(|f| *f == name)?;
            let field = 1u8 << index;
            if seen & field != 0 {
                return None;
            }
            seen |= field;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            match index {
                0..=2 => *body.spans.get_mut(index)? = p.multimap_span()?,
                3 => {
                    let mut list = Vec::new();
                    p.values(|value| list.push(value.to_owned()))?;
                    body.subprotocols = list;
                }
                // `null` or `[]`: no certificates, as the default.
                4 => {
                    if !p.null() {
                        p.expect(b'[')?;
                        p.skip_ws();
                        p.expect(b']')?;
                    }
                }
                // Only `null`: no MQTT properties, as the default.
                _ => {
                    if !p.null() {
                        return None;
                    }
                }
            }
            p.skip_ws();
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
    }
    p.skip_ws();
    (p.pos == text.len()).then_some(body)
}

/// Which bytes may stand unescaped in a JSON string: all but `"`, `\` and
/// the control characters (which serde_json refuses unescaped). A table:
/// one load per byte in the loop that crosses a string.
#[allow(clippy::indexing_slicing)] // constant indices below 256
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = false;
        byte += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

#[allow(clippy::indexing_slicing)] // a `u8` indexes a table of 256
fn is_plain(byte: u8) -> bool {
    PLAIN[usize::from(byte)]
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.pos += usize::from(next);
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Skips JSON whitespace (serde_json's set: no form feed).
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> bool {
        let next = self.text.as_bytes().get(self.pos..self.pos + 4) == Some(b"null");
        self.pos += 4 * usize::from(next);
        next
    }

    /// A string without escapes or control characters (which serde_json
    /// refuses unescaped); `None` for anything else.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = self.text.as_bytes().get(start..)?;
        let len = rest.iter().take_while(|&&b| is_plain(b)).count();
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        // Both ends are next to an ASCII quote: character boundaries.
        self.text.get(start..start + len)
    }

    /// A string, `null` or a list of strings and `null`s, as the lenient
    /// multimap values read it (`null`s dropped), each value given to `each`.
    fn values(&mut self, mut each: impl FnMut(&'a str)) -> Option<()> {
        match self.peek()? {
            b'"' => each(self.string()?),
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    if !self.null() {
                        each(self.string()?);
                    }
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.expect(b']')?;
                        return Some(());
                    }
                }
            }
            _ => self.null().then_some(())?,
        }
        Some(())
    }

    /// `null` or an object of [`values`](Self::values), each key and its
    /// values given to `entry`.
    fn multimap(&mut self, mut entry: impl FnMut(&'a str, &mut Self) -> Option<()>) -> Option<()> {
        if self.null() {
            return Some(());
        }
        self.expect(b'{')?;
        self.skip_ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            entry(key, self)?;
            self.skip_ws();
            if !self.eat(b',') {
                self.expect(b'}')?;
                return Some(());
            }
        }
    }

    /// A multimap, checked: where it is (`None` for `null`).
    ///
    /// It reads what [`multimap`](Self::multimap) and
    /// [`values`](Self::values) read, but as one loop over the tokens with
    /// what may come next as its state: this runs three times on every
    /// `connect`, and the nested readers (a closure per key and per value)
    /// took half as long again. The proptests below hold the two to the
    /// same language.
    fn multimap_span(&mut self) -> Option<Option<Range<usize>>> {
        /// What the grammar lets come next.
        #[derive(Clone, Copy)]
        enum Next {
            /// After `{`: a key or `}`.
            KeyOrEnd,
            /// After `,` in the map: a key.
            Key,
            /// After a key.
            Colon,
            /// After `:`: a string, `null` or `[`.
            Value,
            /// After `[`: a string, `null` or `]`.
            ItemOrEnd,
            /// After `,` in a list: a string or `null`.
            Item,
            /// After an item: `,` or `]`.
            ListCommaOrEnd,
            /// After a value: `,` or `}`.
            MapCommaOrEnd,
        }
        let start = self.pos;
        if self.null() {
            return Some(None);
        }
        self.expect(b'{')?;
        let mut next = Next::KeyOrEnd;
        loop {
            self.skip_ws();
            next = match (next, self.peek()?) {
                (Next::KeyOrEnd | Next::Key | Next::Value | Next::ItemOrEnd | Next::Item, b'"') => {
                    self.string()?;
                    match next {
                        Next::KeyOrEnd | Next::Key => Next::Colon,
                        Next::Value => Next::MapCommaOrEnd,
                        _ => Next::ListCommaOrEnd,
                    }
                }
                (Next::Value, b'n') if self.null() => Next::MapCommaOrEnd,
                (Next::ItemOrEnd | Next::Item, b'n') if self.null() => Next::ListCommaOrEnd,
                (next, byte) => {
                    self.pos += 1;
                    match (next, byte) {
                        (Next::Colon, b':') => Next::Value,
                        (Next::Value, b'[') => Next::ItemOrEnd,
                        (Next::ItemOrEnd | Next::ListCommaOrEnd, b']') => Next::MapCommaOrEnd,
                        (Next::ListCommaOrEnd, b',') => Next::Item,
                        (Next::MapCommaOrEnd, b',') => Next::Key,
                        (Next::KeyOrEnd | Next::MapCommaOrEnd, b'}') => {
                            return Some(Some(start..self.pos));
                        }
                        _ => return None,
                    }
                }
            };
        }
    }
}

/// The first value of key `name` in `map`, the text of a multimap that
/// [`read`] checked; a repeated key keeps its last values, as the built
/// map does.
pub(crate) fn first<'a>(map: &'a str, name: &str) -> Option<&'a str> {
    let mut p = Reader { text: map, pos: 0 };
    let mut found = None;
    p.multimap(|key, p| {
        if key == name {
            found = None;
            p.values(|value| {
                found.get_or_insert(value);
            })
        } else {
            p.values(|_| ())
        }
    })?;
    found
}

/// The map `map` holds, the text of a multimap that [`read`] checked.
pub(crate) fn build(map: &str) -> Option<BTreeMap<String, Vec<String>>> {
    let mut p = Reader { text: map, pos: 0 };
    let mut out = BTreeMap::new();
    p.multimap(|key, p| {
        let mut values = Vec::new();
        p.values(|value| values.push(value.to_owned()))?;
        out.insert(key.to_owned(), values);
        Some(())
    })?;
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::wire::ConnectBody;
    use proptest::prelude::*;

    /// The fast reader, when it reads `text`, builds what serde_json builds.
    fn agrees(text: &str) -> Result<bool, String> {
        let Some(fast) = read(text) else {
            return Ok(false);
        };
        let slow = serde_json::from_str::<Option<ConnectBody>>(text)
            .map_err(|e| format!("{text:?}: fast read it, serde_json: {e}"))?
            .ok_or_else(|| format!("{text:?}: fast read it, serde_json: null"))?;
        let map = |i: usize| {
            fast.spans[i]
                .clone()
                .map_or_else(BTreeMap::new, |span| build(&text[span]).unwrap())
        };
        let firsts_agree = |i: usize, slow: &BTreeMap<String, Vec<String>>| {
            let Some(span) = fast.spans[i].clone() else {
                return slow.is_empty();
            };
            ["sub", "a", "k", "role", "x", "", "Host", "missing"]
                .iter()
                .chain(slow.keys().map(String::as_str).collect::<Vec<_>>().iter())
                .all(|name| {
                    first(&text[span.clone()], name)
                        == slow.get(*name).and_then(|v| v.first()).map(String::as_str)
                })
        };
        let same = map(0) == slow.claims
            && map(1) == slow.query
            && map(2) == slow.headers
            && firsts_agree(0, &slow.claims)
            && firsts_agree(1, &slow.query)
            && firsts_agree(2, &slow.headers)
            && fast.subprotocols == slow.subprotocols
            && slow.client_certificates.is_empty()
            && slow.mqtt.is_none();
        if same {
            Ok(true)
        } else {
            Err(format!("{text:?}: fast {fast:?}, serde_json {slow:?}"))
        }
    }

    /// What a multimap reader made of a text: the span (`None` for `null`)
    /// and where it stopped, or `None` where it refused the text.
    type Read = Option<(Option<Range<usize>>, usize)>;

    /// What the one-loop reader and the nested readers (`multimap` +
    /// `values`, which `first` and `build` use) make of `text`.
    fn both_readers(text: &str) -> (Read, Read) {
        let mut fast = Reader { text, pos: 0 };
        let fast_read = fast.multimap_span().map(|span| (span, fast.pos));
        let mut nested = Reader { text, pos: 0 };
        let null = nested.peek() == Some(b'n');
        let nested_read = nested
            .multimap(|_, p| p.values(|_| ()))
            .map(|()| ((!null).then_some(0..nested.pos), nested.pos));
        (fast_read, nested_read)
    }

    #[test]
    fn reads_the_plain_bodies_as_serde_json_does() {
        for text in [
            r#"{"claims":{"sub":["user1"]},"query":{"id":["1"]},"headers":{},"subprotocols":[],"clientCertificates":[]}"#,
            "{}",
            " \r\n\t{ } \n",
            r#"{ "claims" : { "sub" : [ "a" , null , "b" ] , "role" : "r" , "x" : null } }"#,
            r#"{"claims":null,"query":null,"headers":null,"subprotocols":null,"clientCertificates":null,"mqtt":null}"#,
            r#"{"claims":{"a":["1"],"a":["2","3"]}}"#,
            r#"{"subprotocols":"json.webpubsub.azure.v1"}"#,
            r#"{"subprotocols":["a","b",null]}"#,
            r#"{"headers":{"":[""],"Host":["caf\u00e9"]}}"#,
            "{\"headers\":{\"h\":[\"caf\u{e9} \u{1f600}\"]}}",
            r#"{"query":{"k":[null]},"claims":{"k":[]}}"#,
        ] {
            let fast = agrees(text);
            assert!(
                fast.is_ok() && (fast == Ok(true) || text.contains('\\')),
                "{fast:?}"
            );
        }
    }

    #[test]
    fn leaves_everything_else_to_serde_json() {
        for text in [
            "",
            "null",
            "[]",
            "\u{c}{}",
            "{} x",
            "{,}",
            r#"{"claims":{},}"#,
            r#"{"claims":{"a":["1",]}}"#,
            r#"{"claims":{"a":[,"1"]}}"#,
            r#"{"claims":{"a":1}}"#,
            r#"{"claims":{"a":[true]}}"#,
            r#"{"claims":{"a":{"b":"c"}}}"#,
            r#"{"claims":{"a":"\n"}}"#,
            "{\"claims\":{\"a\":\"\t\"}}",
            r#"{"claims":{},"claims":{}}"#,
            r#"{"other":1}"#,
            r#"{"mqtt":{"protocolVersion":4}}"#,
            r#"{"clientCertificates":[{"thumbprint":"t"}]}"#,
            r#"{"claims":nul}"#,
            r#"{"claims":{"a":["1"]}"#,
            r#"{"claims""#,
            r#"{"cla\u0069ms":{}}"#,
        ] {
            assert_eq!(agrees(text), Ok(false), "{text:?}");
        }
    }

    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\n",
        "\t",
        "\u{c}",
        "null",
        "nul",
        "1",
        "true",
        "\"claims\"",
        "\"query\"",
        "\"headers\"",
        "\"subprotocols\"",
        "\"clientCertificates\"",
        "\"mqtt\"",
        "\"sub\"",
        "\"\"",
        "\"a b\"",
        "\"\\\"\"",
        "\"\u{e9}\"",
        "\"\t\"",
        "\"",
        "x",
    ];

    /// Tokens of a multimap and what may break one.
    const MAP_TOKENS: &[&str] = &[
        "{",
        "{",
        "}",
        "}",
        "[",
        "]",
        ",",
        ",",
        ":",
        ":",
        "null",
        "nul",
        "n",
        "\"a\"",
        "\"b c\"",
        "\"\"",
        " ",
        "\t",
        "\r\n",
        "\u{c}",
        "\u{1}",
        "\"\\\"\"",
        "\"\t\"",
        "\"\u{e9}\"",
        "1",
        "x",
        "\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn whatever_it_reads_serde_json_reads_the_same(
            tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..40),
        ) {
            let text: String = tokens.concat();
            prop_assert!(agrees(&text).is_ok(), "{:?}", agrees(&text));
        }

        /// The one-loop multimap reader reads exactly what the nested
        /// readers (`multimap` + `values`, which `first` and `build` use)
        /// read, and stops at the same place.
        #[test]
        fn the_span_reader_and_the_nested_readers_agree(
            tokens in proptest::collection::vec(proptest::sample::select(MAP_TOKENS), 0..24),
        ) {
            let text: String = tokens.concat();
            let (fast, nested) = both_readers(&text);
            prop_assert_eq!(fast, nested, "{:?}", text);
        }

        /// The same on maps built to be valid (any whitespace, any values),
        /// then one token replaced, dropped or left alone.
        #[test]
        fn the_span_reader_and_the_nested_readers_agree_near_valid_maps(
            entries in proptest::collection::vec(
                (
                    proptest::sample::select(&["\"a\"", "\"\"", "\"k v\"", "\"\u{e9}\""][..]),
                    proptest::collection::vec(
                        proptest::sample::select(&["\"x\"", "null", "\"\""][..]),
                        0..3,
                    ),
                    0..3u8,
                ),
                0..4,
            ),
            spaces in proptest::collection::vec(
                proptest::sample::select(&["", "", " ", "\n", "\t\r"][..]),
                64,
            ),
            edit in (0..64usize, proptest::option::of(proptest::sample::select(MAP_TOKENS))),
            mutate in any::<bool>(),
        ) {
            let mut tokens = vec!["{"];
            for (i, (key, items, shape)) in entries.iter().enumerate() {
                if i > 0 {
                    tokens.push(",");
                }
                tokens.extend([*key, ":"]);
                match (shape, items.first()) {
                    // A lone value: a string or `null`.
                    (0, Some(item)) => tokens.push(item),
                    (0, None) => tokens.push("null"),
                    _ => {
                        tokens.push("[");
                        for (j, item) in items.iter().enumerate() {
                            if j > 0 {
                                tokens.push(",");
                            }
                            tokens.push(item);
                        }
                        tokens.push("]");
                    }
                }
            }
            tokens.push("}");
            if mutate {
                let at = edit.0 % tokens.len();
                match edit.1 {
                    Some(token) => tokens[at] = token,
                    None => {
                        tokens.remove(at);
                    }
                }
            }
            let text: String = tokens
                .iter()
                .zip(spaces.iter().cycle())
                .flat_map(|(token, space)| [*space, *token])
                .collect();
            let (fast, nested) = both_readers(&text);
            // Leading whitespace is the caller's to skip: both refuse it.
            prop_assert_eq!(&fast, &nested, "{:?}", text);
            prop_assert!(mutate || text.starts_with(char::is_whitespace) || fast.is_some(), "{:?}", text);
        }

        #[test]
        fn plain_bodies_are_read(
            claims in proptest::collection::btree_map("[a-z]{0,4}", proptest::collection::vec("[ -!#-\\[\\]-~\u{e9}]{0,6}", 0..3), 0..4),
            subprotocols in proptest::collection::vec("[a-z.0-9]{1,8}", 0..3),
        ) {
            let text = serde_json::json!({
                "claims": claims,
                "query": claims,
                "headers": {},
                "subprotocols": subprotocols,
                "clientCertificates": [],
            })
            .to_string();
            prop_assert_eq!(agrees(&text), Ok(true));
        }
    }
}
