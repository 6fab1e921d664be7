//! The JSON subprotocols, `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1`:
//!
//! * `inbound.rs`: client frames → [`Command`](crate::protocol::Command)s;
//! * `frames.rs`: what the service sends → JSON frames.

pub(crate) mod frames;
mod inbound;

pub(crate) use inbound::parse;
