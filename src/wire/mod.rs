//! The upstream wire format, written once: event types (`ce-type`), header
//! names, the `connect` body, and the one writer of binary-mode CloudEvent
//! requests.
//!
//! The decoder reads with it, and everything that sends an event writes with
//! it: [`testing`](crate::testing) and the `webpubsub-emulator` crate's
//! upstream calls. A new event type or header is added here and nowhere
//! else. Applications rarely need it: it is for tools that speak the
//! protocol themselves (a proxy, a recorder, a test double of the service).

mod cloud_event;
mod event_type;
pub mod headers;

pub use crate::events::connect::ConnectBody;
pub use cloud_event::CloudEvent;
pub use event_type::EventType;
