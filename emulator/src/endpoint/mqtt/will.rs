//! The will of a CONNECT: what it counts against the connection's budget
//! while kept, and its publication to its group when the connection ends.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::session::Session;
use crate::hub::lock;
use crate::permissions::Action;
use crate::protocol::mqtt::{Publish, Will};
use webpubsub::names::GroupName;

/// What a will counts against the connection's budget.
pub(super) fn will_cost(will: &Will) -> usize {
    let properties: usize = will
        .properties
        .user_properties
        .iter()
        .map(|(n, v)| n.len() + v.len() + 48)
        .sum();
    will.topic.len() + will.payload.len() + properties + 64
}

impl Session {
    /// The will, to its group when the client may send there.
    pub(super) fn publish_will(&self, will: &Will) {
        if will.topic.starts_with('$')
            || !GroupName::is_valid(&will.topic)
            || will.topic.contains(['+', '#'])
            || !lock(&self.conn.permissions).allows(Action::Send, &will.topic)
        {
            return;
        }
        self.to_group(&Publish {
            dup: false,
            qos: will.qos,
            retain: false,
            topic: will.topic.clone(),
            packet_id: 0,
            properties: will.properties.clone(),
            payload: will.payload.clone(),
        });
    }
}
