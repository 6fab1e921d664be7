//! The MQTT endpoint: MQTT 3.1.1 and 5.0 clients over WebSocket
//! (`/clients/mqtt/hubs/{hub}`, subprotocol `mqtt`), one concept a file:
//!
//! * `handshake.rs`: the HTTP upgrade (`mqtt_handshake`): the token check
//!   and the subprotocol, before any packet;
//! * `connect.rs`: CONNECT: client id rules, the `connect` event with its
//!   `mqtt` object, resume or take-over, registration, the CONNACK;
//! * `serve.rs`: one connected client: the packet loop (packets in,
//!   keep-alive, take-over) and its end;
//! * `session.rs`: session keeping: a session detached (`park`) until it
//!   expires or is resumed, take-over for resume, the `Cleanup` guard;
//! * `end.rs`: how a connection ends, as `disconnected` reports it;
//! * `delivery.rs`: queued messages out as PUBLISH, QoS 1 in flight, PUBACK;
//! * `publish.rs`: PUBLISH from the client: to a group, QoS 1 and 2 acks;
//! * `subscribe.rs`: SUBSCRIBE and UNSUBSCRIBE, topics as groups;
//! * `will.rs`: the will: its cost while kept, its publication;
//! * `user_event.rs`: PUBLISH to `$webpubsub/server/events/…` as user events.
//!
//! The wire format is `crate::protocol::mqtt`; what an MQTT connection
//! adds to a hub connection is `crate::hub::Link`.

mod connect;
mod delivery;
mod end;
mod handshake;
mod publish;
mod serve;
mod session;
mod subscribe;
mod user_event;
mod will;

pub(crate) use connect::Client;
pub(crate) use handshake::mqtt_handshake;
pub(crate) use serve::serve;
