//! Who is connected: connections, groups and users of every hub, and the
//! queue that carries messages to each connection.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use tokio::sync::{mpsc, Notify};
use webpubsub::events::DataType;

use super::filter::{FilterSubject, ODataFilter};
use super::permissions::Permissions;

/// Locks a mutex, ignoring poisoning (a panicked holder left consistent data:
/// every critical section here is a few map operations).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A message payload, shared by every recipient.
#[derive(Debug)]
pub(crate) struct Data {
    /// How the bytes are typed (`Json`: they are one valid JSON value).
    pub(crate) kind: DataType,
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

impl Outbound {
    /// What this message counts against the connection's byte budget: its
    /// payload plus a fixed 64 bytes for the frame around it.
    pub(crate) fn cost(&self) -> usize {
        let payload = match self {
            Self::Message(envelope) => envelope.data.bytes.len(),
            Self::Ack { error, .. } => error.as_ref().map_or(0, |(_, m)| m.len()),
            Self::Pong => 0,
            Self::Close { reason } => reason.len(),
        };
        payload.saturating_add(64)
    }
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

/// Messages sent to a reliable connection and not yet acknowledged, by
/// sequence id. They are kept as the shared envelopes (and formatted again
/// when resent), so a message sent to many connections is held once.
#[derive(Debug, Default)]
pub(crate) struct ReliableBuffer {
    pub(crate) next_sequence: u64,
    pub(crate) frames: VecDeque<(u64, Arc<Envelope>)>,
    /// Payload bytes of `frames`.
    pub(crate) bytes: usize,
}

/// At most this many unacknowledged messages are kept…
pub(crate) const RELIABLE_MAX_MESSAGES: usize = 1000;
/// …or this many payload bytes.
pub(crate) const RELIABLE_MAX_BYTES: usize = 16 * 1024 * 1024;

impl ReliableBuffer {
    /// Keeps a message until it is acknowledged: its sequence id, and
    /// whether the buffer is now over its bounds.
    pub(crate) fn push(&mut self, envelope: &Arc<Envelope>) -> (u64, bool) {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        self.bytes = self.bytes.saturating_add(envelope.data.bytes.len());
        self.frames.push_back((sequence, envelope.clone()));
        let over = self.frames.len() > RELIABLE_MAX_MESSAGES || self.bytes > RELIABLE_MAX_BYTES;
        (sequence, over)
    }

    /// Frees every message up to `sequence` (cumulative ack).
    pub(crate) fn ack(&mut self, sequence: u64) {
        while let Some((id, envelope)) = self.frames.front() {
            if *id > sequence {
                break;
            }
            self.bytes = self.bytes.saturating_sub(envelope.data.bytes.len());
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
    /// The last ack ids the client used (kept across recovery).
    pub(crate) acks: Mutex<AckIds>,
    /// Bytes queued and not yet written ([`Outbound::cost`]).
    queued_bytes: AtomicUsize,
    /// Most bytes that may be queued before the connection counts as too slow.
    queue_budget: usize,
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
    /// Most messages queued for it.
    pub(crate) queue: usize,
    /// Most bytes queued for it.
    pub(crate) queue_bytes: usize,
    /// How many of its last ack ids are remembered.
    pub(crate) ack_ids: usize,
}

/// The last ack ids a connection used, oldest first: a repeated id within
/// them gets a `Duplicate` ack; older ids are forgotten (and would be
/// accepted again), so the set stays bounded.
#[derive(Debug)]
pub(crate) struct AckIds {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl AckIds {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `id`; `false` if it is among the remembered ones already.
    pub(crate) fn first_use(&mut self, id: u64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        true
    }
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
            acks: Mutex::new(AckIds::new(new.ack_ids)),
            queued_bytes: AtomicUsize::new(0),
            queue_budget: new.queue_bytes,
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

    /// Queues a message. A queue over its message count or byte budget
    /// means a slow reader, which is disconnected (logged once).
    pub(crate) fn send(&self, message: Outbound) {
        let cost = message.cost();
        let queued = self
            .queued_bytes
            .fetch_add(cost, Ordering::AcqRel)
            .saturating_add(cost);
        if queued > self.queue_budget {
            self.written(cost);
            self.too_slow(queued);
            return;
        }
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.written(cost);
                self.too_slow(queued);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.written(cost),
        }
    }

    /// Releases `cost` bytes of the budget once a message left the queue.
    pub(crate) fn written(&self, cost: usize) {
        let _ = self
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(cost))
            });
    }

