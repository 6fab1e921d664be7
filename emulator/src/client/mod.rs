//! The client WebSocket endpoint (`/client/hubs/{hub}`, `/client?hub=`),
//! one concept a file, in the order a connection meets them:
//!
//! * `handshake.rs`: the upgrade request in named steps: read it,
//!   authenticate the token, raise `connect`, choose the subprotocol,
//!   upgrade;
//! * `recovery.rs`: a reliable client resuming a connection whose transport
//!   broke;
//! * `connection.rs`: a connection's life beyond one socket: registered,
//!   `connected`, parked for recovery or ended, `disconnected`;
//! * `session.rs`: one socket, within its limits: reads client frames and
//!   writes queued messages until it ends;
//! * `reader.rs`: what client frames mean;
//! * `invoke.rs`: `invoke` frames, each a user event in its own task whose
//!   answer becomes `invokeResponse`, and `cancelInvocation`;
//! * `stream.rs`: group streams (`sendToGroup` with `stream`,
//!   `streamData`, `streamEnd`);
//! * `outbound.rs`: queued messages as frames of the connection's protocol;
//! * `reconnect_key.rs`: the key of reconnection tokens.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod connection;
mod handshake;
mod invoke;
mod outbound;
mod reader;
mod reconnect_key;
mod recovery;
mod session;
mod stream;

pub(crate) use connection::{event_call, finish};
pub(crate) use handshake::{handshake, mqtt_handshake};
pub(crate) use invoke::InvocationRecord;
pub(crate) use reconnect_key::ReconnectKey;
pub(crate) use stream::{open_streams, Streams};
