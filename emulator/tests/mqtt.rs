//! MQTT 3.1.1 and 5.0 clients over WebSocket, end to end on 127.0.0.1:
//! CONNECT → `connect` → CONNACK per version and code, `connected` and
//! `disconnected` bodies, publish/subscribe between MQTT clients and with
//! JSON clients and REST, user events on `$webpubsub/server/events/…`,
//! refusals, malformed and oversized packets, keep-alive and take-over,
//! persistent sessions (resume, expiry, clean start, REST close).
//!
//! Test packets are written by hand (below), independently of the
//! emulator's codec.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::type_complexity,
    clippy::cast_possible_truncation
)]

#[path = "common/mod.rs"]
mod common;
#[path = "emulator_protocol/recording_upstream.rs"]
#[allow(dead_code)]
mod recording_upstream;

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::{ClientAccessOptions, ClientProtocol};

use common::emulator::{builder, next_json, open, send_json, start, Env, Ws, JSON, WAIT};
use recording_upstream::{default_reply, Reply, Req, Upstream};

// ---- hand-written MQTT ------------------------------------------------

fn varint(mut n: usize, out: &mut Vec<u8>) {
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

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// 5.0 properties: content type, correlation data, user properties.
fn props(content_type: Option<&str>, correlation: Option<&[u8]>, user: &[(&str, &str)]) -> Vec<u8> {
    let mut p = Vec::new();
    if let Some(c) = content_type {
        p.push(0x03);
        string(c.as_bytes(), &mut p);
    }
    if let Some(c) = correlation {
        p.push(0x09);
        string(c, &mut p);
    }
    for (n, v) in user {
        p.push(0x26);
        string(n.as_bytes(), &mut p);
        string(v.as_bytes(), &mut p);
    }
    let mut out = Vec::new();
    varint(p.len(), &mut out);
    out.extend(p);
    out
}

struct ConnectOptions<'a> {
    version: u8,
    id: &'a str,
    keep_alive: u16,
    user: Option<(&'a str, &'a [u8])>,
    properties: Vec<u8>,
}

fn connect_packet(o: &ConnectOptions<'_>) -> Vec<u8> {
    connect_packet_clean(o, true)
}

/// CONNECT with Clean Start (5.0) / Clean Session (3.1.1) set or not.
fn connect_packet_clean(o: &ConnectOptions<'_>, clean: bool) -> Vec<u8> {
    let mut b = Vec::new();
    string(b"MQTT", &mut b);
    b.push(o.version);
    let mut flags = if clean { 0x02 } else { 0 };
    if o.user.is_some() {
        flags |= 0xC0;
    }
    b.push(flags);
    b.extend_from_slice(&o.keep_alive.to_be_bytes());
    if o.version == 5 {
        if o.properties.is_empty() {
            b.push(0);
        } else {
            b.extend_from_slice(&o.properties);
        }
    }
    string(o.id.as_bytes(), &mut b);
    if let Some((user, password)) = o.user {
        string(user.as_bytes(), &mut b);
        string(password, &mut b);
    }
    packet(0x10, &b)
}

fn publish_packet(
    version: u8,
    topic: &str,
    qos: u8,
    id: u16,
    properties: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    string(topic.as_bytes(), &mut b);
    if qos > 0 {
        b.extend_from_slice(&id.to_be_bytes());
    }
    if version == 5 {
        if properties.is_empty() {
            b.push(0);
        } else {
            b.extend_from_slice(properties);
        }
    }
    b.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &b)
}

fn subscribe_packet(version: u8, id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if version == 5 {
        b.push(0);
    }
    for (topic, qos) in filters {
        string(topic.as_bytes(), &mut b);
        b.push(*qos);
    }
    packet(0x82, &b)
}

/// A packet from the emulator: type (high nibble), flags, body.
#[derive(Debug)]
struct In {
    kind: u8,
    flags: u8,
    body: Vec<u8>,
}

/// A PUBLISH as a test reads it.
#[derive(Debug, Default)]
struct Pub {
    topic: String,
    qos: u8,
    id: u16,
    content_type: Option<String>,
    correlation: Option<Vec<u8>>,
    user: Vec<(String, String)>,
    payload: Vec<u8>,
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.0[0];
        self.0 = &self.0[1..];
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let out = self.0[..n].to_vec();
        self.0 = &self.0[n..];
        out
    }
    fn string(&mut self) -> String {
        let n = self.u16() as usize;
        String::from_utf8(self.bytes(n)).unwrap()
    }
    fn varint(&mut self) -> usize {
        let mut v = 0;
        for i in 0..4 {
            let b = self.u8();
            v |= usize::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        v
    }
    /// (content type, correlation, user properties, reason string)
    fn props(
        &mut self,
    ) -> (
        Option<String>,
        Option<Vec<u8>>,
        Vec<(String, String)>,
        Option<String>,
    ) {
        let len = self.varint();
        let mut c = Cursor(&self.0[..len]);
        self.0 = &self.0[len..];
        let mut out = (None, None, Vec::new(), None);
        while !c.0.is_empty() {
            match c.u8() {
                0x03 => out.0 = Some(c.string()),
                0x09 => {
                    let n = c.u16() as usize;
                    out.1 = Some(c.bytes(n));
                }
                0x26 => {
                    let n = c.string();
                    let v = c.string();
                    out.2.push((n, v));
                }
                0x1F => out.3 = Some(c.string()),
                0x12 => {
                    c.string();
                }
                0x24 | 0x25 | 0x28 | 0x29 | 0x2A | 0x01 => {
                    c.u8();
                }
                0x21 | 0x22 | 0x13 => {
                    c.u16();
                }
                0x27 | 0x02 => {
                    c.bytes(4);
                }
                other => panic!("unexpected property {other:#x}"),
            }
        }
        out
    }
}

impl In {
    fn publish(&self, version: u8) -> Pub {
        assert_eq!(self.kind, 3, "expected PUBLISH, got {self:?}");
        let qos = (self.flags >> 1) & 3;
        let mut c = Cursor(&self.body);
        let topic = c.string();
        let id = if qos > 0 { c.u16() } else { 0 };
        let mut p = Pub {
            topic,
            qos,
            id,
            ..Pub::default()
        };
        if version == 5 {
            let (ct, corr, user, _) = c.props();
            p.content_type = ct;
            p.correlation = corr;
            p.user = user;
        }
        p.payload = c.0.to_vec();
        p
    }

