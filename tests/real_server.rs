//! The router behind a real HTTP/1.1 server on `127.0.0.1:0`, spoken to with
//! raw bytes over TCP, as the service would.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::Request;
use common::{Recorder, CONN_STR, HOST, KEY};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use webpubsub::{testing, ConnectEventResponse, EventRouter, UserEventResponse};

/// A server for hub `chat` at `/eventhandler`, configured from [`CONN_STR`].
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
    calls: common::Calls,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve() -> Server {
    let recorder = Recorder::new()
        .on_connect(|req| {
            Ok(ConnectEventResponse::new()
                .user_id(req.query_value("user").unwrap_or("anonymous"))
                .groups(["lobby"]))
        })
        .on_user_event(|req| Ok(UserEventResponse::from(req.data.clone()).state("seen", true)));
    let calls = recorder.calls();
    let events = EventRouter::builder()
        .hub("chat", recorder)
        .connection_string(CONN_STR)
        .build()
        .unwrap();
    let (addr, task) = common::spawn_server(common::at_eventhandler(events)).await;
    Server { addr, task, calls }
}

/// A raw HTTP/1.1 answer.
#[derive(Debug)]
struct RawResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
        let rest = &raw[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut response = Self {
            status_line,
            headers,
            body: Vec::new(),
        };
        response.body = if response
            .header("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)
        } else {
            let length: usize = response
                .header("content-length")
                .first()
                .map_or(rest.len(), |v| v.parse().unwrap());
            rest[..length].to_vec()
        };
        response
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// The head of `request` (built by the testing helpers) as HTTP/1.1 text,
/// with `Connection: close` and the given framing header.
fn head_of<B>(request: &Request<B>, path: &str, framing: &str) -> Vec<u8> {
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
        request.method()
    );
    let mut bytes = Vec::new();
    for (name, value) in request.headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        bytes.extend_from_slice(head.as_bytes());
        head.clear();
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    head.push_str(framing);
    head.push_str("\r\n");
    bytes.extend_from_slice(head.as_bytes());
    bytes
}

async fn exchange(addr: SocketAddr, raw_request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw_request).await.unwrap();
    // Read until the server closes; keep what arrived even if it resets the
    // connection after answering early (e.g. a 413 before the body was read).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    RawResponse::parse(&raw)
}

async fn body_of(request: Request<Body>) -> (Request<()>, Vec<u8>) {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (Request::from_parts(parts, ()), bytes.to_vec())
}

#[tokio::test]
async fn preflight_over_http_is_answered_with_the_allowed_origin() {
    let server = serve().await;
    let raw = format!(
        "OPTIONS /eventhandler/chat/validate HTTP/1.1\r\nHost: localhost\r\n\
         WebHook-Request-Origin: {HOST}\r\nce-awpsversion: 1.0\r\nConnection: close\r\n\r\n"
    );
    let response = exchange(server.addr, raw.as_bytes()).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    assert_eq!(response.header("webhook-allowed-origin"), [HOST]);
    assert!(response.body.is_empty());

    let raw = "OPTIONS /eventhandler HTTP/1.1\r\nHost: localhost\r\n\
               WebHook-Request-Origin: evil.example.com\r\nConnection: close\r\n\r\n";
    let response = exchange(server.addr, raw.as_bytes()).await;
    assert_eq!(
        response.status_line, "HTTP/1.1 400 Bad Request",
        "{response:?}"
    );
    assert!(response.header("webhook-allowed-origin").is_empty());
    assert!(response.body.is_empty());
    assert_eq!(common::call_count(&server.calls), 0);
}

#[tokio::test]
async fn signed_connect_over_http_is_accepted_with_a_json_answer() {
    let server = serve().await;
    let request = testing::connect("chat", "conn-1")
        .query("user", "alice")
        .sign_as(CONN_STR);
    let (head, body) = body_of(request).await;
    let mut raw = head_of(
        &head,
        "/eventhandler/chat/connect",
        &format!("Content-Length: {}\r\n", body.len()),
    );
    raw.extend_from_slice(&body);
    let response = exchange(server.addr, &raw).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    assert_eq!(
        response.header("content-type"),
        ["application/json; charset=utf-8"]
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"userId": "alice", "groups": ["lobby"]})
    );
    assert_eq!(common::call_count(&server.calls), 1);
}

#[tokio::test]
async fn wrongly_signed_connect_over_http_is_refused_with_401() {
    let server = serve().await;
    let request = testing::connect("chat", "conn-1")
        .origin(HOST)
        .sign("not-the-key");
    let (head, body) = body_of(request).await;
    let mut raw = head_of(
        &head,
        "/eventhandler",
        &format!("Content-Length: {}\r\n", body.len()),
    );
    raw.extend_from_slice(&body);
    let response = exchange(server.addr, &raw).await;
    assert_eq!(
        response.status_line, "HTTP/1.1 401 Unauthorized",
        "{response:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "ce-signature does not match any configured access key"
    );
    assert_eq!(common::call_count(&server.calls), 0);
}

#[tokio::test]
async fn chunked_user_event_over_http_is_echoed_with_its_state() {
    let server = serve().await;
    let text = "héllo over a chunked body";
    let request = testing::user_event("chat", "conn-1", "message")
        .text(text)
        .sign_as(CONN_STR);
    let (head, body) = body_of(request).await;
    assert_eq!(body, text.as_bytes());
    let mut raw = head_of(
        &head,
        "/eventhandler/chat/message",
        "Transfer-Encoding: chunked\r\n",
    );
    for chunk in body.chunks(7) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = exchange(server.addr, &raw).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    assert_eq!(
        response.header("content-type"),
        ["text/plain; charset=utf-8"]
    );
    assert_eq!(String::from_utf8(response.body.clone()).unwrap(), text);
    let state = response.header("ce-connectionstate");
    assert_eq!(state.len(), 1, "{response:?}");
    let states = webpubsub::state::ConnectionStates::from_header(state[0]).unwrap();
    assert_eq!(states.get::<bool>("seen").unwrap(), Some(true));
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_refused_with_413_over_http() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let events = EventRouter::builder()
        .hub("chat", recorder)
        .access_key(KEY)
        .body_limit(100)
        .build()
        .unwrap();
    let (addr, task) = common::spawn_server(axum::Router::new().fallback_service(events)).await;
    let request = testing::user_event("chat", "c1", "message")
        .text("")
        .sign(KEY);
    let (head, _) = body_of(request).await;
    let mut raw = head_of(&head, "/", "Transfer-Encoding: chunked\r\n");
    for _ in 0..3 {
        raw.extend_from_slice(b"32\r\n");
        raw.extend_from_slice(&[b'z'; 50]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = exchange(addr, &raw).await;
    task.abort();
    assert!(
        response.status_line.starts_with("HTTP/1.1 413 "),
        "{response:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "body exceeds 100 bytes"
    );
    assert_eq!(common::call_count(&calls), 0);
}
