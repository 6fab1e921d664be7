//! What makes the server broadcast: an HTTP POST on a keep-alive connection
//! (the floor's and node-ws's `/broadcast`, the emulator's REST `:send`), or
//! an MQTT PUBLISH at QoS 0 from a publisher connection of its own
//! (mosquitto).

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{open_ws, Ws};
use crate::wire;

pub enum Trigger {
    Http(HttpPost),
    Mqtt { ws: Ws, topic: String },
}

impl Trigger {
    /// `url`: `http://H:P/path?query`, or `mqtt-ws://H:P/path` for a publisher.
    pub async fn open(url: &str, key: Option<&str>, topic: &str, client_id: String) -> Result<Trigger, String> {
        if let Some(rest) = url.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let mut head = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain\r\n");
            if let Some(key) = key {
                head.push_str(&format!("Authorization: Bearer {}\r\n", wire::rest_token(key, url)));
            }
            Ok(Trigger::Http(HttpPost { authority: authority.to_string(), head, conn: None, buf: Vec::new(), reopened: 0 }))
        } else if let Some(rest) = url.strip_prefix("mqtt-ws://") {
            let mut ws = open_ws(&format!("ws://{rest}"), Some("mqtt")).await?;
            ws.send(Message::Binary(wire::mqtt_connect(&client_id).into())).await.map_err(|e| e.to_string())?;
            let mut pending = Vec::new();
            let connack = crate::net::mqtt_wait_for(&mut ws, &mut pending, 2).await?;
            if connack.get(1) != Some(&0) {
                return Err(format!("publisher refused: CONNACK {connack:?}"));
            }
            Ok(Trigger::Mqtt { ws, topic: topic.to_string() })
        } else {
            Err(format!("trigger URL {url}: neither http:// nor mqtt-ws://"))
        }
    }

    /// One broadcast. Returns once the server took it: the HTTP answer's
    /// status line and body are in, or (MQTT QoS 0 has no answer) the
    /// PUBLISH is written.
    pub async fn fire(&mut self, payload: &[u8]) -> Result<(), String> {
        match self {
            Trigger::Http(post) => post.send(payload).await,
            Trigger::Mqtt { ws, topic } => ws
                .send(Message::Binary(wire::mqtt_publish(topic, payload).into()))
                .await
                .map_err(|e| format!("PUBLISH: {e}")),
        }
    }

    pub fn reopened(&self) -> u64 {
        match self {
            Trigger::Http(post) => post.reopened,
            Trigger::Mqtt { .. } => 0,
        }
    }
}

pub struct HttpPost {
    authority: String,
    /// Request head up to (not including) Content-Length.
    head: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    /// Times the keep-alive connection had to be opened again.
    pub reopened: u64,
}

enum Exchange {
    Done { keep: bool },
    /// The connection ended before a byte of the answer: a keep-alive
    /// connection the server closed while idle. Try again on a new one.
    Stale,
}

impl HttpPost {
    async fn send(&mut self, body: &[u8]) -> Result<(), String> {
        let mut request = format!("{}Content-Length: {}\r\n\r\n", self.head, body.len()).into_bytes();
        request.extend_from_slice(body);
        for _ in 0..3 {
            let conn = match self.conn.take() {
                Some(c) => c,
                None => {
                    let c = TcpStream::connect(&self.authority).await.map_err(|e| format!("trigger connect: {e}"))?;
                    c.set_nodelay(true).map_err(|e| e.to_string())?;
                    c
                }
            };
            let mut conn = conn;
            match exchange(&mut conn, &mut self.buf, &request).await? {
                Exchange::Done { keep } => {
                    if keep {
                        self.conn = Some(conn);
                    }
                    return Ok(());
                }
                Exchange::Stale => self.reopened += 1,
            }
        }
        Err("trigger: the server closed the connection three times without answering".into())
    }
}

async fn exchange(conn: &mut TcpStream, buf: &mut Vec<u8>, request: &[u8]) -> Result<Exchange, String> {
    if conn.write_all(request).await.is_err() {
        return Ok(Exchange::Stale);
    }
    buf.clear();
    let mut chunk = [0u8; 4096];
    let (head_len, status, body_len, chunked, keep) = loop {
        let n = match conn.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return Ok(Exchange::Stale),
            Ok(0) => return Err("trigger: connection closed in the answer's head".into()),
            Err(e) => return Err(format!("trigger read: {e}")),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut answer = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = answer.parse(buf).map_err(|e| format!("trigger answer: {e}"))? {
            let header = |name: &str| answer.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
            let body_len = header("content-length")
                .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
            let keep = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
            break (len, answer.code.unwrap_or(0), body_len, chunked, keep);
        }
    };
    // The rest of the body (chunked: enough for the short answers expected here).
    while !(if chunked { buf[head_len..].ends_with(b"0\r\n\r\n") } else { buf.len() - head_len >= body_len }) {
        let n = conn.read(&mut chunk).await.map_err(|e| format!("trigger read: {e}"))?;
        if n == 0 {
            return Err("trigger: connection closed in the answer's body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(&buf[head_len..]).chars().take(300).collect();
        return Err(format!("trigger answered {status}: {text}"));
    }
    Ok(Exchange::Done { keep })
}
