//! The OData filter's entry point for `fuzz/`: parse, evaluate, and
//! check that `not` inverts.

use super::{ODataFilter, PlainSubject as Subject};

/// Parses `text` as an OData filter and, if it is valid, evaluates it
/// (and its negation) against a few connections. Panics only if the
/// filter module breaks its own rules.
pub fn odata_filter(text: &str) {
    let Ok(filter) = ODataFilter::parse(text) else {
        return;
    };
    let subjects = [
        Subject {
            user: None,
            id: "c1",
            groups: &[],
        },
        Subject {
            user: Some("alice"),
            id: "c2",
            groups: &["g1", "room"],
        },
        Subject {
            user: Some(""),
            id: "",
            groups: &["ü", "a.b"],
        },
    ];
    let negated = ODataFilter::parse(&format!("not ({text})"));
    for subject in &subjects {
        let yes = filter.matches(subject);
        if let Ok(negated) = &negated {
            assert_ne!(
                yes,
                negated.matches(subject),
                "`not ({text})` must invert `{text}`"
            );
        }
    }
}
