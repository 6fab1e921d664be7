//! MQTT 3.1.1 and 5.0 on the wire, as the service's broker side speaks it,
//! with no emulator state, one concept a file:
//!
//! * `packet.rs`: the packets in and out, their properties and will;
//! * `decode.rs`: a packet read off a buffer, with a size bound;
//! * `encode.rs`: a packet written per the client's version;
//! * `reason.rs`: the CONNACK, DISCONNECT and ack codes the emulator uses;
//! * `service.rs`: what the service adds: subprotocol, `$webpubsub/server/…`
//!   topics, the largest packet.

mod decode;
mod encode;
mod packet;
mod reason;
mod service;

pub(crate) use decode::{decode, DecodeError};
pub(crate) use packet::{Connect, Outgoing, Packet, Properties, Publish, Will, V4, V5};
pub(crate) use reason::{v4, v5, valid_refusal};
pub(crate) use service::{EVENTS_PREFIX, MAX_PACKET, SERVER_MESSAGES, SUBPROTOCOL};
