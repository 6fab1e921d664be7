//! `ValidateUpstreamLayer` on its own, in front of an ordinary axum route.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::Method;
use axum::routing::post;
use common::{call, call_logged, CONN_STR, HOST, KEY};
use webpubsub::testing;
use webpubsub::upstream::ValidateUpstreamLayer;

fn app(reached: Arc<AtomicUsize>) -> axum::Router {
    let layer = ValidateUpstreamLayer::builder()
        .connection_string(CONN_STR)
        .build()
        .unwrap();
    axum::Router::new()
        .route(
            "/events",
            post(move || async move {
                reached.fetch_add(1, Ordering::SeqCst);
                "reached"
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn layer_lets_correctly_signed_events_through() {
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&reached));
    let request = testing::user_event("chat", "c1", "message")
        .text("hi")
        .uri("/events")
        .sign_as(CONN_STR);
    let answer = call(&app, request).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (200, "reached")
    );
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn layer_refuses_wrong_and_missing_signatures_before_the_route() {
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&reached));
    let wrong = testing::connect("chat", "c1")
        .uri("/events")
        .origin(HOST)
        .sign("nope");
    let (answer, logs) = call_logged(&app, wrong).await;
    assert_eq!(answer.status, 401);
    assert!(!answer.body.is_empty());
    common::assert_one_rejection_logged(&logs, 401, tracing::Level::WARN);

    let unsigned = testing::connect("chat", "c1")
        .uri("/events")
        .origin(HOST)
        .request();
    assert_eq!(call(&app, unsigned).await.status, 401);
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn layer_answers_the_handshake_itself() {
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&reached));
    let mut request = testing::preflight(HOST);
    *request.uri_mut() = "/events".parse().unwrap();
    let answer = call(&app, request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header_all("webhook-allowed-origin"), [HOST]);

    let mut request = testing::preflight("evil.example.com");
    *request.uri_mut() = "/events".parse().unwrap();
    let answer = call(&app, request).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.is_empty());
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn layer_passes_other_methods_through_untouched() {
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&reached));
    let mut request = testing::connect("chat", "c1").uri("/events").request();
    *request.method_mut() = Method::GET;
    // axum's own answer for a POST-only route, not a refusal of the layer.
    assert_eq!(call(&app, request).await.status, 405);
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn layer_with_plain_access_key_checks_requests_from_any_origin() {
    let layer = ValidateUpstreamLayer::builder()
        .access_key(KEY)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/", post(|| async { "ok" }))
        .layer(layer);
    let answer = call(&app, testing::connected("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 200);
    let answer = call(&app, testing::connected("chat", "c1").sign("other")).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn layer_service_exposes_the_wrapped_service() {
    let layer = ValidateUpstreamLayer::builder()
        .access_key(KEY)
        .build()
        .unwrap();
    let service = tower::Layer::layer(&layer, 42_u32);
    assert_eq!(*service.get_ref(), 42);
    assert_eq!(service.into_inner(), 42);
}
