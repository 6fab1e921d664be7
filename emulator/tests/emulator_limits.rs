//! The emulator's bounds, end to end on 127.0.0.1 with small caps: nothing
//! is kept for unauthenticated requests, oversized frames, slow readers,
//! too many connections or groups, forgotten ack ids, slow or silent
//! sockets, out-of-range numbers, and reconnection tokens that are no
//! signature under the access key.

mod common;

use std::sync::{Mutex, Once};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::emulator::{
    self, eventually, ok_ack, refused_handshake, refused_recovery, Client, Env, JSON, RELIABLE,
    WAIT,
};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub::ConfigError;
use webpubsub_emulator::EmulatorBuilder;

const KEY: &str = "emulator-limits-test-key-0123456789abcdef";

// ---------------------------------------------------------------------------
// What the crate logs, captured once for the whole test binary.
// ---------------------------------------------------------------------------

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("webpubsub=debug"))
            .init();
    });
}

/// The log lines that mention `connection` and contain `text`.
fn log_lines(connection: &str, text: &str) -> Vec<String> {
    let log = LOG.lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(&format!("connection={connection}")) && l.contains(text))
        .map(str::to_owned)
        .collect()
}

fn logged(text: &str) -> bool {
    String::from_utf8_lossy(&LOG.lock().unwrap()).contains(text)
}

// ---------------------------------------------------------------------------
// The emulator and its clients.
// ---------------------------------------------------------------------------

fn builder() -> EmulatorBuilder {
    emulator::builder(KEY)
}

/// Starts `builder` with the logs captured, with a service client for hub `chat`.
async fn start(builder: EmulatorBuilder) -> Env {
    capture_logs();
    emulator::start(builder, "chat").await
}

