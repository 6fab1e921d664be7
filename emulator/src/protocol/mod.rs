//! The client protocols, one module each: what a client's frames say
//! (parsed into requests, nothing done) and what the service's messages
//! look like on the wire, with no emulator state. The endpoints
//! (`endpoint/`) act on what they read; the connection lifecycle
//! (`lifecycle/`) is the same for all.
//!
//! * `json/`: `json.webpubsub.azure.v1` and its reliable variant;
//! * `raw.rs`: plain WebSocket clients (no subprotocol);
//! * `mqtt/`: MQTT 3.1.1 and 5.0 packets (subprotocol `mqtt`).
//!
//! A new protocol is one module here plus its handshake entry in
//! `endpoint/`, which drives `lifecycle/`.

pub(crate) mod json;
pub(crate) mod mqtt;
pub(crate) mod raw;
