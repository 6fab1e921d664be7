//! Every hub's state ([`Hubs`]): who is in which group, which
//! connections a message targets, and the caps on what a connection or
//! user can make the emulator hold.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::connection::Connection;
use super::refusal::Refusal;
use crate::sync::lock;

use crate::filter::{FilterSubject, ODataFilter};

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

/// A connection and its groups, in its hub's state.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) conn: Arc<Connection>,
    pub(super) groups: HashSet<String>,
}

/// One hub's connections, groups and users.
#[derive(Debug, Default)]
pub(super) struct HubState {
    /// Ordered, so listings page stably.
    pub(super) conns: BTreeMap<Arc<str>, Entry>,
    pub(super) groups: HashMap<String, BTreeSet<Arc<str>>>,
    pub(super) users: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    /// Detached connections without a user id (they count as one user).
    anonymous_detached: usize,
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

/// The caps on what one connection or user can make the emulator hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) connections_per_user: usize,
    pub(crate) groups_per_connection: usize,
    /// Connections kept without a socket, in all hubs.
    pub(crate) detached: usize,
}

/// Every hub's connections and groups. Hub names are case-insensitive.
///
/// A hub has state only while it has a connection: reads never create
/// any, and a hub whose last connection leaves is forgotten, so requests
/// for made-up hub names cost nothing that stays.
#[derive(Debug)]
pub(crate) struct Hubs {
    pub(super) hubs: Mutex<HashMap<String, HubState>>,
    caps: Caps,
    /// Connections kept without a socket, in all hubs (changed under `hubs`'s lock).
    detached: std::sync::atomic::AtomicUsize,
}

/// The state key of a hub name (names are case-insensitive).
pub(super) fn key(hub: &str) -> String {
    hub.to_ascii_lowercase()
}

impl Hubs {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            hubs: Mutex::new(HashMap::new()),
            caps: Caps {
                connections_per_user: caps.connections_per_user.max(1),
                groups_per_connection: caps.groups_per_connection.max(1),
                detached: caps.detached,
            },
            detached: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Reads a hub's state; `None` for a hub without connections.
    pub(super) fn read<R>(&self, hub: &str, f: impl FnOnce(&HubState) -> R) -> Option<R> {
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

    /// How many groups a connection may be in.
    pub(crate) fn groups_per_connection(&self) -> usize {
        self.caps.groups_per_connection
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

    /// Counts a registered connection as kept without a socket, if the
    /// caps allow: what it holds within its detached budget, at most
    /// `detached` in all hubs, and those of one user (those without a user
    /// id together, per hub) within `connections_per_user`. Refused: the
    /// caller ends the connection.
    pub(crate) fn detach(&self, conn: &Connection) -> Result<(), Refusal> {
        use std::sync::atomic::Ordering;
        conn.fits_detached()?;
        let caps = self.caps;
        let mut hubs = lock(&self.hubs);
        let Some(state) = hubs.get_mut(&key(&conn.hub)) else {
            return Err(Refusal::UnknownConnection);
        };
        if !state.conns.contains_key(&*conn.id) {
            return Err(Refusal::UnknownConnection);
        }
        if conn.detached.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.detached.load(Ordering::Acquire) >= caps.detached {
            return Err(Refusal::TooManyDetached(caps.detached));
        }
        if conn.user_id.is_none() {
            if state.anonymous_detached >= caps.connections_per_user {
                return Err(Refusal::TooManyDetached(caps.connections_per_user));
            }
            state.anonymous_detached += 1;
        }
        self.detached.fetch_add(1, Ordering::AcqRel);
        conn.detached.store(true, Ordering::Release);
        Ok(())
    }

    /// A socket serves a detached connection again.
    pub(crate) fn attach(&self, conn: &Connection) {
        let mut hubs = lock(&self.hubs);
        let state = hubs.get_mut(&key(&conn.hub));
        Self::undetach(&self.detached, state, conn);
    }

    /// Uncounts a detached connection (under the lock).
    fn undetach(
        total: &std::sync::atomic::AtomicUsize,
        state: Option<&mut HubState>,
        conn: &Connection,
    ) {
        use std::sync::atomic::Ordering;
        if !conn.detached.swap(false, Ordering::AcqRel) {
            return;
        }
        let _ = total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            Some(n.saturating_sub(1))
        });
        if let (Some(state), None) = (state, &conn.user_id) {
            state.anonymous_detached = state.anonymous_detached.saturating_sub(1);
        }
    }

    /// How many connections are kept without a socket (for tests of the bounds).
    pub(crate) fn detached_count(&self) -> usize {
        self.detached.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Removes a connection from its hub, groups and user.
    pub(crate) fn remove(&self, hub: &str, id: &str) -> Option<Arc<Connection>> {
        let total = &self.detached;
        self.update(hub, |state| {
            state.leave_all(id);
            let entry = state.conns.remove(id)?;
            Self::undetach(total, Some(state), &entry.conn);
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
        let mut targets = Vec::new();
        self.each_target(hub, target, excluded, filter, |conn| {
            targets.push(conn.clone());
        });
        targets
    }

    /// Calls `f` on each connection a target names, minus `excluded`, where
    /// `filter` holds, under the hubs' lock: a send to many connections
    /// makes no list of them. `f` must not call back into `Hubs`.
    pub(crate) fn each_target(
        &self,
        hub: &str,
        target: Target<'_>,
        excluded: &[String],
        filter: Option<&ODataFilter>,
        mut f: impl FnMut(&Arc<Connection>),
    ) {
        let _ = self.read(hub, |state| {
            let wanted = |id: &str, entry: &Entry| {
                !excluded.iter().any(|e| e.as_str() == id)
                    && filter.is_none_or(|f| {
                        f.matches(&Subject {
                            conn: &entry.conn,
                            groups: &entry.groups,
                        })
                    })
            };
            let mut visit = |id: &str, entry: &Entry| {
                if wanted(id, entry) {
                    f(&entry.conn);
                }
            };
            match target {
                // The common broadcast: every entry, no lookup by id.
                Target::All => {
                    for (id, entry) in &state.conns {
                        visit(id, entry);
                    }
                }
                Target::Group(group) => {
                    for id in state.groups.get(group).into_iter().flatten() {
                        if let Some(entry) = state.conns.get(id) {
                            visit(id, entry);
                        }
                    }
                }
                Target::User(user) => {
                    for id in state.user_connections(user) {
                        if let Some(entry) = state.conns.get(&id) {
                            visit(&id, entry);
                        }
                    }
                }
                Target::Connection(id) => {
                    if let Some((id, entry)) = state.conns.get_key_value(id) {
                        visit(id, entry);
                    }
                }
            }
        });
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

    /// Every connection of every hub.
    pub(crate) fn connections(&self) -> Vec<Arc<Connection>> {
        lock(&self.hubs)
            .values()
            .flat_map(|state| state.conns.values().map(|e| e.conn.clone()))
            .collect()
    }
}