/// Reads until the server closes the socket; returns what it sent first.
async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the server closes the socket in time");
        match read {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

impl Env {
    async fn json_client(&self, user: &str) -> Client {
        self.client(ClientAccessOptions::new().user_id(user), JSON)
            .await
    }

    async fn gone(&self, connection: &str) {
        eventually("the connection to end", || async {
            (!self.exists(connection).await).then_some(())
        })
        .await;
    }

    /// A REST call signed with [`KEY`]: its status and body. `path` is
    /// under `/api/hubs/chat/` and carries its own query.
    async fn rest(&self, method: reqwest::Method, path: &str) -> (u16, String) {
        let url = format!(
            "http://{}/api/hubs/chat/{path}&api-version=2024-12-01",
            self.emulator.local_addr()
        );
        let response = emulator::signed_rest_call(method, &url, KEY).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

impl Client {
    /// Reads until the server closes: the JSON text frames before the close
    /// frame and its code (`None` when the transport ended without one).
    async fn closed_json(&mut self) -> (Vec<Value>, Option<u16>) {
        let (frames, code) = self.closed().await;
        let texts = frames
            .into_iter()
            .filter_map(|frame| match frame {
                Message::Text(text) => Some(serde_json::from_str(text.as_str()).unwrap()),
                _ => None,
            })
            .collect();
        (texts, code)
    }
}

fn join(group: &str, ack_id: u64) -> Value {
    json!({"type": "joinGroup", "group": group, "ackId": ack_id})
}

fn joiner(user: &str) -> ClientAccessOptions {
    ClientAccessOptions::new()
        .user_id(user)
        .role(Permission::JoinLeaveGroup.role())
}

// ---------------------------------------------------------------------------
// Nothing before authentication.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn recoveries_and_rest_calls_for_made_up_hubs_leave_no_hub_state_behind() {
    let env = start(builder()).await;
    let addr = env.emulator.local_addr();
    for i in 0..40 {
        let url = format!(
            "ws://{addr}/client/hubs/made_up_{i}?awps_connection_id=c{i}&awps_reconnection_token=forged"
        );
        assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
    }
    for i in 0..10 {
        let service = env.service_for(&format!("rest_{i}"));
        assert!(!service.connection_exists("nobody").await.unwrap());
        assert!(!service.group_exists("g").await.unwrap());
        assert!(!service.user_exists("u").await.unwrap());
        service.send_to_all("x").await.unwrap();
        service.remove_user_from_all_groups("u").await.unwrap();
        service.close_all_connections().await.unwrap();
    }
    assert_eq!(env.emulator.__hubs_with_state(), 0);

    // A hub has state while it has a connection, and none after.
    let mut client = env.json_client("alice").await;
    assert_eq!(env.emulator.__hubs_with_state(), 1);
    client.ws.close(None).await.unwrap();
    env.gone(&client.id).await;
    assert_eq!(env.emulator.__hubs_with_state(), 0);
}

// ---------------------------------------------------------------------------
// Frames and queues.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_frame_announcing_more_than_the_message_limit_is_refused_with_1009() {
    let env = start(builder()).await;
    let mut client = env.json_client("big").await;
    // A masked binary frame that announces 16 MiB, and a little of it.
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(16u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0; 1000]);
    client.ws.get_mut().write_all(&frame).await.unwrap();

    let (frames, code) = client.closed_json().await;
    assert_eq!(code, Some(1009));
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["event"], "disconnected");
    assert!(
        frames[0]["message"]
            .as_str()
            .unwrap()
            .contains("Message too big"),
        "{}",
        frames[0]
    );
    // The server let go of the socket, and of the connection.
    let end = tokio::time::timeout(WAIT, client.ws.next())
        .await
        .expect("the socket ends in time");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
    env.gone(&client.id).await;
    assert_eq!(
        log_lines(&client.id, "client disconnected").len(),
        1,
        "one line says why the client went"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_once_its_queued_bytes_pass_the_budget() {
    let env = start(builder().send_queue_bytes(512 * 1024)).await;
    // Never read from again: what the emulator sends piles up in front of it.
    let slow = env.json_client("never-reads").await;
    let payload = "x".repeat(128 * 1024);
    let mut sent = 0;
    while env.exists(&slow.id).await {
        assert!(sent < 2000, "still connected after {sent} messages");
        for _ in 0..8 {
            env.service
                .send_to_connection(&slow.id, payload.as_str())
                .await
                .unwrap();
            sent += 1;
        }
    }
    // Sends that raced with the disconnect add no line.
    for _ in 0..8 {
        env.service
            .send_to_connection(&slow.id, payload.as_str())
            .await
            .unwrap();
    }
    assert_eq!(log_lines(&slow.id, "send queue full").len(), 1);
    assert_eq!(log_lines(&slow.id, "client disconnected").len(), 1);
    drop(slow);
}

// ---------------------------------------------------------------------------
// Caps on users, groups and ack ids.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_user_over_the_connection_cap_is_refused_with_429_until_one_leaves() {
    let env = start(builder().max_connections_per_user(3)).await;
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(env.json_client("alice").await);
    }
    let url = env.url(&ClientAccessOptions::new().user_id("alice"));
    let (status, body) = refused_handshake(&url, &[JSON]).await;
    assert_eq!(status, 429);
    assert!(body.contains("at most 3 connections"), "{body}");
    assert!(logged("status=429"));

    // Other users are not affected; once one of alice's leaves, she may connect again.
    let _bob = env.json_client("bob").await;
    let mut first = alice.remove(0);
    first.ws.close(None).await.unwrap();
    env.gone(&first.id).await;
    alice.push(env.json_client("alice").await);
}

