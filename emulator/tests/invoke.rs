//! `invoke` and `cancelInvocation` frames (`@azure/web-pubsub-client`
//! 1.1.0's `invokeEvent`) end to end on 127.0.0.1: a raw JSON-protocol
//! WebSocket client, the emulator, and a bare axum upstream that counts
//! the calls it was dropped in the middle of.
//!
//! The upstream answers user events by name: `echo` sends the body back
//! with its `Content-Type`, `json` a JSON value, `bin` bytes, `silent`
//! `204`, `refuse` `400` with the text `Invalid payload`, `fail` `500`,
//! `slow` waits 3 s (then `204`); it answers every `OPTIONS` handshake.
//! Its handler gets no system events, so clients keep their token's
//! roles (none, unless a test asks).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use webpubsub::client_access::ClientAccessOptions;
use webpubsub_emulator::{EmulatorBuilder, EventHandlerSettings, HubSettings};

use common::emulator::{self, eventually, Client, Env, JSON, RELIABLE};

const KEY: &str = "invoke-test-key-0123456789abcdef0123456789";
/// How long `slow` takes.
const SLOW: Duration = Duration::from_secs(3);

/// One user event the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Seen>>,
    /// `slow` calls whose handler was dropped before it answered.
    dropped: AtomicUsize,
    /// `slow` calls answered.
    completed: AtomicUsize,
}

