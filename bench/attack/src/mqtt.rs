//! MQTT 3.1.1 and 5.0 packets written and read by hand (the encodings of
//! `emulator/tests/mqtt.rs`), and an MQTT client over a WebSocket to
//! `/clients/mqtt/hubs/<hub>` (subprotocol `mqtt`) that reports what the
//! emulator did instead of failing: a refused upgrade, a closed socket, a
//! timeout.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::target::{refusal, Target, Ws, MQTT_PROTOCOL};

/// MQTT 3.1.1 (`protocolVersion` 4).
pub const V4: u8 = 4;
/// MQTT 5.0.
pub const V5: u8 = 5;

/// Packet types (the high nibble of the first byte).
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBACK: u8 = 9;
pub const DISCONNECT: u8 = 14;

pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-prefixed string (at most 65,535 bytes).
pub fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len().min(0xFFFF) as u16).to_be_bytes());
    out.extend_from_slice(&s[..s.len().min(0xFFFF)]);
}

pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// 5.0 property bytes: one user property.
pub fn user_property(name: &str, value: &str, out: &mut Vec<u8>) {
    out.push(0x26);
    string(name.as_bytes(), out);
    string(value.as_bytes(), out);
}

/// 5.0 property bytes: Session Expiry Interval.
pub fn session_expiry(seconds: u32) -> Vec<u8> {
    let mut p = vec![0x11];
    p.extend_from_slice(&seconds.to_be_bytes());
    p
}

/// Property bytes with their length in front.
fn properties(raw: &[u8], out: &mut Vec<u8>) {
    varint(raw.len(), out);
    out.extend_from_slice(raw);
}

/// What a CONNECT says.
#[derive(Debug, Clone)]
pub struct Connect<'a> {
    pub version: u8,
    pub client_id: &'a str,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean: bool,
    pub keep_alive: u16,
    /// 5.0 property bytes (without their length).
    pub properties: Vec<u8>,
}

impl<'a> Connect<'a> {
    pub fn new(version: u8, client_id: &'a str) -> Self {
        Self {
            version,
            client_id,
            clean: true,
            keep_alive: 600,
            properties: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.properties.len() + 64);
        string(b"MQTT", &mut b);
        b.push(self.version);
        b.push(if self.clean { 0x02 } else { 0 });
        b.extend_from_slice(&self.keep_alive.to_be_bytes());
        if self.version == V5 {
            properties(&self.properties, &mut b);
        }
        string(self.client_id.as_bytes(), &mut b);
        packet(0x10, &b)
    }
}

/// A PUBLISH; `properties` are 5.0 property bytes (ignored for 3.1.1).
pub fn publish(
    version: u8,
    topic: &str,
    qos: u8,
    id: u16,
    props: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(topic.len() + props.len() + payload.len() + 16);
    string(topic.as_bytes(), &mut b);
    if qos > 0 {
        b.extend_from_slice(&id.to_be_bytes());
    }
    if version == V5 {
        properties(props, &mut b);
    }
    b.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &b)
}

/// A SUBSCRIBE of `filters` (topic, QoS).
pub fn subscribe<S: AsRef<str>>(version: u8, id: u16, filters: &[(S, u8)]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if version == V5 {
        b.push(0);
    }
    for (topic, qos) in filters {
        string(topic.as_ref().as_bytes(), &mut b);
        b.push(*qos);
    }
    packet(0x82, &b)
}

pub fn puback(id: u16) -> Vec<u8> {
    packet(0x40, &id.to_be_bytes())
}

/// A packet from the emulator: type (high nibble), flags, body.
#[derive(Debug)]
pub struct In {
    pub kind: u8,
    pub flags: u8,
    pub body: Vec<u8>,
}

impl In {
    /// CONNACK: the Session Present flag.
    pub fn session_present(&self) -> bool {
        self.kind == CONNACK && self.body.first().is_some_and(|b| b & 1 == 1)
    }

    /// CONNACK: the return / reason code.
    pub fn connack_code(&self) -> Option<u8> {
        (self.kind == CONNACK).then(|| self.body.get(1).copied())?
    }

    /// The reason code of a 5.0 PUBACK (0 when left out) or DISCONNECT.
    pub fn reason_code(&self) -> u8 {
        match self.kind {
            PUBACK => self.body.get(2).copied().unwrap_or(0),
            _ => self.body.first().copied().unwrap_or(0),
        }
    }

