//! SUBSCRIBE and UNSUBSCRIBE: topics are groups (joined and left in the
//! hub); `$webpubsub/server/…` topics are kept as subscriptions only.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::session::Session;
use crate::hub::lock;
use crate::permissions::Action;
use crate::protocol::mqtt::v5;
use webpubsub::names::GroupName;

/// The longest `$webpubsub/server/…` topic filter kept, in UTF-16 code
/// units (as long as a group name may be).
const MAX_SERVER_TOPIC: usize = 1024;

impl Session {
    /// One SUBSCRIBE filter: its SUBACK code.
    pub(super) fn subscribe(&mut self, topic: &str, qos: u8) -> u8 {
        let v5 = self.v5();
        let failure = |code: u8| if v5 { code } else { 0x80 };
        let granted = qos.min(1);
        if topic.starts_with("$share/") {
            return failure(v5::SHARED_NOT_SUPPORTED);
        }
        if topic.contains(['+', '#']) {
            return failure(v5::WILDCARDS_NOT_SUPPORTED);
        }
        if topic.starts_with("$webpubsub/server/") {
            // Sent to the client anyway; nothing to join. Kept, so bounded
            // as groups are: a name of a group's length, and as many
            // subscriptions as a connection may have groups.
            let max = self.shared.hubs.groups_per_connection();
            if !self.subscriptions.contains_key(topic) {
                if topic.encode_utf16().count() > MAX_SERVER_TOPIC {
                    return failure(v5::TOPIC_FILTER_INVALID);
                }
                if self.subscriptions.len() >= max {
                    tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                        max, "SUBSCRIBE refused: too many subscriptions");
                    return failure(v5::QUOTA_EXCEEDED);
                }
            }
            self.subscriptions.insert(topic.to_owned(), granted);
            return granted;
        }
        if topic.starts_with("$webpubsub/") || !GroupName::is_valid(topic) {
            return failure(v5::TOPIC_FILTER_INVALID);
        }
        if !lock(&self.conn.permissions).allows(Action::JoinLeave, topic) {
            tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id, topic, "SUBSCRIBE forbidden");
            return failure(v5::NOT_AUTHORIZED);
        }
        if let Err(refusal) = self.shared.hubs.join(&self.conn.hub, &self.conn.id, topic) {
            tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id, topic, reason = %refusal, "SUBSCRIBE refused");
            return failure(v5::QUOTA_EXCEEDED);
        }
        self.subscriptions.insert(topic.to_owned(), granted);
        granted
    }

    /// One UNSUBSCRIBE topic: its UNSUBACK code (5.0).
    pub(super) fn unsubscribe(&mut self, topic: &str) -> u8 {
        let known = self.subscriptions.remove(topic).is_some();
        if !topic.starts_with('$') {
            if !lock(&self.conn.permissions).allows(Action::JoinLeave, topic) {
                return v5::NOT_AUTHORIZED;
            }
            self.shared.hubs.leave(&self.conn.hub, &self.conn.id, topic);
        }
        if known {
            0
        } else {
            // "No subscription existed" (5.0), a success code.
            0x11
        }
    }
}
