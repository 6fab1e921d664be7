//! The emulator's protocols in detail, end to end on 127.0.0.1: reliable
//! recovery, the JSON and raw client protocols, exactly what the upstream
//! receives (recorded by a bare axum server, not this crate's router), the
//! REST data plane through `WebPubSubServiceClient`, and robustness under a
//! slow upstream and a slow reader.
//!
//! One file per topic; `recording_upstream` and `helpers` hold what they share.

#[path = "../common/mod.rs"]
mod common;
mod helpers;
mod recording_upstream;

mod abuse_protection;
mod json_protocol;
mod raw_clients;
mod reliable;
mod rest;
mod robustness;
mod upstream_calls;
mod upstream_failures;
