//! An event handler that is down or silent: how fast a client's handshake
//! fails, with which status and body, and what the live view says about
//! the call. The handlers here are bare TCP listeners, so "closed port"
//! and "accepts and never answers" are exactly that.
//!
//! The elapsed-time bounds are loose (seconds, not milliseconds): they
//! tell "fails at once" from "waits out the 1 s + 3 s + 5 s retries".

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use webpubsub::client_access::ClientAccessOptions;
use webpubsub_emulator::{Emulator, EmulatorBuilder};

use crate::common::emulator::{self, refused_handshake, Env, JSON};
use crate::helpers::KEY;

/// An emulator with the default upstream retry delays (1 s, 3 s, 5 s) and
/// hub `chat` sending every event to `127.0.0.1:{port}`; the URL holds a
/// secret query parameter that nothing may show.
async fn emulator_for(port: u16, builder: EmulatorBuilder) -> Env {
    let handler = format!("http://127.0.0.1:{port}/eventhandler/{{event}}?code=s3cret-fn-key");
    emulator::start(
        builder
            .access_key(KEY)
            .host("127.0.0.1")
            .hub(emulator::chat_hub(handler)),
        "chat",
    )
    .await
}

/// A port of 127.0.0.1 that nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads one request head from `stream`; `None` if it closed first.
async fn request_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Passes the abuse-protection `OPTIONS` (and closes that connection).
async fn allow_origin(stream: &mut TcpStream) {
    let answer = "HTTP/1.1 200 OK\r\nWebHook-Allowed-Origin: *\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A handler that passes the abuse-protection handshake once, then is gone:
/// its port is closed by the time the `connect` event is sent.
async fn handler_that_went_down() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        drop(listener);
        let head = request_head(&mut stream).await.unwrap();
        assert!(head.starts_with("OPTIONS "), "{head}");
        allow_origin(&mut stream).await;
    });
    port
}

/// A handler that passes the abuse-protection handshake and accepts every
/// event's connection, but never answers an event.
async fn silent_handler() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            match request_head(&mut stream).await {
                Some(head) if head.starts_with("OPTIONS ") => allow_origin(&mut stream).await,
                _ => held.push(stream),
            }
        }
    });
    port
}

/// A client of hub `chat` opens a WebSocket: its status, body and how long
/// the refusal took.
async fn timed_refusal(env: &Env) -> (u16, String, Duration) {
    let url = env.url(&ClientAccessOptions::new().user_id("alice"));
    let started = Instant::now();
    let (status, body) = refused_handshake(&url, &[JSON]).await;
    (status, body, started.elapsed())
}

/// The live view's calls of `event`, newest first.
async fn live_calls(env: &Env, event: &str) -> Vec<Value> {
    let state = env.live_state("").await;
    state["upstreamCalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["event"] == event)
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_unreachable_connect_handler_fails_the_handshake_at_once_with_the_cause_shown() {
    // Closed from the start: the abuse-protection handshake cannot reach
    // it. Validated, then gone: the `connect` event cannot (the issue's
    // 9 s case: 1 s + 3 s + 5 s of retries).
    for (case, port, event) in [
        ("closed from the start", closed_port().await, "validate"),
        (
            "gone after validation",
            handler_that_went_down().await,
            "connect",
        ),
    ] {
        let env = emulator_for(port, Emulator::builder()).await;
        let (status, body, took) = timed_refusal(&env).await;
        assert_eq!(status, 500, "{case}");
        assert_eq!(body, "The event handler could not be reached.", "{case}");
        assert!(
            took < Duration::from_secs(3),
            "{case}: the handshake failed after {took:?}"
        );

        let calls = live_calls(&env, event).await;
        assert!(!calls.is_empty(), "{case}: no {event} call is shown");
        for call in &calls {
            let error = call["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("Connection refused") || error.contains("connection refused"),
                "{case}: the live view hides the cause: {call}"
            );
            assert!(!error.contains("s3cret"), "{case}: {call}");
        }
        let text = env.live_state_text("").await;
        assert!(
            !text.contains("s3cret"),
            "{case}: the live view shows the key"
        );
    }
}

#[tokio::test]
async fn a_connect_handler_that_never_answers_fails_the_handshake_after_the_upstream_timeout() {
    let port = silent_handler().await;
    let env = emulator_for(
        port,
        Emulator::builder().upstream_timeout(Duration::from_millis(500)),
    )
    .await;
    let (status, body, took) = timed_refusal(&env).await;
    assert_eq!(status, 500);
    assert_eq!(body, "The event handler did not answer within 500ms.");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "the handshake failed after {took:?}: a timed-out connect is not retried"
    );

    let calls = live_calls(&env, "connect").await;
    assert_eq!(calls.len(), 1, "one attempt: {calls:?}");
    assert_eq!(calls[0]["status"], Value::Null, "{}", calls[0]);
    let error = calls[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 500ms"), "{}", calls[0]);
}

/// A handler that passes the abuse-protection handshake and answers every
/// event `400` with a one-line reason, as the router does for bad input.
async fn refusing_handler() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = request_head(&mut stream).await else {
                    return;
                };
                if head.starts_with("OPTIONS ") {
                    return allow_origin(&mut stream).await;
                }
                let reason = "invalid ce-userId: not UTF-8";
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{reason}",
                    reason.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_handlers_4xx_reason_is_shown_in_the_live_view_beside_its_status() {
    let env = emulator_for(refusing_handler().await, Emulator::builder()).await;
    let (status, _, _) = timed_refusal(&env).await;
    assert_eq!(status, 400, "the handler's own status reaches the client");
    let calls = live_calls(&env, "connect").await;
    assert_eq!(calls.len(), 1, "a 4xx is not retried: {calls:?}");
    assert_eq!(calls[0]["status"], 400, "{}", calls[0]);
    assert_eq!(
        calls[0]["error"], "answered 400 Bad Request: invalid ce-userId: not UTF-8",
        "{}",
        calls[0]
    );
}
