//! One MQTT client on one WebSocket: [`serve`] reads the CONNECT packet,
//! answers CONNACK, then reads packets and writes queued messages until
//! the socket ends; the end either keeps the session (detached, `park`,
//! until it expires or a CONNECT with Clean Start = 0 resumes it) or ends
//! it, raising `disconnected` (through [`crate::lifecycle::finish`]); when
//! due, it publishes the will.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::codec::{self, DecodeError, Outgoing, Packet, Properties, Publish, Will, V4, V5};
use super::connect::{self, v4, v5, Refused};
use super::{Client, EndReport, Link, EVENTS_PREFIX, MAX_PACKET, SERVER_MESSAGES, SUBPROTOCOL};
use crate::hub::{
    lock, Connection, Data, Envelope, NewConnection, Origin, Outbound, Protocol, Target,
};
use crate::lifecycle::{event_call, finish};
use crate::permissions::Action;
use crate::service::Shared;
use crate::upstream::UpstreamError;
use webpubsub::events::DataType;
use webpubsub::names::GroupName;
use webpubsub::wire::EventType;

/// At most this many QoS 1 messages to a client wait for its PUBACK; one
/// more means the client does not keep up, and it is disconnected.
const MAX_INFLIGHT: usize = 1024;
/// The longest `$webpubsub/server/…` topic filter kept, in UTF-16 code
/// units (as long as a group name may be).
const MAX_SERVER_TOPIC: usize = 1024;
/// At most this many QoS 2 messages from a client wait for its PUBREL.
const MAX_QOS2_PENDING: usize = 1024;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;
type Pending = Pin<Box<dyn Future<Output = Option<Publish>> + Send>>;

/// Asks the task keeping a detached session for it.
pub(crate) type ResumeRequest = oneshot::Sender<oneshot::Sender<Parked>>;

/// What a session keeps between network connections.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// Topic → granted QoS.
    subscriptions: BTreeMap<String, u8>,
    next_id: u16,
    /// QoS 1 messages sent and not yet acknowledged, by packet id.
    inflight: BTreeMap<u16, Publish>,
    /// QoS 2 messages received and not yet released.
    qos2: HashSet<u16>,
}

/// A detached session handed to the connection resuming it.
#[derive(Debug)]
pub(crate) struct Parked {
    rx: mpsc::Receiver<Outbound>,
    kept: Kept,
    /// Messages that arrived while detached, oldest first.
    backlog: Vec<Outbound>,
    /// The reason of the last disconnection.
    reason: Option<String>,
}

