//! What client frames mean: JSON-protocol messages (`joinGroup`,
//! `leaveGroup`, `sendToGroup`, `event`, `ping`, `sequenceAck`, and
//! `invoke` / `cancelInvocation`, handed to `invoke.rs`) and the
//! frames of simple clients, which raise `message` events or publish to a
//! group. A frame that breaks the protocol ends the socket.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::connection::{user_event, UserEventError};
use super::invoke::Invocations;
use super::session::Ended;
use super::stream;
use crate::hub::{lock, Connection, Data, Envelope, Origin, Outbound, Protocol, Target};
use crate::permissions::Action;
use crate::server::Shared;
use webpubsub::events::DataType;

/// Options of simple clients.
#[derive(Debug, Clone, Default)]
pub(super) struct RawMode {
    /// `sendToGroup` mode: frames go to this group.
    pub(super) group: Option<String>,
    /// In `sendToGroup` mode, whether the sender is left out.
    pub(super) no_echo: bool,
}

/// Handles the frames of one socket.
pub(super) struct Reader<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) conn: &'a Arc<Connection>,
    pub(super) raw: &'a RawMode,
    /// The `invoke` frames still waiting for the upstream.
    pub(super) invocations: Invocations,
}

/// The end of a socket that broke the protocol (close code 1003).
pub(super) fn invalid(reason: &str) -> Ended {
    Ended::Terminated(1003, format!("Invalid message: {reason}"))
}

