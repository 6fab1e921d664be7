//! One logical client connection: its protocol, its send queue and byte
//! budget, the reliable buffer of unacknowledged messages, and the ack ids
//! it used.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::message::{Envelope, Outbound};
use super::queue::{Outbox, Queue, Refused};
use super::refusal::Refusal;
use super::stream::Streams;
use crate::permissions::Permissions;
use crate::sync::lock;

/// The client protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// No subprotocol (or a custom one): frames are user events.
    Raw,
    Json,
    ReliableJson,
    /// MQTT 3.1.1 or 5.0 over WebSocket (`/clients/mqtt/hubs/{hub}`,
    /// `crate::endpoint::mqtt`).
    Mqtt,
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
        matches!(self, Self::Json | Self::ReliableJson)
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

    /// Frees every message up to `sequence` (cumulative ack): the payload
    /// bytes freed.
    pub(crate) fn ack(&mut self, sequence: u64) -> usize {
        let mut freed = 0usize;
        while let Some((id, envelope)) = self.frames.front() {
            if *id > sequence {
                break;
            }
            freed = freed.saturating_add(envelope.data.bytes.len());
            self.frames.pop_front();
        }
        self.bytes = self.bytes.saturating_sub(freed);
        freed
    }
}

/// Most queued messages a writer takes before it flushes, whatever the
/// protocol.
pub(crate) const BURST: usize = 64;

/// Messages a writer took from a connection's queue and has not yet given
/// back to its count and byte budget: a burst is given back at once
/// ([`Connection::written_many`]), not message by message.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    count: usize,
    bytes: usize,
}

impl Taken {
    /// One more message, of `cost` ([`Outbound::cost`]).
    pub(crate) fn add(&mut self, cost: usize) {
        self.count += 1;
        self.bytes = self.bytes.saturating_add(cost);
    }