/// Serves an MQTT client's socket from its CONNECT packet to its end.
pub(crate) async fn serve(shared: Arc<Shared>, socket: WebSocket, client: Client) {
    let (mut sink, mut stream) = socket.split();
    let mut buf = BytesMut::new();
    let wait = shared.client_timeout.max(Duration::from_secs(1));
    let first = match tokio::time::timeout(wait, next_packet(&mut stream, &mut buf, V4)).await {
        Ok(Ok(Packet::Connect(connect))) => connect,
        Ok(Ok(_)) => {
            tracing::info!(target: "webpubsub_emulator::mqtt", "first packet is not CONNECT: closing");
            return close(sink).await;
        }
        Ok(Err(End {
            disconnect: Some((v5::QUOTA_EXCEEDED, reason)),
            ..
        })) => {
            // Only 5.0 packets carry user properties: a 5.0 CONNACK says why.
            let _ = send(
                &mut sink,
                connack_refused(v5::QUOTA_EXCEEDED, Some(reason), Vec::new()),
                V5,
            )
            .await;
            return close(sink).await;
        }
        Ok(Err(_)) | Err(_) => return close(sink).await,
    };
    let version = first.version;
    if version != V4 && version != V5 {
        // A 5.0-shaped CONNACK for levels above 5, a 3.1.1 one below.
        let (code, format) = if version > V5 {
            (v5::UNSUPPORTED_VERSION, V5)
        } else {
            (v4::UNACCEPTABLE_VERSION, V4)
        };
        let _ = send(&mut sink, connack_refused(code, None, Vec::new()), format).await;
        return close(sink).await;
    }
    let physical_id = uuid::Uuid::new_v4().simple().to_string();
    match accept(&shared, &client, &first, &physical_id).await {
        Ok((conn, mut rx, mut connack, resumed)) => {
            let link = conn.mqtt.clone();
            let Some(link) = link else { return };
            // Whatever ends this task, a panic included, the connection
            // does not stay registered without it.
            let guard = Cleanup {
                shared: shared.clone(),
                conn: conn.clone(),
                armed: true,
            };
            // Keep-alive 0 (none) gets the emulator's client silence rule:
            // a keep-alive of two thirds of the client timeout, so that the
            // 1.5 × keep-alive a client may stay silent is that timeout;
            // 5.0 clients are told with Server Keep Alive.
            let keep_alive = if first.keep_alive == 0 {
                let silence = u16::try_from((shared.client_timeout.as_secs() * 2 / 3).max(1))
                    .unwrap_or(u16::MAX);
                if let Outgoing::ConnAck {
                    code: 0,
                    properties,
                    ..
                } = &mut connack
                {
                    if version == V5 {
                        properties.server_keep_alive = Some(silence);
                    }
                }
                silence
            } else {
                first.keep_alive
            };
            // The will is kept for the connection's life: it counts against
            // its budget (it always fits a fresh one of the default size).
            let will_cost = first.will.as_ref().map_or(0, will_cost);
            if conn.hold(will_cost).is_err() {
                tracing::info!(target: "webpubsub_emulator::mqtt", client = %conn.id, will_cost, "will over the connection's budget");
            }
            let cap = shared.mqtt_session_expiry;
            let expiry = if version == V5 {
                Duration::from_secs(first.properties.session_expiry.unwrap_or(0).into()).min(cap)
            } else if first.clean_start {
                Duration::ZERO
            } else {
                cap
            };
            let fresh = resumed.is_none();
            let (kept, backlog) = resumed.unwrap_or_default();
            let mut session = Session {
                shared: shared.clone(),
                conn,
                link,
                version,
                keep_alive,
                client_max: first
                    .properties
                    .maximum_packet_size
                    .and_then(|m| usize::try_from(m).ok()),
                will: first.will.clone(),
                expiry,
                subscriptions: kept.subscriptions,
                next_id: kept.next_id,
                inflight: kept.inflight,
                qos2: kept.qos2,
            };
            if send(&mut sink, connack, version).await.is_err() {
                if fresh {
                    raise_connected(&shared, &session.conn);
                }
                session.end(sink, End::lost(), rx).await;
                guard.disarm();
                return;
            }
            if fresh {
                raise_connected(&shared, &session.conn);
            }
            let end = session
                .run(&mut sink, &mut stream, &mut rx, buf, backlog)
                .await;
            session.end(sink, end, rx).await;
            guard.disarm();
        }
        Err(refused) => {
            tracing::info!(target: "webpubsub_emulator::mqtt", hub = %client.hub, client = %first.client_id,
                code = refused.code, reason = refused.reason.as_deref(), "CONNECT refused");
            let packet = connack_refused(refused.code, refused.reason, refused.user_properties);
            let _ = send(&mut sink, packet, version).await;
            close(sink).await;
        }
    }
}

/// Ends the connection (`disconnected` included) if the task serving it
/// stops without [`disarm`](Self::disarm): a panic on some input, a bug.
struct Cleanup {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    armed: bool,
}

impl Cleanup {
    fn disarm(mut self) {
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

/// What a will counts against the connection's budget.
fn will_cost(will: &Will) -> usize {
    let properties: usize = will
        .properties
        .user_properties
        .iter()
        .map(|(n, v)| n.len() + v.len() + 48)
        .sum();
    will.topic.len() + will.payload.len() + properties + 64
}

/// What a QoS 1 message waiting for its PUBACK counts against the budget.
fn inflight_cost(publish: &Publish) -> usize {
    publish.topic.len() + publish.payload.len() + 64
}

fn connack_refused(code: u8, reason: Option<String>, user: Vec<(String, String)>) -> Outgoing {
    Outgoing::ConnAck {
        session_present: false,
        code,
        properties: Properties {
            reason_string: reason,
            user_properties: user,
            ..Properties::default()
        },
    }
}

/// Reads the next packet, gathering WebSocket frames as needed.
async fn next_packet(stream: &mut Stream, buf: &mut BytesMut, version: u8) -> Result<Packet, End> {
    loop {
        match codec::decode(buf, version, MAX_PACKET) {
            Ok(Some(packet)) => return Ok(packet),
            Ok(None) => {}
            Err(e) => return Err(End::decode(&e)),
        }
        match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => buf.extend_from_slice(&bytes),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Text(_))) => {
                return Err(End::service(
                    v5::MALFORMED,
                    "MQTT packets travel in binary frames.",
                ))
            }
            Some(Ok(Message::Close(_))) | None => return Err(End::lost()),
            Some(Err(e)) if e.to_string().contains("Space limit exceeded") => {
                return Err(End::service(
                    v5::PACKET_TOO_LARGE,
                    format!("Packet too large: the limit is {MAX_PACKET} bytes."),
                ))
            }
            Some(Err(_)) => return Err(End::lost()),
        }
    }
}

