//! In-process cost of one upstream event, without sockets or HTTP parsing.
//!
//! - `decode/*`: [`decode_event`] alone, on a prebuilt `HeaderMap` + `Bytes`.
//! - `router/*`: the whole pipeline — validate (preflight or HMAC
//!   `ce-signature`), read the body, decode, dispatch to the handler, encode —
//!   through a real [`EventRouter`], one fresh `http::Request` per event.
//!   `router/build_request_only` (connect, also right for bad_signature),
//!   `router/build_request_only_message` and `router/build_request_only_preflight`
//!   time building that request alone, so it can be subtracted.
//!   `router/axum_*` put the router behind an `axum::Router` (as
//!   `examples/bench_server.rs` does) and `router/bare_axum_*` are the load
//!   harness's bare axum baseline on the same requests: the difference of
//!   the two is what the crate adds per event.
//!
//! - `dispatch/*`: the `#[event_handler]` macro against the hand-written
//!   `match` it replaces, both answering the same eight user events: the
//!   handler's `user_event` called directly on a prebuilt request
//!   (`*_direct`), and through the whole router (`*_router`).
//!
//! Requests, key and handler are those of the load harness
//! (`../shared/bench/lua/*.lua`, `../shared/bench/express/server.js`), so
//! these numbers sit next to the `wrk` ones.
//!
//! Run with `cargo bench --bench pipeline`; `cargo test --benches` runs each
//! benchmark once as a smoke test.

// `criterion_group!` defines an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;
use webpubsub::config::AccessKey;
use webpubsub::upstream::decode_event;
use webpubsub::{
    async_trait, testing, ConnectEventRequest, ConnectEventResponse, EventErrorResponse,
    EventHandler, EventRouter, UserEventRequest, UserEventResponse,
};

/// `../shared/bench/lua/signature.lua`
const KEY: &str = "anAccessKeyForBenchmarks0123456789";
const CONNECTION_ID: &str = "bench-conn-0001";
const SIGNATURE: &str = "sha256=b452c14c2a0edbd9ae834b931adb3a8c33f9d0be95ecee51b353f7843208535e";
/// Same length, one hex digit changed.
const BAD_SIGNATURE: &str =
    "sha256=c452c14c2a0edbd9ae834b931adb3a8c33f9d0be95ecee51b353f7843208535e";
/// The signed part of a client access token, replayed as a connection id.
const FORGED_ID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwOi8vbG9jYWxob3N0L2NsaWVudC9odWJzL2NoYXQiLCJzdWIiOiJtYWxsb3J5In0";
const ORIGIN: &str = "localhost";
const PATH: &str = "/api/webpubsub/hubs/chat/";

/// `../shared/bench/lua/connect.lua`
const CONNECT_BODY: &str = r#"{"claims":{"sub":["user1"]},"query":{"id":["1"]},"headers":{},"subprotocols":[],"clientCertificates":[]}"#;
/// `../shared/bench/lua/message.lua`
const MESSAGE_BODY: &str = "hello";
/// A JSON message of about the same size, for `decode/message_json`.
const MESSAGE_JSON_BODY: &str = r#"{"text":"hello","n":1}"#;

/// The express anchor's behaviour (`../shared/bench/express/server.js`).
struct Anchor;

#[async_trait]
impl EventHandler for Anchor {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user_id = req
            .claim("sub")
            .or_else(|| req.query_value("id"))
            .unwrap_or(&req.context.connection_id)
            .to_owned();
        Ok(ConnectEventResponse::new()
            .user_id(user_id)
            .groups(["lobby"])
            .roles([""; 0]))
    }

    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        if req.context.event_name == "message" {
            Ok(UserEventResponse::from(req.data))
        } else {
            Ok(UserEventResponse::none())
        }
    }
}

/// Eight user events answered by a hand-written `match`.
struct HandWritten;

#[async_trait]
impl EventHandler for HandWritten {
    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        match req.context.event_name.as_str() {
            "join" | "leave" | "typing" | "read" | "react" | "edit" | "delete" => {
                Ok(UserEventResponse::none())
            }
            "message" => Ok(UserEventResponse::from(req.data)),
            _ => Ok(UserEventResponse::none()),
        }
    }
}

/// The same `match`, calling one method per event as the derived code does.
struct HandWrittenCalls;

impl HandWrittenCalls {
    async fn presence(&self) {}

    async fn edits(&self, _req: UserEventRequest) {}

    async fn message(&self, req: UserEventRequest) -> UserEventResponse {
        UserEventResponse::from(req.data)
    }
}

