//! One MQTT client on one WebSocket: [`serve`] reads the CONNECT packet,
//! answers CONNACK, then runs the packet loop (packets in, queued messages
//! out, keep-alive, take-over) until the socket ends; the end either keeps
//! the session (detached, `park`, until it expires or a CONNECT with Clean
//! Start = 0 resumes it) or ends it, raising `disconnected` (through
//! [`crate::lifecycle::finish`]); when due, it publishes the will.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::{poll_fn, Future as _};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::futures::Notified;
use tokio::time::Instant;

use super::connect::{accept, connack_refused, Client};
use super::delivery::Wire;
use super::end::End;
use super::session::{park, Cleanup, Kept, Parked, Session};
use super::user_event::Pending;
use super::will::will_cost;
use crate::hub::{lock, Connection, EndReport, Outbound, Queue, BURST};
use crate::lifecycle::handshake::{too_big, Sink, Source};
use crate::lifecycle::{finish, raise_connected};
use crate::protocol::mqtt::{self as mqtt, v4, v5, Outgoing, Packet, MAX_PACKET, V4, V5};
use crate::service::Shared;
use crate::sync::Gate;

/// Serves an MQTT client's socket from its CONNECT packet to its end.
///
/// The CONNECT and the end are boxed futures of their own ([`open`],
/// [`Session::end`]): they run once, and their futures (an upstream call)
/// would otherwise size this one, which lives as long as the socket.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    (sink, stream): (Sink, Source),
    client: Box<Client>,
) {
    let Some(opened) = Box::pin(open(shared, sink, stream, client)).await else {
        return;
    };
    let Opened {
        mut session,
        mut sink,
        stream,
        mut rx,
        buf,
        backlog,
        guard,
    } = opened;
    let end = session.run(&mut sink, stream, &mut rx, buf, backlog).await;
    Box::pin(session.end(sink, end, rx)).await;
    guard.disarm();
}

/// An accepted MQTT connection, its CONNACK written, ready for its packet
/// loop.
struct Opened {
    session: Session,
    sink: Sink,
    stream: Source,
    rx: Queue,
    /// Bytes read after the CONNECT.
    buf: BytesMut,
    /// What a resumed session's queue held while it was detached.
    backlog: Vec<Outbound>,
    guard: Cleanup,
}

/// Reads the CONNECT packet and answers it: `Some` once the connection is
/// accepted, its CONNACK written and `connected` raised; `None` when the
/// socket is done with (refused, or lost before it began).
async fn open(
    shared: Arc<Shared>,
    mut sink: Sink,
    mut stream: Source,
    client: Box<Client>,
) -> Option<Opened> {
    let mut buf = BytesMut::new();
    let wait = shared.client_timeout.max(Duration::from_secs(1));
    let first = match tokio::time::timeout(wait, next_packet(&mut stream, &mut buf, V4)).await {
        Ok(Ok(Packet::Connect(connect))) => connect,
        Ok(Ok(_)) => {
            tracing::info!(target: "webpubsub_emulator::mqtt", "first packet is not CONNECT: closing");
            close(sink).await;
            return None;
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
            close(sink).await;
            return None;
        }
        Ok(Err(_)) | Err(_) => {
            close(sink).await;
            return None;
        }
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
        close(sink).await;
        return None;
    }
    let physical_id = uuid::Uuid::new_v4().simple().to_string();
    match accept(&shared, &client, &first, &physical_id).await {
        Ok((conn, rx, mut connack, resumed)) => {
            let link = conn.mqtt.clone()?;
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
            let session = Session {
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
                return None;
            }
            if fresh {
                raise_connected(&shared, &session.conn);
            }
            Some(Opened {
                session,
                sink,
                stream,
                rx,
                buf,
                backlog,
                guard,
            })
        }
        Err(refused) => {
            tracing::info!(target: "webpubsub_emulator::mqtt", hub = %client.hub, client = %first.client_id,
                code = refused.code, reason = refused.reason.as_deref(), "CONNECT refused");
            let packet = connack_refused(refused.code, refused.reason, refused.user_properties);
            let _ = send(&mut sink, packet, version).await;
            close(sink).await;
            None
        }
    }
}
/// Reads the next packet, gathering WebSocket frames as needed.
async fn next_packet(stream: &mut Source, buf: &mut BytesMut, version: u8) -> Result<Packet, End> {
    loop {
        if let Some(packet) = buffered(buf, version)? {
            return Ok(packet);
        }
        read_frame(stream.next().await, buf)?;
    }
}