/// Step: client id, `connect` event, take-over, registration. The CONNACK
/// to send on success.
async fn accept(
    shared: &Arc<Shared>,
    client: &Client,
    first: &codec::Connect,
    physical_id: &str,
) -> Result<
    (
        Arc<Connection>,
        mpsc::Receiver<Outbound>,
        Outgoing,
        Option<(Kept, Vec<Outbound>)>,
    ),
    Refused,
> {
    let version = first.version;
    let (client_id, assigned) = connect::client_id(first)?;
    if version == V5 && first.properties.authentication_method.is_some() {
        return Err(Refused::new(
            v5::BAD_AUTHENTICATION_METHOD,
            "Enhanced authentication is not supported.",
        ));
    }
    // A client id in use names a session that belongs to its user: one
    // without a user id belongs to nobody, so it is neither resumed nor
    // taken over (checked before the upstream hears of this CONNECT).
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if old.mqtt.is_some() && old.user_id.is_none() {
            return Err(in_use(version, &old, None));
        }
    }
    let accepted = connect::call_connect(shared, client, first, &client_id, physical_id).await?;
    // …and one with a user id only to a CONNECT of that same user.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if old.mqtt.is_some() && old.user_id.as_deref() != accepted.user_id.as_deref() {
            return Err(in_use(version, &old, accepted.user_id.as_deref()));
        }
    }
    let quota = |why: String| {
        let code = if version == V5 {
            v5::QUOTA_EXCEEDED
        } else {
            v4::SERVER_UNAVAILABLE
        };
        Refused::new(code, why)
    };
    // A client id in use: its session is resumed (Clean Start = 0, same
    // version, session kept), else it ends and a new one starts.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        if let Some(old_link) = old.mqtt.clone() {
            if !first.clean_start && old_link.version == version {
                if let Some(parked) = take_session(&old, &old_link).await {
                    old_link.resumed(physical_id);
                    shared.hubs.attach(&old);
                    // A take-over request that found the session detached
                    // already must not end the resumed one.
                    let _ = futures_util::FutureExt::now_or_never(old.takeover.notified());
                    if let Some(state) = accepted.state {
                        *lock(&old.state) = Some(state);
                    }
                    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %old.hub, client = %old.id,
                        version, "MQTT session resumed");
                    let connack = Outgoing::ConnAck {
                        session_present: true,
                        code: 0,
                        properties: connack_properties(
                            version,
                            false,
                            &client_id,
                            accepted.user_properties,
                        ),
                    };
                    return Ok((old, parked.rx, connack, Some((parked.kept, parked.backlog))));
                }
            } else {
                // A detached session the new connection does not resume.
                let request = lock(&old_link.resume).take();
                if let Some(request) = request {
                    let reason = ask(request).await.and_then(|parked| parked.reason);
                    finish(shared, &old, reason);
                }
            }
        }
    }
    if let Some(refusal) = shared.hubs.too_many_groups(&accepted.groups) {
        return Err(quota(refusal.to_string()));
    }
    // A client id in use: the older connection goes, as MQTT brokers do.
    if let Some(old) = shared.hubs.get(&client.hub, &client_id) {
        let Some(old_link) = &old.mqtt else {
            return Err(Refused::client_id(
                version,
                "The client id is the id of another (non-MQTT) connection.",
            ));
        };
        let code = (old_link.version == V5).then_some(v5::SESSION_TAKEN_OVER);
        old_link.ended(EndReport {
            initiated_by_client: false,
            packet: code.map(|c| (c, None)),
        });
        finish(
            shared,
            &old,
            Some("Session taken over by a new connection with the same client id.".to_owned()),
        );
        old.takeover.notify_one();
    }
    let link = Arc::new(Link::new(version, physical_id.to_owned()));
    let (conn, rx) = Connection::new(NewConnection {
        id: Arc::from(client_id.as_str()),
        hub: Arc::from(client.hub.as_str()),
        user_id: accepted.user_id.map(Arc::from),
        protocol: Protocol::Mqtt,
        subprotocol: Some(SUBPROTOCOL.to_owned()),
        roles: accepted.roles,
        reconnection_token: String::new(),
        state: accepted.state,
        queue: shared.queue,
        queue_bytes: shared.queue_bytes,
        detached_bytes: shared.detached_bytes,
        ack_ids: 1,
        mqtt: Some(link),
    });
    if let Err(refusal) = shared.hubs.add(&conn, &accepted.groups) {
        return Err(quota(refusal.to_string()));
    }
    shared.changed();
    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %conn.hub, client = %conn.id,
        user = conn.user_id.as_deref(), version, "MQTT client connected");
    let properties = connack_properties(version, assigned, &client_id, accepted.user_properties);
    let connack = Outgoing::ConnAck {
        session_present: false,
        code: 0,
        properties,
    };
    Ok((conn, rx, connack, None))
}

