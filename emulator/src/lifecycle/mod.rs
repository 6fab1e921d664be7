//! A client connection's life, one implementation for every protocol:
//! the handshake steps they share, the `connect` call and its answer
//! applied once, `connected` and user events, and the end
//! (`disconnected`, streams closed). Endpoints (`endpoint/`) drive it;
//! REST's close ends connections through it too.
//!
//! * `handshake.rs`: read the upgrade request, check the token, the
//!   identity; refusals; the socket's limits;
//! * `connect.rs`: the `connect` event and its answer;
//! * `events.rs`: `connected` and user events;
//! * `streams.rs`: how a connection's group streams end;
//! * `end.rs`: a connection ended for good (`disconnected`).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub(crate) mod connect;
mod end;
mod events;
pub(crate) mod handshake;
pub(crate) mod streams;

pub(crate) use end::finish;
pub(crate) use events::{event_call, keep_state, raise_connected, user_event, UserEventError};
