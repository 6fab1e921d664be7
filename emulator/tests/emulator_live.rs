//! The emulator's live view (`/_emulator`, `/_emulator/api/state`) is for
//! this machine only, shows nothing that forges events, and pages its
//! answer: a real emulator on 127.0.0.1, raw HTTP/1.1 requests that set
//! `Host` (or leave it out), real WebSocket clients and a real upstream
//! built with this crate.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub::events::Event;
use webpubsub::{ConnectEventResponse, WebPubSubServiceClient};
use webpubsub_emulator::{Emulator, EmulatorBuilder, HubSettings, RunningEmulator};

use common::emulator::{self, Ws, JSON};
use common::{LogCapture, Recorder, KEY};

const PATHS: [&str; 3] = ["/_emulator", "/_emulator/", "/_emulator/api/state"];
/// The host the emulators of these tests are built with.
const CONFIGURED: &str = "emulator.internal";

/// Starts `builder` with [`KEY`] on 127.0.0.1, with a service client for `hub`.
async fn start(builder: EmulatorBuilder, hub: &str) -> (RunningEmulator, WebPubSubServiceClient) {
    let env = emulator::start(builder.access_key(KEY), hub).await;
    (env.emulator, env.service)
}

/// An emulator without hubs, going by [`CONFIGURED`].
async fn bare_emulator() -> RunningEmulator {
    start(Emulator::builder().host(CONFIGURED), "chat").await.0
}

/// One HTTP/1.1 `GET` to `addr` with exactly `headers` (hyper's connection
/// API adds no `Host`): the status and the body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `GET /_emulator/api/state?{query}` as the page on `localhost` asks it.
async fn state(addr: SocketAddr, query: &str) -> (StatusCode, String) {
    let host = format!("localhost:{}", addr.port());
    get(
        addr,
        &format!("/_emulator/api/state?{query}"),
        &[("host", &host)],
    )
    .await
}