    /// CONNACK: code, reason string, user properties.
    /// The CONNACK's Session Present flag.
    fn session_present(&self) -> bool {
        assert_eq!(self.kind, 2, "expected CONNACK, got {self:?}");
        self.body[0] & 1 == 1
    }

    fn connack(&self, version: u8) -> (u8, Option<String>, Vec<(String, String)>) {
        assert_eq!(self.kind, 2, "expected CONNACK, got {self:?}");
        let mut c = Cursor(&self.body);
        let _present = c.u8();
        let code = c.u8();
        if version == 5 {
            let (_, _, user, reason) = c.props();
            return (code, reason, user);
        }
        (code, None, Vec::new())
    }

    /// SUBACK codes (or PUBACK/UNSUBACK v5 code).
    fn codes(&self, version: u8) -> Vec<u8> {
        let mut c = Cursor(&self.body);
        let _id = c.u16();
        if version == 5 && !c.0.is_empty() && self.kind != 4 {
            c.props();
        }
        c.0.to_vec()
    }
}

/// An MQTT client over a WebSocket.
struct Mqtt {
    ws: Ws,
    version: u8,
    buf: Vec<u8>,
}

impl Mqtt {
    async fn open(url: &str, version: u8) -> Self {
        let (ws, response) = open(url, &["mqtt"]).await.expect("the handshake succeeds");
        assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
        Self {
            ws,
            version,
            buf: Vec::new(),
        }
    }

    /// Opens, sends CONNECT and returns the client with its CONNACK.
    async fn connect(url: &str, o: &ConnectOptions<'_>) -> (Self, In) {
        let mut m = Self::open(url, o.version).await;
        m.send(&connect_packet(o)).await;
        let connack = m.next().await;
        (m, connack)
    }

    /// Like `connect`, Clean Start / Clean Session as given.
    async fn connect_clean(url: &str, o: &ConnectOptions<'_>, clean: bool) -> (Self, In) {
        let mut m = Self::open(url, o.version).await;
        m.send(&connect_packet_clean(o, clean)).await;
        let connack = m.next().await;
        (m, connack)
    }

    /// Connected with code 0, or panics.
    async fn connected(url: &str, version: u8, id: &str) -> Self {
        let (m, connack) = Self::connect(
            url,
            &ConnectOptions {
                version,
                id,
                keep_alive: 60,
                user: None,
                properties: Vec::new(),
            },
        )
        .await;
        assert_eq!(connack.connack(version).0, 0, "CONNECT of {id} accepted");
        m
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }

