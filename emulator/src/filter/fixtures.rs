//! Test connections and helpers shared by the filter's tests.

use super::{FilterError, ODataFilter, PlainSubject};

/// A test connection.
pub(super) type Conn = PlainSubject<'static>;

pub(super) const U1: Conn = Conn {
    user: Some("u1"),
    id: "c1",
    groups: &["g1"],
};
pub(super) const U2: Conn = Conn {
    user: Some("u2"),
    id: "c9",
    groups: &["g2", "g3"],
};
pub(super) const ANON: Conn = Conn {
    user: None,
    id: "c3",
    groups: &[],
};
const MIXED: Conn = Conn {
    user: Some("User1"),
    id: "c4",
    groups: &["g1", "g2"],
};
const QUOTE: Conn = Conn {
    user: Some("user'1"),
    id: "c5",
    groups: &[],
};
const LISTENER: Conn = Conn {
    user: Some("listener-7"),
    id: "c6",
    groups: &[],
};
pub(super) const ALL: [&Conn; 6] = [&U1, &U2, &ANON, &MIXED, &QUOTE, &LISTENER];

/// The parsed filter; panics (fails the test) if it does not parse.
pub(super) fn parse(filter: &str) -> ODataFilter {
    match ODataFilter::parse(filter) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{filter:?} should parse: {error}"),
    }
}

/// Why the filter is refused; panics (fails the test) if it parses.
pub(super) fn error(filter: &str) -> FilterError {
    match ODataFilter::parse(filter) {
        Ok(parsed) => panic!("{filter:?} should be refused, got {parsed:?}"),
        Err(error) => error,
    }
}

/// Each filter with its expected result on [U1, U2, ANON, MIXED, QUOTE, LISTENER].
pub(super) fn check(table: &[(&str, [bool; 6])]) {
    for (filter, expected) in table {
        let parsed = parse(filter);
        let actual = ALL.map(|conn| parsed.matches(conn));
        assert_eq!(&actual, expected, "{filter}");
    }
}