async fn state_json(addr: SocketAddr, query: &str) -> (Value, usize) {
    let (status, body) = state(addr, query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (serde_json::from_str(&body).unwrap(), body.len())
}

#[tokio::test]
async fn a_foreign_host_is_misdirected_on_every_live_view_path() {
    let emulator = bare_emulator().await;
    let addr = emulator.local_addr();
    let port = addr.port();
    let rebinding = format!("attacker.com:{port}");
    for host in [
        "evil.example",
        "attacker.com:8080",
        rebinding.as_str(),
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "0.0.0.0",
        "[::2]",
        "emulator.internal.evil.example",
    ] {
        for path in PATHS {
            let (status, body) = get(addr, path, &[("host", host)]).await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host} {path}");
            assert!(body.contains("loopback Host"), "{host} {path}: {body}");
            assert!(!body.contains("connection"), "{host} {path}: {body}");
        }
    }
    for path in PATHS {
        let (status, body) = get(addr, path, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body, "missing header Host");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn loopback_hosts_and_the_configured_host_are_served() {
    let emulator = bare_emulator().await;
    let addr = emulator.local_addr();
    let port = addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("127.1.2.3:{port}"),
        format!("[::1]:{port}"),
        format!("chat.localhost:{port}"),
        format!("{CONFIGURED}:{port}"),
        CONFIGURED.to_uppercase(),
        "localhost".to_owned(),
    ] {
        let (status, body) = get(addr, "/_emulator", &[("host", &host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert!(body.contains("Web PubSub emulator"), "{host}");
        let (status, body) = get(addr, "/_emulator/api/state", &[("host", &host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        let state: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(state["page"]["connections"], 0, "{host}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn cross_site_browser_requests_are_forbidden() {
    let emulator = bare_emulator().await;
    let addr = emulator.local_addr();
    let host = format!("localhost:{}", addr.port());
    let same_origin = format!("http://{host}");
    let other_port = format!("http://localhost:{}", addr.port().wrapping_add(1));
    let rows: [(&[(&str, &str)], StatusCode); 6] = [
        (&[("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (&[("origin", "http://evil.example")], StatusCode::FORBIDDEN),
        (&[("origin", &other_port)], StatusCode::FORBIDDEN),
        (&[("origin", "null")], StatusCode::FORBIDDEN),
        (
            &[("sec-fetch-site", "same-origin"), ("origin", &same_origin)],
            StatusCode::OK,
        ),
        (&[("sec-fetch-site", "none")], StatusCode::OK),
    ];
    for (extra, expected) in rows {
        for path in PATHS {
            let mut headers = vec![("host", host.as_str())];
            headers.extend_from_slice(extra);
            let (status, body) = get(addr, path, &headers).await;
            assert_eq!(status, expected, "{extra:?} {path}: {body}");
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(body, "the live view refuses cross-site requests");
            }
        }
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_refusal_is_logged_with_its_status() {
    let router = Emulator::builder()
        .build()
        .unwrap()
        .router()
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50000))));
    for (host, status) in [("evil.example", 421), ("localhost", 200)] {
        let request = Request::get("/_emulator/api/state?limit=1")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        let capture = LogCapture::default();
        let answer = capture.run(common::call(&router, request)).await;
        assert_eq!(answer.status.as_u16(), status, "{host}");
        let refusals = capture.with_target("webpubsub_emulator::live");
        if status == 200 {
            assert!(refusals.is_empty(), "{refusals:#?}");
            continue;
        }
        assert_eq!(refusals.len(), 1, "{refusals:#?}");
        assert_eq!(refusals[0].level, tracing::Level::WARN);
        assert_eq!(refusals[0].field("status"), Some("421"));
        assert!(
            refusals[0]
                .field("reason")
                .is_some_and(|r| r.contains("loopback")),
            "{refusals:#?}"
        );
    }
}

#[tokio::test]
async fn bad_paging_parameters_are_bad_requests() {
    let emulator = bare_emulator().await;
    let addr = emulator.local_addr();
    for (query, fragment) in [
        ("since=-1", "since must be a whole number"),
        ("since=soon", "since must be a whole number"),
        ("since=18446744073709551616", "since must be a whole number"),
        ("offset=-5", "offset must be a whole number"),
        ("offset=ten", "offset must be a whole number"),
        ("offset=1e9", "offset must be a whole number"),
        ("limit=0", "limit must be a whole number from 1 to 500"),
        ("limit=501", "limit must be a whole number from 1 to 500"),
        ("limit=-1", "limit must be a whole number from 1 to 500"),
        ("limit=", "limit must be a whole number from 1 to 500"),
        ("hub=9lives", "hub must be a hub name"),
        ("hub=a%20b", "hub must be a hub name"),
        ("offset=1&offset=2", "may each be given once"),
    ] {
        let (status, body) = state(addr, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.contains(fragment), "{query}: {body}");
    }
    let (state, _) = state_json(addr, "offset=18446744073709551615&limit=500&x=y").await;
    assert_eq!(state["page"]["nextOffset"], Value::Null);
    emulator.shutdown().await;
}

/// A `json.webpubsub.azure.v1` client at `url`, and its `connected` message.
async fn json_client(url: &str) -> (Ws, Value) {
    emulator::connect(url, JSON, Duration::from_secs(10)).await
}

#[tokio::test]
async fn the_call_log_shows_no_signature_token_or_connection_state() {
    let recorder = Recorder::new().on_connect(|_| {
        Ok(ConnectEventResponse::new()
            .state("secret", "hunter2-state")
            .roles(["webpubsub.joinLeaveGroup"]))
    });
    let calls = recorder.calls();
    let events = common::local_router(recorder, KEY);
    let upstream = common::serve(common::at_eventhandler(events)).await;
    let handler = format!(
        "http://{upstream}/eventhandler/{{hub}}/{{event}}?code=fn-key-s3cret&access_token=tok-s3cret&v=1"
    );
    let (emulator, service) = start(
        Emulator::builder()
            .host("127.0.0.1")
            .hub(emulator::chat_hub(handler)),
        "chat",
    )
    .await;
    let addr = emulator.local_addr();
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("alice"));
    let token = url.split("access_token=").nth(1).unwrap().to_owned();
    let (_ws, connected) = json_client(&url).await;
    let connection_id = connected["connectionId"].as_str().unwrap().to_owned();

    // Wait until the `connected` call (which carries the state) is logged.
    let mut tries = 0;
    let body = loop {
        let (status, body) = state(addr, "").await;
        assert_eq!(status, StatusCode::OK);
        let state: Value = serde_json::from_str(&body).unwrap();
        let logged = state["upstreamCalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["event"] == "connected" && c["status"] == 204);
        if logged {
            break body;
        }
        tries += 1;
        assert!(tries < 500, "the connected call is never logged: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let connected_event = calls
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            Event::Connected(req) => Some(req.context.clone()),
            _ => None,
        })
        .expect("the upstream got `connected`");
    assert_eq!(
        connected_event
            .state::<String>("secret")
            .unwrap()
            .as_deref(),
        Some("hunter2-state"),
        "the connected event carried the state"
    );

    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(connection_id.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let state_header = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::json!({"secret": "hunter2-state"}).to_string(),
    );
    for secret in [
        signature.as_str(),
        "sha256=",
        "hunter2",
        state_header.as_str(),
        token.as_str(),
        KEY,
        "fn-key-s3cret",
        "tok-s3cret",
    ] {
        assert!(
            !body.contains(secret),
            "the live view shows {secret}: {body}"
        );
    }

    let state: Value = serde_json::from_str(&body).unwrap();
    let mut redacted = BTreeSet::new();
    for call in state["upstreamCalls"].as_array().unwrap() {
        assert!(
            call["url"]
                .as_str()
                .unwrap()
                .ends_with("?code=redacted&access_token=redacted&v=1"),
            "{call}"
        );
        for header in call["requestHeaders"].as_array().unwrap() {
            let name = header[0].as_str().unwrap();
            let value = header[1].as_str().unwrap();
            assert!(value.len() <= 256 + 3, "{name}: {value}");
            if matches!(name, "ce-signature" | "ce-connectionstate") {
                assert!(value.starts_with("<redacted, "), "{name}: {value}");
                redacted.insert(name.to_owned());
            }
        }
    }
    assert_eq!(
        redacted.into_iter().collect::<Vec<_>>(),
        ["ce-connectionstate", "ce-signature"],
        "both headers were sent, and shown as redacted"
    );
    let alice = &state["hubs"]["chat"][0];
    assert_eq!(alice["userId"], "alice");
    assert_eq!(
        alice["roles"],
        serde_json::json!(["webpubsub.joinLeaveGroup"])
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_crowded_hub_is_answered_a_bounded_page_at_a_time() {
    const CONNECTIONS: usize = 300;
    const GROUPS: usize = 12;
    const GROUP_LEN: usize = 300;
    // Unpaged, the connections' group names alone are over a megabyte.
    const BOUND: usize = 320 * 1024;
    const { assert!(CONNECTIONS * GROUPS * GROUP_LEN > 3 * BOUND) };

    let (emulator, service) = start(
        Emulator::builder()
            .host("127.0.0.1")
            .hub(HubSettings::new("crowd")),
        "crowd",
    )
    .await;
    let addr = emulator.local_addr();
    let groups: Vec<String> = (0..GROUPS)
        .map(|g| format!("{g:02}{}", "g".repeat(GROUP_LEN - 2)))
        .collect();
    let mut sockets = Vec::new();
    let mut ids = BTreeSet::new();
    for batch in 0..CONNECTIONS / 50 {
        let clients = (0..50).map(|i| {
            let options = ClientAccessOptions::new()
                .user_id(format!("user{}", batch * 50 + i))
                .groups(groups.clone());
            let url = service.client_access_url(&options);
            async move { json_client(&url).await }
        });
        for (ws, connected) in futures_util::future::join_all(clients).await {
            ids.insert(connected["connectionId"].as_str().unwrap().to_owned());
            sockets.push(ws);
        }
    }
    assert_eq!(ids.len(), CONNECTIONS);

    let (first, size) = state_json(addr, "").await;
    assert!(size < BOUND, "the default page is {size} bytes");
    assert_eq!(first["page"]["limit"], 100);
    assert_eq!(first["page"]["connections"], CONNECTIONS);
    assert_eq!(first["page"]["nextOffset"], 100);
    assert_eq!(first["hubs"]["crowd"].as_array().unwrap().len(), 100);
    assert_eq!(
        first["hubTotals"]["crowd"],
        serde_json::json!({"connections": CONNECTIONS, "groups": GROUPS, "users": CONNECTIONS})
    );
    let shown = &first["hubs"]["crowd"][0];
    assert_eq!(shown["groupCount"], GROUPS);
    let shown_groups = shown["groups"].as_array().unwrap();
    assert_eq!(shown_groups.len(), 10);
    assert!(shown_groups[0].as_str().unwrap().starts_with("00g"));
    assert!(shown_groups[0].as_str().unwrap().len() <= 256 + 3);

    for (query, limit) in [("hub=CROWD&limit=7", 7), ("limit=500", 500), ("", 100)] {
        let mut seen = Vec::new();
        let mut offset = 0;
        let mut pages = 0;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let (page, _) = state_json(addr, &format!("{query}{sep}offset={offset}")).await;
            let conns = page["hubs"]["crowd"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(conns.len() <= limit, "{query}");
            seen.extend(
                conns
                    .iter()
                    .map(|c| c["connectionId"].as_str().unwrap().to_owned()),
            );
            pages += 1;
            match page["page"]["nextOffset"].as_u64() {
                Some(next) => offset = usize::try_from(next).unwrap(),
                None => break,
            }
        }
        assert_eq!(pages, CONNECTIONS.div_ceil(limit), "{query}");
        assert_eq!(seen.len(), CONNECTIONS, "{query}: each connection once");
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            ids,
            "{query}: every connection"
        );
    }
    let (other, _) = state_json(addr, "hub=elsewhere").await;
    assert_eq!(other["page"]["connections"], 0);
    assert_eq!(other["hubs"], serde_json::json!({}));
    drop(sockets);
    emulator.shutdown().await;
}