    /// The next packet, or `None` when the socket closed.
    async fn try_next(&mut self) -> Option<In> {
        loop {
            if self.buf.len() >= 2 {
                let mut c = Cursor(&self.buf[1..]);
                let before = c.0.len();
                let len = c.varint();
                let header = 1 + before - c.0.len();
                if self.buf.len() >= header + len {
                    let first = self.buf[0];
                    let body = self.buf[header..header + len].to_vec();
                    self.buf.drain(..header + len);
                    return Some(In {
                        kind: first >> 4,
                        flags: first & 0x0F,
                        body,
                    });
                }
            }
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait");
            match frame {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn next(&mut self) -> In {
        self.try_next().await.expect("a packet, not the end")
    }

    async fn subscribe(&mut self, id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
        let v = self.version;
        self.send(&subscribe_packet(v, id, filters)).await;
        let suback = self.next().await;
        assert_eq!(suback.kind, 9, "{suback:?}");
        suback.codes(v)
    }

    async fn publish(&mut self, topic: &str, qos: u8, id: u16, properties: &[u8], payload: &[u8]) {
        let v = self.version;
        self.send(&publish_packet(v, topic, qos, id, properties, payload))
            .await;
    }

    async fn next_publish(&mut self) -> Pub {
        let v = self.version;
        loop {
            let p = self.next().await;
            if p.kind == 3 {
                let publish = p.publish(v);
                if publish.qos == 1 {
                    self.send(&packet(0x40, &publish.id.to_be_bytes())).await;
                }
                return publish;
            }
        }
    }

    /// Reads until the socket ends; the DISCONNECT seen on the way, if any.
    async fn end(&mut self) -> Option<In> {
        let mut disconnect = None;
        while let Some(p) = self.try_next().await {
            if p.kind == 14 {
                disconnect = Some(p);
            }
        }
        disconnect
    }
}

/// The reason code of a 5.0 DISCONNECT.
fn disconnect_code(p: &In) -> u8 {
    assert_eq!(p.kind, 14, "{p:?}");
    p.body[0]
}

// ---- set-up ------------------------------------------------------------

async fn env_with(upstream: &Upstream) -> Env {
    let hub = webpubsub_emulator::HubSettings::new("chat").event_handler(upstream.handler());
    start(builder("mqtt-key").hub(hub), "chat").await
}

fn mqtt_url(env: &Env, roles: &[&str]) -> String {
    let options = ClientAccessOptions::new()
        .protocol(ClientProtocol::Mqtt)
        .roles(roles.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
    env.url(&options)
}

/// A client URL for user `user` with `roles`: sessions belong to a user,
/// so only a CONNECT of the same user resumes or takes one over.
fn mqtt_url_as(env: &Env, roles: &[&str], user: &str) -> String {
    let options = ClientAccessOptions::new()
        .protocol(ClientProtocol::Mqtt)
        .user_id(user)
        .roles(roles.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
    env.url(&options)
}

const ALL: &[&str] = &["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];

// ---- tests -------------------------------------------------------------

#[tokio::test]
async fn connect_raises_the_connect_event_with_the_mqtt_object_and_connack_carries_its_user_properties(
) {
    let upstream = Upstream::with(|req: &Req| {
        if req.event() == "connect" {
            return Reply::status(200).json(json!({
                "userId": "ada",
                "mqtt": {"userProperties": [{"name": "welcome", "value": "yes"}]}
            }));
        }
        default_reply(req)
    })
    .await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, ALL);
    assert!(
        url.contains("/clients/mqtt/hubs/chat?access_token="),
        "{url}"
    );
    let (mut m, connack) = Mqtt::connect(
        &url,
        &ConnectOptions {
            version: 5,
            id: "device1",
            keep_alive: 60,
            user: Some(("ada", b"\x00\xffpw")),
            properties: props(None, None, &[("model", "x1")]),
        },
    )
    .await;
    let (code, _, user) = connack.connack(5);
    assert_eq!(code, 0);
    assert_eq!(user, [("welcome".to_owned(), "yes".to_owned())]);

    let connect = upstream.wait_event("device1", "connect").await;
    assert_eq!(connect.header("ce-subprotocol"), Some("mqtt"));
    let physical = connect
        .header("ce-physicalConnectionId")
        .unwrap()
        .to_owned();
    assert_eq!(
        connect.header("ce-source").unwrap(),
        format!("/hubs/chat/client/device1/{physical}")
    );
    assert!(connect.header("ce-sessionId").is_none());
    let body = connect.json();
    assert_eq!(
        body["mqtt"],
        json!({
            "protocolVersion": 5,
            "cleanStart": true,
            "username": "ada",
            "password": base64::engine::general_purpose::STANDARD.encode(b"\x00\xffpw"),
            "userProperties": [{"name": "model", "value": "x1"}],
        })
    );
    assert_eq!(body["subprotocols"], json!(["mqtt"]));

    let connected = upstream.wait_event("device1", "connected").await;
    assert_eq!(connected.header("ce-userId"), Some("ada"));
    assert!(connected.header("ce-sessionId").is_some());
    assert_eq!(
        connected.header("ce-physicalConnectionId"),
        Some(physical.as_str())
    );

    // A client DISCONNECT with a reason code and user properties.
    let mut d = vec![0x00];
    d.extend(props(None, None, &[("bye", "now")]));
    m.send(&packet(0xE0, &d)).await;
    assert!(
        m.end().await.is_none(),
        "the service sends no DISCONNECT back"
    );
    let disconnected = upstream.wait_event("device1", "disconnected").await;
    assert_eq!(
        disconnected.json(),
        json!({"reason": null, "mqtt": {"initiatedByClient": true,
            "disconnectPacket": {"code": 0, "userProperties": [{"name": "bye", "value": "now"}]}}})
    );
}

#[tokio::test]
async fn a_refused_connect_becomes_the_connack_code_of_each_version() {
    // (version, status, body, expected code)
    let rows: &[(u8, u16, Value, u8)] = &[
        (4, 401, json!({"mqtt": {"code": 4}}), 4),
        (
            5,
            403,
            json!({"mqtt": {"code": 138, "reason": "banned"}}),
            138,
        ),
        (5, 400, json!({"mqtt": {"code": 3}}), 0x80),
        (4, 400, json!({"mqtt": {"code": 138}}), 3),
        (4, 401, Value::Null, 5),
        (5, 403, Value::Null, 0x87),
        (5, 500, Value::Null, 0x88),
        (4, 500, Value::Null, 3),
        (5, 500, json!({"mqtt": {"code": 137}}), 137),
    ];
    for (i, (version, status, body, expected)) in rows.iter().enumerate() {
        let (status, body) = (*status, body.clone());
        let upstream = Upstream::with(move |req: &Req| {
            if req.event() == "connect" {
                let reply = Reply::status(status);
                return if body.is_null() {
                    reply
                } else {
                    reply.json(body.clone())
                };
            }
            default_reply(req)
        })
        .await;
        let env = env_with(&upstream).await;
        let id = format!("refused{i}");
        let (mut m, connack) = Mqtt::connect(
            &mqtt_url(&env, &[]),
            &ConnectOptions {
                version: *version,
                id: &id,
                keep_alive: 60,
                user: None,
                properties: Vec::new(),
            },
        )
        .await;
        let (code, reason, _) = connack.connack(*version);
        assert_eq!(code, *expected, "row {i}");
        if *expected == 138 {
            assert_eq!(reason.as_deref(), Some("banned"));
        }
        assert!(m.end().await.is_none(), "row {i}: closed after CONNACK");
        assert_eq!(upstream.count(&id, "connected"), 0);
    }
}

#[tokio::test]
async fn unsupported_versions_and_invalid_client_ids_are_refused() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, &[]);
    // MQTT 3.1 (level 3, "MQIsdp").
    let mut m = Mqtt::open(&url, 4).await;
    let mut b = Vec::new();
    string(b"MQIsdp", &mut b);
    b.extend_from_slice(&[3, 2, 0, 60]);
    string(b"old", &mut b);
    m.send(&packet(0x10, &b)).await;
    assert_eq!(m.next().await.connack(4).0, 1);
    // Client ids are alphanumeric.
    for (version, code) in [(4, 2), (5, 0x85)] {
        let (_, connack) = Mqtt::connect(
            &url,
            &ConnectOptions {
                version,
                id: "not-valid",
                keep_alive: 60,
                user: None,
                properties: Vec::new(),
            },
        )
        .await;
        assert_eq!(connack.connack(version).0, code);
    }
    assert_eq!(upstream.count("not-valid", "connect"), 0);
}

#[tokio::test]
async fn subscribers_get_qos_0_and_1_publishes_from_other_mqtt_clients_of_both_versions() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, ALL);
    let mut sub5 = Mqtt::connected(&url, 5, "sub5").await;
    let mut sub4 = Mqtt::connected(&url, 4, "sub4").await;
    let mut publisher = Mqtt::connected(&url, 5, "pub5").await;
    assert_eq!(sub5.subscribe(1, &[("room", 1)]).await, [1]);
    assert_eq!(sub4.subscribe(1, &[("room", 0)]).await, [0]);

    publisher
        .publish(
            "room",
            1,
            7,
            &props(Some("text/plain"), None, &[]),
            b"hello",
        )
        .await;
    let puback = publisher.next().await;
    assert_eq!((puback.kind, &puback.body[..2]), (4, &[0, 7][..]));

    let got = sub5.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), got.qos, &got.payload[..]),
        ("room", 1, &b"hello"[..])
    );
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    let got = sub4.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), got.qos, &got.payload[..]),
        ("room", 0, &b"hello"[..])
    );

    // QoS 0 from a 3.1.1 client; binary payload (no content type).
    sub4.publish("room", 0, 0, &[], b"\x01\x02").await;
    let got = sub5.next_publish().await;
    assert_eq!(
        (&got.payload[..], got.content_type),
        (&b"\x01\x02"[..], None)
    );

    // QoS 2 is acknowledged with PUBREC/PUBCOMP and delivered once.
    publisher.publish("room", 2, 9, &[], b"twice?").await;
    let pubrec = publisher.next().await;
    assert_eq!(pubrec.kind, 5);
    publisher.publish("room", 2, 9, &[], b"twice?").await;
    assert_eq!(publisher.next().await.kind, 5);
    publisher.send(&packet(0x62, &[0, 9])).await;
    assert_eq!(publisher.next().await.kind, 7, "PUBCOMP");
    assert_eq!(sub5.next_publish().await.payload, b"twice?");

    // UNSUBSCRIBE leaves the group.
    sub5.send(&packet(0xA2, &[0, 2, 0, 0, 4, b'r', b'o', b'o', b'm']))
        .await;
    let unsuback = sub5.next().await;
    assert_eq!((unsuback.kind, unsuback.codes(5)), (11, vec![0]));
    publisher.publish("room", 0, 0, &[], b"after").await;
    // The next thing sub5 sees is a PINGRESP, not the message.
    sub5.send(&packet(0xC0, &[])).await;
    assert_eq!(sub5.next().await.kind, 13);
    // sub4 hears its own message too (no No Local).
    assert_eq!(sub4.next_publish().await.payload, b"\x01\x02");
    assert_eq!(sub4.next_publish().await.payload, b"twice?");
    assert_eq!(sub4.next_publish().await.payload, b"after");
}

