//! Bad input never reaches the handler (issue decisions 3, item 6): one table
//! of requests, each with the status and a fragment of the plain-text body it
//! must get, walked by one loop that also checks the tracing event.

mod common;

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use bytes::Bytes;
use common::{call, call_count, call_logged, Recorder, KEY};
use webpubsub::{testing, EventRouter, UserEventResponse};

/// The body limit of the table's router.
const LIMIT: usize = 1024;

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: u16,
    body: &'static str,
}

fn case(name: &'static str, request: Request<Body>, status: u16, body: &'static str) -> Case {
    Case {
        name,
        request,
        status,
        body,
    }
}

/// A correctly signed request, then edited by `edit`.
fn edited(event: testing::TestEvent, edit: impl FnOnce(&mut Request<Body>)) -> Request<Body> {
    let mut request = event.sign(KEY);
    edit(&mut request);
    request
}

fn without(event: testing::TestEvent, header: &'static str) -> Request<Body> {
    edited(event, |r| {
        assert!(r.headers_mut().remove(header).is_some(), "{header} was set");
    })
}

fn with_header(event: testing::TestEvent, header: &'static str, value: &[u8]) -> Request<Body> {
    let value = HeaderValue::from_bytes(value).unwrap();
    edited(event, |r| {
        r.headers_mut().insert(header, value);
    })
}

fn with_method(method: Method) -> Request<Body> {
    edited(testing::connect("chat", "c1"), |r| *r.method_mut() = method)
}

fn with_body(event: testing::TestEvent, body: Body) -> Request<Body> {
    edited(event, |r| *r.body_mut() = body)
}

/// A body streamed in 100-byte chunks with no Content-Length (chunked on the wire).
fn streamed(total: usize) -> Body {
    let chunks: Vec<Result<Bytes, Infallible>> = (0..total)
        .step_by(100)
        .map(|start| Ok(Bytes::from(vec![b'a'; (total - start).min(100)])))
        .collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// A body whose stream fails after its first chunk.
fn broken_stream() -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"hel")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "peer went away",
        )),
    ];
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn text(data: &str) -> testing::TestEvent {
    testing::user_event("chat", "c1", "message").text(data)
}

