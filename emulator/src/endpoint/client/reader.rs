//! What client frames do: JSON-protocol requests as `protocol/json` reads
//! them (`joinGroup`, `leaveGroup`, `sendToGroup`, `event`, `ping`,
//! `sequenceAck`, and `invoke` / `cancelInvocation`, handed to
//! `invoke.rs`) and the frames of simple clients, which raise `message`
//! events or publish to a group. A frame that breaks the protocol ends the
//! socket.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use bytes::Bytes;

use super::ended::{invalid, Ended};
use super::invoke::Invocations;
use super::stream;
use crate::hub::{lock, Connection, Data, Envelope, Origin, Outbound, Protocol, Target};
use crate::lifecycle::{user_event, UserEventError};
use crate::permissions::Action;
use crate::protocol::json::{self, Kind};
use crate::protocol::raw::RawMode;
use crate::service::Shared;
use webpubsub::events::DataType;

/// Handles the frames of one socket.
pub(super) struct Reader<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) conn: &'a Arc<Connection>,
    pub(super) raw: &'a RawMode,
    /// The `invoke` frames still waiting for the upstream.
    pub(super) invocations: Invocations,
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

    /// One frame of the JSON protocols, as `protocol/json` reads it.
    async fn json(&mut self, text: &str) -> Result<(), Ended> {
        let request = json::parse(text)?;
        let ack_id = request.ack_id;
        match request.kind {
            Kind::Ping => {
                self.conn.send(Outbound::Pong);
                return Ok(());
            }
            Kind::SequenceAck => {
                if self.conn.protocol == Protocol::ReliableJson {
                    let sequence = request.sequence_id()?;
                    self.conn.reliable_ack(sequence);
                }
                return Ok(());
            }
            // Answered by `invokeResponse`, not acks (`invoke.rs`).
            Kind::Invoke => return self.invocations.invoke(&request.message),
            Kind::CancelInvocation => return self.invocations.cancel(&request.message),
            Kind::StreamData => return stream::data(self.shared, self.conn, &request.message),
            Kind::StreamEnd => return stream::end(self.shared, self.conn, &request.message),
            Kind::JoinGroup | Kind::LeaveGroup | Kind::SendToGroup | Kind::Event => {}
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
        match request.kind {
            Kind::JoinGroup | Kind::LeaveGroup => {
                let group = request.group()?;
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
                if request.kind == Kind::JoinGroup {
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
            Kind::SendToGroup => {
                // The group name rule, as for joinGroup: a stream keeps its
                // group's name as long as it is open.
                let group = request.group()?;
                if request.opens_stream() {
                    return stream::open(self.shared, self.conn, &group, &request.message, ack_id);
                }
                let data = request.payload()?;
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
                self.publish(&group, data, request.no_echo());
                self.ack(ack_id, None);
            }
            _ => {
                let name = request.event()?;
                let data = request.payload()?;
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