#[tokio::test]
async fn mqtt_and_json_clients_share_groups() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let mut m = Mqtt::connected(&mqtt_url(&env, ALL), 5, "bridge").await;
    assert_eq!(m.subscribe(1, &[("mixed", 1)]).await, [1]);
    let options = ClientAccessOptions::new()
        .roles(ALL.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>())
        .groups(["mixed".to_owned()]);
    let mut json_client = env.client(options, JSON).await;

    // JSON → MQTT: payload bytes, content type from the data type.
    send_json(
        &mut json_client.ws,
        json!({"type": "sendToGroup", "group": "mixed", "dataType": "json", "data": {"a": 1}, "noEcho": true}),
    )
    .await;
    let got = m.next_publish().await;
    assert_eq!(
        (got.payload, got.content_type.as_deref()),
        (br#"{"a":1}"#.to_vec(), Some("application/json"))
    );

    // MQTT → JSON: binary unless the content type says text or JSON.
    m.publish("mixed", 0, 0, &[], b"raw").await;
    let message = next_until_message(&mut json_client.ws).await;
    assert_eq!(message["dataType"], "binary");
    assert_eq!(
        message["data"],
        base64::engine::general_purpose::STANDARD.encode(b"raw")
    );
    m.publish(
        "mixed",
        0,
        0,
        &props(Some("text/plain"), None, &[]),
        b"words",
    )
    .await;
    let message = next_until_message(&mut json_client.ws).await;
    assert_eq!(
        (message["dataType"].as_str(), message["data"].as_str()),
        (Some("text"), Some("words"))
    );
}

async fn next_until_message(ws: &mut Ws) -> Value {
    loop {
        let frame = next_json(ws, WAIT).await;
        if frame["type"] == "message" {
            return frame;
        }
    }
}

#[tokio::test]
async fn rest_messages_reach_mqtt_clients_on_the_group_topic_or_the_server_topic() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let mut m = Mqtt::connected(&mqtt_url(&env, ALL), 4, "listener").await;
    // A 3.1.1 CONNECT has no user properties: `null` (mqtt.md §4.1).
    let connect = upstream.wait_event("listener", "connect").await.json();
    assert_eq!(connect["mqtt"]["protocolVersion"], 4);
    assert_eq!(connect["mqtt"]["userProperties"], Value::Null, "{connect}");
    assert!(connect["mqtt"]["cleanStart"].is_boolean(), "{connect}");
    assert_eq!(m.subscribe(1, &[("news", 1)]).await, [1]);
    env.service.send_to_group("news", "headline").await.unwrap();
    let got = m.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), got.qos, &got.payload[..]),
        ("news", 1, &b"headline"[..])
    );
    env.service.send_to_all("everyone").await.unwrap();
    let got = m.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("$webpubsub/server/messages", &b"everyone"[..])
    );
    // REST group membership counts as a subscription.
    env.service
        .add_connection_to_group("extra", "listener")
        .await
        .unwrap();
    env.service.send_to_group("extra", "added").await.unwrap();
    assert_eq!(m.next_publish().await.topic, "extra");
    assert!(env.exists("listener").await);
}

#[tokio::test]
async fn user_events_answer_on_the_succeeded_or_failed_topic() {
    let upstream = Upstream::with(|req: &Req| {
        if req.event() == "echo" {
            return Reply::status(200)
                .header("mqtt-answered", "by-echo")
                .body("text/plain", req.body.clone());
        }
        default_reply(req)
    })
    .await;
    let env = env_with(&upstream).await;
    // No role is needed for events.
    let mut m = Mqtt::connected(&mqtt_url(&env, &[]), 5, "asker").await;
    m.publish(
        "$webpubsub/server/events/echo",
        1,
        3,
        &props(Some("text/plain"), Some(b"corr"), &[("a", "1")]),
        b"ping",
    )
    .await;
    assert_eq!(m.next().await.kind, 4, "PUBACK first");
    let answer = m.next_publish().await;
    assert_eq!(answer.topic, "$webpubsub/server/events/echo/succeeded");
    assert_eq!(answer.payload, b"ping");
    assert_eq!(answer.correlation.as_deref(), Some(&b"corr"[..]));
    assert!(answer
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        answer
            .user
            .contains(&("answered".to_owned(), "by-echo".to_owned())),
        "{:?}",
        answer.user
    );
    assert!(answer
        .user
        .contains(&("azure-status-code".to_owned(), "200".to_owned())));
    let req = upstream.wait_event("asker", "echo").await;
    assert_eq!(req.header("ce-type"), Some("azure.webpubsub.user.echo"));
    assert_eq!(req.header("mqtt-a"), Some("1"));
    assert_eq!(req.header("content-type"), Some("text/plain"));
    assert!(req.header("ce-sessionId").is_some());

    m.publish("$webpubsub/server/events/refuse", 0, 0, &[], b"x")
        .await;
    let answer = m.next_publish().await;
    assert_eq!(answer.topic, "$webpubsub/server/events/refuse/failed");
    assert!(answer
        .user
        .contains(&("azure-status-code".to_owned(), "400".to_owned())));
}

#[tokio::test]
async fn publishing_or_subscribing_without_permission_is_refused() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, &[]);
    let mut m5 = Mqtt::connected(&url, 5, "nobody5").await;
    let mut m4 = Mqtt::connected(&url, 4, "nobody4").await;
    assert_eq!(m5.subscribe(1, &[("g", 1)]).await, [0x87]);
    assert_eq!(m4.subscribe(1, &[("g", 1)]).await, [0x80]);
    m5.publish("g", 1, 5, &[], b"x").await;
    let puback = m5.next().await;
    assert_eq!((puback.kind, puback.body.get(2).copied()), (4, Some(0x87)));
    m4.publish("g", 1, 5, &[], b"x").await;
    assert_eq!(
        m4.next().await.body,
        [0, 5],
        "3.1.1: dropped, still acknowledged"
    );
    assert!(!env.service.group_exists("g").await.unwrap());
}

