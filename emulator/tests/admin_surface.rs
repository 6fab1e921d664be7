//! The emulator's admin surface — its Entra ID (discovery document, keys,
//! token endpoint) and its live view — answers only loopback peers, judged
//! by the socket address the listener saw, never by `Host`: the real
//! router called with axum's `MockConnectInfo` (the address a listener
//! would hand it), and with none at all.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use http::{Method, Request, StatusCode};
use webpubsub_emulator::{Emulator, EmulatorBuilder, DEFAULT_TENANT_ID};

use common::LogCapture;

/// A peer on another host (TEST-NET-1).
const REMOTE: &str = "192.0.2.7:50000";

/// Every admin route: method, path, body.
fn admin_routes() -> Vec<(Method, String)> {
    let tenant = DEFAULT_TENANT_ID;
    vec![
        (
            Method::GET,
            format!("/{tenant}/v2.0/.well-known/openid-configuration"),
        ),
        (Method::GET, format!("/{tenant}/discovery/v2.0/keys")),
        (Method::POST, format!("/{tenant}/oauth2/v2.0/token")),
        (Method::GET, "/_emulator".to_owned()),
        (Method::GET, "/_emulator/".to_owned()),
        (Method::GET, "/_emulator/api/state".to_owned()),
    ]
}

/// A request for `path` that names `localhost` as its `Host`; the token
/// endpoint's carries an empty form (a loopback peer gets `400` for it).
fn request(method: &Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap()
}

/// The router of `builder`, as served to a peer at `peer` (`None`: served
/// without connect info).
fn router(builder: EmulatorBuilder, peer: Option<&str>) -> axum::Router {
    let router = builder.build().unwrap().router();
    match peer {
        Some(peer) => router.layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap())),
        None => router,
    }
}

#[tokio::test]
async fn a_remote_peer_is_forbidden_every_admin_route_even_with_host_localhost() {
    let router = router(Emulator::builder(), Some(REMOTE));
    for (method, path) in admin_routes() {
        let capture = LogCapture::default();
        let answer = capture
            .run(common::call(&router, request(&method, &path)))
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        let body = answer.text();
        assert!(body.contains("loopback"), "{path}: {body}");
        assert!(body.contains("--allow-remote-admin"), "{path}: {body}");
        assert!(
            body.contains("EmulatorBuilder::insecure_allow_remote_admin(true)"),
            "{path}: the builder method as it is named: {body}"
        );
        assert!(!body.contains("issuer") && !body.contains("keys"), "{body}");
        let refusals = capture.with_target("webpubsub_emulator::admin");
        assert_eq!(refusals.len(), 1, "{path}: {refusals:#?}");
        assert_eq!(refusals[0].level, tracing::Level::WARN);
        assert_eq!(refusals[0].field("status"), Some("403"));
        assert_eq!(
            refusals[0].field("peer"),
            Some("192.0.2.7"),
            "{refusals:#?}"
        );
    }
    // The REST API is not an admin route: it answers with its own token check.
    let health = common::call(&router, request(&Method::GET, "/api/health")).await;
    assert_eq!(health.status, StatusCode::UNAUTHORIZED, "{}", health.text());
}

#[tokio::test]
async fn loopback_peers_are_served_every_admin_route() {
    for peer in [
        "127.0.0.1:40000",
        "127.9.9.9:1",
        "[::1]:40000",
        "[::ffff:127.0.0.1]:40000",
    ] {
        let router = router(Emulator::builder(), Some(peer));
        for (method, path) in admin_routes() {
            let answer = common::call(&router, request(&method, &path)).await;
            let expected = if method == Method::POST {
                StatusCode::BAD_REQUEST // the empty form
            } else {
                StatusCode::OK
            };
            assert_eq!(answer.status, expected, "{peer} {path}: {}", answer.text());
        }
    }
}

#[tokio::test]
async fn a_router_served_without_connect_info_fails_closed() {
    let router = router(Emulator::builder(), None);
    for (method, path) in admin_routes() {
        let answer = common::call(&router, request(&method, &path)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        let body = answer.text();
        assert!(
            body.contains("into_make_service_with_connect_info::<SocketAddr>()"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn ipv4_mapped_and_unspecified_addresses_are_judged_by_their_ip() {
    for peer in ["[::ffff:192.0.2.7]:1", "[::2]:1", "0.0.0.0:1", "10.0.0.1:1"] {
        let router = router(Emulator::builder(), Some(peer));
        let answer = common::call(&router, request(&Method::GET, "/_emulator/api/state")).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{peer}");
    }
}

#[tokio::test]
async fn opened_with_insecure_allow_remote_admin_a_remote_peer_is_served() {
    for peer in [Some(REMOTE), None] {
        let builder = Emulator::builder().insecure_allow_remote_admin(true);
        let router = router(builder, peer);
        for (method, path) in admin_routes() {
            let answer = common::call(&router, request(&method, &path)).await;
            let expected = if method == Method::POST {
                StatusCode::BAD_REQUEST // the empty form
            } else {
                StatusCode::OK
            };
            assert_eq!(
                answer.status,
                expected,
                "{peer:?} {path}: {}",
                answer.text()
            );
        }
    }
}

/// The emulator's own listener hands the router the peer's address: over
/// real HTTP on 127.0.0.1 the admin routes answer.
#[tokio::test]
async fn the_listener_tells_the_router_its_peer() {
    let running = Emulator::builder()
        .build()
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let response = reqwest::get(running.openid_configuration_url())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    running.shutdown().await;
}
