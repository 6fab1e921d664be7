//! The client WebSocket endpoint (`/client/hubs/{hub}`, `/client?hub=`)
//! of JSON, reliable JSON and raw clients: it acts on the `Command`s
//! `protocol/` reads from frames (it reads no JSON itself), and drives the
//! shared `lifecycle/`. One concept a file, in the order a connection meets
//! them:
//!
//! * `handshake.rs`: the upgrade request in named steps: read it,
//!   authenticate the token, raise `connect`, choose the subprotocol,
//!   upgrade;
//! * `recovery.rs`: a reliable client resuming a connection whose transport
//!   broke;
//! * `connection.rs`: a connection's life beyond one socket: registered,
//!   `connected`, parked for recovery or ended;
//! * `session.rs`: one socket, within its limits: reads client frames and
//!   writes queued messages until it ends;
//! * `ended.rs`: how a socket ends;
//! * `reader.rs`: what client frames do: each `Command`, or a raw frame;
//! * `invoke.rs`: `invoke` frames, each a user event in its own task whose
//!   answer becomes `invokeResponse`, and `cancelInvocation`;
//! * `stream.rs`: group streams (`sendToGroup` with `stream`,
//!   `streamData`, `streamEnd`);
//! * `outbound.rs`: queued messages as frames of the connection's protocol.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod connection;
mod ended;
mod handshake;
mod invoke;
mod outbound;
mod reader;
mod recovery;
mod session;
mod stream;

pub(crate) use handshake::handshake;