#[tokio::test]
async fn wildcard_and_shared_subscriptions_are_refused() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, ALL);
    let mut m5 = Mqtt::connected(&url, 5, "wild5").await;
    let mut m4 = Mqtt::connected(&url, 4, "wild4").await;
    let filters = [("a/+", 1), ("#", 0), ("$share/x/a", 1), ("ok", 1)];
    assert_eq!(m5.subscribe(1, &filters).await, [0xA2, 0xA2, 0x9E, 1]);
    assert_eq!(m4.subscribe(1, &filters).await, [0x80, 0x80, 0x80, 1]);
}

#[tokio::test]
async fn malformed_and_oversized_packets_end_the_connection() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url(&env, ALL);
    // A PUBLISH with QoS 3.
    let mut m = Mqtt::connected(&url, 5, "bad1").await;
    m.send(&[0x36, 3, 0, 1, b't']).await;
    assert_eq!(disconnect_code(&m.end().await.unwrap()), 0x81);
    let gone = upstream.wait_event("bad1", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["initiatedByClient"], false);
    assert_eq!(gone["mqtt"]["disconnectPacket"]["code"], 0x81);
    assert_eq!(
        gone["mqtt"]["disconnectPacket"]["userProperties"],
        Value::Null
    );
    // A packet announcing 2 MiB, sent in small frames.
    let mut m = Mqtt::connected(&url, 5, "bad2").await;
    let mut header = vec![0x30];
    varint(2 * 1024 * 1024, &mut header);
    m.send(&header).await;
    assert_eq!(disconnect_code(&m.end().await.unwrap()), 0x95);
    // 3.1.1: closed without DISCONNECT.
    let mut m = Mqtt::connected(&url, 4, "bad3").await;
    m.send(&[0xF0, 0]).await;
    assert!(m.end().await.is_none());
    let gone = upstream.wait_event("bad3", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["disconnectPacket"], Value::Null);
    // A packet split across frames, and two packets in one frame, are fine.
    let mut m = Mqtt::connected(&url, 4, "split").await;
    let ping = packet(0xC0, &[]);
    let sub = subscribe_packet(4, 1, &[("s", 0)]);
    m.send(&sub[..3]).await;
    let mut rest = sub[3..].to_vec();
    rest.extend_from_slice(&ping);
    m.send(&rest).await;
    assert_eq!(m.next().await.kind, 9);
    assert_eq!(m.next().await.kind, 13);
}

#[tokio::test]
async fn a_silent_client_is_disconnected_after_one_and_a_half_keep_alives() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let (mut m, connack) = Mqtt::connect(
        &mqtt_url(&env, &[]),
        &ConnectOptions {
            version: 5,
            id: "sleepy",
            keep_alive: 1,
            user: None,
            properties: Vec::new(),
        },
    )
    .await;
    assert_eq!(connack.connack(5).0, 0);
    assert_eq!(disconnect_code(&m.end().await.unwrap()), 0x8D);
    let gone = upstream.wait_event("sleepy", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["disconnectPacket"]["code"], 0x8D);
    assert_eq!(gone["reason"], "Keep-alive timeout.");
}

#[tokio::test]
async fn a_reused_client_id_takes_the_session_over() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let mut first = Mqtt::connected(&url, 5, "twin").await;
    assert_eq!(first.subscribe(1, &[("old", 0)]).await, [0]);
    let mut second = Mqtt::connected(&url, 5, "twin").await;
    assert_eq!(disconnect_code(&first.end().await.unwrap()), 0x8E);
    let gone = upstream.wait_event("twin", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["disconnectPacket"]["code"], 0x8E);
    // The new connection is the one registered, in no group of the old.
    assert!(env.exists("twin").await);
    assert!(!env.service.group_exists("old").await.unwrap());
    second.send(&packet(0xC0, &[])).await;
    assert_eq!(second.next().await.kind, 13);
    assert_eq!(upstream.count("twin", "connected"), 2);
}

#[tokio::test]
async fn generate_token_with_client_type_mqtt_connects() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let options = ClientAccessOptions::new()
        .protocol(ClientProtocol::Mqtt)
        .roles(vec!["webpubsub.joinLeaveGroup".to_owned()]);
    let token = env.service.generate_client_token(&options).await.unwrap();
    let url = format!(
        "ws://{}/clients/mqtt/hubs/chat?access_token={token}",
        env.emulator.local_addr()
    );
    let mut m = Mqtt::connected(&url, 4, "tokened").await;
    assert_eq!(m.subscribe(1, &[("t", 1)]).await, [1]);
    // A default-path token is not valid for the MQTT path.
    let default_url = env.url(&ClientAccessOptions::new());
    let query = default_url.split_once('?').unwrap().1;
    let wrong = format!(
        "ws://{}/clients/mqtt/hubs/chat?{query}",
        env.emulator.local_addr()
    );
    assert!(open(&wrong, &["mqtt"]).await.is_err());
    // And the MQTT endpoint wants subprotocol `mqtt`.
    assert!(open(&url, &[JSON]).await.is_err());
}