/// The refusal of a CONNECT whose client id names a session it may not
/// have: another user's, or one without a user id. The session is left
/// alone; the reason does not say whose it is.
fn in_use(version: u8, old: &Connection, user: Option<&str>) -> Refused {
    tracing::info!(target: "webpubsub_emulator::mqtt", hub = %old.hub, client = %old.id,
        session_user = old.user_id.as_deref(), user, "CONNECT refused: the client id is another user's session");
    Refused::client_id(
        version,
        "The client id is in use by a session of another user.",
    )
}

/// The CONNACK properties (5.0).
fn connack_properties(
    version: u8,
    assigned: bool,
    client_id: &str,
    user_properties: Vec<(String, String)>,
) -> Properties {
    if version == V5 {
        Properties {
            assigned_client_id: assigned.then(|| client_id.to_owned()),
            user_properties,
            retain_available: Some(0),
            wildcard_available: Some(0),
            shared_available: Some(0),
            subscription_ids_available: Some(0),
            maximum_packet_size: u32::try_from(MAX_PACKET).ok(),
            ..Properties::default()
        }
    } else {
        Properties::default()
    }
}

/// Takes a session over to resume it: asks a connected one to let go
/// (it detaches when it outlives its connection), then asks the task
/// keeping the detached session for it. `None`: no session to resume.
async fn take_session(old: &Connection, link: &Link) -> Option<Parked> {
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
async fn ask(request: ResumeRequest) -> Option<Parked> {
    let (reply, answer) = oneshot::channel();
    request.send(reply).ok()?;
    answer.await.ok()
}

/// What wakes the task keeping a detached session.
enum Wake {
    Expired,
    Killed,
    Request(Option<oneshot::Sender<Parked>>),
    Message(Option<Outbound>),
}

/// Keeps a detached session until it expires, is closed (REST, a queue
/// over its limits), or a new connection asks for it.
fn park(shared: Arc<Shared>, conn: Arc<Connection>, link: &Link, parked: Parked, expiry: Duration) {
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
                    if let Err(parked) = reply.send(parked) {
                        end(parked.reason);
                    }
                    return;
                }
                Wake::Message(Some(Outbound::Close { reason })) => return end(Some(reason)),
                Wake::Message(Some(message)) => {
                    backlog.push(message);
                    if backlog.len() > shared.queue {
                        conn.terminate("The client is too slow to receive messages.");
                    }
                }
                Wake::Message(None) => return end(reason),
            }
        }
    });
}

/// Raises `connected` without holding up the client; later events wait for it.
fn raise_connected(shared: &Arc<Shared>, conn: &Arc<Connection>) {
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let call = event_call(
            &conn,
            EventType::Connected,
            "application/json",
            Bytes::from_static(b"{}"),
        );
        let _ = shared.upstream.call(shared.settings(&conn.hub), call).await;
        conn.connected_done.send_replace(true);
    });
}

async fn send(sink: &mut Sink, packet: Outgoing, version: u8) -> Result<(), axum::Error> {
    sink.send(Message::Binary(packet.encode(version))).await
}

async fn close(mut sink: Sink) {
    let goodbye = async {
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
}

/// How a connection ends.
#[derive(Debug)]
pub(super) struct End {
    reason: Option<String>,
    report: EndReport,
    /// The DISCONNECT the service sends (5.0 only): code and reason.
    disconnect: Option<(u8, String)>,
    /// Whether the will is published.
    will: bool,
    /// Whether another connection took the client id over.
    taken_over: bool,
    /// Whether the session ends too (REST close), not only the connection.
    ends_session: bool,
}

impl End {
    /// The service ends the connection: DISCONNECT `code` first for 5.0.
    fn service(code: u8, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            reason: Some(reason.clone()),
            report: EndReport::default(),
            disconnect: Some((code, reason)),
            will: true,
            taken_over: false,
            ends_session: false,
        }
    }

    /// The transport broke (no DISCONNECT).
    fn lost() -> Self {
        Self {
            reason: Some("The connection was lost.".to_owned()),
            report: EndReport::default(),
            disconnect: None,
            will: true,
            taken_over: false,
            ends_session: false,
        }
    }

    fn decode(error: &DecodeError) -> Self {
        match error {
            DecodeError::TooLarge(_) => Self::service(
                v5::PACKET_TOO_LARGE,
                format!("Packet too large: the limit is {MAX_PACKET} bytes."),
            ),
            DecodeError::Malformed(_) => Self::service(v5::MALFORMED, error.to_string()),
            DecodeError::TooManyUserProperties => {
                Self::service(v5::QUOTA_EXCEEDED, error.to_string())
            }
        }
    }
}