    /// SUBACK: the codes (3.1.1 layout; 5.0 after its properties).
    pub fn suback_codes(&self, version: u8) -> Vec<u8> {
        let mut rest = self.body.get(2..).unwrap_or_default();
        if version == V5 {
            let (len, used) = read_varint(rest);
            rest = rest.get(used + len..).unwrap_or_default();
        }
        rest.to_vec()
    }

    /// PUBLISH: QoS and packet id (0 for QoS 0).
    pub fn publish_id(&self) -> (u8, u16) {
        let qos = (self.flags >> 1) & 3;
        let topic_len = self
            .body
            .get(..2)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        let id = if qos > 0 {
            self.body
                .get(2 + topic_len..4 + topic_len)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
        } else {
            0
        };
        (qos, id)
    }
}

/// A variable byte integer: its value and how many bytes it took.
fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0;
    for (i, b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    (value, bytes.len().min(4))
}

/// How a read error ended the socket, in a few words.
fn ended_by(error: &WsError) -> String {
    match error {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "reset without a close frame".to_owned()
        }
        WsError::Io(e) => format!("{:?}", e.kind()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".to_owned(),
        other => crate::target::short(&other.to_string()),
    }
}

/// What reading the next packet gave.
#[derive(Debug)]
pub enum Next {
    Packet(In),
    /// The socket ended: how (a close frame's code, a reset, the end).
    Closed(String),
    Timeout,
}

/// An MQTT client over a WebSocket.
pub struct Client {
    ws: Ws,
    buf: Vec<u8>,
    /// How the socket ended, once it has.
    pub closed: Option<String>,
}

impl Client {
    /// Opens the WebSocket (refused: the status or error, in a word).
    pub async fn open(target: &Target, token: &str) -> Result<Self, String> {
        let path = target.mqtt_path();
        let ws = refusal(
            timeout(
                Duration::from_secs(10),
                target.connect_at(&path, token, MQTT_PROTOCOL),
            )
            .await,
        )?;
        Ok(Self {
            ws,
            buf: Vec::new(),
            closed: None,
        })
    }

    /// Opens and sends CONNECT; the client and what answered it (a CONNACK,
    /// or why none came).
    pub async fn connect(
        target: &Target,
        token: &str,
        c: &Connect<'_>,
    ) -> Result<(Self, In), String> {
        let mut client = Self::open(target, token).await?;
        client.send(&c.encode()).await?;
        match client.next(Duration::from_secs(10)).await {
            Next::Packet(p) if p.kind == CONNACK => Ok((client, p)),
            Next::Packet(p) => Err(format!("packet type {} instead of CONNACK", p.kind)),
            Next::Closed(how) => Err(format!("closed before CONNACK ({how})")),
            Next::Timeout => Err("no CONNACK within 10 s".to_owned()),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match timeout(
            Duration::from_secs(30),
            self.ws.send(Message::Binary(bytes.to_vec().into())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(crate::target::short(&e.to_string())),
            Err(_) => Err("send timed out".to_owned()),
        }
    }

    /// The next packet, waiting at most `limit` for it.
    pub async fn next(&mut self, limit: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(p) = self.take() {
                return Next::Packet(p);
            }
            if let Some(how) = &self.closed {
                return Next::Closed(how.clone());
            }
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(frame) => frame,
                Err(_) => return Next::Timeout,
            };
            match frame {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame.map_or("close".to_owned(), |f| {
                        format!("close {}", u16::from(f.code))
                    }))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => self.closed = Some(ended_by(&e)),
                None => self.closed = Some("end of stream".to_owned()),
            }
        }
    }

    /// Takes one whole packet off the buffer.
    fn take(&mut self) -> Option<In> {
        let (len, used) = read_varint(self.buf.get(1..)?);
        let header = 1 + used;
        if used == 0 || self.buf.get(used).is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        if self.buf.len() < header + len {
            return None;
        }
        let first = self.buf[0];
        let body = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some(In {
            kind: first >> 4,
            flags: first & 0x0F,
            body,
        })
    }

    /// Closes the WebSocket (a close frame), within 2 s.
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
