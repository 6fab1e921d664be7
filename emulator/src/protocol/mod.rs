//! The client protocols, one module each: a client's frames turned into
//! protocol-neutral [`Command`]s (nothing done), and the service's messages
//! turned into frames, with no emulator state. The endpoints (`endpoint/`)
//! act on the commands; the connection lifecycle (`lifecycle/`) is the same
//! for all.
//!
//! * `command.rs`: the [`Command`]s, what any client may ask;
//! * `json/`: `json.webpubsub.azure.v1` and its reliable variant;
//! * `raw.rs`: plain WebSocket clients (no subprotocol);
//! * `mqtt/`: MQTT 3.1.1 and 5.0 packets (subprotocol `mqtt`), whose
//!   session semantics (QoS, packet ids) its own endpoint handles.
//!
//! A new protocol is one module here (frames → commands, messages →
//! frames) plus its handshake entry in `endpoint/`, which drives
//! `lifecycle/`.

mod command;
pub(crate) mod json;
pub(crate) mod mqtt;
pub(crate) mod raw;

pub(crate) use command::{
    BadInvoke, Command, IdleTimeout, Invalid, StreamError, StreamOpen, MAX_ID_BYTES, MAX_STREAM_ID,
};
