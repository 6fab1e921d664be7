//! `#[event_handler]` at compile time (issue 3, item 3): every supported form
//! compiles (`tests/ui/pass`), and each misuse is one compile error at the
//! offending tokens that says what to write instead (`tests/ui/fail`, with
//! the `.stderr` snapshots reviewed like API).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p webpubsub-macros --test ui`.

#[test]
fn event_handler_accepts_every_documented_form_and_rejects_misuse_with_a_clear_error() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