/// Counts a `slow` call as dropped unless it got to answer.
struct DropGuard {
    recorder: Arc<Recorder>,
    answered: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let counter = if self.answered {
            &self.recorder.completed
        } else {
            &self.recorder.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

async fn answer(
    State(recorder): State<Arc<Recorder>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = request.into_parts();
    if parts.method == Method::OPTIONS {
        return [("WebHook-Allowed-Origin", "*")].into_response();
    }
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let seen = Seen {
        headers: parts.headers,
        body: body.clone(),
    };
    recorder.events.lock().unwrap().push(seen.clone());
    let content_type = seen.header("content-type").to_owned();
    match seen.header("ce-eventName") {
        "echo" => ([("content-type", content_type)], body).into_response(),
        "json" => (
            [("content-type", "application/json")],
            json!({"hello": ["world", 1]}).to_string(),
        )
            .into_response(),
        "bin" => (
            [("content-type", "application/octet-stream")],
            Bytes::from_static(&[0, 1, 255]),
        )
            .into_response(),
        "refuse" => (StatusCode::BAD_REQUEST, "Invalid payload").into_response(),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "stack trace").into_response(),
        "slow" => {
            let mut guard = DropGuard {
                recorder: recorder.clone(),
                answered: false,
            };
            tokio::time::sleep(SLOW).await;
            guard.answered = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

struct Upstream {
    addr: std::net::SocketAddr,
    recorder: Arc<Recorder>,
}

impl Upstream {
    async fn start() -> Self {
        let recorder = Arc::new(Recorder::default());
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(recorder.clone());
        let addr = common::serve(app).await;
        Self { addr, recorder }
    }

    /// A handler for every user event (no system events).
    fn handler(&self) -> EventHandlerSettings {
        EventHandlerSettings::new(format!("http://{}/eh/{{hub}}/{{event}}", self.addr))
            .system_events([])
    }

    fn events(&self, name: &str) -> Vec<Seen> {
        self.recorder
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.header("ce-eventName") == name)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, name: &str, count: usize) {
        eventually(&format!("{count} `{name}` calls upstream"), || async {
            (self.events(name).len() >= count).then_some(())
        })
        .await;
    }

    fn dropped(&self) -> usize {
        self.recorder.dropped.load(Ordering::SeqCst)
    }
}

fn builder() -> EmulatorBuilder {
    emulator::builder(KEY)
}

async fn env_with(builder: EmulatorBuilder, handler: EventHandlerSettings) -> Env {
    emulator::start(
        builder.hub(HubSettings::new("chat").event_handler(handler)),
        "chat",
    )
    .await
}

async fn env(up: &Upstream) -> Env {
    env_with(builder(), up.handler()).await
}

/// A JSON client without roles.
async fn client(env: &Env, user: &str) -> Client {
    env.client(ClientAccessOptions::new().user_id(user), JSON)
        .await
}

fn invoke(id: &str, event: &str, data_type: &str, data: Value) -> Value {
    json!({"type": "invoke", "invocationId": id, "target": "event", "event": event,
           "dataType": data_type, "data": data})
}

fn cancel(id: &str) -> Value {
    json!({"type": "cancelInvocation", "invocationId": id})
}

fn failed(frame: &Value, id: &str, name: &str) {
    assert_eq!(frame["type"], "invokeResponse", "{frame}");
    assert_eq!(frame["invocationId"], id, "{frame}");
    assert_eq!(frame["success"], false, "{frame}");
    assert_eq!(frame["error"]["name"], name, "{frame}");
}

/// The live view's invocations, newest first.
async fn live_invocations(env: &Env) -> Vec<Value> {
    env.live_state("").await["invocations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn invoke_answers_with_the_upstream_reply_as_text_json_and_binary() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    for (request, expected) in [
        (
            invoke("1", "echo", "text", json!("ping")),
            json!({"type":"invokeResponse","invocationId":"1","success":true,"dataType":"text","data":"ping"}),
        ),
        (
            invoke("2", "echo", "json", json!({"a": [1, true]})),
            json!({"type":"invokeResponse","invocationId":"2","success":true,"dataType":"json","data":{"a":[1,true]}}),
        ),
        (
            invoke("3", "echo", "binary", json!("AAEC")),
            json!({"type":"invokeResponse","invocationId":"3","success":true,"dataType":"binary","data":"AAEC"}),
        ),
        (
            invoke("4", "json", "text", json!("")),
            json!({"type":"invokeResponse","invocationId":"4","success":true,"dataType":"json","data":{"hello":["world",1]}}),
        ),
        (
            invoke("5", "bin", "text", json!("")),
            json!({"type":"invokeResponse","invocationId":"5","success":true,"dataType":"binary","data":"AAH/"}),
        ),
        (
            invoke("6", "silent", "text", json!("x")),
            json!({"type":"invokeResponse","invocationId":"6","success":true}),
        ),
    ] {
        assert_eq!(c.request(request).await, expected);
    }
}

#[tokio::test]
async fn the_upstream_sees_an_invoke_exactly_as_an_event_frame() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    for (ack_id, (data_type, data, content_type)) in (1u64..).zip([
        ("text", json!("hi"), "text/plain; charset=utf-8"),
        ("json", json!({"n": 1}), "application/json"),
        ("binary", json!("AP8="), "application/octet-stream"),
    ]) {
        c.send(json!({"type": "event", "event": "silent", "ackId": ack_id,
                      "dataType": data_type, "data": data}))
            .await;
        c.next_json().await;
        c.send(invoke("i", "silent", data_type, data)).await;
        c.next_json().await;
        let seen = up.events("silent");
        let [.., event, invoked] = seen.as_slice() else {
            panic!("two calls")
        };
        for header in [
            "ce-type",
            "ce-eventName",
            "ce-hub",
            "ce-connectionId",
            "ce-userId",
            "ce-specversion",
            "content-type",
        ] {
            assert_eq!(event.header(header), invoked.header(header), "{header}");
        }
        assert_eq!(invoked.header("ce-type"), "azure.webpubsub.user.silent");
        assert_eq!(invoked.header("content-type"), content_type);
        assert_eq!(event.body, invoked.body);
        assert!(
            !invoked
                .headers
                .keys()
                .any(|k| k.as_str().contains("invocation")),
            "no invented invocation header: {:?}",
            invoked.headers
        );
    }
}

#[tokio::test]
async fn upstream_400_is_a_bad_request_carrying_its_text() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    let frame = c.request(invoke("7", "refuse", "text", json!("x"))).await;
    failed(&frame, "7", "BadRequest");
    assert_eq!(frame["error"]["message"], "Invalid payload");
    assert!(env.exists(&c.id).await, "the connection stays");
}

#[tokio::test]
async fn upstream_500_is_an_internal_server_error_without_its_body() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    let frame = c.request(invoke("8", "fail", "text", json!("x"))).await;
    failed(&frame, "8", "InternalServerError");
    assert!(!frame["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stack"));
}