#[async_trait]
impl EventHandler for HandWrittenCalls {
    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        match req.context.event_name.as_str() {
            "join" | "leave" | "typing" | "read" => {
                self.presence().await;
                Ok(UserEventResponse::none())
            }
            "react" | "edit" | "delete" => {
                self.edits(req).await;
                Ok(UserEventResponse::none())
            }
            "message" => Ok(self.message(req).await),
            _ => Ok(UserEventResponse::none()),
        }
    }
}

/// The same eight user events, derived by `#[event_handler]`.
struct Derived;

#[webpubsub::event_handler]
impl Derived {
    #[user_event("join")]
    #[user_event("leave")]
    #[user_event("typing")]
    #[user_event("read")]
    async fn presence(&self) {}

    #[user_event("react")]
    #[user_event("edit")]
    #[user_event("delete")]
    async fn edits(&self, _req: UserEventRequest) {}

    #[user_event("message")]
    async fn message(&self, req: UserEventRequest) -> UserEventResponse {
        UserEventResponse::from(req.data)
    }
}

/// The handler of `bench/load/axum-baseline`.
async fn bare_answer(body: Bytes) -> impl axum::response::IntoResponse {
    black_box(body.len());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"ok":true}"#,
    )
}

fn router() -> EventRouter {
    EventRouter::builder()
        .hub("chat", Anchor)
        .endpoint(ORIGIN, KEY)
        .build()
        .expect("a valid benchmark router")
}

