//! MQTT 3.1.1 and 5.0 clients over WebSocket (`/clients/mqtt/hubs/{hub}`,
//! subprotocol `mqtt`), one concept a file:
//!
//! * `connect.rs`: the CONNECT packet: client id rules, the upstream
//!   `connect` event with its `mqtt` object, the CONNACK it decides;
//! * `session.rs`: one connected client: packets in (PUBLISH, SUBSCRIBE,
//!   UNSUBSCRIBE, PINGREQ, DISCONNECT, acks), queued messages out as
//!   PUBLISH, keep-alive, take-over, the end; a session kept after its
//!   network connection (detached until it expires or is resumed), and
//!   the `disconnected` event when it ends;
//! * this file: the client a CONNECT completes ([`Client`]).
//!
//! What an MQTT connection adds to a hub connection is `crate::hub::Link`.
//!
//! The packets are read and written by `crate::protocol::mqtt`. The token
//! is checked before the upgrade by `client/handshake.rs`
//! (`mqtt_handshake`), as for other clients.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod connect;
mod session;

pub(crate) use session::serve;

/// A client whose token passed: what the CONNECT packet completes.
#[derive(Debug)]
pub(crate) struct Client {
    /// The hub, lower-cased.
    pub(crate) hub: String,
    pub(crate) user_id: Option<String>,
    pub(crate) roles: Vec<String>,
    /// Initial subscriptions (the token's groups).
    pub(crate) groups: Vec<String>,
    /// The `connect` event's body without its `mqtt` object (claims,
    /// query, headers, subprotocols).
    pub(crate) connect_body: Vec<u8>,
}
