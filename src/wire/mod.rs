//! The upstream wire format, written once: event types (`ce-type`), header
//! names, and the one writer of binary-mode CloudEvent requests.
//!
//! The decoder reads with it, and everything that sends an event writes with
//! it: [`testing`](crate::testing) and the emulator's upstream calls. A new
//! event type or header is added here and nowhere else.

mod cloud_event;
mod event_type;
pub(crate) mod headers;

pub(crate) use cloud_event::CloudEvent;
pub(crate) use event_type::EventType;