/// One connected MQTT client.
struct Session {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    link: Arc<Link>,
    version: u8,
    keep_alive: u16,
    /// The client's Maximum Packet Size (5.0): larger messages are not sent to it.
    client_max: Option<usize>,
    will: Option<Will>,
    /// How long the session outlives the network connection.
    expiry: Duration,
    /// Topic → granted QoS.
    subscriptions: BTreeMap<String, u8>,
    next_id: u16,
    /// QoS 1 messages sent and not yet acknowledged.
    inflight: BTreeMap<u16, Publish>,
    /// QoS 2 messages received and not yet released.
    qos2: HashSet<u16>,
}

impl Session {
    fn v5(&self) -> bool {
        self.version == V5
    }

    /// Reads packets and writes queued messages until the connection ends.
    async fn run(
        &mut self,
        sink: &mut Sink,
        stream: &mut Stream,
        rx: &mut mpsc::Receiver<Outbound>,
        mut buf: BytesMut,
        backlog: Vec<Outbound>,
    ) -> End {
        // A resumed session: unacknowledged messages again (DUP), then
        // those that arrived while it was detached.
        let mut replay: Vec<Outgoing> = self
            .inflight
            .values()
            .map(|p| {
                let mut p = p.clone();
                p.dup = true;
                Outgoing::Publish(p)
            })
            .collect();
        for message in backlog {
            // Out of the queue first, so a QoS 1 message is not counted twice.
            self.conn.written(message.cost());
            let out = self.delivery(message);
            match out {
                Ok(packets) => replay.extend(packets),
                Err(end) => return end,
            }
        }
        for packet in replay {
            if send(sink, packet, self.version).await.is_err() {
                return End::lost();
            }
        }
        // Keep-alive: 1.5 times the client's, from its last packet.
        let window =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        let far = Duration::from_secs(86_400 * 365);
        let mut deadline = Instant::now() + window.unwrap_or(far);
        let mut pending: Option<Pending> = None;
        let conn = self.conn.clone();
        loop {
            let outcome: Result<Vec<Outgoing>, End> = tokio::select! {
                packet = next_packet(stream, &mut buf, self.version), if pending.is_none() => {
                    deadline = Instant::now() + window.unwrap_or(far);
                    match packet {
                        Ok(packet) => self.packet(packet, &mut pending),
                        Err(end) => Err(end),
                    }
                }
                () = tokio::time::sleep_until(deadline), if pending.is_none() => {
                    Err(End::service(v5::KEEP_ALIVE_TIMEOUT, "Keep-alive timeout."))
                }
                answer = async { match pending.as_mut() { Some(f) => f.await, None => None } }, if pending.is_some() => {
                    pending = None;
                    deadline = Instant::now() + window.unwrap_or(far);
                    Ok(answer.map(|p| self.outgoing_publish(p)).into_iter().flatten().collect())
                }
                message = rx.recv() => match message {
                    Some(message) => {
                        conn.written(message.cost());
                        self.delivery(message)
                    }
                    None => Err(End::lost()),
                },
                () = conn.kill.notified() => {
                    let reason = lock(&conn.kill_reason).clone().unwrap_or_default();
                    Err(End::service(v5::QUOTA_EXCEEDED, reason))
                }
                () = conn.takeover.notified() => {
                    let mut end = End::service(v5::SESSION_TAKEN_OVER, "Session taken over.");
                    end.taken_over = true;
                    Err(end)
                }
            };
            match outcome {
                Ok(packets) => {
                    for packet in packets {
                        // A client that never reads blocks this write: it is
                        // cut off all the same when its queue overflows (or
                        // it is taken over), as for the other protocols.
                        let sent = tokio::select! {
                            sent = send(sink, packet, self.version) => sent,
                            () = conn.kill.notified() => {
                                let reason = lock(&conn.kill_reason).clone().unwrap_or_default();
                                return End::service(v5::QUOTA_EXCEEDED, reason);
                            }
                            () = conn.takeover.notified() => {
                                let mut end = End::service(v5::SESSION_TAKEN_OVER, "Session taken over.");
                                end.taken_over = true;
                                return end;
                            }
                        };
                        if sent.is_err() {
                            return End::lost();
                        }
                    }
                }
                Err(end) => return end,
            }
        }
    }

