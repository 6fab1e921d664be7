//! PUBLISH from the client: the topic checks, a message to its group (or
//! a user event), and the QoS 1 and 2 acknowledgements.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use super::end::End;
use super::session::Session;
use super::user_event::{user_event, Pending};
use crate::hub::{lock, Data, Envelope, Origin, Outbound, Target};
use crate::permissions::Action;
use crate::protocol::mqtt::{v5, Outgoing, Publish, EVENTS_PREFIX};
use webpubsub::events::DataType;
use webpubsub::names::GroupName;

/// At most this many QoS 2 messages from a client wait for its PUBREL.
const MAX_QOS2_PENDING: usize = 1024;

impl Session {
    /// A PUBLISH from the client: to a group, or a user event.
    pub(super) fn publish(
        &mut self,
        p: Publish,
        pending: &mut Option<Pending>,
    ) -> Result<Vec<Outgoing>, End> {
        if self.v5() && p.properties.topic_alias.is_some() {
            return Err(End::service(
                v5::TOPIC_ALIAS_INVALID,
                "Topic aliases are not supported.",
            ));
        }
        if p.retain && self.v5() {
            return Err(End::service(
                v5::RETAIN_NOT_SUPPORTED,
                "Retained messages are not supported.",
            ));
        }
        if p.topic.is_empty() || p.topic.contains(['+', '#']) {
            return Err(End::service(
                v5::TOPIC_NAME_INVALID,
                "A PUBLISH topic is a group name, without wildcards.",
            ));
        }
        if p.qos == 2 {
            if self.qos2.contains(&p.packet_id) {
                // A resent QoS 2 message, delivered once already.
                return Ok(vec![Outgoing::PubRec {
                    packet_id: p.packet_id,
                    code: 0,
                }]);
            }
            if self.qos2.len() >= MAX_QOS2_PENDING {
                return Err(End::service(
                    0x93,
                    "Too many QoS 2 messages wait for PUBREL.",
                ));
            }
        }
        let code = if let Some(event) = p.topic.strip_prefix(EVENTS_PREFIX) {
            if event.is_empty() || event.contains('/') {
                v5::TOPIC_NAME_INVALID
            } else {
                *pending = Some(Box::pin(user_event(
                    self.shared.clone(),
                    self.conn.clone(),
                    event.to_owned(),
                    p.clone(),
                )));
                0
            }
        } else if p.topic.starts_with("$webpubsub/") || !GroupName::is_valid(&p.topic) {
            v5::TOPIC_NAME_INVALID
        } else if !lock(&self.conn.permissions).allows(Action::Send, &p.topic) {
            v5::NOT_AUTHORIZED
        } else {
            self.to_group(&p);
            0
        };
        if code != 0 {
            tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id, topic = %p.topic, code, "PUBLISH refused");
        }
        // 3.1.1 has no refusal codes: a refused message is dropped and
        // still acknowledged.
        let code = if self.v5() { code } else { 0 };
        Ok(match p.qos {
            1 => vec![Outgoing::PubAck {
                packet_id: p.packet_id,
                code,
            }],
            2 => {
                if code < 0x80 {
                    self.qos2.insert(p.packet_id);
                }
                vec![Outgoing::PubRec {
                    packet_id: p.packet_id,
                    code,
                }]
            }
            _ => Vec::new(),
        })
    }

    /// Sends a PUBLISH to group `p.topic`.
    pub(super) fn to_group(&self, p: &Publish) {
        let envelope = Envelope::new(
            Origin::Group {
                group: Arc::from(p.topic.as_str()),
                from_user: self.conn.user_id.clone(),
                stream: None,
            },
            data_of(p),
        );
        let targets = self
            .shared
            .hubs
            .targets(&self.conn.hub, Target::Group(&p.topic), &[], None);
        for target in targets {
            target.send(Outbound::Message(envelope.clone()));
        }
    }
}

/// A PUBLISH payload as a group message: typed by its 5.0 content type
/// (`text/plain…` → text, `application/json…` holding valid JSON → json),
/// else binary.
fn data_of(p: &Publish) -> Data {
    let content_type = p.properties.content_type.as_deref().unwrap_or("");
    let kind = if content_type.starts_with("text/plain") {
        DataType::Text
    } else if content_type.starts_with("application/json")
        && serde_json::from_slice::<serde::de::IgnoredAny>(&p.payload).is_ok()
    {
        DataType::Json
    } else {
        DataType::Binary
    };
    Data {
        kind,
        bytes: p.payload.clone(),
    }
}
