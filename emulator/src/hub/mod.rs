//! Who is connected: connections, groups and users of every hub, and the
//! queue that carries messages to each connection.
//!
//! * `hubs.rs`: every hub's state ([`Hubs`]): who is in which group, which
//!   connections a message targets, and the caps on what a connection or
//!   user can make the emulator hold;
//! * `refusal.rs`: why the hubs refuse a connection or a group;
//! * `connection.rs`: one logical connection: its protocol, send queue,
//!   reliable buffer and ack ids;
//! * `queue.rs`: a connection's send queue and the bytes it holds, under
//!   one lock, and the queue's receiving end ([`Queue`]);
//! * `message.rs`: what travels to connections: payloads, envelopes and
//!   what a connection's writer sends;
//! * `mqtt_link.rs`: what an MQTT connection adds to a connection ([`Link`]);
//! * `stream.rs`: the group streams a connection sends, as state;
//! * `view.rs`: connections (and open streams) as the REST API lists them
//!   and the live view shows them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod connection;
mod hubs;
mod message;
mod mqtt_link;
mod queue;
mod refusal;
mod stream;
mod view;

pub(crate) use connection::{Connection, NewConnection, Protocol, Taken, BURST};
pub(crate) use hubs::{Caps, Hubs, Target};
pub(crate) use message::{Data, Encoding, Envelope, Origin, Outbound, StreamError, StreamTag};
pub(crate) use mqtt_link::{
    ids_headers, property_pairs, user_properties, EndReport, Link, ResumeRequest,
};
pub(crate) use queue::Queue;
pub(crate) use refusal::Refusal;
pub(crate) use stream::OpenStream;

pub(crate) use crate::sync::lock;