    /// One packet from the client: the packets to answer with.
    fn packet(
        &mut self,
        packet: Packet,
        pending: &mut Option<Pending>,
    ) -> Result<Vec<Outgoing>, End> {
        match packet {
            Packet::PingReq => Ok(vec![Outgoing::PingResp]),
            Packet::Publish(publish) => self.publish(publish, pending),
            Packet::PubAck { packet_id } => {
                if let Some(p) = self.inflight.remove(&packet_id) {
                    self.conn.release(inflight_cost(&p));
                }
                Ok(Vec::new())
            }
            Packet::PubRel { packet_id } => {
                self.qos2.remove(&packet_id);
                Ok(vec![Outgoing::PubComp { packet_id }])
            }
            // The emulator never sends QoS 2.
            Packet::PubRec { .. } | Packet::PubComp { .. } => Ok(Vec::new()),
            Packet::Subscribe {
                packet_id, filters, ..
            } => {
                let codes = filters
                    .iter()
                    .map(|f| self.subscribe(&f.topic, f.qos))
                    .collect();
                self.shared.changed();
                Ok(vec![Outgoing::SubAck { packet_id, codes }])
            }
            Packet::Unsubscribe { packet_id, topics } => {
                let codes = topics.iter().map(|t| self.unsubscribe(t)).collect();
                self.shared.changed();
                Ok(vec![Outgoing::UnsubAck { packet_id, codes }])
            }
            Packet::Disconnect { code, properties } => {
                let v5 = self.v5();
                Err(End {
                    reason: properties.reason_string.clone(),
                    report: EndReport {
                        initiated_by_client: true,
                        packet: Some((code, v5.then_some(properties.user_properties))),
                    },
                    disconnect: None,
                    // 0x04: "disconnect with will message".
                    will: code == 0x04,
                    taken_over: false,
                    ends_session: false,
                })
            }
            Packet::Connect(_) => Err(End::service(v5::PROTOCOL_ERROR, "A second CONNECT.")),
            Packet::Auth => Err(End::service(
                v5::PROTOCOL_ERROR,
                "Enhanced authentication is not supported.",
            )),
            Packet::ServerOnly(kind) => Err(End::service(
                v5::PROTOCOL_ERROR,
                format!("Packet type {kind} is sent by servers only."),
            )),
        }
    }