#[tokio::test]
async fn an_unreachable_upstream_is_an_internal_server_error() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let handler = EventHandlerSettings::new(format!("http://{closed}/eh")).system_events([]);
    let env = env_with(builder(), handler).await;
    let mut c = client(&env, "alice").await;
    let frame = c.request(invoke("1", "echo", "text", json!("x"))).await;
    failed(&frame, "1", "InternalServerError");
    let message = frame["error"]["message"].as_str().unwrap();
    assert!(!message.contains(&closed.to_string()), "{message}");
}

#[tokio::test]
async fn an_event_no_handler_takes_is_an_internal_server_error() {
    let up = Upstream::start().await;
    let env = env_with(builder(), up.handler().user_events("echo")).await;
    let mut c = client(&env, "alice").await;
    let frame = c.request(invoke("1", "other", "text", json!("x"))).await;
    failed(&frame, "1", "InternalServerError");
    assert_eq!(
        frame["error"]["message"],
        "No event handler is registered for the event `other`."
    );
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_is_a_timeout() {
    let up = Upstream::start().await;
    let env = env_with(
        builder().upstream_timeout(Duration::from_millis(300)),
        up.handler(),
    )
    .await;
    let mut c = client(&env, "alice").await;
    let frame = c.request(invoke("1", "slow", "text", json!("x"))).await;
    failed(&frame, "1", "Timeout");
    eventually("the timed-out call to be dropped", || async {
        (up.dropped() >= 1).then_some(())
    })
    .await;
    let live = live_invocations(&env).await;
    assert_eq!(live[0]["outcome"], "timeout", "{live:?}");
    assert_eq!(live[0]["error"], "Timeout", "{live:?}");
}

#[tokio::test]
async fn cancel_drops_the_upstream_call_and_answers_nothing() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    c.send(invoke("1", "slow", "text", json!("x"))).await;
    up.wait_for("slow", 1).await;
    c.send(cancel("1")).await;
    eventually("the cancelled call to be dropped", || async {
        (up.dropped() == 1).then_some(())
    })
    .await;
    assert_eq!(up.recorder.completed.load(Ordering::SeqCst), 0);
    assert_eq!(c.until_pong().await, Vec::<Value>::new());
    // Unknown and already cancelled ids are ignored.
    c.send(cancel("1")).await;
    c.send(cancel("never")).await;
    assert_eq!(c.until_pong().await, Vec::<Value>::new());
    // The id is free again.
    let frame = c.request(invoke("1", "echo", "text", json!("again"))).await;
    assert_eq!(frame["success"], true, "{frame}");
    let live = live_invocations(&env).await;
    let outcomes: Vec<&Value> = live.iter().map(|i| &i["outcome"]).collect();
    assert_eq!(outcomes, [&json!("success"), &json!("cancelled")]);
    assert_eq!(live[1]["event"], "slow");
    assert_eq!(live[1]["invocationId"], "1");
    assert_eq!(live[1]["connectionId"], c.id.as_str());
}

#[tokio::test]
async fn closing_the_socket_drops_pending_upstream_calls() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .client(ClientAccessOptions::new().user_id("alice"), RELIABLE)
        .await;
    c.send(invoke("1", "slow", "text", json!("x"))).await;
    c.send(invoke("2", "slow", "text", json!("x"))).await;
    up.wait_for("slow", 2).await;
    c.ws.close(None).await.unwrap();
    eventually("both calls to be dropped", || async {
        (up.dropped() == 2).then_some(())
    })
    .await;
    let live = live_invocations(&env).await;
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(live.iter().all(|i| i["outcome"] == "closed"), "{live:?}");
}

#[tokio::test]
async fn ping_and_other_invocations_are_answered_while_one_is_pending() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    c.send(invoke("slow", "slow", "text", json!("x"))).await;
    up.wait_for("slow", 1).await;
    assert_eq!(
        c.request(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    let frame = c.request(invoke("fast", "echo", "text", json!("hi"))).await;
    assert_eq!(frame["invocationId"], "fast", "{frame}");
    let frame = emulator::next_json(&mut c.ws, SLOW * 2).await;
    assert_eq!(
        frame,
        json!({"type": "invokeResponse", "invocationId": "slow", "success": true})
    );
}

#[tokio::test]
async fn a_duplicate_pending_id_is_refused_and_the_first_call_goes_on() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    c.send(invoke("1", "slow", "text", json!("x"))).await;
    up.wait_for("slow", 1).await;
    let frame = c.request(invoke("1", "echo", "text", json!("y"))).await;
    failed(&frame, "1", "BadRequest");
    assert_eq!(up.events("echo").len(), 0, "the duplicate is not sent");
    c.send(cancel("1")).await;
    assert_eq!(c.until_pong().await, Vec::<Value>::new());
}

