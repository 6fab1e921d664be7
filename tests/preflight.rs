//! The abuse-protection handshake (spec §2, issue decision 1): `OPTIONS` with
//! `WebHook-Request-Origin` answers `200` with one `WebHook-Allowed-Origin`
//! line, or `400` with an empty body.

mod common;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use common::{call, call_count, call_logged, Answer, Recorder, CONN_STR, HOST, KEY};
use webpubsub::{testing, EventRouter};

fn router_allowing(origins: &[&str]) -> (EventRouter, common::Calls) {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let mut builder = EventRouter::builder().hub("chat", recorder).access_key(KEY);
    for origin in origins {
        builder = builder.allowed_origin(origin);
    }
    (builder.build().expect("valid router"), calls)
}

/// An `OPTIONS` request carrying each of `origin_lines` as its own
/// `WebHook-Request-Origin` line (and `ce-awpsversion`).
fn preflight_lines(origin_lines: &[&str]) -> Request<Body> {
    let mut request = testing::preflight(origin_lines[0]);
    for line in &origin_lines[1..] {
        request.headers_mut().append(
            "webhook-request-origin",
            HeaderValue::from_str(line).unwrap(),
        );
    }
    request
}

fn assert_allowed(answer: &Answer, expected: &str) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header_all("webhook-allowed-origin"),
        [expected],
        "exactly one WebHook-Allowed-Origin line"
    );
    assert!(answer.body.is_empty(), "{answer:?}");
}

fn assert_refused(answer: &Answer) {
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.is_empty(),
        "refusal body must be empty: {answer:?}"
    );
    assert!(answer.header_all("webhook-allowed-origin").is_empty());
}

#[tokio::test]
async fn preflight_without_configured_origins_allows_everyone_with_star() {
    let (router, _) = router_allowing(&[]);
    let answer = call(&router, testing::preflight("anything.webpubsub.azure.com")).await;
    assert_allowed(&answer, "*");
}

#[tokio::test]
async fn allowed_origin_star_answers_star_even_next_to_named_hosts() {
    let (router, _) = router_allowing(&["a.webpubsub.azure.com", "*"]);
    let answer = call(&router, testing::preflight("elsewhere.example.com")).await;
    assert_allowed(&answer, "*");
}

#[tokio::test]
async fn preflight_from_allowed_host_echoes_that_host_on_one_line() {
    let router = EventRouter::builder()
        .hub("chat", Recorder::new())
        .connection_string(CONN_STR)
        .build()
        .unwrap();
    let answer = call(&router, testing::preflight(HOST)).await;
    assert_allowed(&answer, HOST);
    assert_eq!(answer.header("content-length").as_deref(), Some("0"));
}

#[tokio::test]
async fn preflight_from_a_host_configured_with_endpoint_is_allowed() {
    let router = EventRouter::builder()
        .hub("chat", Recorder::new())
        .endpoint("east.webpubsub.azure.com", KEY)
        .build()
        .unwrap();
    assert_allowed(
        &call(&router, testing::preflight("east.webpubsub.azure.com")).await,
        "east.webpubsub.azure.com",
    );
    assert_refused(&call(&router, testing::preflight("west.webpubsub.azure.com")).await);
}

#[tokio::test]
async fn every_configured_connection_string_host_is_allowed() {
    let router = EventRouter::builder()
        .hub("chat", Recorder::new())
        .connection_string("Endpoint=https://one.webpubsub.azure.com;AccessKey=k1")
        .connection_string("Endpoint=https://two.webpubsub.azure.com:443;AccessKey=k2")
        .build()
        .unwrap();
    for host in ["one.webpubsub.azure.com", "two.webpubsub.azure.com"] {
        assert_allowed(&call(&router, testing::preflight(host)).await, host);
    }
    assert_refused(&call(&router, testing::preflight("three.webpubsub.azure.com")).await);
}