    /// A PUBLISH from the client: to a group, or a user event.
    fn publish(&mut self, p: Publish, pending: &mut Option<Pending>) -> Result<Vec<Outgoing>, End> {
        if self.v5() && p.properties.topic_alias.is_some() {
            return Err(End::service(
                v5::TOPIC_ALIAS_INVALID,
                "Topic aliases are not supported.",
            ));
        }
        if p.retain && self.v5() {
            return Err(End::service(
                v5::RETAIN_NOT_SUPPORTED,
                "Retained messages are not supported.",
            ));
        }
        if p.topic.is_empty() || p.topic.contains(['+', '#']) {
            return Err(End::service(
                v5::TOPIC_NAME_INVALID,
                "A PUBLISH topic is a group name, without wildcards.",
            ));
        }
        if p.qos == 2 {
            if self.qos2.contains(&p.packet_id) {
                // A resent QoS 2 message, delivered once already.
                return Ok(vec![Outgoing::PubRec {
                    packet_id: p.packet_id,
                    code: 0,
                }]);
            }
            if self.qos2.len() >= MAX_QOS2_PENDING {
                return Err(End::service(
                    0x93,
                    "Too many QoS 2 messages wait for PUBREL.",
                ));
            }
        }
        let code = if let Some(event) = p.topic.strip_prefix(EVENTS_PREFIX) {
            if event.is_empty() || event.contains('/') {
                v5::TOPIC_NAME_INVALID
            } else {
                *pending = Some(Box::pin(user_event(
                    self.shared.clone(),
                    self.conn.clone(),
                    event.to_owned(),
                    p.clone(),
                )));
                0
            }
        } else if p.topic.starts_with("$webpubsub/") || !GroupName::is_valid(&p.topic) {
            v5::TOPIC_NAME_INVALID
        } else if !lock(&self.conn.permissions).allows(Action::Send, &p.topic) {
            v5::NOT_AUTHORIZED
        } else {
            self.to_group(&p);
            0
        };
        if code != 0 {
            tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id, topic = %p.topic, code, "PUBLISH refused");
        }
        // 3.1.1 has no refusal codes: a refused message is dropped and
        // still acknowledged.
        let code = if self.v5() { code } else { 0 };
        Ok(match p.qos {
            1 => vec![Outgoing::PubAck {
                packet_id: p.packet_id,
                code,
            }],
            2 => {
                if code < 0x80 {
                    self.qos2.insert(p.packet_id);
                }
                vec![Outgoing::PubRec {
                    packet_id: p.packet_id,
                    code,
                }]
            }
            _ => Vec::new(),
        })
    }

    /// Sends a PUBLISH to group `p.topic`.
    fn to_group(&self, p: &Publish) {
        let envelope = Envelope::new(
            Origin::Group {
                group: Arc::from(p.topic.as_str()),
                from_user: self.conn.user_id.clone(),
                stream: None,
            },
            data_of(p),
        );
        let targets = self
            .shared
            .hubs
            .targets(&self.conn.hub, Target::Group(&p.topic), &[], None);
        for target in targets {
            target.send(Outbound::Message(envelope.clone()));
        }
    }

    /// One SUBSCRIBE filter: its SUBACK code.
    fn subscribe(&mut self, topic: &str, qos: u8) -> u8 {
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
    fn unsubscribe(&mut self, topic: &str) -> u8 {
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

    /// A queued message as packets for this client.
    fn delivery(&mut self, message: Outbound) -> Result<Vec<Outgoing>, End> {
        match message {
            Outbound::Message(envelope) => {
                let (topic, qos) = match &envelope.origin {
                    Origin::Group { group, stream, .. } => {
                        if stream.is_some() && envelope.data.bytes.is_empty() {
                            return Ok(Vec::new());
                        }
                        // Groups joined by the token, the connect answer or
                        // REST count as QoS 1 subscriptions.
                        let qos = self.subscriptions.get(&**group).copied().unwrap_or(1);
                        (group.to_string(), qos.min(1))
                    }
                    Origin::Server => (SERVER_MESSAGES.to_owned(), 1),
                };
                let content_type = match envelope.data.kind {
                    DataType::Text => Some("text/plain".to_owned()),
                    DataType::Json => Some("application/json".to_owned()),
                    _ => None,
                };
                let publish = Publish {
                    dup: false,
                    qos,
                    retain: false,
                    topic,
                    packet_id: 0,
                    properties: Properties {
                        content_type,
                        ..Properties::default()
                    },
                    payload: envelope.data.bytes.clone(),
                };
                Ok(self.outgoing_publish(publish).into_iter().collect())
            }
            Outbound::Close { reason } => {
                let mut end = End::service(v5::ADMINISTRATIVE_ACTION, reason);
                end.ends_session = true;
                Err(end)
            }
            // JSON-protocol replies: not for MQTT clients.
            Outbound::Ack { .. } | Outbound::Pong | Outbound::Frame(_) => Ok(Vec::new()),
        }
    }

    /// Finishes a PUBLISH to the client: a packet id for QoS 1, 5.0
    /// properties only for 5.0, dropped when over the client's maximum
    /// packet size. `None`: nothing to send.
    fn outgoing_publish(&mut self, mut publish: Publish) -> Option<Outgoing> {
        if !self.v5() {
            publish.properties = Properties::default();
        }
        if publish.qos > 0 {
            if self.inflight.len() >= MAX_INFLIGHT {
                if self
                    .conn
                    .terminate("The client does not acknowledge its messages (PUBACK).")
                {
                    tracing::warn!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                        "too many unacknowledged QoS 1 messages: disconnecting the client");
                }
                return None;
            }
            loop {
                self.next_id = self.next_id.wrapping_add(1).max(1);
                if !self.inflight.contains_key(&self.next_id) {
                    break;
                }
            }
            publish.packet_id = self.next_id;
        }
        let packet = Outgoing::Publish(publish);
        if let Some(max) = self.client_max {
            if packet.encode(self.version).len() > max {
                return None;
            }
        }
        if let Outgoing::Publish(p) = &packet {
            if p.qos > 0 {
                // Held until its PUBACK, within the connection's one budget.
                if self.conn.hold(inflight_cost(p)).is_err() {
                    if self
                        .conn
                        .terminate("The client does not acknowledge its messages (PUBACK).")
                    {
                        tracing::warn!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                            held_bytes = self.conn.held(), budget = self.conn.budget(),
                            "unacknowledged QoS 1 messages over the budget: disconnecting the client");
                    }
                    return None;
                }
                self.inflight.insert(p.packet_id, p.clone());
            }
        }
        Some(packet)
    }

    /// Ends the connection: `disconnected` (unless taken over, which raised
    /// it already), the will when due, the DISCONNECT (5.0) and close.
    async fn end(self, mut sink: Sink, end: End, rx: mpsc::Receiver<Outbound>) {
        let v5 = self.v5();
        let mut report = end.report;
        if let Some((code, _)) = &end.disconnect {
            if v5 {
                report.packet = Some((*code, None));
            }
        }
        self.link.ended(report);
        // The session outlives the connection unless it ends with it (no
        // expiry, REST close, a queue over its limits, a clean take-over).
        // A session without a user id belongs to nobody: nobody may resume
        // it (`accept`), so it is not kept.
        let keep = !self.expiry.is_zero()
            && self.conn.user_id.is_some()
            && !end.ends_session
            && !self.conn.is_killed()
            && !self.conn.ended.load(Ordering::Acquire);
        // …and within the detached caps (count, per user, bytes held).
        let keep = keep && {
            let kept = self.shared.hubs.detach(&self.conn);
            if let Err(why) = &kept {
                tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                    reason = %why, "MQTT session not kept after its connection");
            }
            kept.is_ok()
        };
        if keep {
            tracing::info!(target: "webpubsub_emulator::mqtt", client = %self.conn.id,
                expiry_ms = self.expiry.as_millis(), taken_over = end.taken_over, "MQTT session detached");
            let parked = Parked {
                rx,
                kept: Kept {
                    subscriptions: self.subscriptions.clone(),
                    next_id: self.next_id,
                    inflight: self.inflight.clone(),
                    qos2: self.qos2.clone(),
                },
                backlog: Vec::new(),
                reason: end.reason.clone(),
            };
            park(
                self.shared.clone(),
                self.conn.clone(),
                &self.link,
                parked,
                self.expiry,
            );
        } else {
            drop(rx);
            finish(&self.shared, &self.conn, end.reason.clone());
        }
        if end.will {
            if let Some(will) = &self.will {
                self.publish_will(will);
            }
        }
        let goodbye = async {
            if let (true, Some((code, reason))) = (v5, end.disconnect) {
                let _ = send(
                    &mut sink,
                    Outgoing::Disconnect {
                        code,
                        reason: Some(reason),
                    },
                    V5,
                )
                .await;
            }
            let _ = sink.send(Message::Close(None)).await;
            let _ = sink.close().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }

    /// The will, to its group when the client may send there.
    fn publish_will(&self, will: &Will) {
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

/// A PUBLISH payload as a group message: typed by its 5.0 content type
/// (`text/plain…` → text, `application/json…` holding valid JSON → json),
/// else binary.
fn data_of(p: &Publish) -> Data {
    let content_type = p.properties.content_type.as_deref().unwrap_or("");
    let kind = if content_type.starts_with("text/plain") {
        DataType::Text
    } else if content_type.starts_with("application/json")
        && serde_json::from_slice::<serde::de::IgnoredAny>(&p.payload).is_ok()
    {
        DataType::Json
    } else {
        DataType::Binary
    };
    Data {
        kind,
        bytes: p.payload.clone(),
    }
}

/// A PUBLISH to `$webpubsub/server/events/{event}` as user event `event`;
/// the answer, to publish back on `…/{event}/succeeded` or `…/failed`.
async fn user_event(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    event: String,
    p: Publish,
) -> Option<Publish> {
    conn.connected_delivered().await;
    let mut call = event_call(
        &conn,
        EventType::User(&event),
        "application/octet-stream",
        p.payload.clone(),
    );
    if let Some(value) = p
        .properties
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        call.extra.insert(http::header::CONTENT_TYPE, value);
    }
    for (name, value) in &p.properties.user_properties {
        let name = HeaderName::try_from(format!("mqtt-{name}"));
        let value = HeaderValue::from_str(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            // The codec bounds the count far below a header map's capacity;
            // a full map drops the rest rather than panic.
            if call.extra.try_append(name, value).is_err() {
                break;
            }
        }
    }
    let result = shared.upstream.call(shared.settings(&conn.hub), call).await;
    let (status, content_type, payload, mut user) = match result {
        Ok(Some(answer)) => {
            if let Some(state) = &answer.state {
                *lock(&conn.state) = Some(state.clone()).filter(|s| !s.is_empty());
            }
            (
                answer.status.as_u16(),
                answer.content_type,
                answer.body,
                answer.mqtt_properties,
            )
        }
        Ok(None) => (
            500,
            Some("text/plain".to_owned()),
            Bytes::from(format!(
                "No event handler is registered for the event `{event}`."
            )),
            Vec::new(),
        ),
        Err(UpstreamError::Status { status, body, .. }) => {
            (status.as_u16(), None, Bytes::from(body), Vec::new())
        }
        Err(error) => {
            tracing::warn!(target: "webpubsub_emulator::mqtt", client = %conn.id, event, error = %error, "user event failed: {}", error.summary());
            (500, None, Bytes::new(), Vec::new())
        }
    };
    user.push(("azure-status-code".to_owned(), status.to_string()));
    let outcome = if (200..300).contains(&status) {
        "succeeded"
    } else {
        "failed"
    };
    Some(Publish {
        dup: false,
        qos: p.qos.min(1),
        retain: false,
        topic: format!("{EVENTS_PREFIX}{event}/{outcome}"),
        packet_id: 0,
        properties: Properties {
            content_type,
            correlation_data: p.properties.correlation_data.clone(),
            user_properties: user,
            ..Properties::default()
        },
        payload,
    })
}
