//! The emulator's OData filter (`service.md` §3): any text is refused or
//! parsed without panicking, evaluation never panics, and a valid filter's
//! negation gives the opposite answer for every connection.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        webpubsub_emulator::__fuzz::odata_filter(text);
    }
});