#[tokio::test]
async fn preflight_matches_hosts_case_insensitively() {
    let (router, _) = router_allowing(&["Demo.WebPubSub.Azure.com"]);
    let answer = call(&router, testing::preflight("DEMO.webpubsub.azure.COM")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let echoed = answer.header_all("webhook-allowed-origin");
    assert_eq!(echoed.len(), 1);
    assert!(echoed[0].eq_ignore_ascii_case(HOST), "{echoed:?}");
}

#[tokio::test]
async fn several_origins_in_one_header_are_answered_with_the_allowed_one() {
    let (router, _) = router_allowing(&["b.webpubsub.azure.com"]);
    let request = testing::preflight("a.webpubsub.azure.com, b.webpubsub.azure.com");
    assert_allowed(&call(&router, request).await, "b.webpubsub.azure.com");

    // Without the space, and with the allowed host first.
    let request = testing::preflight("b.webpubsub.azure.com,a.webpubsub.azure.com");
    assert_allowed(&call(&router, request).await, "b.webpubsub.azure.com");
}

#[tokio::test]
async fn several_origin_header_lines_are_answered_with_the_allowed_one() {
    let (router, _) = router_allowing(&["b.webpubsub.azure.com"]);
    let request = preflight_lines(&["a.webpubsub.azure.com", "b.webpubsub.azure.com"]);
    assert_allowed(&call(&router, request).await, "b.webpubsub.azure.com");
}

#[tokio::test]
async fn several_allowed_origins_in_a_request_still_give_one_answer_line() {
    let (router, _) = router_allowing(&["a.webpubsub.azure.com", "b.webpubsub.azure.com"]);
    let request = preflight_lines(&[
        "a.webpubsub.azure.com, b.webpubsub.azure.com",
        "b.webpubsub.azure.com",
    ]);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200);
    let lines = answer.header_all("webhook-allowed-origin");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        ["a.webpubsub.azure.com", "b.webpubsub.azure.com"].contains(&lines[0].as_str()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn preflight_from_unknown_origin_is_refused_with_400_and_empty_body() {
    let (router, calls) = router_allowing(&[HOST]);
    let (answer, logs) = call_logged(&router, testing::preflight("evil.example.com")).await;
    assert_refused(&answer);
    assert_eq!(call_count(&calls), 0);
    common::assert_one_rejection_logged(&logs, 400, tracing::Level::DEBUG);
}

#[tokio::test]
async fn preflight_without_origin_header_is_refused_with_400_and_empty_body() {
    for origins in [&[][..], &[HOST][..], &["*"][..]] {
        let (router, calls) = router_allowing(origins);
        let mut request = testing::preflight(HOST);
        request.headers_mut().remove("webhook-request-origin");
        assert_refused(&call(&router, request).await);
        assert_eq!(call_count(&calls), 0);
    }
}

#[tokio::test]
async fn preflight_with_empty_origin_is_refused_when_hosts_are_configured() {
    let (router, _) = router_allowing(&[HOST]);
    assert_refused(&call(&router, testing::preflight("")).await);
}

#[tokio::test]
async fn preflight_with_empty_origin_is_allowed_when_every_origin_is() {
    let (router, _) = router_allowing(&[]);
    assert_allowed(&call(&router, testing::preflight("")).await, "*");
}

#[tokio::test]
async fn preflight_is_answered_without_ce_awpsversion() {
    let (router, _) = router_allowing(&[HOST]);
    let mut request = testing::preflight(HOST);
    assert!(request.headers_mut().remove("ce-awpsversion").is_some());
    assert_allowed(&call(&router, request).await, HOST);

    let mut request = testing::preflight("evil.example.com");
    request.headers_mut().remove("ce-awpsversion");
    assert_refused(&call(&router, request).await);
}

#[tokio::test]
async fn preflight_is_answered_on_any_path_under_the_mount() {
    let (router, calls) = router_allowing(&[HOST]);
    let app = axum::Router::new().nest_service("/eventhandler", router);
    for path in [
        "/eventhandler",
        "/eventhandler/",
        "/eventhandler/chat/validate",
        "/eventhandler/chat/validate?x=1",
        "/eventhandler/a/b/c/d",
    ] {
        let mut request = testing::preflight(HOST);
        *request.uri_mut() = path.parse().unwrap();
        let answer = call(&app, request).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(
            answer.header_all("webhook-allowed-origin"),
            [HOST],
            "{path}"
        );
    }
    assert_eq!(
        call_count(&calls),
        0,
        "a preflight never reaches the handler"
    );
}

#[tokio::test]
async fn preflight_is_answered_by_a_router_that_skips_signatures() {
    let router = EventRouter::builder()
        .hub("chat", Recorder::new())
        .allowed_origin(HOST)
        .insecure_skip_signature_check()
        .build()
        .unwrap();
    assert_allowed(&call(&router, testing::preflight(HOST)).await, HOST);
    assert_refused(&call(&router, testing::preflight("evil.example.com")).await);
}

#[tokio::test]
async fn preflight_needs_no_signature_even_when_keys_are_configured() {
    let (router, _) = router_allowing(&[HOST]);
    let request = testing::preflight(HOST);
    assert!(request.headers().get("ce-signature").is_none());
    assert_eq!(request.method(), Method::OPTIONS);
    assert_allowed(&call(&router, request).await, HOST);
}