#[tokio::test]
async fn joining_more_groups_than_the_cap_is_refused_by_ack_rest_and_handshake() {
    let env = start(builder().max_groups_per_connection(5)).await;
    let mut client = env.client(joiner("u"), JSON).await;
    for i in 0..5 {
        assert_eq!(
            client.request(join(&format!("g{i}"), i + 1)).await,
            ok_ack(i + 1)
        );
    }
    let refused = client.request(join("g5", 6)).await;
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["error"]["name"], "Forbidden", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("at most 5 groups"), "{message}");
    assert!(!env.service.group_exists("g5").await.unwrap());
    assert_eq!(log_lines(&client.id, "joinGroup refused").len(), 1);

    // A group it is in is no new group; leaving one makes room.
    assert_eq!(client.request(join("g0", 7)).await, ok_ack(7));
    let leave = json!({"type": "leaveGroup", "group": "g0", "ackId": 8});
    assert_eq!(client.request(leave).await, ok_ack(8));
    assert_eq!(client.request(join("g5", 9)).await, ok_ack(9));

    // REST adds are refused the same way.
    let error = env
        .service
        .add_connection_to_group("g6", &client.id)
        .await
        .unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(403), "{error}");

    // A token naming more groups than the cap fails the handshake.
    let url = env.url(&joiner("v").groups((0..6).map(|i| format!("t{i}"))));
    let (status, body) = refused_handshake(&url, &[JSON]).await;
    assert_eq!(status, 400);
    assert!(body.contains("at most 5 groups"), "{body}");
}

#[tokio::test]
async fn ack_ids_are_remembered_up_to_the_cap_and_older_ones_are_forgotten() {
    let env = start(builder().remembered_ack_ids(3)).await;
    let mut client = env.client(joiner("u"), JSON).await;
    assert_eq!(client.request(join("g", 1)).await, ok_ack(1));
    let duplicate = client.request(join("g", 1)).await;
    assert_eq!(duplicate["success"], false, "{duplicate}");
    assert_eq!(duplicate["error"]["name"], "Duplicate", "{duplicate}");
    for id in 2..=4 {
        assert_eq!(client.request(join("g", id)).await, ok_ack(id));
    }
    // 1 is no longer among the last three; 4 still is.
    assert_eq!(client.request(join("g", 1)).await, ok_ack(1));
    let duplicate = client.request(join("g", 4)).await;
    assert_eq!(duplicate["error"]["name"], "Duplicate", "{duplicate}");
}