    /// Messages taken since the last [`give_back`](Self::give_back).
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Gives the messages back to `conn` and starts again from none.
    pub(crate) fn give_back(&mut self, conn: &Connection) {
        if self.count > 0 {
            conn.written_many(self.count, self.bytes);
        }
        *self = Self::default();
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
    /// Its queue and the bytes it holds ([`Outbox`]).
    outbox: Arc<Outbox>,
    /// Most messages queued for it.
    queue_cap: usize,
    /// The receiving end while no socket serves the connection (recovery).
    pub(crate) parked: Mutex<Option<Queue>>,
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
    /// Most bytes it may hold while a socket serves it. What it holds is
    /// counted in its [`Outbox`]: its queue ([`Outbound::cost`]),
    /// unacknowledged reliable and MQTT messages, pending invocations, its
    /// MQTT will and properties. One budget for all ([`hold`](Self::hold)).
    budget: usize,
    /// Most bytes it may hold while detached (a parked reliable connection,
    /// a detached MQTT session).
    detached_budget: usize,
    /// Set while the connection is detached: counted by
    /// [`Hubs::detach`](super::Hubs::detach), held to `detached_budget`.
    pub(crate) detached: AtomicBool,
    /// Tells the socket serving the connection to let go: a recovering
    /// client takes the connection over.
    pub(crate) takeover: Notify,
    /// Turns `true` once the upstream has had the `connected` event; later
    /// events (user events, `disconnected`) wait for it, so the upstream
    /// sees them in order.
    /// (A flag and a `Notify`, not a `watch` channel: every connection has
    /// one, and a `watch` channel allocates several hundred bytes.)
    connected_done: AtomicBool,
    connected_signal: Notify,
    /// The group streams this connection sends (`stream.rs`).
    pub(crate) streams: Mutex<Streams>,
    /// What an MQTT connection adds (`None` for the other protocols).
    pub(crate) mqtt: Option<Arc<super::Link>>,
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
    /// Most bytes it may hold ([`Connection::hold`]).
    pub(crate) queue_bytes: usize,
    /// Most bytes it may hold while detached.
    pub(crate) detached_bytes: usize,
    /// How many of its last ack ids are remembered.
    pub(crate) ack_ids: usize,
    /// What an MQTT connection adds.
    pub(crate) mqtt: Option<Arc<super::Link>>,
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
    pub(crate) fn new(new: NewConnection) -> (Arc<Self>, Queue) {
        let (outbox, rx) = Outbox::new();
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
            outbox,
            queue_cap: new.queue.max(1),
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
            budget: new.queue_bytes,
            detached_budget: new.detached_bytes.min(new.queue_bytes),
            detached: AtomicBool::new(false),
            takeover: Notify::new(),
            connected_done: AtomicBool::new(false),
            connected_signal: Notify::new(),
            streams: Mutex::new(Streams::default()),
            mqtt: new.mqtt,
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
        loop {
            // Registered before the flag is read, so a `connected_over`
            // between the two is not missed.
            let signal = self.connected_signal.notified();
            if self.connected_done.load(Ordering::Acquire) {
                return;
            }
            signal.await;
        }
    }

    /// The `connected` event has been delivered (or given up on): later
    /// events may go.
    pub(crate) fn connected_over(&self) {
        self.connected_done.store(true, Ordering::Release);
        self.connected_signal.notify_waiters();
    }

    /// The next `ce-id` for an event after `connect`.
    pub(crate) fn next_event_id(&self) -> u64 {
        self.event_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Queues a message. A queue over its message count, or a connection
    /// over its byte budget, means a slow reader, which is disconnected
    /// (logged once). A message to a connection whose queue is closed (no
    /// socket and no parked session: it is gone) is dropped.
    pub(crate) fn send(&self, message: Outbound) {
        let cost = message.cost();
        match self
            .outbox
            .push(message, cost, self.budget(), self.queue_cap)
        {
            Ok(()) | Err((Refused::Closed, _)) => {}
            Err((Refused::OverBudget(held) | Refused::Full(held), _)) => self.too_slow(held),
        }
    }

    /// Gives back what a message counted once it left the queue: `cost`
    /// bytes of the budget and its place in the queue.
    pub(crate) fn written(&self, cost: usize) {
        self.written_many(1, cost);
    }

    /// [`written`](Self::written) for `count` messages of `bytes` in all:
    /// a writer that takes a burst from the queue gives it back at once.
    pub(crate) fn written_many(&self, count: usize, bytes: usize) {
        self.outbox.give_back(count, bytes);
    }

    /// The budget in force: the smaller one while detached.
    pub(crate) fn budget(&self) -> usize {
        if self.detached.load(Ordering::Acquire) {
            self.detached_budget
        } else {
            self.budget
        }
    }

    /// Counts `bytes` more against the connection's one budget. `Err(held)`
    /// (nothing counted) when that would take it over: the caller refuses
    /// what it was about to keep, or ends the connection.
    pub(crate) fn hold(&self, bytes: usize) -> Result<(), usize> {
        self.outbox.hold(bytes, self.budget())
    }

    /// Counts `bytes` more, whatever the budget: what it holds now.
    fn add(&self, bytes: usize) -> usize {
        self.outbox.add(bytes)
    }

    /// Gives back `bytes` counted by [`hold`](Self::hold).
    pub(crate) fn release(&self, bytes: usize) {
        self.outbox.release(bytes);
    }

    /// The bytes it holds now.
    pub(crate) fn held(&self) -> usize {
        self.outbox.held()
    }

    /// Whether what it holds fits the detached budget (checked by
    /// [`Hubs::detach`](super::Hubs::detach) before it is kept without a
    /// socket).
    pub(super) fn fits_detached(&self) -> Result<(), Refusal> {
        let held = self.held();
        if held > self.detached_budget {
            return Err(Refusal::HoldsTooMuch(held, self.detached_budget));
        }
        Ok(())
    }

    /// Keeps a message for a reliable client until it is acknowledged: its
    /// sequence id. Too many unacknowledged messages, or more bytes than
    /// the budget allows, end the connection.
    pub(crate) fn reliable_push(&self, envelope: &Arc<Envelope>) -> u64 {
        let (sequence, over) = lock(&self.reliable).push(envelope);
        // Counted whatever follows, so the ack that frees it balances.
        let held = self.add(envelope.data.bytes.len());
        if (over || held > self.budget()) && self.terminate("Too many unacknowledged messages.") {
            tracing::warn!(target: "webpubsub_emulator::client", connection = %self.id,
                held_bytes = held, budget = self.budget(),
                "too many unacknowledged messages: disconnecting the client");
        }
        sequence
    }

    /// A reliable client acknowledged every message up to `sequence`.
    pub(crate) fn reliable_ack(&self, sequence: u64) {
        let freed = lock(&self.reliable).ack(sequence);
        self.release(freed);
    }

    fn too_slow(&self, held: usize) {
        if self.terminate("The client is too slow to receive messages.") {
            tracing::warn!(target: "webpubsub_emulator::client", connection = %self.id,
                held_bytes = held, budget = self.budget(),
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

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn connection(queue: usize, queue_bytes: usize) -> (Arc<Connection>, Queue) {
        Connection::new(NewConnection {
            id: Arc::from("c"),
            hub: Arc::from("hub"),
            user_id: None,
            protocol: Protocol::Json,
            subprotocol: None,
            roles: Vec::new(),
            reconnection_token: String::new(),
            state: None,
            queue,
            queue_bytes,
            detached_bytes: queue_bytes,
            ack_ids: 4,
            mqtt: None,
        })
    }

    #[test]
    fn a_queue_over_its_message_count_ends_the_connection_and_counts_nothing_more() {
        let (conn, mut rx) = connection(2, 1 << 20);
        conn.send(Outbound::Pong);
        conn.send(Outbound::Pong);
        assert!(!conn.is_killed(), "two messages fit a queue of two");
        assert_eq!(conn.held(), 2 * Outbound::Pong.cost());
        conn.send(Outbound::Pong);
        assert!(conn.is_killed(), "the third one is a slow reader");
        assert_eq!(
            conn.held(),
            2 * Outbound::Pong.cost(),
            "the refused message is not held"
        );
        // Taking a message out gives back its place and its bytes.
        let message = rx.try_recv().expect("queued");
        conn.written(message.cost());
        assert_eq!(conn.held(), Outbound::Pong.cost());
        assert_eq!(conn.outbox.queued(), 1);
        assert!(
            rx.try_recv().is_some() && rx.try_recv().is_none(),
            "two queued, not three"
        );
    }

    #[test]
    fn a_queue_over_its_bytes_ends_the_connection_before_its_count_does() {
        let cost = Outbound::Pong.cost();
        let (conn, _rx) = connection(100, 3 * cost);
        for _ in 0..3 {
            conn.send(Outbound::Pong);
        }
        assert!(!conn.is_killed());
        conn.send(Outbound::Pong);
        assert!(conn.is_killed());
        assert_eq!(conn.held(), 3 * cost);
        assert_eq!(conn.outbox.queued(), 3);
    }

    #[test]
    fn a_message_to_a_closed_queue_is_given_back() {
        let (conn, rx) = connection(4, 1 << 20);
        drop(rx);
        conn.send(Outbound::Pong);
        assert!(!conn.is_killed());
        assert_eq!(conn.held(), 0);
        assert_eq!(conn.outbox.queued(), 0);
    }
}
