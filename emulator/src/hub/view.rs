//! Connections as the REST API lists them and the live view shows them,
//! and the live view's page of them ([`Hubs::snapshot`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::hubs::{key, Entry, HubState, Hubs};
use crate::shown::{clip, SHOWN_VALUE};
use crate::sync::lock;

/// A connection as listed by the REST API and the live view.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionInfo {
    pub(crate) connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
}

/// A connection as the live view shows it: its first
/// [`SHOWN_GROUPS`](crate::shown::SHOWN_GROUPS) groups (by name) and roles,
/// with their counts, every text clipped.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionView {
    connection_id: String,
    user_id: Option<String>,
    protocol: Option<String>,
    groups: Vec<String>,
    group_count: usize,
    roles: Vec<String>,
    role_count: usize,
}

impl ConnectionView {
    fn new(entry: &Entry) -> Self {
        use crate::shown::{clip, SHOWN_GROUPS, SHOWN_VALUE};
        // The SHOWN_GROUPS smallest names, without sorting (or copying) all.
        let mut first = BTreeSet::new();
        for group in &entry.groups {
            first.insert(group.as_str());
            if first.len() > SHOWN_GROUPS {
                first.pop_last();
            }
        }
        let permissions = lock(&entry.conn.permissions);
        let roles = permissions.roles();
        Self {
            connection_id: clip(&entry.conn.id, SHOWN_VALUE),
            user_id: entry.conn.user_id.as_deref().map(|u| clip(u, SHOWN_VALUE)),
            protocol: match &entry.conn.mqtt {
                // MQTT: the version; its groups are its subscriptions (topics).
                Some(link) if link.version == 5 => Some("mqtt 5.0".to_owned()),
                Some(_) => Some("mqtt 3.1.1".to_owned()),
                None => entry
                    .conn
                    .subprotocol
                    .as_deref()
                    .map(|p| clip(p, SHOWN_VALUE)),
            },
            groups: first.into_iter().map(|g| clip(g, SHOWN_VALUE)).collect(),
            group_count: entry.groups.len(),
            roles: roles
                .iter()
                .take(SHOWN_GROUPS)
                .map(|r| clip(r, SHOWN_VALUE))
                .collect(),
            role_count: roles.len(),
        }
    }
}

/// How big a hub is, for the live view.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct HubTotals {
    connections: usize,
    groups: usize,
    users: usize,
}

/// One page of the live view's connections, in (hub, connection id) order.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The page's connections by hub (lowercase hub names).
    pub(crate) hubs: BTreeMap<String, Vec<ConnectionView>>,
    /// The totals of the hubs on the page.
    pub(crate) hub_totals: BTreeMap<String, HubTotals>,
    /// Connections in all hubs asked for (the page holds `offset..` of them).
    pub(crate) connections: usize,
    /// Hubs asked for that have a connection.
    pub(crate) hub_count: usize,
}

/// An open stream as the live view shows it: where it goes, who sends
/// it, how far it got. Never its data.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamView {
    hub: String,
    connection_id: String,
    user_id: Option<String>,
    stream_id: String,
    group: String,
    /// Fragments published so far.
    fragments: u64,
    age_ms: u64,
    idle_timeout_ms: u64,
}

impl Hubs {
    /// Connections `offset..offset + limit` of `hub` (or of every hub,
    /// hub by hub in name order), for the live view. Takes only that page
    /// under the lock: skipping costs a step per connection, copying is
    /// bounded by `limit`.
    pub(crate) fn snapshot(&self, hub: Option<&str>, offset: usize, limit: usize) -> Snapshot {
        let hubs = lock(&self.hubs);
        let mut asked: Vec<(&String, &HubState)> = match hub {
            Some(hub) => hubs.get_key_value(&key(hub)).into_iter().collect(),
            None => hubs.iter().collect(),
        };
        asked.retain(|(_, state)| !state.conns.is_empty());
        asked.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut page = Snapshot {
            connections: asked.iter().map(|(_, state)| state.conns.len()).sum(),
            hub_count: asked.len(),
            ..Snapshot::default()
        };
        let (mut skip, mut left) = (offset, limit);
        for (name, state) in asked {
            if left == 0 {
                break;
            }
            if skip >= state.conns.len() {
                skip -= state.conns.len();
                continue;
            }
            let views: Vec<ConnectionView> = state
                .conns
                .values()
                .skip(skip)
                .take(left)
                .map(ConnectionView::new)
                .collect();
            skip = 0;
            left -= views.len();
            page.hub_totals.insert(
                name.clone(),
                HubTotals {
                    connections: state.conns.len(),
                    groups: state.groups.len(),
                    users: state.users.len(),
                },
            );
            page.hubs.insert(name.clone(), views);
        }
        page
    }
}

impl Hubs {
    /// The members of a group, ordered by connection id.
    pub(crate) fn list_group(&self, hub: &str, group: &str) -> Vec<ConnectionInfo> {
        self.read(hub, |state| {
            state
                .groups
                .get(group)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| state.conns.get(id))
                        .map(|e| ConnectionInfo {
                            connection_id: e.conn.id.to_string(),
                            user_id: e.conn.user_id.as_deref().map(str::to_owned),
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// The open streams of `hub` (or of every hub), oldest first, at most
    /// `max` of them, and how many are open in all.
    pub(crate) fn open_streams(&self, hub: Option<&str>, max: usize) -> (Vec<StreamView>, usize) {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut total = 0;
        let mut views = Vec::new();
        for conn in self.connections() {
            if hub.is_some_and(|hub| !conn.hub.eq_ignore_ascii_case(hub)) {
                continue;
            }
            let streams = lock(&conn.streams);
            total += streams.open.len();
            views.extend(streams.open.iter().map(|(id, s)| {
                (
                    s.since,
                    StreamView {
                        hub: clip(&conn.hub.to_ascii_lowercase(), SHOWN_VALUE),
                        connection_id: clip(&conn.id, SHOWN_VALUE),
                        user_id: conn.user_id.as_deref().map(|u| clip(u, SHOWN_VALUE)),
                        stream_id: clip(id, SHOWN_VALUE),
                        group: clip(&s.group, SHOWN_VALUE),
                        fragments: s.expected.saturating_sub(1),
                        age_ms: millis(s.since.elapsed()),
                        idle_timeout_ms: millis(s.idle),
                    },
                )
            }));
        }
        views.sort_unstable_by_key(|(since, _)| *since);
        views.truncate(max);
        (views.into_iter().map(|(_, view)| view).collect(), total)
    }
}