    fn too_slow(&self, queued: usize) {
        if self.terminate("The client is too slow to receive messages.") {
            tracing::warn!(target: "webpubsub_emulator::client", connection = %self.id,
                queued_bytes = queued, budget = self.queue_budget,
                "send queue full: disconnecting the slow client");
        }
    }

    /// Ends the connection at once (not recoverable); `true` the first time.
    pub(crate) fn terminate(&self, reason: &str) -> bool {
        let first = !self.killed.swap(true, Ordering::AcqRel);
        if first {
            *lock(&self.kill_reason) = Some(reason.to_owned());
        }
        self.kill.notify_one();
        first
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
    /// Adds a connection to a group (a member already stays one).
    fn join(&mut self, id: &Arc<str>, group: &str, max_groups: usize) -> Result<(), Refusal> {
        let Some(entry) = self.conns.get_mut(id) else {
            return Err(Refusal::UnknownConnection);
        };
        if entry.groups.contains(group) {
            return Ok(());
        }
        if entry.groups.len() >= max_groups {
            return Err(Refusal::TooManyGroups(max_groups));
        }
        entry.groups.insert(group.to_owned());
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(id.clone());
        Ok(())
    }

    /// Whether nothing is left: the hub's state can go.
    fn is_empty(&self) -> bool {
        self.conns.is_empty() && self.groups.is_empty() && self.users.is_empty()
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

/// The caps on what one connection or user can make the emulator hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) connections_per_user: usize,
    pub(crate) groups_per_connection: usize,
}

/// Why a connection was not added, or not added to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such connection (any more).
    UnknownConnection,
    /// The connection is in this many groups already, the cap.
    TooManyGroups(usize),
    /// The user has this many connections to the hub already, the cap.
    TooManyConnections(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownConnection => f.write_str("The connection does not exist."),
            Self::TooManyGroups(max) => write!(
                f,
                "Too many groups: a connection may be in at most {max} groups (max_groups_per_connection)."
            ),
            Self::TooManyConnections(max) => write!(
                f,
                "Too many connections: a user may have at most {max} connections to a hub (max_connections_per_user)."
            ),
        }
    }
}

/// Every hub's connections and groups. Hub names are case-insensitive.
///
/// A hub has state only while it has a connection: reads never create
/// any, and a hub whose last connection leaves is forgotten, so requests
/// for made-up hub names cost nothing that stays.
#[derive(Debug)]
pub(crate) struct Hubs {
    hubs: Mutex<HashMap<String, HubState>>,
    caps: Caps,
}

fn key(hub: &str) -> String {
    hub.to_ascii_lowercase()
}

impl Hubs {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            hubs: Mutex::new(HashMap::new()),
            caps: Caps {
                connections_per_user: caps.connections_per_user.max(1),
                groups_per_connection: caps.groups_per_connection.max(1),
            },
        }
    }

    /// Reads a hub's state; `None` for a hub without connections.
    fn read<R>(&self, hub: &str, f: impl FnOnce(&HubState) -> R) -> Option<R> {
        lock(&self.hubs).get(&key(hub)).map(f)
    }

    /// Changes a hub's state, if it has any, and forgets the hub once it
    /// holds nothing.
    fn update<R>(&self, hub: &str, f: impl FnOnce(&mut HubState) -> R) -> Option<R> {
        let key = key(hub);
        let mut hubs = lock(&self.hubs);
        let state = hubs.get_mut(&key)?;
        let result = f(state);
        if state.is_empty() {
            hubs.remove(&key);
        }
        Some(result)
    }

    /// How many hubs have state (for tests of the bounds).
    pub(crate) fn hub_count(&self) -> usize {
        lock(&self.hubs).len()
    }

    /// Why `user` may not open another connection to `hub`, if it may not.
    pub(crate) fn user_full(&self, hub: &str, user: &str) -> Option<Refusal> {
        let max = self.caps.connections_per_user;
        let count = self
            .read(hub, |state| state.users.get(user).map_or(0, BTreeSet::len))
            .unwrap_or(0);
        (count >= max).then_some(Refusal::TooManyConnections(max))
    }

    /// Whether `groups` are more than a connection may be in.
    pub(crate) fn too_many_groups(&self, groups: &[String]) -> Option<Refusal> {
        let max = self.caps.groups_per_connection;
        (groups.len() > max).then_some(Refusal::TooManyGroups(max))
    }

    /// Registers a connection and joins its first groups (checked with
    /// [`too_many_groups`](Self::too_many_groups); any beyond the cap are
    /// left out). Refused when its user has too many connections already.
    pub(crate) fn add(&self, conn: &Arc<Connection>, groups: &[String]) -> Result<(), Refusal> {
        let caps = self.caps;
        let mut hubs = lock(&self.hubs);
        let hub = hubs.entry(key(&conn.hub)).or_default();
        if let Some(user) = &conn.user_id {
            let count = hub.users.get(user).map_or(0, BTreeSet::len);
            if count >= caps.connections_per_user {
                if hub.is_empty() {
                    hubs.remove(&key(&conn.hub));
                }
                return Err(Refusal::TooManyConnections(caps.connections_per_user));
            }
            hub.users
                .entry(user.clone())
                .or_default()
                .insert(conn.id.clone());
        }
        hub.conns.insert(
            conn.id.clone(),
            Entry {
                conn: conn.clone(),
                groups: HashSet::new(),
            },
        );
        for group in groups {
            let _ = hub.join(&conn.id, group, caps.groups_per_connection);
        }
        Ok(())
    }

    /// Removes a connection from its hub, groups and user.
    pub(crate) fn remove(&self, hub: &str, id: &str) -> Option<Arc<Connection>> {
        self.update(hub, |state| {
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
        .flatten()
    }

    pub(crate) fn get(&self, hub: &str, id: &str) -> Option<Arc<Connection>> {
        self.read(hub, |state| state.conns.get(id).map(|e| e.conn.clone()))
            .flatten()
    }

    /// Adds a connection to a group.
    pub(crate) fn join(&self, hub: &str, id: &str, group: &str) -> Result<(), Refusal> {
        let max = self.caps.groups_per_connection;
        self.update(hub, |state| {
            let Some(id) = state.conns.get_key_value(id).map(|(k, _)| k.clone()) else {
                return Err(Refusal::UnknownConnection);
            };
            state.join(&id, group, max)
        })
        .unwrap_or(Err(Refusal::UnknownConnection))
    }

    pub(crate) fn leave(&self, hub: &str, id: &str, group: &str) {
        self.update(hub, |state| state.leave(id, group));
    }

    pub(crate) fn leave_all(&self, hub: &str, id: &str) {
        self.update(hub, |state| state.leave_all(id));
    }

    /// Adds every current connection of a user to a group: how many it
    /// has, and how many of them were refused for being in too many groups.
    pub(crate) fn user_join(&self, hub: &str, user: &str, group: &str) -> (usize, usize) {
        let max = self.caps.groups_per_connection;
        self.update(hub, |state| {
            let ids = state.user_connections(user);
            let refused = ids
                .iter()
                .filter(|id| state.join(id, group, max).is_err())
                .count();
            (ids.len(), refused)
        })
        .unwrap_or((0, 0))
    }

    pub(crate) fn user_leave(&self, hub: &str, user: &str, group: Option<&str>) {
        self.update(hub, |state| {
            for id in state.user_connections(user) {
                match group {
                    Some(group) => state.leave(&id, group),
                    None => state.leave_all(&id),
                }
            }
        });
    }

    pub(crate) fn connection_exists(&self, hub: &str, id: &str) -> bool {
        self.read(hub, |state| state.conns.contains_key(id))
            .unwrap_or(false)
    }

    pub(crate) fn group_exists(&self, hub: &str, group: &str) -> bool {
        self.read(hub, |state| state.groups.contains_key(group))
            .unwrap_or(false)
    }

    pub(crate) fn user_exists(&self, hub: &str, user: &str) -> bool {
        self.read(hub, |state| state.users.contains_key(user))
            .unwrap_or(false)
    }

    /// The connections a target names, minus `excluded`, where `filter` holds.
    pub(crate) fn targets(
        &self,
        hub: &str,
        target: Target<'_>,
        excluded: &[String],
        filter: Option<&ODataFilter>,
    ) -> Vec<Arc<Connection>> {
        self.read(hub, |state| {
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
        .unwrap_or_default()
    }

    /// Adds (or removes) every connection where `filter` holds to (from)
    /// `groups`; returns how many additions were refused for too many groups.
    pub(crate) fn bulk(
        &self,
        hub: &str,
        groups: &[String],
        filter: Option<&ODataFilter>,
        add: bool,
    ) -> usize {
        let max = self.caps.groups_per_connection;
        let targets = self.targets(hub, Target::All, &[], filter);
        self.update(hub, |state| {
            let mut refused = 0;
            for conn in &targets {
                for group in groups {
                    if !add {
                        state.leave(&conn.id, group);
                    } else if let Err(Refusal::TooManyGroups(_)) = state.join(&conn.id, group, max)
                    {
                        refused += 1;
                    }
                }
            }
            refused
        })
        .unwrap_or(0)
    }

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
