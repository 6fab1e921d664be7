//! Who is connected: connections, groups and users of every hub, and the
//! queue that carries messages to each connection.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::filter::{FilterSubject, ODataFilter};
use super::permissions::Permissions;

/// Locks a mutex, ignoring poisoning (a panicked holder left consistent data:
/// every critical section here is a few map operations).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a payload is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    Text,
    /// The bytes are one valid JSON value.
    Json,
    Binary,
}

impl DataKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Binary => "binary",
        }
    }
}

/// A message payload, shared by every recipient.
#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) kind: DataKind,
    pub(crate) bytes: Bytes,
}

/// Where a message comes from, as JSON clients see it.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Server,
    Group {
        group: Arc<str>,
        from_user: Option<Arc<str>>,
    },
}

/// A message on its way to one or many connections.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) origin: Origin,
    pub(crate) data: Data,
    /// The JSON-protocol frame, built once for every recipient that needs it.
    pub(crate) json_frame: std::sync::OnceLock<axum::extract::ws::Utf8Bytes>,
}

impl Envelope {
    pub(crate) fn new(origin: Origin, data: Data) -> Arc<Self> {
        Arc::new(Self {
            origin,
            data,
            json_frame: std::sync::OnceLock::new(),
        })
    }
}

/// What the writer of a connection sends.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Message(Arc<Envelope>),
    Ack {
        id: u64,
        error: Option<(&'static str, String)>,
    },
    Pong,
    /// A service-initiated close (REST): JSON clients are told why first.
    Close {
        reason: String,
    },
}

/// The client protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// No subprotocol (or a custom one): frames are user events.
    Raw,
    Json,
    ReliableJson,
}

impl Protocol {
    pub(crate) const JSON: &'static str = "json.webpubsub.azure.v1";
    pub(crate) const RELIABLE_JSON: &'static str = "json.reliable.webpubsub.azure.v1";

    pub(crate) fn from_subprotocol(name: Option<&str>) -> Self {
        match name {
            Some(Self::JSON) => Self::Json,
            Some(Self::RELIABLE_JSON) => Self::ReliableJson,
            _ => Self::Raw,
        }
    }

    pub(crate) fn is_json(self) -> bool {
        !matches!(self, Self::Raw)
    }
}

/// Messages sent to a reliable connection and not yet acknowledged.
#[derive(Debug, Default)]
pub(crate) struct ReliableBuffer {
    pub(crate) next_sequence: u64,
    pub(crate) frames: VecDeque<(u64, Arc<str>)>,
    pub(crate) bytes: usize,
}

/// At most this many unacknowledged messages are kept…
pub(crate) const RELIABLE_MAX_MESSAGES: usize = 1000;
/// …or this many bytes.
pub(crate) const RELIABLE_MAX_BYTES: usize = 16 * 1024 * 1024;

impl ReliableBuffer {
    /// Frees every message up to `sequence` (cumulative ack).
    pub(crate) fn ack(&mut self, sequence: u64) {
        while let Some((id, frame)) = self.frames.front() {
            if *id > sequence {
                break;
            }
            self.bytes -= frame.len();
            self.frames.pop_front();
        }
    }
}

/// One logical client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: Arc<str>,
    /// The hub as the client named it.
    pub(crate) hub: Arc<str>,
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) protocol: Protocol,
    /// The subprotocol accepted in the handshake (`ce-subprotocol`).
    pub(crate) subprotocol: Option<String>,
    pub(crate) permissions: Mutex<Permissions>,
    pub(crate) reconnection_token: String,
    /// `ce-connectionState` from the upstream's last answer.
    pub(crate) state: Mutex<Option<String>>,
    /// The last `ce-id` used (`connect` is 0).
    event_id: AtomicU64,
    tx: mpsc::Sender<Outbound>,
    /// The receiving end while no socket serves the connection (recovery).
    pub(crate) parked: Mutex<Option<mpsc::Receiver<Outbound>>>,
    pub(crate) reliable: Mutex<ReliableBuffer>,
    killed: AtomicBool,
    pub(crate) kill_reason: Mutex<Option<String>>,
    pub(crate) kill: Notify,
    /// Set once the connection is gone for good.
    pub(crate) ended: AtomicBool,
    /// Bumped each time a socket takes the connection over (recovery).
    generation: AtomicU64,
    /// Ack ids the client has used (kept across recovery).
    pub(crate) acks: Mutex<HashSet<u64>>,
    /// Tells the socket serving the connection to let go: a recovering
    /// client takes the connection over.
    pub(crate) takeover: Notify,
    /// Turns `true` once the upstream has had the `connected` event; later
    /// events (user events, `disconnected`) wait for it, so the upstream
    /// sees them in order.
    pub(crate) connected_done: tokio::sync::watch::Sender<bool>,
}

/// What a new connection starts with.
#[derive(Debug)]
pub(crate) struct NewConnection {
    pub(crate) id: Arc<str>,
    pub(crate) hub: Arc<str>,
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) protocol: Protocol,
    pub(crate) subprotocol: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) reconnection_token: String,
    pub(crate) state: Option<String>,
    pub(crate) queue: usize,
}

