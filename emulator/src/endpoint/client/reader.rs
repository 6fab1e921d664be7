//! What client frames do: the [`Command`]s `protocol/json` reads from
//! JSON-protocol frames (groups, events, `ping`, `sequenceAck`; invocations
//! handed to `invoke.rs`, streams to `stream.rs`) and the frames of simple
//! clients, which raise `message` events or publish to a group. A frame
//! that breaks the protocol ends the socket.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use bytes::Bytes;

use super::ended::{invalid, Ended};
use super::invoke::Invocations;
use super::stream;
use crate::hub::{lock, Connection, Data, Envelope, Origin, Outbound, Protocol, Target};
use crate::lifecycle::{user_event, UserEventError};
use crate::permissions::Action;
use crate::protocol::raw::RawMode;
use crate::protocol::{json, Command};
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
            self.conn.send(Outbound::Ack {
                id,
                error: error.map(Box::new),
            });
        }
    }

    /// One frame of the JSON protocols, as `protocol/json` reads it.
    async fn json(&mut self, text: &str) -> Result<(), Ended> {
        let command = json::parse(text)?;
        match command {
            Command::Ping => {
                self.conn.send(Outbound::Pong);
                Ok(())
            }
            Command::SequenceAck { sequence_id } => {
                if self.conn.protocol == Protocol::ReliableJson {
                    self.conn.reliable_ack(sequence_id?);
                }
                Ok(())
            }
            // Answered by `invokeResponse`, not acks (`invoke.rs`).
            Command::Invoke {
                invocation_id,
                event,
                data,
            } => {
                self.invocations.invoke(invocation_id, event, data);
                Ok(())
            }
            Command::CancelInvocation { invocation_id } => {
                self.invocations.cancel(&invocation_id);
                Ok(())
            }
            Command::StreamData {
                stream_id,
                fragment,
            } => {
                stream::data(self.shared, self.conn, stream_id, fragment);
                Ok(())
            }
            Command::StreamEnd { stream_id, error } => {
                stream::end(self.shared, self.conn, stream_id, error);
                Ok(())
            }
            acked => self.acked(acked).await,
        }
    }

    /// A command answered by acks: a duplicate `ackId` is answered before
    /// anything of the command is looked at (even its group name).
    async fn acked(&mut self, command: Command) -> Result<(), Ended> {
        let ack_id = command.ack_id();
        if let Some(id) = ack_id {
            if !lock(&self.conn.acks).first_use(id) {
                self.ack(
                    Some(id),
                    Some(("Duplicate", format!("The ackId {id} was already used."))),
                );
                return Ok(());
            }
        }
        match command {
            Command::JoinGroup { group, .. } => self.join_leave(&group?, ack_id, true),
            Command::LeaveGroup { group, .. } => self.join_leave(&group?, ack_id, false),
            Command::OpenStream { group, stream, .. } => {
                // The group name rule, as for joinGroup: a stream keeps its
                // group's name as long as it is open.
                let group = group?;
                stream::open(self.shared, self.conn, &group, stream?, ack_id);
            }
            Command::SendToGroup {
                group,
                data,
                no_echo,
                ..
            } => {
                let group = group?;
                let data = data?;
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
                self.publish(&group, data, no_echo);
                self.ack(ack_id, None);
            }
            Command::Event { event, data, .. } => {
                let name = event?;
                let data = data?;
                let result = self.event(&name, data).await;
                self.ack(
                    ack_id,
                    result.err().map(|reason| ("InternalServerError", reason)),
                );
            }
            // Not answered by acks: handled before (`json`).
            Command::Ping
            | Command::SequenceAck { .. }
            | Command::Invoke { .. }
            | Command::CancelInvocation { .. }
            | Command::StreamData { .. }
            | Command::StreamEnd { .. } => {}
        }
        Ok(())
    }

    /// `joinGroup` (`join`) or `leaveGroup` of a valid group name.
    fn join_leave(&self, group: &str, ack_id: Option<u64>, join: bool) {
        if !lock(&self.conn.permissions).allows(Action::JoinLeave, group) {
            self.ack(
                ack_id,
                Some((
                    "Forbidden",
                    format!("No permission to join or leave group `{group}`."),
                )),
            );
            return;
        }
        if join {
            if let Err(refusal) = self.shared.hubs.join(&self.conn.hub, &self.conn.id, group) {
                tracing::info!(target: "webpubsub_emulator::client", connection = %self.conn.id,
                    reason = %refusal, "joinGroup refused");
                self.ack(ack_id, Some(("Forbidden", refusal.to_string())));
                return;
            }
        } else {
            self.shared.hubs.leave(&self.conn.hub, &self.conn.id, group);
        }
        self.shared.changed();
        self.ack(ack_id, None);
    }
}
