//! Helpers for the emulator's tests: the core's shared test helpers (a
//! recording handler, a router around it, a server on 127.0.0.1, captured
//! logs), which these tests use as the application behind the emulator,
//! and the emulator setup of `emulator.rs`.
#![allow(dead_code, unused_imports)] // each test file uses a different subset

#[path = "../../../tests/common/mod.rs"]
mod core;
pub(crate) mod emulator;

pub(crate) use self::core::*;