impl Reader<'_> {
    /// A text frame.
    pub(super) async fn text(&mut self, text: &str) -> Result<(), Ended> {
        if self.conn.protocol.is_json() {
            return self.json(text).await;
        }
        self.raw_frame(DataType::Text, Bytes::from(text.to_owned()))
            .await
    }

    /// A binary frame.
    pub(super) async fn binary(&mut self, bytes: Bytes) -> Result<(), Ended> {
        if self.conn.protocol.is_json() {
            return Err(invalid("binary frames are not part of the JSON protocol"));
        }
        self.raw_frame(DataType::Binary, bytes).await
    }

    /// A frame of a simple client: a `message` event, or a group message in `sendToGroup` mode.
    async fn raw_frame(&mut self, kind: DataType, bytes: Bytes) -> Result<(), Ended> {
        let data = Data { kind, bytes };
        if let Some(group) = &self.raw.group {
            if lock(&self.conn.permissions).allows(Action::Send, group) {
                self.publish(group, data, self.raw.no_echo);
            }
            return Ok(());
        }
        match self.event("message", data).await {
            Ok(()) => Ok(()),
            Err(reason) => Err(Ended::Terminated(1011, reason)),
        }
    }

    /// Sends a user event upstream and queues its reply. `Err`: why it failed.
    async fn event(&mut self, name: &str, data: Data) -> Result<(), String> {
        match user_event(self.shared, self.conn, name, data).await {
            Ok(reply) => {
                if let Some(data) = reply {
                    self.conn
                        .send(Outbound::Message(Envelope::new(Origin::Server, data)));
                }
                Ok(())
            }
            Err(UserEventError::NoHandler) => Err(format!(
                "No event handler is registered for the event `{name}`."
            )),
            Err(UserEventError::Upstream(e)) => {
                tracing::warn!(target: "webpubsub_emulator::client", connection = %self.conn.id, event = name, error = %e, "user event failed: {}", e.summary());
                Err(e.client_text())
            }
        }
    }

    fn publish(&self, group: &str, data: Data, no_echo: bool) {
        let excluded = if no_echo {
            vec![self.conn.id.to_string()]
        } else {
            Vec::new()
        };
        let origin = Origin::Group {
            group: Arc::from(group),
            from_user: self.conn.user_id.clone(),
            stream: None,
        };
        let envelope = Envelope::new(origin, data);
        let targets =
            self.shared
                .hubs
                .targets(&self.conn.hub, Target::Group(group), &excluded, None);
        for target in targets {
            target.send(Outbound::Message(envelope.clone()));
        }
    }

    fn ack(&self, id: Option<u64>, error: Option<(&'static str, String)>) {
        if let Some(id) = id {
            self.conn.send(Outbound::Ack { id, error });
        }
    }

    /// One frame of the JSON protocols.
    async fn json(&mut self, text: &str) -> Result<(), Ended> {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Err(invalid("not a JSON object"));
        };
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ack_id = match message.get("ackId") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| invalid("ackId must be an unsigned integer"))?,
            ),
        };
        let string = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
        match kind {
            "ping" => {
                self.conn.send(Outbound::Pong);
                return Ok(());
            }
            "sequenceAck" => {
                if self.conn.protocol == Protocol::ReliableJson {
                    let sequence = message
                        .get("sequenceId")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| invalid("sequenceAck needs a sequenceId"))?;
                    self.conn.reliable_ack(sequence);
                }
                return Ok(());
            }
            // Answered by `invokeResponse`, not acks (`invoke.rs`).
            "invoke" => return self.invocations.invoke(&message),
            "cancelInvocation" => return self.invocations.cancel(&message),
            "streamData" => return stream::data(self.shared, self.conn, &message),
            "streamEnd" => return stream::end(self.shared, self.conn, &message),
            "joinGroup" | "leaveGroup" | "sendToGroup" | "event" => {}
            other => return Err(invalid(&format!("unknown type `{other}`"))),
        }
        if let Some(id) = ack_id {
            if !lock(&self.conn.acks).first_use(id) {
                self.ack(
                    Some(id),
                    Some(("Duplicate", format!("The ackId {id} was already used."))),
                );
                return Ok(());
            }
        }
        match kind {
            "joinGroup" | "leaveGroup" => {
                let group = string("group")
                    .filter(|g| webpubsub::names::GroupName::is_valid(g))
                    .ok_or_else(|| invalid("a group name is required"))?;
                if !lock(&self.conn.permissions).allows(Action::JoinLeave, &group) {
                    self.ack(
                        ack_id,
                        Some((
                            "Forbidden",
                            format!("No permission to join or leave group `{group}`."),
                        )),
                    );
                    return Ok(());
                }
                if kind == "joinGroup" {
                    if let Err(refusal) =
                        self.shared.hubs.join(&self.conn.hub, &self.conn.id, &group)
                    {
                        tracing::info!(target: "webpubsub_emulator::client", connection = %self.conn.id,
                            reason = %refusal, "joinGroup refused");
                        self.ack(ack_id, Some(("Forbidden", refusal.to_string())));
                        return Ok(());
                    }
                } else {
                    self.shared
                        .hubs
                        .leave(&self.conn.hub, &self.conn.id, &group);
                }
                self.shared.changed();
                self.ack(ack_id, None);
            }
            "sendToGroup" => {
                // The group name rule, as for joinGroup: a stream keeps its
                // group's name as long as it is open.
                let group = string("group")
                    .filter(|g| webpubsub::names::GroupName::is_valid(g))
                    .ok_or_else(|| invalid("a group name is required"))?;
                if message.contains_key("stream") {
                    return stream::open(self.shared, self.conn, &group, &message, ack_id);
                }
                let data = payload(&message)?;
                if !lock(&self.conn.permissions).allows(Action::Send, &group) {
                    self.ack(
                        ack_id,
                        Some((
                            "Forbidden",
                            format!("No permission to send to group `{group}`."),
                        )),
                    );
                    return Ok(());
                }
                let no_echo = message
                    .get("noEcho")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.publish(&group, data, no_echo);
                self.ack(ack_id, None);
            }
            _ => {
                let name = string("event")
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| invalid("an event name is required"))?;
                let data = payload(&message)?;
                let result = self.event(&name, data).await;
                self.ack(
                    ack_id,
                    result.err().map(|reason| ("InternalServerError", reason)),
                );
            }
        }
        Ok(())
    }
}

/// The `dataType` + `data` of a client message.
pub(super) fn payload(message: &Map<String, Value>) -> Result<Data, Ended> {
    let data = message.get("data").cloned().unwrap_or(Value::Null);
    match message
        .get("dataType")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Ok(Data {
            kind: DataType::Json,
            bytes: Bytes::from(data.to_string()),
        }),
        "text" => match data {
            Value::String(s) => Ok(Data {
                kind: DataType::Text,
                bytes: Bytes::from(s),
            }),
            _ => Err(invalid("text data must be a string")),
        },
        "binary" | "protobuf" => match data {
            Value::String(s) => STANDARD
                .decode(s.as_bytes())
                .map(|b| Data {
                    kind: DataType::Binary,
                    bytes: Bytes::from(b),
                })
                .map_err(|_| invalid("binary data must be base64")),
            _ => Err(invalid("binary data must be a base64 string")),
        },
        other => Err(invalid(&format!("unknown dataType `{other}`"))),
    }
}