#[tokio::test]
async fn the_live_view_shows_mqtt_clients_with_their_version_and_topics() {
    let upstream = Upstream::start().await;
    let env = env_with(&upstream).await;
    let mut m = Mqtt::connected(&mqtt_url(&env, ALL), 5, "shown").await;
    assert_eq!(m.subscribe(1, &[("topic1", 1)]).await, [1]);
    let state = env.live_state_text("").await;
    assert!(state.contains("\"shown\""), "{state}");
    assert!(state.contains("mqtt 5.0"), "{state}");
    assert!(state.contains("topic1"), "{state}");
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A client that never reads: what the emulator sends it piles up until the
/// connection's queued bytes pass the budget, and then it is dropped, as
/// for the other protocols (memory stays bounded).
#[tokio::test]
async fn an_mqtt_client_that_never_reads_is_dropped_once_its_queue_passes_the_budget() {
    let upstream = Upstream::start().await;
    let hub = webpubsub_emulator::HubSettings::new("chat").event_handler(upstream.handler());
    let env = start(
        builder("mqtt-key").hub(hub).send_queue_bytes(512 * 1024),
        "chat",
    )
    .await;
    let (m, connack) = Mqtt::connect(
        &mqtt_url(&env, &[]),
        &ConnectOptions {
            version: 5,
            id: "neverreads",
            keep_alive: 600,
            user: None,
            properties: Vec::new(),
        },
    )
    .await;
    assert_eq!(connack.connack(5).0, 0);
    // From here on the client never reads.
    let payload = "x".repeat(128 * 1024);
    let mut sent = 0;
    while env.exists("neverreads").await {
        assert!(sent < 2000, "still connected after {sent} messages");
        for _ in 0..8 {
            env.service
                .send_to_connection("neverreads", payload.as_str())
                .await
                .unwrap();
            sent += 1;
        }
    }
    let gone = upstream
        .wait_event("neverreads", "disconnected")
        .await
        .json();
    assert_eq!(gone["mqtt"]["initiatedByClient"], false, "{gone}");
    drop(m);
}

// ---- persistent sessions ------------------------------------------------

async fn env_expiring(upstream: &Upstream, expiry: Duration) -> Env {
    let hub = webpubsub_emulator::HubSettings::new("chat").event_handler(upstream.handler());
    start(
        builder("mqtt-key").hub(hub).mqtt_session_expiry(expiry),
        "chat",
    )
    .await
}

fn options(version: u8, id: &str, properties: Vec<u8>) -> ConnectOptions<'_> {
    ConnectOptions {
        version,
        id,
        keep_alive: 60,
        user: None,
        properties,
    }
}

/// Waits (up to `WAIT`) until `connection` raised `event` `n` times.
async fn wait_count(upstream: &Upstream, connection: &str, event: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while upstream.count(connection, event) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{connection} raised {event} {n} times"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.count(connection, event), n);
}

/// 5.0 CONNECT properties: Session Expiry Interval `seconds`.
fn session_expiry(seconds: u32) -> Vec<u8> {
    let mut p = vec![5, 0x11];
    p.extend_from_slice(&seconds.to_be_bytes());
    p
}

#[tokio::test]
async fn a_persistent_session_resumes_with_its_subscriptions_and_the_messages_sent_while_detached()
{
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_secs(20)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let o = options(4, "keeper", Vec::new());
    let (mut m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(4).0, 0);
    assert!(!connack.session_present());
    assert_eq!(m.subscribe(1, &[("news", 1)]).await, [1]);
    upstream.wait_event("keeper", "connected").await;
    // The network connection drops (no DISCONNECT).
    drop(m);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env.exists("keeper").await, "a detached session exists");
    env.service
        .send_to_group("news", "while away")
        .await
        .unwrap();

    let (mut m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(4).0, 0);
    assert!(connack.session_present());
    let got = m.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("news", &b"while away"[..])
    );
    // The subscription is kept.
    env.service.send_to_group("news", "back").await.unwrap();
    assert_eq!(m.next_publish().await.payload, b"back");
    assert_eq!(upstream.count("keeper", "connect"), 2);
    assert_eq!(upstream.count("keeper", "connected"), 1);
    assert_eq!(upstream.count("keeper", "disconnected"), 0);

    // A clean-start-0 CONNECT while the session is online takes it over
    // and resumes it too.
    let (mut again, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(connack.session_present());
    assert!(m.end().await.is_none(), "3.1.1 gets no DISCONNECT");
    env.service.send_to_group("news", "third").await.unwrap();
    assert_eq!(again.next_publish().await.payload, b"third");
    assert_eq!(upstream.count("keeper", "connected"), 1);
    assert_eq!(upstream.count("keeper", "disconnected"), 0);
}

