//! What the Web PubSub service adds to MQTT: its WebSocket subprotocol,
//! its `$webpubsub/server/…` topics and the largest packet it takes.

/// The WebSocket subprotocol of MQTT clients.
pub(crate) const SUBPROTOCOL: &str = "mqtt";

/// The topic of messages sent by the REST API to all, a user or a connection.
pub(crate) const SERVER_MESSAGES: &str = "$webpubsub/server/messages";

/// The topic prefix of user events.
pub(crate) const EVENTS_PREFIX: &str = "$webpubsub/server/events/";

/// The largest MQTT packet accepted (the emulator's frame limit, 1 MiB);
/// announced to 5.0 clients as Maximum Packet Size.
pub(crate) const MAX_PACKET: usize = 1024 * 1024;
