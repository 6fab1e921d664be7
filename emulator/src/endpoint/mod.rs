//! The endpoints: each turns requests on its routes into calls on the
//! layers below (the connection lifecycle, the hubs' state, the upstream).
//!
//! * `client/`: the WebSocket client endpoint (JSON, reliable JSON and raw
//!   clients): the handshake entry, the session loop, invocations, group
//!   streams, recovery;
//! * `mqtt/`: MQTT 3.1.1 and 5.0 clients over WebSocket: the handshake
//!   entry, CONNECT, the packet loop, session keeping, delivery, wills;
//! * `rest/`: the REST data plane (`/api/…`);
//! * `live.rs` (+ `live.html`): the live view (`/_emulator`);
//! * `entra.rs`: the Entra ID's routes (`/{tenant}/…`);
//! * `admin.rs`: the loopback-peer check of the admin routes.

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod entra;
pub(crate) mod live;
pub(crate) mod mqtt;
pub(crate) mod rest;