#[tokio::test]
async fn unacknowledged_qos_1_messages_are_sent_again_with_dup_on_resume() {
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_secs(20)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let o = options(5, "forgetful", session_expiry(60));
    let (mut m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(!connack.session_present());
    assert_eq!(m.subscribe(1, &[("news", 1)]).await, [1]);
    env.service.send_to_group("news", "unacked").await.unwrap();
    // Read it without PUBACK.
    let first = loop {
        let p = m.next().await;
        if p.kind == 3 {
            break p;
        }
    };
    assert_eq!(first.flags & 0x08, 0, "no DUP the first time");
    let id = first.publish(5).id;
    drop(m);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(connack.session_present());
    let again = loop {
        let p = m.next().await;
        if p.kind == 3 {
            break p;
        }
    };
    assert_eq!(again.flags & 0x08, 0x08, "DUP when sent again");
    let again = again.publish(5);
    assert_eq!((again.id, &again.payload[..]), (id, &b"unacked"[..]));
}

#[tokio::test]
async fn a_detached_session_expires_and_raises_disconnected_then() {
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_millis(1500)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let o = options(4, "leaver", Vec::new());
    let (mut m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(4).0, 0);
    upstream.wait_event("leaver", "connected").await;
    m.send(&packet(0xE0, &[])).await;
    assert!(m.end().await.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.exists("leaver").await, "kept until it expires");
    assert_eq!(upstream.count("leaver", "disconnected"), 0);
    let gone = upstream.wait_event("leaver", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["initiatedByClient"], true);
    assert_eq!(gone["mqtt"]["disconnectPacket"]["code"], 0);
    assert!(!env.exists("leaver").await);
    // Nothing to resume any more.
    let (_m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(!connack.session_present());
    wait_count(&upstream, "leaver", "connected", 2).await;
}

#[tokio::test]
async fn a_clean_start_discards_the_detached_session() {
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_secs(20)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let (mut m, connack) =
        Mqtt::connect_clean(&url, &options(5, "fresh", session_expiry(60)), false).await;
    assert!(!connack.session_present());
    assert_eq!(m.subscribe(1, &[("news", 1)]).await, [1]);
    upstream.wait_event("fresh", "connected").await;
    drop(m);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream.count("fresh", "disconnected"), 0);

    let (mut m, connack) =
        Mqtt::connect_clean(&url, &options(5, "fresh", session_expiry(60)), true).await;
    assert_eq!(connack.connack(5).0, 0);
    assert!(!connack.session_present());
    let gone = upstream.wait_event("fresh", "disconnected").await.json();
    assert_eq!(gone["mqtt"]["initiatedByClient"], false);
    assert_eq!(gone["mqtt"]["disconnectPacket"], Value::Null);
    assert!(!env.service.group_exists("news").await.unwrap());
    m.send(&packet(0xC0, &[])).await;
    assert_eq!(m.next().await.kind, 13);
    assert!(env.exists("fresh").await);
    wait_count(&upstream, "fresh", "connected", 2).await;
}

#[tokio::test]
async fn a_5_0_session_without_expiry_ends_with_its_connection() {
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_secs(20)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let o = options(5, "brief", Vec::new());
    let (m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(!connack.session_present());
    upstream.wait_event("brief", "connected").await;
    drop(m);
    let gone = upstream.wait_event("brief", "disconnected").await.json();
    assert_eq!(gone["reason"], "The connection was lost.");
    assert!(!env.exists("brief").await);
    let (_m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert!(!connack.session_present());
}

#[tokio::test]
async fn rest_close_ends_a_detached_session() {
    let upstream = Upstream::start().await;
    let env = env_expiring(&upstream, Duration::from_secs(20)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let o = options(4, "closed", Vec::new());
    let (m, _) = Mqtt::connect_clean(&url, &o, false).await;
    upstream.wait_event("closed", "connected").await;
    drop(m);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env.exists("closed").await);
    env.service
        .close_connection("closed")
        .reason("bye")
        .await
        .unwrap();
    let gone = upstream.wait_event("closed", "disconnected").await.json();
    assert_eq!(gone["reason"], "bye");
    assert!(!env.exists("closed").await);
}

// ---- issue 21: whose session, and what a connection may hold -------------

/// An emulator whose hub `chat` sends events to `upstream`, as `extra` sets it.
async fn env_built(
    upstream: &Upstream,
    extra: impl FnOnce(webpubsub_emulator::EmulatorBuilder) -> webpubsub_emulator::EmulatorBuilder,
) -> Env {
    let hub = webpubsub_emulator::HubSettings::new("chat").event_handler(upstream.handler());
    start(
        extra(
            builder("mqtt-key")
                .hub(hub)
                .mqtt_session_expiry(Duration::from_secs(20)),
        ),
        "chat",
    )
    .await
}

#[tokio::test]
async fn another_user_neither_resumes_nor_takes_over_a_session() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b).await;
    let victim_url = mqtt_url_as(&env, ALL, "victim");
    let o = options(4, "device42", Vec::new());
    let (mut victim, connack) = Mqtt::connect_clean(&victim_url, &o, false).await;
    assert_eq!(connack.connack(4).0, 0);
    assert_eq!(victim.subscribe(1, &[("news", 1)]).await, [1]);
    upstream.wait_event("device42", "connected").await;

    // Online: a CONNECT of another user with its client id is refused
    // (3.1.1: identifier rejected), and the victim keeps its connection.
    let attacker_url = mqtt_url_as(&env, &[], "mallory");
    for clean in [false, true] {
        let (mut attacker, connack) = Mqtt::connect_clean(&attacker_url, &o, clean).await;
        assert_eq!(connack.connack(4).0, 2, "clean start {clean}");
        assert!(!connack.session_present());
        assert!(attacker.end().await.is_none());
    }
    victim.send(&packet(0xC0, &[])).await;
    assert_eq!(victim.next().await.kind, 13, "the victim is still served");

    // Detached: the attacker gets neither the session nor its messages.
    drop(victim);
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.service
        .send_to_group("news", "for the victim")
        .await
        .unwrap();
    let v5 = options(5, "device42", session_expiry(60));
    let (mut attacker, connack) = Mqtt::connect_clean(&attacker_url, &v5, false).await;
    let (code, reason, _) = connack.connack(5);
    assert_eq!(code, 0x85, "5.0: client identifier not valid");
    assert_eq!(
        reason.as_deref(),
        Some("The client id is in use by a session of another user.")
    );
    assert!(!connack.session_present());
    assert!(attacker.end().await.is_none(), "no PUBLISH, just the end");
    // The upstream heard the attacker's connect, never a connected.
    assert_eq!(upstream.count("device42", "connect"), 3 + 1);
    assert_eq!(upstream.count("device42", "connected"), 1);
    assert_eq!(upstream.count("device42", "disconnected"), 0);

    // The owner resumes it, with the message kept for it.
    let (mut victim, connack) = Mqtt::connect_clean(&victim_url, &o, false).await;
    assert_eq!(connack.connack(4).0, 0);
    assert!(connack.session_present());
    assert_eq!(victim.next_publish().await.payload, b"for the victim");
}

#[tokio::test]
async fn a_session_without_a_user_is_nobodys_to_take_over_and_is_not_kept() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b).await;
    let url = mqtt_url(&env, ALL);
    let o = options(5, "anon7", session_expiry(60));
    let (mut first, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(5).0, 0);
    upstream.wait_event("anon7", "connected").await;
    // Refused before the upstream hears of it.
    let (mut second, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(5).0, 0x85);
    assert!(second.end().await.is_none());
    assert_eq!(upstream.count("anon7", "connect"), 1);
    first.send(&packet(0xC0, &[])).await;
    assert_eq!(first.next().await.kind, 13);
    // Nobody could resume it, so it ends with its connection.
    drop(first);
    let gone = upstream.wait_event("anon7", "disconnected").await.json();
    assert_eq!(gone["reason"], "The connection was lost.");
    assert!(!env.exists("anon7").await);
    assert_eq!(env.emulator.__detached_connections(), 0);
    let (_m, connack) = Mqtt::connect_clean(&url, &o, false).await;
    assert_eq!(connack.connack(5).0, 0);
    assert!(!connack.session_present());
}

/// 5.0 user properties `n` times (names distinct, values empty).
fn many_user_properties(n: usize) -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..n {
        p.push(0x26);
        string(i.to_string().as_bytes(), &mut p);
        string(b"", &mut p);
    }
    let mut out = Vec::new();
    varint(p.len(), &mut out);
    out.extend(p);
    out
}

#[tokio::test]
async fn too_many_user_properties_end_the_connection_cleanly_not_a_panic() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    // Up to 128 are read, and each reaches the upstream as a header…
    let mut m = Mqtt::connected(&url, 5, "props").await;
    m.publish(
        "$webpubsub/server/events/e",
        1,
        1,
        &many_user_properties(64),
        b"x",
    )
    .await;
    let event = upstream.wait_event("props", "e").await;
    assert_eq!(event.header("mqtt-63"), Some(""));
    // …33,000 (past a header map's capacity, which used to panic) end the
    // connection with DISCONNECT 0x97 and `disconnected`, leaving no ghost.
    for round in 0..3 {
        let id = format!("props{round}");
        let mut m = Mqtt::connected(&url, 5, &id).await;
        m.publish(
            "$webpubsub/server/events/e",
            1,
            1,
            &many_user_properties(33_000),
            b"x",
        )
        .await;
        assert_eq!(disconnect_code(&m.end().await.unwrap()), 0x97);
        let gone = upstream.wait_event(&id, "disconnected").await.json();
        assert_eq!(
            gone["reason"],
            "more than 128 user properties in one packet"
        );
        assert!(!env.exists(&id).await);
    }
    // A CONNECT with too many gets CONNACK 0x97 and no connect event.
    let o = options(5, "heavy", many_user_properties(129));
    let (mut m, connack) = Mqtt::connect(&url, &o).await;
    assert_eq!(connack.connack(5).0, 0x97);
    assert!(m.end().await.is_none());
    assert_eq!(upstream.count("heavy", "connect"), 0);
}