#[tokio::test]
async fn at_most_64_invocations_are_pending_per_connection() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    for i in 0..64 {
        c.send(invoke(&i.to_string(), "slow", "text", json!("x")))
            .await;
    }
    let frame = c.request(invoke("64", "echo", "text", json!("x"))).await;
    failed(&frame, "64", "TooManyRequests");
    // A cancelled one frees its place.
    c.send(cancel("0")).await;
    let frame = c.request(invoke("65", "echo", "text", json!("x"))).await;
    assert_eq!(frame["success"], true, "{frame}");
    // Another connection has its own budget.
    let mut other = client(&env, "bob").await;
    let frame = other.request(invoke("1", "echo", "text", json!("x"))).await;
    assert_eq!(frame["success"], true, "{frame}");
}

#[tokio::test]
async fn invoke_needs_no_role() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "no-roles").await;
    let frame = c.request(invoke("1", "echo", "text", json!("x"))).await;
    assert_eq!(frame["success"], true, "{frame}");
    assert_eq!(up.events("echo")[0].header("ce-userId"), "no-roles");
}

#[tokio::test]
async fn frames_that_break_the_rules_are_refused() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = client(&env, "alice").await;
    // Problems of the invocation itself: an answer, the connection stays.
    for (frame, message) in [
        (
            json!({"type": "invoke", "invocationId": "1", "target": "client", "event": "echo"}),
            "Only the target `event` is supported.",
        ),
        (
            json!({"type": "invoke", "invocationId": "2", "target": "event"}),
            "An event name is required.",
        ),
        (
            json!({"type": "invoke", "invocationId": "3", "event": ""}),
            "An event name is required.",
        ),
    ] {
        let id = frame["invocationId"].as_str().unwrap().to_owned();
        let answer = c.request(frame).await;
        failed(&answer, &id, "BadRequest");
        assert_eq!(answer["error"]["message"], message);
    }
    // Without `target` the event is still raised.
    let answer = c
        .request(json!({"type": "invoke", "invocationId": "4", "event": "echo", "dataType": "text", "data": "t"}))
        .await;
    assert_eq!(answer["data"], "t", "{answer}");
    // Frames no answer can be addressed to, or with a broken payload: closed.
    for frame in [
        json!({"type": "invoke", "event": "echo"}),
        json!({"type": "invoke", "invocationId": "", "event": "echo"}),
        json!({"type": "invoke", "invocationId": 5, "event": "echo"}),
        json!({"type": "invoke", "invocationId": "x".repeat(257), "event": "echo"}),
        json!({"type": "invoke", "invocationId": "6", "event": "echo", "dataType": "text", "data": 1}),
        json!({"type": "cancelInvocation"}),
    ] {
        let mut c = client(&env, "breaker").await;
        c.send(frame.clone()).await;
        let (_, code) = c.closed().await;
        assert_eq!(code, Some(1003), "{frame}");
    }
}

#[tokio::test]
async fn pending_invocation_payloads_count_against_the_connection_budget() {
    let up = Upstream::start().await;
    let env = env_with(builder().send_queue_bytes(64 * 1024), up.handler()).await;
    let mut c = client(&env, "alice").await;
    // Three of 20 KiB wait for the upstream; a fourth would pass 64 KiB.
    let payload = "p".repeat(20 * 1024);
    for i in 0..3 {
        c.send(invoke(&i.to_string(), "slow", "text", json!(payload)))
            .await;
    }
    let frame = c.request(invoke("3", "slow", "text", json!(payload))).await;
    failed(&frame, "3", "TooManyRequests");
    assert_eq!(
        frame["error"]["message"],
        "The connection holds too many bytes to start another invocation."
    );
    // Small ones still go, and a cancelled big one frees its bytes.
    let frame = c.request(invoke("4", "echo", "text", json!("x"))).await;
    assert_eq!(frame["success"], true, "{frame}");
    c.send(cancel("0")).await;
    let frame = c.request(invoke("5", "echo", "text", json!(payload))).await;
    assert_eq!(frame["success"], true, "{frame}");
}