impl Connection {
    pub(crate) fn new(new: NewConnection) -> (Arc<Self>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(new.queue.max(1));
        let conn = Arc::new(Self {
            id: new.id,
            hub: new.hub,
            user_id: new.user_id,
            protocol: new.protocol,
            subprotocol: new.subprotocol,
            permissions: Mutex::new(Permissions::new(new.roles)),
            reconnection_token: new.reconnection_token,
            state: Mutex::new(new.state),
            event_id: AtomicU64::new(0),
            tx,
            parked: Mutex::new(None),
            reliable: Mutex::new(ReliableBuffer {
                next_sequence: 1,
                ..ReliableBuffer::default()
            }),
            killed: AtomicBool::new(false),
            kill_reason: Mutex::new(None),
            kill: Notify::new(),
            ended: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            acks: Mutex::new(HashSet::new()),
            takeover: Notify::new(),
            connected_done: tokio::sync::watch::channel(false).0,
        });
        (conn, rx)
    }

    pub(crate) fn attach_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits until the `connected` event has been delivered (or given up on).
    pub(crate) async fn connected_delivered(&self) {
        let mut done = self.connected_done.subscribe();
        let _ = done.wait_for(|done| *done).await;
    }

    /// The next `ce-id` for an event after `connect`.
    pub(crate) fn next_event_id(&self) -> u64 {
        self.event_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Queues a message; a full queue means a slow reader, which is disconnected.
    pub(crate) fn send(&self, message: Outbound) {
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(target: "webpubsub::emulator", connection = %self.id,
                    "send queue full: disconnecting the slow client");
                self.terminate("The client is too slow to receive messages.");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Ends the connection at once (not recoverable).
    pub(crate) fn terminate(&self, reason: &str) {
        if !self.killed.swap(true, Ordering::AcqRel) {
            *lock(&self.kill_reason) = Some(reason.to_owned());
        }
        self.kill.notify_one();
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

/// A connection with its groups, as a filter sees it.
struct Subject<'a> {
    conn: &'a Connection,
    groups: &'a HashSet<String>,
}

impl FilterSubject for Subject<'_> {
    fn user_id(&self) -> Option<&str> {
        self.conn.user_id.as_deref()
    }

    fn connection_id(&self) -> &str {
        &self.conn.id
    }

    fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    fn group_count(&self) -> usize {
        self.groups.len()
    }
}

#[derive(Debug)]
struct Entry {
    conn: Arc<Connection>,
    groups: HashSet<String>,
}

#[derive(Debug, Default)]
struct HubState {
    /// Ordered, so listings page stably.
    conns: BTreeMap<Arc<str>, Entry>,
    groups: HashMap<String, BTreeSet<Arc<str>>>,
    users: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
}

impl HubState {
    fn join(&mut self, id: &Arc<str>, group: &str) -> bool {
        let Some(entry) = self.conns.get_mut(id) else {
            return false;
        };
        if entry.groups.insert(group.to_owned()) {
            self.groups
                .entry(group.to_owned())
                .or_default()
                .insert(id.clone());
        }
        true
    }

    fn leave(&mut self, id: &str, group: &str) {
        if let Some(entry) = self.conns.get_mut(id) {
            entry.groups.remove(group);
        }
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    fn leave_all(&mut self, id: &str) {
        let groups: Vec<String> = self
            .conns
            .get(id)
            .map(|e| e.groups.iter().cloned().collect())
            .unwrap_or_default();
        for group in groups {
            self.leave(id, &group);
        }
    }

    fn user_connections(&self, user: &str) -> Vec<Arc<str>> {
        self.users
            .get(user)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Who a message or close is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    All,
    Group(&'a str),
    User(&'a str),
    Connection(&'a str),
}

/// A connection as listed by the REST API and the live view.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionInfo {
    pub(crate) connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
}

/// A connection as the live view shows it: its first
/// [`SHOWN_GROUPS`](super::live::SHOWN_GROUPS) groups (by name) and roles,
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
        use super::live::{clip, SHOWN_GROUPS, SHOWN_VALUE};
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
            protocol: entry
                .conn
                .subprotocol
                .as_deref()
                .map(|p| clip(p, SHOWN_VALUE)),
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

/// Every hub's connections and groups. Hub names are case-insensitive.
#[derive(Debug, Default)]
pub(crate) struct Hubs {
    hubs: Mutex<HashMap<String, HubState>>,
}

fn key(hub: &str) -> String {
    hub.to_ascii_lowercase()
}

impl Hubs {
    fn with<R>(&self, hub: &str, f: impl FnOnce(&mut HubState) -> R) -> R {
        let mut hubs = lock(&self.hubs);
        let state = hubs.entry(key(hub)).or_default();
        f(state)
    }

    /// Registers a connection and joins its first groups.
    pub(crate) fn add(&self, conn: &Arc<Connection>, groups: &[String]) {
        self.with(&conn.hub, |hub| {
            hub.conns.insert(
                conn.id.clone(),
                Entry {
                    conn: conn.clone(),
                    groups: HashSet::new(),
                },
            );
            if let Some(user) = &conn.user_id {
                hub.users
                    .entry(user.clone())
                    .or_default()
                    .insert(conn.id.clone());
            }
            for group in groups {
                hub.join(&conn.id, group);
            }
        });
    }

    /// Removes a connection from its hub, groups and user.
    pub(crate) fn remove(&self, hub: &str, id: &str) -> Option<Arc<Connection>> {
        self.with(hub, |state| {
            state.leave_all(id);
            let entry = state.conns.remove(id)?;
            if let Some(user) = &entry.conn.user_id {
                if let Some(ids) = state.users.get_mut(user) {
                    ids.remove(id);
                    if ids.is_empty() {
                        state.users.remove(user);
                    }
                }
            }
            Some(entry.conn)
        })
    }

    pub(crate) fn get(&self, hub: &str, id: &str) -> Option<Arc<Connection>> {
        self.with(hub, |state| state.conns.get(id).map(|e| e.conn.clone()))
    }

    /// Adds a connection to a group; `false` if the connection is unknown.
    pub(crate) fn join(&self, hub: &str, id: &str, group: &str) -> bool {
        self.with(hub, |state| {
            let Some(id) = state.conns.get_key_value(id).map(|(k, _)| k.clone()) else {
                return false;
            };
            state.join(&id, group)
        })
    }

    pub(crate) fn leave(&self, hub: &str, id: &str, group: &str) {
        self.with(hub, |state| state.leave(id, group));
    }

    pub(crate) fn leave_all(&self, hub: &str, id: &str) {
        self.with(hub, |state| state.leave_all(id));
    }

    /// Adds every current connection of a user; `false` if it has none.
    pub(crate) fn user_join(&self, hub: &str, user: &str, group: &str) -> bool {
        self.with(hub, |state| {
            let ids = state.user_connections(user);
            for id in &ids {
                state.join(id, group);
            }
            !ids.is_empty()
        })
    }

    pub(crate) fn user_leave(&self, hub: &str, user: &str, group: Option<&str>) {
        self.with(hub, |state| {
            for id in state.user_connections(user) {
                match group {
                    Some(group) => state.leave(&id, group),
                    None => state.leave_all(&id),
                }
            }
        });
    }

    pub(crate) fn connection_exists(&self, hub: &str, id: &str) -> bool {
        self.with(hub, |state| state.conns.contains_key(id))
    }

    pub(crate) fn group_exists(&self, hub: &str, group: &str) -> bool {
        self.with(hub, |state| state.groups.contains_key(group))
    }

    pub(crate) fn user_exists(&self, hub: &str, user: &str) -> bool {
        self.with(hub, |state| state.users.contains_key(user))
    }

    /// The connections a target names, minus `excluded`, where `filter` holds.
    pub(crate) fn targets(
        &self,
        hub: &str,
        target: Target<'_>,
        excluded: &[String],
        filter: Option<&ODataFilter>,
    ) -> Vec<Arc<Connection>> {
        self.with(hub, |state| {
            let ids: Vec<Arc<str>> = match target {
                Target::All => state.conns.keys().cloned().collect(),
                Target::Group(group) => state
                    .groups
                    .get(group)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                Target::User(user) => state.user_connections(user),
                Target::Connection(id) => state
                    .conns
                    .get_key_value(id)
                    .map(|(k, _)| vec![k.clone()])
                    .unwrap_or_default(),
            };
            ids.iter()
                .filter(|id| !excluded.iter().any(|e| e.as_str() == &***id))
                .filter_map(|id| state.conns.get(id))
                .filter(|entry| {
                    filter.is_none_or(|f| {
                        f.matches(&Subject {
                            conn: &entry.conn,
                            groups: &entry.groups,
                        })
                    })
                })
                .map(|entry| entry.conn.clone())
                .collect()
        })
    }

    /// Adds (or removes) every connection where `filter` holds to (from) `groups`.
    pub(crate) fn bulk(
        &self,
        hub: &str,
        groups: &[String],
        filter: Option<&ODataFilter>,
        add: bool,
    ) {
        let targets = self.targets(hub, Target::All, &[], filter);
        self.with(hub, |state| {
            for conn in &targets {
                for group in groups {
                    if add {
                        state.join(&conn.id, group);
                    } else {
                        state.leave(&conn.id, group);
                    }
                }
            }
        });
    }

    /// The members of a group, ordered by connection id.
    pub(crate) fn list_group(&self, hub: &str, group: &str) -> Vec<ConnectionInfo> {
        self.with(hub, |state| {
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
    }

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

    /// Every connection of every hub.
    pub(crate) fn connections(&self) -> Vec<Arc<Connection>> {
        lock(&self.hubs)
            .values()
            .flat_map(|state| state.conns.values().map(|e| e.conn.clone()))
            .collect()
    }
}