// ---------------------------------------------------------------------------
// The listener: header timeout, connection limit; silent WebSockets.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sockets_without_a_complete_request_head_are_closed_after_the_header_timeout() {
    let env = start(builder().header_read_timeout(Duration::from_secs(1))).await;
    let addr = env.emulator.local_addr();

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let trickle = TcpStream::connect(addr).await.unwrap();
    let (mut trickle_read, mut trickle_write) = trickle.into_split();
    trickle_write
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        for byte in b"X-Slow: 1".iter().cycle() {
            if trickle_write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    for answer in [
        closed_by_server(&mut silent).await,
        closed_by_server(&mut trickle_read).await,
    ] {
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    trickler.abort();

    // A request that comes in time is served.
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    prompt
        .write_all(
            b"GET /client/hubs/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&closed_by_server(&mut prompt).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn sockets_over_the_connection_limit_get_503_and_are_closed_at_once() {
    let env = start(builder().max_connections(2)).await;
    let addr = env.emulator.local_addr();
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();

    let mut third = TcpStream::connect(addr).await.unwrap();
    let answer = String::from_utf8_lossy(&closed_by_server(&mut third).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("at most 2 at a time"), "{answer}");
    assert!(logged("connection limit reached"));

    // Once a socket closes, its place is free again.
    drop(first);
    eventually("a socket to be served again", || async {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(
                b"GET /client/hubs/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            .await
            .ok()?;
        let answer = closed_by_server(&mut socket).await;
        answer.starts_with(b"HTTP/1.1 400").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_websocket_client_that_stops_answering_is_dropped_after_the_client_timeout() {
    let env = start(builder().client_timeout(Duration::from_secs(1))).await;
    // Never polled again, so the emulator's pings go unanswered.
    let silent = env.json_client("silent").await;
    // Polled, so it answers every ping.
    let mut live = env.json_client("live").await;
    let live_id = live.id.clone();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = live.ws.next().await {} });

    env.gone(&silent.id).await;
    assert!(env.exists(&live_id).await, "a client that answers stays");
    assert_eq!(log_lines(&silent.id, "client silent for too long").len(), 1);
    reader.abort();
    drop(silent);
}

// ---------------------------------------------------------------------------
// Numbers in queries.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn numeric_query_parameters_out_of_range_get_400_with_a_clear_body() {
    use reqwest::Method;
    let env = start(builder()).await;
    let cases: &[(Method, &str, &str)] = &[
        (
            Method::POST,
            ":generateToken?minutesToExpire=0",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::POST,
            ":generateToken?minutesToExpire=525601",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::POST,
            ":generateToken?minutesToExpire=307445734561825862",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::POST,
            ":generateToken?minutesToExpire=18446744073709551616",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::POST,
            ":generateToken?minutesToExpire=-1",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::POST,
            ":generateToken?minutesToExpire=1.5",
            "minutesToExpire must be 1-525600",
        ),
        (
            Method::GET,
            "groups/g/connections?maxpagesize=0",
            "maxpagesize must be 1-200",
        ),
        (
            Method::GET,
            "groups/g/connections?maxpagesize=201",
            "maxpagesize must be 1-200",
        ),
        (
            Method::GET,
            "groups/g/connections?maxpagesize=18446744073709551616",
            "maxpagesize must be 1-200",
        ),
        (
            Method::GET,
            "groups/g/connections?top=0",
            "top must be at least 1",
        ),
        (
            Method::GET,
            "groups/g/connections?top=-3",
            "top must be at least 1",
        ),
        (
            Method::GET,
            "groups/g/connections?continuationToken=abc",
            "continuationToken is not valid",
        ),
        (
            Method::GET,
            "groups/g/connections?continuationToken=-1",
            "continuationToken is not valid",
        ),
        (
            Method::POST,
            ":send?messageTtlSeconds=301",
            "messageTtlSeconds must be 0-300",
        ),
        (
            Method::POST,
            ":send?messageTtlSeconds=-1",
            "messageTtlSeconds must be 0-300",
        ),
        (
            Method::POST,
            ":send?messageTtlSeconds=4294967296",
            "messageTtlSeconds must be 0-300",
        ),
    ];
    for (method, path, fragment) in cases {
        let (status, body) = env.rest(method.clone(), path).await;
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert!(body.contains(fragment), "{method} {path}: {body}");
    }
    // The edges are accepted.
    for (method, path, status) in [
        (Method::POST, ":generateToken?minutesToExpire=525600", 200),
        (
            Method::GET,
            "groups/g/connections?top=18446744073709551615&maxpagesize=200",
            200,
        ),
        (
            Method::GET,
            "groups/g/connections?continuationToken=18446744073709551615",
            200,
        ),
        (Method::POST, ":send?messageTtlSeconds=300", 202),
    ] {
        assert_eq!(
            env.rest(method.clone(), path).await.0,
            status,
            "{method} {path}"
        );
    }
}

// ---------------------------------------------------------------------------
// Reconnection tokens and the builder's secrets.
// ---------------------------------------------------------------------------

fn hmac_under_key(message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn reconnection_tokens_are_no_hmac_under_the_access_key_and_such_an_hmac_does_not_recover() {
    let env = start(builder()).await;
    let client = env
        .client(ClientAccessOptions::new().user_id("r"), RELIABLE)
        .await;
    let token = client.connected["reconnectionToken"].as_str().unwrap();
    let token = URL_SAFE_NO_PAD.decode(token).unwrap();
    let id = &client.id;
    for message in [format!("reconnect:{id}"), id.clone()] {
        assert_ne!(token, hmac_under_key(&message), "HMAC(key, {message:?})");
    }

    // The old token scheme, which anyone holding the key could compute, is refused.
    let forged = URL_SAFE_NO_PAD.encode(hmac_under_key(&format!("reconnect:{id}")));
    let url = format!(
        "{}&awps_connection_id={id}&awps_reconnection_token={forged}",
        env.url(&ClientAccessOptions::new().user_id("r"))
    );
    drop(client);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
}

#[test]
fn the_builder_debug_output_hides_both_keys_and_a_blank_secondary_key_is_refused() {
    let secondary = "secondary-secret-key-0123456789abcdef";
    let text = format!("{:?}", builder().secondary_access_key(secondary));
    assert!(!text.contains(KEY), "{text}");
    assert!(!text.contains(secondary), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    for blank in ["", " \t "] {
        assert_eq!(
            builder().secondary_access_key(blank).build().unwrap_err(),
            ConfigError::EmptyAccessKey,
            "{blank:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Connections kept without a socket (issue 21).
// ---------------------------------------------------------------------------

/// The recovery URL of a reliable client (whose transport is then dropped).
fn recovery_url(client: &Client) -> String {
    let token = client.connected["reconnectionToken"].as_str().unwrap();
    format!(
        "{}&awps_connection_id={}&awps_reconnection_token={token}",
        client.url, client.id
    )
}

#[tokio::test]
async fn reliable_connections_waiting_for_recovery_are_capped_in_all_and_per_user() {
    let env = start(builder().max_detached_connections(1)).await;
    let a = env
        .client(ClientAccessOptions::new().user_id("a"), RELIABLE)
        .await;
    let b = env
        .client(ClientAccessOptions::new().user_id("b"), RELIABLE)
        .await;
    let (a_id, b_id, b_url) = (a.id.clone(), b.id.clone(), recovery_url(&b));
    drop(a);
    eventually("one kept without a socket", || async {
        (env.emulator.__detached_connections() == 1).then_some(())
    })
    .await;
    // The cap is reached: the next one ends with its socket.
    drop(b);
    env.gone(&b_id).await;
    assert!(env.exists(&a_id).await, "the first is still kept");
    assert_eq!(env.emulator.__detached_connections(), 1);
    assert_eq!(refused_recovery(&b_url, &[RELIABLE]).await, Some(1008));

    // Connections without a user id count as one user per hub.
    let env = start(builder().max_connections_per_user(1)).await;
    let c = env.client(ClientAccessOptions::new(), RELIABLE).await;
    let d = env.client(ClientAccessOptions::new(), RELIABLE).await;
    let (c_id, d_id) = (c.id.clone(), d.id.clone());
    drop(c);
    eventually("one kept without a socket", || async {
        (env.emulator.__detached_connections() == 1).then_some(())
    })
    .await;
    drop(d);
    env.gone(&d_id).await;
    assert!(env.exists(&c_id).await);
}

#[tokio::test]
async fn a_reliable_connection_holding_more_than_the_detached_budget_is_not_kept() {
    let env = start(builder().detached_bytes(1024)).await;
    let mut big = env
        .client(ClientAccessOptions::new().user_id("big"), RELIABLE)
        .await;
    let small = env
        .client(ClientAccessOptions::new().user_id("small"), RELIABLE)
        .await;
    // 4 KiB delivered and never acknowledged: held for recovery.
    env.service
        .send_to_connection(&big.id, "x".repeat(4096).as_str())
        .await
        .unwrap();
    let message = big.next_json().await;
    assert_eq!(message["sequenceId"], 1, "{message}");
    let (big_id, small_id) = (big.id.clone(), small.id.clone());
    drop(big);
    env.gone(&big_id).await;
    drop(small);
    eventually("the small one kept", || async {
        (env.emulator.__detached_connections() == 1).then_some(())
    })
    .await;
    assert!(env.exists(&small_id).await);
    assert!(logged("not kept for recovery"));
}