#[tokio::test]
async fn server_topic_subscriptions_count_against_the_group_cap() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b.max_groups_per_connection(3)).await;
    // No role needed for `$webpubsub/server/…`, but no more than the cap.
    let url = mqtt_url_as(&env, &[], "ada");
    let mut m = Mqtt::connected(&url, 5, "subs").await;
    let long = format!("$webpubsub/server/{}", "x".repeat(1024));
    let codes = m
        .subscribe(
            1,
            &[
                ("$webpubsub/server/a", 1),
                ("$webpubsub/server/b", 1),
                ("$webpubsub/server/a", 1),
                (&long, 1),
                ("$webpubsub/server/c", 1),
                ("$webpubsub/server/d", 1),
            ],
        )
        .await;
    assert_eq!(codes, [1, 1, 1, 0x8F, 1, 0x97]);
    let mut m4 = Mqtt::connected(&url, 4, "subs4").await;
    let codes = m4
        .subscribe(
            1,
            &[
                ("$webpubsub/server/a", 0),
                ("$webpubsub/server/b", 0),
                ("$webpubsub/server/c", 0),
                ("$webpubsub/server/d", 0),
            ],
        )
        .await;
    assert_eq!(codes, [0, 0, 0, 0x80]);
}

#[tokio::test]
async fn unacknowledged_qos_1_messages_count_against_the_connection_budget() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b.send_queue_bytes(64 * 1024)).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let mut m = Mqtt::connected(&url, 5, "hoarder").await;
    assert_eq!(m.subscribe(1, &[("big", 1)]).await, [1]);
    // Read every PUBLISH, acknowledge none: 8 of 16 KiB fill 64 KiB.
    let chunk = "y".repeat(16 * 1024);
    let mut received = 0;
    for _ in 0..8 {
        env.service
            .send_to_group("big", chunk.as_str())
            .await
            .unwrap();
    }
    let disconnect = loop {
        let Some(p) = m.try_next().await else {
            panic!("ended without DISCONNECT after {received} PUBLISH");
        };
        match p.kind {
            3 => received += 1,
            14 => break p,
            _ => {}
        }
    };
    assert_eq!(disconnect_code(&disconnect), 0x97);
    assert!(received < 4 + 1, "cut off at its budget, got {received}");
    // Whichever fills the budget first: a message held for its PUBACK, or
    // one queued behind them.
    let gone = upstream.wait_event("hoarder", "disconnected").await.json();
    assert!(
        [
            "The client does not acknowledge its messages (PUBACK).",
            "The client is too slow to receive messages."
        ]
        .contains(&gone["reason"].as_str().unwrap()),
        "{gone}"
    );
    // One that acknowledges gets them all.
    let mut m = Mqtt::connected(&url, 5, "polite").await;
    assert_eq!(m.subscribe(1, &[("big", 1)]).await, [1]);
    for _ in 0..8 {
        env.service
            .send_to_group("big", chunk.as_str())
            .await
            .unwrap();
        assert_eq!(m.next_publish().await.payload.len(), chunk.len());
    }
}

#[tokio::test]
async fn detached_sessions_are_capped_in_number_and_in_bytes() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| {
        b.max_detached_connections(1).detached_bytes(4 * 1024)
    })
    .await;
    let o1 = options(4, "kept1", Vec::new());
    let o2 = options(4, "kept2", Vec::new());
    let url1 = mqtt_url_as(&env, ALL, "one");
    let url2 = mqtt_url_as(&env, ALL, "two");
    let (mut a, _) = Mqtt::connect_clean(&url1, &o1, false).await;
    assert_eq!(a.subscribe(1, &[("news", 1)]).await, [1]);
    let (b, _) = Mqtt::connect_clean(&url2, &o2, false).await;
    upstream.wait_event("kept2", "connected").await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.emulator.__detached_connections(), 1);
    // The second over the cap is not kept: it ends with its connection.
    drop(b);
    let gone = upstream.wait_event("kept2", "disconnected").await.json();
    assert_eq!(gone["reason"], "The connection was lost.");
    assert!(!env.exists("kept2").await);
    assert_eq!(env.emulator.__detached_connections(), 1);
    // The kept one ends once what waits for it passes its detached budget.
    env.service.send_to_group("news", "small").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(env.exists("kept1").await);
    env.service
        .send_to_group("news", "z".repeat(8 * 1024).as_str())
        .await
        .unwrap();
    let gone = upstream.wait_event("kept1", "disconnected").await.json();
    assert_eq!(
        gone["reason"],
        "The client is too slow to receive messages."
    );
    assert!(!env.exists("kept1").await);
    assert_eq!(env.emulator.__detached_connections(), 0);
}

#[tokio::test]
async fn keep_alive_zero_gets_the_client_silence_rule() {
    let upstream = Upstream::start().await;
    let env = env_built(&upstream, |b| b.client_timeout(Duration::from_secs(1))).await;
    let url = mqtt_url_as(&env, ALL, "ada");
    let mut o = options(5, "mute5", Vec::new());
    o.keep_alive = 0;
    let (mut m, connack) = Mqtt::connect(&url, &o).await;
    assert_eq!(connack.connack(5).0, 0);
    // CONNACK's Server Keep Alive (0x13) says 1 s.
    let at = connack.body.windows(3).position(|w| w == [0x13, 0, 1]);
    assert!(at.is_some(), "Server Keep Alive 1 in {:?}", connack.body);
    let started = std::time::Instant::now();
    assert_eq!(disconnect_code(&m.end().await.unwrap()), 0x8D);
    assert!(started.elapsed() < Duration::from_secs(4));
    let mut o = options(4, "mute4", Vec::new());
    o.keep_alive = 0;
    let (mut m, connack) = Mqtt::connect(&url, &o).await;
    assert_eq!(connack.connack(4).0, 0);
    assert!(m.end().await.is_none());
    let gone = upstream.wait_event("mute4", "disconnected").await.json();
    assert_eq!(gone["reason"], "Keep-alive timeout.");
}