/// The CloudEvents headers of `common.lua`, plus `extra`.
fn ce_headers(ce_type: &str, event_name: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let source = format!("/hubs/chat/client/{CONNECTION_ID}");
    let fields = [
        ("ce-specversion", "1.0"),
        ("ce-type", ce_type),
        ("ce-source", source.as_str()),
        ("ce-id", "1"),
        ("ce-time", "2024-01-01T00:00:00Z"),
        ("ce-awpsversion", "1.0"),
        ("ce-hub", "chat"),
        ("ce-connectionId", CONNECTION_ID),
        ("ce-eventName", event_name),
        ("ce-signature", SIGNATURE),
        ("WebHook-Request-Origin", ORIGIN),
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in fields.iter().chain(extra) {
        headers.insert(
            HeaderName::try_from(*name).expect("header name"),
            HeaderValue::try_from(*value).expect("header value"),
        );
    }
    headers
}

fn connect_headers() -> HeaderMap {
    ce_headers(
        "azure.webpubsub.sys.connect",
        "connect",
        &[("content-type", "application/json")],
    )
}

fn message_headers(content_type: &str) -> HeaderMap {
    ce_headers(
        "azure.webpubsub.user.message",
        "message",
        &[("ce-userId", "user1"), ("content-type", content_type)],
    )
}

/// One request as the load harness sends it: everything prebuilt, so
/// [`Template::request`] only clones headers and wraps the body.
#[derive(Clone)]
struct Template {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    fn post(headers: HeaderMap, body: &'static str) -> Self {
        Self {
            method: Method::POST,
            headers,
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    /// `../shared/bench/lua/preflight.lua`
    fn preflight() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-request-origin", HeaderValue::from_static(ORIGIN));
        headers.insert("ce-awpsversion", HeaderValue::from_static("1.0"));
        Self {
            method: Method::OPTIONS,
            headers,
            body: Bytes::new(),
        }
    }

    fn request(&self) -> Request<Body> {
        let mut request = Request::new(Body::from(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = axum::http::Uri::from_static(PATH);
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Times `iters` runs of `routine` inside one `block_on` of a current-thread
/// runtime (what criterion's `to_async` does, without its extra dependency).
fn iter_async<F, Fut, T>(b: &mut Bencher<'_>, rt: &Runtime, mut routine: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    b.iter_custom(|iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(routine().await);
            }
            start.elapsed()
        })
    });
}

/// Sends `template` once and checks the answer, so a benchmark never
/// silently measures a refusal it did not mean to.
fn check(rt: &Runtime, template: &Template, status: u16, body: &str) {
    let (parts, bytes) = rt.block_on(async {
        let response = router().oneshot(template.request()).await;
        testing::read_body(response.expect("infallible")).await
    });
    assert_eq!(parts.status, status, "{:?}", template.headers);
    assert_eq!(String::from_utf8_lossy(&bytes), body);
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let cases = [
        ("connect", connect_headers(), CONNECT_BODY),
        ("message_text", message_headers("text/plain"), MESSAGE_BODY),
        (
            "message_json",
            message_headers("application/json"),
            MESSAGE_JSON_BODY,
        ),
    ];
    for (name, headers, body) in cases {
        let body = Bytes::from_static(body.as_bytes());
        decode_event(&headers, body.clone()).expect("the benchmark event decodes");
        group.bench_function(name, |b| {
            b.iter(|| decode_event(black_box(&headers), black_box(body.clone())));
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    assert_eq!(
        AccessKey::new(KEY).unwrap().signature(CONNECTION_ID),
        SIGNATURE,
        "signature.lua no longer matches its key"
    );

    let connect = Template::post(connect_headers(), CONNECT_BODY);
    let message = Template::post(message_headers("text/plain"), MESSAGE_BODY);
    let preflight = Template::preflight();
    let mut bad_signature = connect.clone();
    bad_signature
        .headers
        .insert("ce-signature", HeaderValue::from_static(BAD_SIGNATURE));

    check(
        &rt,
        &connect,
        200,
        r#"{"userId":"user1","groups":["lobby"],"roles":[]}"#,
    );
    let mut forged = connect.clone();
    forged
        .headers
        .insert("ce-connectionid", HeaderValue::from_static(FORGED_ID));
    check(&rt, &message, 200, MESSAGE_BODY);
    check(&rt, &preflight, 200, "");
    check(
        &rt,
        &forged,
        401,
        "ce-connectionId has the shape of a signed token and is never signed by the service",
    );
    check(
        &rt,
        &bad_signature,
        401,
        "ce-signature does not match any configured access key",
    );

    let mut group = c.benchmark_group("router");
    // What to subtract: building the request (12 headers for connect and
    // bad_signature, 13 for message, 2 for preflight).
    for (name, template) in [
        ("build_request_only", &connect),
        ("build_request_only_message", &message),
        ("build_request_only_preflight", &preflight),
    ] {
        group.bench_function(name, |b| {
            iter_async(b, &rt, || async { template.request() });
        });
    }
    let cases = [
        ("connect", &connect),
        ("message", &message),
        ("preflight", &preflight),
        ("bad_signature", &bad_signature),
        ("forged_from_token", &forged),
    ];
    for (name, template) in cases {
        let service = router();
        group.bench_function(name, |b| {
            // A clone per request (two `Arc` increments), as axum's `Route` does.
            iter_async(b, &rt, || service.clone().oneshot(template.request()));
        });
    }
    // The load harness's two servers in process: the router behind an axum
    // `Router` as `examples/bench_server.rs` mounts it, and the bare axum
    // app of `bench/load/axum-baseline` (reads the body, answers a fixed
    // JSON), on the same requests. Their difference is what the crate adds
    // per event, building and dropping the request included in both.
    let in_axum = axum::Router::new().route_service(PATH, router());
    let bare = axum::Router::new().route(PATH, axum::routing::any(bare_answer));
    for (name, app, template) in [
        ("axum_connect", &in_axum, &connect),
        ("axum_message", &in_axum, &message),
        ("bare_axum_connect", &bare, &connect),
        ("bare_axum_message", &bare, &message),
    ] {
        group.bench_function(name, |b| {
            iter_async(b, &rt, || app.clone().oneshot(template.request()));
        });
    }
    group.finish();

    // The guard alone, on a service id (no `.`: the common case) and on a
    // token's signed part (decoded and parsed).
    let mut group = c.benchmark_group("token_guard");
    for (name, id) in [("service_id", CONNECTION_ID), ("token_shaped", FORGED_ID)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                webpubsub::__fuzz::is_token_signing_input(std::hint::black_box(id.as_bytes()))
            });
        });
    }
    group.finish();
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (headers, body) = (message_headers("text/plain"), Bytes::from_static(b"hello"));
    let webpubsub::events::Event::UserEvent(request) =
        decode_event(&headers, body).expect("the benchmark event decodes")
    else {
        unreachable!("a user event")
    };
    let handlers: [(&str, std::sync::Arc<dyn EventHandler>); 3] = [
        ("hand_written", std::sync::Arc::new(HandWritten)),
        ("hand_written_calls", std::sync::Arc::new(HandWrittenCalls)),
        ("derived", std::sync::Arc::new(Derived)),
    ];
    let message = Template::post(message_headers("text/plain"), MESSAGE_BODY);
    let mut group = c.benchmark_group("dispatch");
    for (name, handler) in handlers {
        let reply = rt.block_on(handler.user_event(request.clone()));
        assert_eq!(
            reply
                .expect("a reply")
                .data()
                .map(|d| d.as_bytes().to_vec()),
            Some(b"hello".to_vec()),
            "{name} echoes `message`"
        );
        group.bench_function(format!("{name}_direct"), |b| {
            iter_async(b, &rt, || handler.user_event(request.clone()));
        });
        let service = EventRouter::builder()
            .hub("chat", std::sync::Arc::clone(&handler))
            .endpoint(ORIGIN, KEY)
            .build()
            .expect("a valid benchmark router");
        group.bench_function(format!("{name}_router"), |b| {
            iter_async(b, &rt, || service.clone().oneshot(message.request()));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = decode, pipeline, dispatch
}
criterion_main!(benches);
