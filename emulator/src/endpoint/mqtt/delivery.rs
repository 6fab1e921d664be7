//! Delivery to the client: queued messages out as PUBLISH (QoS 0 or 1),
//! the QoS 1 messages in flight and their PUBACKs, counted against the
//! connection's budget, and a resumed session's replay.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::extract::ws::Message;

use super::end::End;
use super::session::Session;
use crate::hub::{Encoding, Envelope, Origin, Outbound};
use crate::protocol::mqtt::{v5, Outgoing, Properties, Publish, SERVER_MESSAGES, V4, V5};
use webpubsub::events::DataType;

/// At most this many QoS 1 messages to a client wait for its PUBACK; one
/// more means the client does not keep up, and it is disconnected.
const MAX_INFLIGHT: usize = 1024;

/// What a QoS 1 message waiting for its PUBACK counts against the budget.
fn inflight_cost(publish: &Publish) -> usize {
    publish.topic.len() + publish.payload.len() + 64
}

/// The PUBLISH of a queued message on `topic` (no packet id yet); 5.0
/// packets carry the content type.
fn publish_of(envelope: &Envelope, topic: &str, qos: u8, v5: bool) -> Publish {
    let content_type = match envelope.data.kind {
        DataType::Text if v5 => Some("text/plain".to_owned()),
        DataType::Json if v5 => Some("application/json".to_owned()),
        _ => None,
    };
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        packet_id: 0,
        properties: Properties {
            content_type,
            ..Properties::default()
        },
        payload: envelope.data.bytes.clone(),
    }
}

/// What the packet loop writes: a packet to encode for the client's
/// version, or a frame already encoded and shared by many recipients.
pub(super) enum Wire {
    /// Boxed: the loop keeps a few wires' room between bursts.
    Packet(Box<Outgoing>),
    Frame(Message),
}

impl Session {
    /// A resumed session's first packets: unacknowledged messages again
    /// (DUP), then those that arrived while it was detached.
    pub(super) fn replay(&mut self, backlog: Vec<Outbound>) -> Result<Vec<Wire>, End> {
        let mut replay: Vec<Wire> = self
            .inflight
            .values()
            .map(|p| {
                let mut p = p.clone();
                p.dup = true;
                Wire::Packet(Box::new(Outgoing::Publish(p)))
            })
            .collect();
        for message in backlog {
            // Out of the queue first, so a QoS 1 message is not counted twice.
            self.conn.written(message.cost());
            replay.extend(self.delivery(message)?);
        }
        Ok(replay)
    }

    /// A PUBACK: the message leaves the inflight set and the budget.
    pub(super) fn acked(&mut self, packet_id: u16) {
        if let Some(p) = self.inflight.remove(&packet_id) {
            self.conn.release(inflight_cost(&p));
        }
    }

    /// A queued message as what to write to this client (nothing, for a
    /// message not meant for MQTT clients or over its maximum packet size).
    /// A QoS 0 PUBLISH is the same bytes for every recipient of its
    /// protocol version: encoded once per message ([`Encoding::MqttV4`],
    /// [`Encoding::MqttV5`]) and shared.
    pub(super) fn delivery(&mut self, message: Outbound) -> Result<Option<Wire>, End> {
        match message {
            Outbound::Message(envelope) => {
                let (topic, qos) = match &envelope.origin {
                    Origin::Group { group, stream, .. } => {
                        if stream.is_some() && envelope.data.bytes.is_empty() {
                            return Ok(None);
                        }
                        // Groups joined by the token, the connect answer or
                        // REST count as QoS 1 subscriptions.
                        let qos = self.subscriptions.get(&**group).copied().unwrap_or(1);
                        (&**group, qos.min(1))
                    }
                    Origin::Server => (SERVER_MESSAGES, 1),
                };
                if qos == 0 {
                    let (encoding, version) = if self.v5() {
                        (Encoding::MqttV5, V5)
                    } else {
                        (Encoding::MqttV4, V4)
                    };
                    let frame = envelope.frames.get_or_encode(encoding, || {
                        let publish = publish_of(&envelope, topic, 0, version == V5);
                        Message::Binary(Outgoing::Publish(publish).encode(version))
                    });
                    if let (Some(max), Message::Binary(bytes)) = (self.client_max, frame) {
                        if bytes.len() > max {
                            return Ok(None);
                        }
                    }
                    return Ok(Some(Wire::Frame(frame.clone())));
                }
                let publish = publish_of(&envelope, topic, qos, self.v5());
                Ok(self
                    .outgoing_publish(publish)
                    .map(|p| Wire::Packet(Box::new(p))))
            }
            Outbound::Close { reason } => {
                let mut end = End::service(v5::ADMINISTRATIVE_ACTION, reason);
                end.ends_session = true;
                Err(end)
            }
            // JSON-protocol replies and WebSocket pings: not for MQTT clients.
            Outbound::Ack { .. } | Outbound::Pong | Outbound::KeepAlive | Outbound::Frame(_) => {
                Ok(None)
            }
        }
    }

    /// Finishes a PUBLISH to the client: a packet id for QoS 1, 5.0
    /// properties only for 5.0, dropped when over the client's maximum
    /// packet size. `None`: nothing to send.
    pub(super) fn outgoing_publish(&mut self, mut publish: Publish) -> Option<Outgoing> {
        if !self.v5() {
            publish.properties = Properties::default();
        }
        if publish.qos > 0 {
            if self.inflight.len() >= MAX_INFLIGHT {
                if self
                    .conn
                    .terminate("The client does not acknowledge its messages (PUBACK).")
                {
                    tracing::warn!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                        "too many unacknowledged QoS 1 messages: disconnecting the client");
                }
                return None;
            }
            loop {
                self.next_id = self.next_id.wrapping_add(1).max(1);
                if !self.inflight.contains_key(&self.next_id) {
                    break;
                }
            }
            publish.packet_id = self.next_id;
        }
        let packet = Outgoing::Publish(publish);
        if let Some(max) = self.client_max {
            if packet.encode(self.version).len() > max {
                return None;
            }
        }
        if let Outgoing::Publish(p) = &packet {
            if p.qos > 0 {
                // Held until its PUBACK, within the connection's one budget.
                if self.conn.hold(inflight_cost(p)).is_err() {
                    if self
                        .conn
                        .terminate("The client does not acknowledge its messages (PUBACK).")
                    {
                        tracing::warn!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                            held_bytes = self.conn.held(), budget = self.conn.budget(),
                            "unacknowledged QoS 1 messages over the budget: disconnecting the client");
                    }
                    return None;
                }
                self.inflight.insert(p.packet_id, p.clone());
            }
        }
        Some(packet)
    }
}