#[rustfmt::skip] // one row per line, as a table
fn cases() -> Vec<Case> {
    let connect = || testing::connect("chat", "c1");
    let big = "x".repeat(LIMIT + 1);
    vec![
        // --- ce-* headers
        case("missing ce-type", without(connect(), "ce-type"), 400, "missing header ce-type"),
        case("empty ce-type", with_header(connect(), "ce-type", b""), 400, "missing header ce-type"),
        case("missing ce-hub", without(connect(), "ce-hub"), 400, "missing header ce-hub"),
        case("blank ce-hub", with_header(connect(), "ce-hub", b"  "), 400, "missing header ce-hub"),
        case("missing ce-connectionId", without(connect(), "ce-connectionid"), 400, "missing header ce-connectionId"),
        case("empty ce-connectionId", with_header(connect(), "ce-connectionid", b""), 400, "missing header ce-connectionId"),
        case("unknown system ce-type", with_header(connect(), "ce-type", b"azure.webpubsub.sys.foo"), 400, "unknown ce-type"),
        case("foreign ce-type", with_header(connect(), "ce-type", b"com.example.object.created"), 400, "unknown ce-type"),
        case("user ce-type without a name", with_header(text("x"), "ce-type", b"azure.webpubsub.user."), 400, "unknown ce-type"),
        case("repeated ce-hub", connect().header("ce-hub", "chat").sign(KEY), 400, "ce-hub appears more than once"),
        case("repeated ce-type", connect().header("ce-type", "azure.webpubsub.sys.connect").sign(KEY), 400, "ce-type appears more than once"),
        case("repeated ce-userId", connect().user("a").header("ce-userId", "b").sign(KEY), 400, "ce-userId appears more than once"),
        case("non-UTF-8 ce-userId", with_header(connect(), "ce-userid", b"al\xffce"), 400, "ce-userId is not valid UTF-8"),
        case("non-UTF-8 ce-hub", with_header(connect(), "ce-hub", b"ch\xe4t"), 400, "ce-hub is not valid UTF-8"),
        case("very long unknown ce-type", with_header(connect(), "ce-type", "t".repeat(5000).as_bytes()), 400, "unknown ce-type `tttt"),
        case("repeated Content-Type", text("x").header("content-type", "text/plain").sign(KEY), 400, "Content-Type appears more than once"),
        case("non-UTF-8 ce-eventName", with_header(text("x"), "ce-eventname", b"\xc3\x28"), 400, "ce-eventName is not valid UTF-8"),
        case("non-UTF-8 ce-source", with_header(connect(), "ce-source", b"/hubs/ch\xe4t"), 400, "ce-source is not valid UTF-8"),
        case("non-UTF-8 ce-id", with_header(text("x"), "ce-id", b"\xff"), 400, "ce-id is not valid UTF-8"),
        case("non-UTF-8 ce-time", with_header(connect(), "ce-time", b"2026\xc3"), 400, "ce-time is not valid UTF-8"),
        // --- connect body
        case("connect body not JSON", connect().raw_body("{").sign(KEY), 400, "invalid JSON body"),
        case("connect body a JSON number", connect().raw_body("42").sign(KEY), 400, "invalid JSON body"),
        case("connect body a JSON string", connect().raw_body("\"hi\"").sign(KEY), 400, "invalid JSON body"),
        case("connect claims not an object", connect().raw_body(r#"{"claims":[1]}"#).sign(KEY), 400, "invalid JSON body"),
        case("connect body with trailing garbage", connect().raw_body("{} x").sign(KEY), 400, "invalid JSON body"),
        // --- ce-connectionState
        case("state not base64", connect().state_header("%%%").sign(KEY), 400, "ce-connectionState is not base64"),
        case("state base64 of an array", connect().state_header("WzFd").sign(KEY), 400, "not base64 of a JSON object"),
        case("state base64 of non-JSON", text("x").state_header("bm9wZQ==").sign(KEY), 400, "not base64 of a JSON object"),
        case("repeated state header", connect().state("a", 1).header("ce-connectionState", "e30=").sign(KEY), 400, "ce-connectionState appears more than once"),
        // --- user event payloads
        case("unsupported Content-Type", text("x").content_type(Some("application/xml")).sign(KEY), 400, "unsupported Content-Type `application/xml`"),
        case("form Content-Type", text("a=b").content_type(Some("application/x-www-form-urlencoded")).sign(KEY), 400, "unsupported Content-Type"),
        case("unsupported text charset", text("x").content_type(Some("text/plain; charset=iso-8859-1")).sign(KEY), 400, "unsupported charset `iso-8859-1`"),
        case("unsupported JSON charset", text("1").content_type(Some("application/json; charset=utf-16")).sign(KEY), 400, "unsupported charset"),
        case("non-UTF-8 text", text("").raw_body(&b"caf\xe9"[..]).sign(KEY), 400, "text/plain body is not valid UTF-8"),
        case("invalid JSON user event", text("").raw_body("{\"a\":").content_type(Some("application/json")).sign(KEY), 400, "invalid JSON body"),
        case("empty JSON user event", text("").content_type(Some("application/json")).sign(KEY), 400, "invalid JSON body"),
        case("two JSON values", text("").raw_body("1 2").content_type(Some("application/json")).sign(KEY), 400, "invalid JSON body"),
        // --- other event bodies
        case("disconnected body not JSON", testing::disconnected("chat", "c1").raw_body("bye").sign(KEY), 400, "invalid JSON body"),
        case("group event without group", testing::group_joined("chat", "c1", "g").raw_body("{}").sign(KEY), 400, "group"),
        case("group event with empty body", testing::group_left("chat", "c1", "g").raw_body("").sign(KEY), 400, "group"),
        case("group event with non-string group", testing::group_joined("chat", "c1", "g").raw_body(r#"{"group":1}"#).sign(KEY), 400, "invalid JSON body"),
        // --- routing
        case("hub not served", testing::connect("other", "c1").sign(KEY), 404, "hub `other` is not served here"),
        case("very long hub not served", testing::connect(&"h".repeat(5000), "c1").sign(KEY), 404, "is not served here"),
        case("GET", with_method(Method::GET), 405, "method not allowed"),
        case("PUT", with_method(Method::PUT), 405, "method not allowed"),
        case("DELETE", with_method(Method::DELETE), 405, "method not allowed"),
        case("PATCH", with_method(Method::PATCH), 405, "method not allowed"),
        // --- size
        case(
            "body over the limit with Content-Length",
            edited(text(&big), |r| {
                r.headers_mut().insert("content-length", HeaderValue::from(LIMIT + 1));
            }),
            413,
            "body exceeds 1024 bytes",
        ),
        case(
            "Content-Length over the limit",
            edited(text("small"), |r| {
                r.headers_mut().insert("content-length", HeaderValue::from(u64::MAX));
            }),
            413,
            "body exceeds 1024 bytes",
        ),
        case("streamed body over the limit", with_body(text(""), streamed(LIMIT + 1)), 413, "body exceeds 1024 bytes"),
        case("big streamed body", with_body(text(""), streamed(50 * LIMIT)), 413, "body exceeds 1024 bytes"),
        case(
            "body longer than its Content-Length",
            edited(text(&big), |r| {
                r.headers_mut().insert("content-length", HeaderValue::from(10));
            }),
            413,
            "body exceeds 1024 bytes",
        ),
        case("body stream fails", with_body(text(""), broken_stream()), 400, "could not read the request body"),
    ]
}

fn table_router() -> (EventRouter, common::Calls) {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .access_key(KEY)
        .body_limit(LIMIT)
        .build()
        .unwrap();
    (router, calls)
}

#[tokio::test]
async fn bad_input_is_refused_with_its_status_and_a_short_text_body() {
    let (router, calls) = table_router();
    let cases = cases();
    let mut failures = Vec::new();
    for Case {
        name,
        request,
        status,
        body,
    } in cases
    {
        let (answer, logs) = call_logged(&router, request).await;
        let mut problems = Vec::new();
        if answer.status != status {
            problems.push(format!("status {} (want {status})", answer.status));
        }
        let text = answer.text();
        if !text.contains(body) {
            problems.push(format!("body {text:?} lacks {body:?}"));
        }
        if text.lines().count() != 1 || text.len() > 200 {
            problems.push(format!("body {text:?} is not one short line"));
        }
        if answer.header("content-type").as_deref() != Some("text/plain; charset=utf-8") {
            problems.push(format!("content-type {:?}", answer.header("content-type")));
        }
        if status == 405 {
            let allow = answer.header("allow").unwrap_or_default();
            if !(allow.contains("POST") && allow.contains("OPTIONS")) {
                problems.push(format!("Allow header {allow:?}"));
            }
        }
        let rejections = logs.rejections();
        let logged_status = rejections
            .iter()
            .filter(|e| e.field("status") == Some(status.to_string().as_str()))
            .count();
        if rejections.len() != 1 || logged_status != 1 {
            problems.push(format!("rejection logs {rejections:?}"));
        }
        if call_count(&calls) != 0 {
            problems.push("the handler was called".to_owned());
            calls.lock().unwrap().clear();
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn refusals_are_logged_at_warn_except_wrong_methods_at_debug() {
    let (router, _) = table_router();
    let (answer, logs) =
        call_logged(&router, without(testing::connect("chat", "c1"), "ce-type")).await;
    assert_eq!(answer.status, 400);
    common::assert_one_rejection_logged(&logs, 400, tracing::Level::WARN);
    let event = &logs.rejections()[0];
    assert_eq!(event.field("reason"), Some("missing header ce-type"));
    assert_eq!(event.field("hub"), Some("chat"));

    let (answer, logs) = call_logged(&router, with_method(Method::GET)).await;
    assert_eq!(answer.status, 405);
    common::assert_one_rejection_logged(&logs, 405, tracing::Level::DEBUG);
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_accepted() {
    let recorder = Recorder::new().on_user_event(|req| Ok(req.data.clone().into()));
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .access_key(KEY)
        .body_limit(LIMIT)
        .build()
        .unwrap();
    let exact = "y".repeat(LIMIT);
    let request = edited(text(&exact), |r| {
        r.headers_mut()
            .insert("content-length", HeaderValue::from(LIMIT));
    });
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.body.len(), LIMIT);

    let answer = call(&router, with_body(text(""), streamed(LIMIT))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.len(), LIMIT);
    assert_eq!(call_count(&calls), 2);
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    assert_eq!(webpubsub::router::DEFAULT_BODY_LIMIT, 1024 * 1024);
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = common::router(recorder);
    let mib = webpubsub::router::DEFAULT_BODY_LIMIT;
    let answer = call(&router, with_body(text(""), streamed(mib))).await;
    assert_eq!(answer.status, 204);
    let answer = call(&router, with_body(text(""), streamed(mib + 1))).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.text(), "body exceeds 1048576 bytes");
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn head_and_other_methods_do_not_need_a_signature_to_get_405() {
    let (router, calls) = table_router();
    for method in [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::TRACE,
    ] {
        let request = Request::builder()
            .method(method.clone())
            .uri("/")
            .body(Body::empty())
            .unwrap();
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(
            answer.header("allow").as_deref(),
            Some("OPTIONS, POST"),
            "{method}"
        );
    }
    assert_eq!(call_count(&calls), 0);
}

#[tokio::test]
async fn the_router_keeps_serving_after_bad_input() {
    let (router, calls) = table_router();
    for Case { request, .. } in cases() {
        let _ = call(&router, request).await;
    }
    calls.lock().unwrap().clear();
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 204);
    assert_eq!(call_count(&calls), 1);
}

/// Bodies that are JSON arrays, not the objects the spec describes (§5, §6).
/// serde's derived structs also accept a sequence of their fields in order,
/// so `[{"sub":["mallory"]}]` decodes as the claims of a connect.
#[tokio::test]
async fn system_event_bodies_that_are_json_arrays_are_refused() {
    let rows = [
        (
            "empty array connect",
            testing::connect("chat", "c1").raw_body("[]"),
        ),
        (
            "positional claims",
            testing::connect("chat", "c1").raw_body(r#"[{"sub":["mallory"]}]"#),
        ),
        (
            "positional disconnect reason",
            testing::disconnected("chat", "c1").raw_body(r#"["gone"]"#),
        ),
        (
            "positional group",
            testing::group_joined("chat", "c1", "g").raw_body(r#"["admins"]"#),
        ),
    ];
    let (router, calls) = table_router();
    let mut failures = Vec::new();
    for (name, event) in rows {
        let answer = call(&router, event.sign(KEY)).await;
        if answer.status != 400 || !answer.text().contains("invalid JSON body") {
            failures.push(format!("{name}: {} {:?}", answer.status, answer.text()));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\nhandler saw {:#?}",
        calls.lock().unwrap()
    );
}

#[tokio::test]
async fn non_utf8_connection_id_is_refused_even_without_signature_checks() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .insecure_skip_signature_check()
        .build()
        .unwrap();
    let mut request = testing::connect("chat", "c1").request();
    request.headers_mut().insert(
        "ce-connectionid",
        HeaderValue::from_bytes(b"c\xff1").unwrap(),
    );
    let (answer, logs) = call_logged(&router, request).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.text(), "header ce-connectionId is not valid UTF-8");
    assert_eq!(call_count(&calls), 0);
    common::assert_one_rejection_logged(&logs, 400, tracing::Level::WARN);
}

#[tokio::test]
async fn deeply_nested_json_never_overflows_the_stack() {
    let recorder = Recorder::new().on_user_event(|req| {
        // Parsing it into a tree is the handler's choice; serde_json's depth limit refuses it.
        let _ = req.data.to_json_value()?;
        Ok(UserEventResponse::text("parsed"))
    });
    let calls = recorder.calls();
    let router = common::router(recorder);
    let depth = 400_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let claims = format!(
        r#"{{"claims":{{"sub":{}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );

    // Valid JSON: the payload is checked without recursion and handed over;
    // the handler's own parse fails with a 400.
    let event = text("")
        .raw_body(nested.clone())
        .content_type(Some("application/json"));
    let answer = call(&router, event.sign(KEY)).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().starts_with("invalid JSON payload"),
        "{}",
        answer.text()
    );
    assert_eq!(call_count(&calls), 1);

    // Not the connect body the spec describes.
    for body in [nested, claims] {
        let event = testing::connect("chat", "c1").raw_body(body);
        let answer = call(&router, event.sign(KEY)).await;
        assert_eq!(answer.status, 400, "{}", answer.text());
        assert!(
            answer.text().starts_with("invalid JSON body"),
            "{}",
            answer.text()
        );
    }
    assert_eq!(call_count(&calls), 1);
}
