//! Nothing to use here: this package exists for its examples (see
//! Cargo.toml), and to run the README's code blocks as doctests, with the
//! emulator and the service client at hand as a reader's app has them.

/// The README's code blocks, run as doctests. The README is the
/// repository's front page (with screenshots and commands for a clone); the
/// crate's is `src/docs/crate.md`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