/// The next packet already read into `buf`, if it holds a whole one.
fn buffered(buf: &mut BytesMut, version: u8) -> Result<Option<Packet>, End> {
    let packet = mqtt::decode(buf, version, MAX_PACKET).map_err(|e| End::decode(&e))?;
    if packet.is_some() && buf.is_empty() {
        // Nothing left over: give back what a large packet grew it to,
        // rather than hold it for the socket's life.
        *buf = BytesMut::new();
    }
    Ok(packet)
}

/// Adds a WebSocket frame's bytes to `buf`; how reading ended if it did.
fn read_frame(frame: Option<Result<Message, axum::Error>>, buf: &mut BytesMut) -> Result<(), End> {
    match frame {
        Some(Ok(Message::Binary(bytes))) => {
            buf.extend_from_slice(&bytes);
            Ok(())
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
        Some(Ok(Message::Text(_))) => Err(End::service(
            v5::MALFORMED,
            "MQTT packets travel in binary frames.",
        )),
        Some(Ok(Message::Close(_))) | None => Err(End::lost()),
        Some(Err(e)) if too_big(&e) => Err(End::service(
            v5::PACKET_TOO_LARGE,
            format!("Packet too large: the limit is {MAX_PACKET} bytes."),
        )),
        Some(Err(_)) => Err(End::lost()),
    }
}
/// Writes one packet, encoded for `version`.
async fn send(sink: &mut Sink, packet: Outgoing, version: u8) -> Result<(), axum::Error> {
    sink.send(Message::Binary(packet.encode(version))).await
}

/// Closes the socket without a DISCONNECT, waiting at most 2 s.
async fn close(mut sink: Sink) {
    let goodbye = async {
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
}

/// Polls the kill and take-over signals: the end of the connection when
/// one came.
fn poll_signals(
    cx: &mut Context<'_>,
    conn: &Connection,
    killed: Pin<&mut Notified<'_>>,
    taken_over: Pin<&mut Notified<'_>>,
) -> Poll<End> {
    if killed.poll(cx).is_ready() {
        let reason = lock(&conn.kill_reason).clone().unwrap_or_default();
        return Poll::Ready(End::service(v5::QUOTA_EXCEEDED, reason));
    }
    taken_over.poll(cx).map(|()| {
        let mut end = End::service(v5::SESSION_TAKEN_OVER, "Session taken over.");
        end.taken_over = true;
        end
    })
}

/// Writes `wires` (emptying it) with one flush at the end.
async fn write_all(sink: &mut Sink, wires: &mut Vec<Wire>, version: u8) -> Result<(), axum::Error> {
    for wire in wires.drain(..) {
        let frame = match wire {
            Wire::Packet(packet) => Message::Binary(packet.encode(version)),
            Wire::Frame(frame) => frame,
        };
        sink.feed(frame).await?;
    }
    // A burst's worth of room is not kept for the socket's life.
    wires.shrink_to(4);
    sink.flush().await
}

impl Session {
    /// Reads packets and writes queued messages until the connection ends.
    ///
    /// Packets are taken one at a time, and none while a user event waits
    /// for the upstream's answer: the next one stays in the socket (or in
    /// `buf`), so no connection holds more packets than one. The socket's
    /// read half is polled by this loop, not by a task of its own (whose
    /// future and channel cost every connection some 1.6 KB), and through
    /// a [`Gate`], as are the kill and take-over signals: a wake-up for
    /// queued messages polls neither. The keep-alive timer and the signals
    /// are created once, not per wake-up; queued messages are written a
    /// burst at a time with one flush.
    async fn run(
        &mut self,
        sink: &mut Sink,
        mut stream: Source,
        rx: &mut Queue,
        mut buf: BytesMut,
        backlog: Vec<Outbound>,
    ) -> End {
        let mut wires = match self.replay(backlog) {
            Ok(wires) => wires,
            Err(end) => return end,
        };
        if !wires.is_empty() && write_all(sink, &mut wires, self.version).await.is_err() {
            return End::lost();
        }
        // Keep-alive: 1.5 times the client's, from its last packet.
        let window =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        let far = Duration::from_secs(86_400 * 365);
        let silence = tokio::time::sleep_until(Instant::now() + window.unwrap_or(far));
        tokio::pin!(silence);
        let conn = self.conn.clone();
        let killed = conn.kill.notified();
        tokio::pin!(killed);
        let taken_over = conn.takeover.notified();
        tokio::pin!(taken_over);
        // The read half, and the kill and take-over signals, are polled
        // only once they woke the task, not at each wake-up for queued
        // messages (most of them, in a broadcast).
        let reading = Gate::new();
        let signals = Gate::new();
        let mut pending: Option<Pending> = None;
        loop {
            // A packet already read, when the loop is free for one.
            let packet = if pending.is_none() {
                match buffered(&mut buf, self.version) {
                    Ok(packet) => packet,
                    Err(end) => return end,
                }
            } else {
                None
            };
            // What to write, then whether the connection ends after it.
            let ends: Option<End> = if let Some(packet) = packet {
                silence
                    .as_mut()
                    .reset(Instant::now() + window.unwrap_or(far));
                match self.packet(packet, &mut pending) {
                    Ok(packets) => {
                        wires.extend(packets.into_iter().map(|p| Wire::Packet(Box::new(p))));
                        None
                    }
                    Err(end) => Some(end),
                }
            } else {
                tokio::select! {
                    frame = poll_fn(|cx| reading.poll(cx, |cx| stream.poll_next_unpin(cx))), if pending.is_none() => {
                        read_frame(frame, &mut buf).err()
                    }
                    () = &mut silence, if pending.is_none() => {
                        Some(End::service(v5::KEEP_ALIVE_TIMEOUT, "Keep-alive timeout."))
                    }
                    answer = async { match pending.as_mut() { Some(f) => f.await, None => None } }, if pending.is_some() => {
                        pending = None;
                        silence.as_mut().reset(Instant::now() + window.unwrap_or(far));
                        if let Some(packet) = answer.and_then(|p| self.outgoing_publish(p)) {
                            wires.push(Wire::Packet(Box::new(packet)));
                        }
                        None
                    }
                    message = rx.recv() => self.burst(message, rx, &mut wires),
                    end = poll_fn(|cx| signals.poll(cx, |cx| poll_signals(cx, &conn, killed.as_mut(), taken_over.as_mut()))) => return end,
                }
            };
            if !wires.is_empty() {
                // A client that never reads blocks this write: it is cut
                // off all the same when its queue overflows (or it is taken
                // over), as for the other protocols.
                let sent = tokio::select! {
                    sent = write_all(sink, &mut wires, self.version) => sent,
                    // Through the gate, as above: what it guards holds its
                    // waker.
                    end = poll_fn(|cx| signals.poll(cx, |cx| poll_signals(cx, &conn, killed.as_mut(), taken_over.as_mut()))) => return end,
                };
                if sent.is_err() {
                    return End::lost();
                }
            }
            if let Some(end) = ends {
                return end;
            }
        }
    }

    /// Queued messages, `first` and what else is queued (up to [`BURST`]),
    /// as wires; stops at a message that ends the connection, whose `End`
    /// it returns (the wires before it are written first).
    fn burst(&mut self, first: Outbound, rx: &mut Queue, wires: &mut Vec<Wire>) -> Option<End> {
        let mut message = first;
        let mut taken = 1;
        loop {
            // Given back one by one, before `delivery`: a QoS 1 message
            // then counts in flight, and must not count in the queue too
            // when `delivery` checks the budget (so no `Taken` here).
            self.conn.written(message.cost());
            match self.delivery(message) {
                Ok(Some(wire)) => wires.push(wire),
                Ok(None) => {}
                Err(end) => return Some(end),
            }
            if taken == BURST {
                return None;
            }
            match rx.try_recv() {
                Some(next) => message = next,
                None => return None,
            }
            taken += 1;
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
                self.acked(packet_id);
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

    /// Ends the connection: `disconnected` (unless taken over, which raised
    /// it already), the will when due, the DISCONNECT (5.0) and close.
    async fn end(self, mut sink: Sink, end: End, rx: Queue) {
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
}
