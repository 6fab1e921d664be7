//! Session keeping: what one client's session holds ([`Session`]), what it
//! keeps between network connections ([`Kept`], [`Parked`]), the task that
//! keeps a detached session until it expires, is closed or is resumed
//! (`park`), taking a session over to resume it, and the [`Cleanup`] guard.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::hub::{lock, Connection, Link, Outbound, Queue, ResumeRequest};
use crate::lifecycle::finish;
use crate::protocol::mqtt::{Publish, Will, V5};
use crate::service::Shared;

/// What a session keeps between network connections.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// Topic → granted QoS.
    pub(super) subscriptions: BTreeMap<String, u8>,
    /// The packet id last given to a QoS 1 message to the client.
    pub(super) next_id: u16,
    /// QoS 1 messages sent and not yet acknowledged, by packet id.
    pub(super) inflight: BTreeMap<u16, Publish>,
    /// QoS 2 messages received and not yet released.
    pub(super) qos2: HashSet<u16>,
}

/// A detached session handed to the connection resuming it.
#[derive(Debug)]
pub(super) struct Parked {
    /// The connection's queue, still filled while detached.
    pub(super) rx: Queue,
    /// What the session keeps.
    pub(super) kept: Kept,
    /// Messages that arrived while detached, oldest first.
    pub(super) backlog: Vec<Outbound>,
    /// The reason of the last disconnection.
    pub(super) reason: Option<String>,
}

/// One connected MQTT client.
pub(super) struct Session {
    /// The state request handlers share.
    pub(super) shared: Arc<Shared>,
    /// The hub connection.
    pub(super) conn: Arc<Connection>,
    /// What MQTT adds to it.
    pub(super) link: Arc<Link>,
    /// 4 (3.1.1) or 5 (5.0).
    pub(super) version: u8,
    /// The keep-alive in seconds (the client's, or the emulator's for 0).
    pub(super) keep_alive: u16,
    /// The client's Maximum Packet Size (5.0): larger messages are not sent to it.
    pub(super) client_max: Option<usize>,
    /// The CONNECT's will, published when the connection ends badly.
    pub(super) will: Option<Will>,
    /// How long the session outlives the network connection.
    pub(super) expiry: Duration,
    /// Topic → granted QoS.
    pub(super) subscriptions: BTreeMap<String, u8>,
    /// The packet id last given to a QoS 1 message to the client.
    pub(super) next_id: u16,
    /// QoS 1 messages sent and not yet acknowledged.
    pub(super) inflight: BTreeMap<u16, Publish>,
    /// QoS 2 messages received and not yet released.
    pub(super) qos2: HashSet<u16>,
}

impl Session {
    /// Whether the client speaks MQTT 5.0.
    pub(super) fn v5(&self) -> bool {
        self.version == V5
    }
}

/// Ends the connection (`disconnected` included) if the task serving it
/// stops without [`disarm`](Self::disarm): a panic on some input, a bug.
pub(super) struct Cleanup {
    /// The state request handlers share.
    pub(super) shared: Arc<Shared>,
    /// The connection to end.
    pub(super) conn: Arc<Connection>,
    /// Whether dropping it ends the connection.
    pub(super) armed: bool,
}

impl Cleanup {
    /// The task ends the connection itself: dropping the guard does nothing.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        tracing::error!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
            "the task serving an MQTT client stopped unexpectedly: ending its connection");
        finish(
            &self.shared,
            &self.conn,
            Some("The service ended the connection after an internal error.".to_owned()),
        );
    }
}

/// Takes a session over to resume it: asks a connected one to let go
/// (it detaches when it outlives its connection), then asks the task
/// keeping the detached session for it. `None`: no session to resume.
pub(super) async fn take_session(old: &Connection, link: &Link) -> Option<Parked> {
    if lock(&link.resume).is_none() && !old.ended.load(Ordering::Acquire) {
        old.takeover.notify_one();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let request = lock(&link.resume).take();
        if let Some(request) = request {
            return ask(request).await;
        }
        if old.ended.load(Ordering::Acquire) || Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asks the task keeping a detached session for it.
pub(super) async fn ask(request: ResumeRequest) -> Option<Parked> {
    let (reply, answer) = oneshot::channel();
    request.send(reply).ok()?;
    // The hub keeps the session opaque; only `park` puts one in.
    let parked = answer.await.ok()?.downcast::<Parked>().ok()?;
    Some(*parked)
}

/// What wakes the task keeping a detached session.
enum Wake {
    Expired,
    Killed,
    Request(Option<oneshot::Sender<Box<dyn Any + Send>>>),
    Message(Outbound),
}

/// Keeps a detached session until it expires, is closed (REST, a queue
/// over its limits), or a new connection asks for it.
pub(super) fn park(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    link: &Link,
    parked: Parked,
    expiry: Duration,
) {
    let (request, mut requests) = oneshot::channel();
    *lock(&link.resume) = Some(request);
    let Parked {
        mut rx,
        kept,
        mut backlog,
        reason,
    } = parked;
    let link = conn.mqtt.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + expiry;
        let end = |why: Option<String>| {
            if let Some(link) = &link {
                lock(&link.resume).take();
            }
            finish(&shared, &conn, why);
        };
        loop {
            let wake = tokio::select! {
                () = tokio::time::sleep_until(deadline) => Wake::Expired,
                () = conn.kill.notified() => Wake::Killed,
                reply = &mut requests => Wake::Request(reply.ok()),
                message = rx.recv() => Wake::Message(message),
            };
            match wake {
                Wake::Expired => return end(reason),
                Wake::Killed => return end(lock(&conn.kill_reason).clone()),
                Wake::Request(None) => return end(reason),
                Wake::Request(Some(reply)) => {
                    let parked = Parked {
                        rx,
                        kept,
                        backlog,
                        reason,
                    };
                    if let Err(parked) = reply.send(Box::new(parked)) {
                        end(parked.downcast::<Parked>().ok().and_then(|p| p.reason));
                    }
                    return;
                }
                Wake::Message(Outbound::Close { reason }) => return end(Some(reason.into())),
                Wake::Message(message) => {
                    backlog.push(message);
                    if backlog.len() > shared.queue {
                        conn.terminate("The client is too slow to receive messages.");
                    }
                }
            }
        }
    });
}
