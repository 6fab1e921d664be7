//! `ConnectionStates::from_header` on arbitrary strings: it must never panic,
//! and whatever it accepts must survive `to_header` → `from_header` unchanged
//! (the service hands the header we write back to us with the next event).
//!
//! Half the inputs are used as the header verbatim; the other half are
//! base64-encoded first, so the fuzzer also explores the JSON inside.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use webpubsub::state::ConnectionStates;

#[derive(Debug, Arbitrary)]
enum Input<'a> {
    /// The header value as given.
    Header(&'a str),
    /// base64 of these bytes (the JSON object the header should carry).
    Json(&'a [u8]),
}

fuzz_target!(|input: Input<'_>| {
    let header = match input {
        Input::Header(header) => header.to_owned(),
        Input::Json(json) => base64::engine::general_purpose::STANDARD.encode(json),
    };
    let Ok(states) = ConnectionStates::from_header(&header) else {
        return;
    };
    let written = states.to_header();
    let read = ConnectionStates::from_header(&written)
        .unwrap_or_else(|e| panic!("our own header {written:?} does not read back: {e}"));
    assert_eq!(
        read, states,
        "header {header:?} → {written:?} changed the states"
    );
    // Written once more, it must be byte-identical (the service compares nothing,
    // but a stable encoding keeps logs and tests predictable).
    assert_eq!(read.to_header(), written);
});
