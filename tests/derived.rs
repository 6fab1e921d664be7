//! Handlers derived with `#[webpubsub::event_handler]`, driven through the
//! real router with the `testing` helpers (issue 3, item 6): every event
//! kind, every argument and return form, routing by event name, the
//! fallback, payloads that do not convert, states, generics, `Arc` state and
//! one handler serving two hubs.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{call, call_logged, router, Answer, KEY};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webpubsub::events::{EventData, GroupJoinedEventRequest, GroupLeftEventRequest, InvalidData};
use webpubsub::extract::Json;
use webpubsub::state::ConnectionStates;
use webpubsub::testing::{self, TestEvent};
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, ConnectionContext,
    DisconnectedEventRequest, EventErrorResponse, EventRouter, UserEventRequest, UserEventResponse,
};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const BINARY: &str = "application/octet-stream";

/// What the derived methods were called with, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    /// Everything logged so far, emptying the log.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn user_event(name: &str) -> TestEvent {
    testing::user_event("chat", "c1", name)
}

/// Asserts a `200` with `content_type` and `body`.
#[track_caller]
fn assert_reply(answer: &Answer, content_type: &str, body: &[u8], case: &str) {
    assert_eq!(answer.status, 200, "{case}: {answer:?}");
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some(content_type),
        "{case}"
    );
    assert_eq!(answer.body.as_ref(), body, "{case}: {:?}", answer.text());
}

/// Asserts a `204` with no body and no `Content-Type`.
#[track_caller]
fn assert_no_reply(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 204, "{case}: {answer:?}");
    assert!(answer.body.is_empty(), "{case}: {answer:?}");
    assert!(answer.header("content-type").is_none(), "{case}");
}

// ------------------------------------------------------- system events

/// A chat with every system event handled, taking the event's request.
#[derive(Default)]
struct Chat {
    log: Log,
}

#[webpubsub::event_handler]
impl Chat {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        self.log
            .push(format!("connect {}", req.context.connection_id));
        let user = req
            .query_value("user")
            .ok_or_else(|| EventErrorResponse::unauthorized("connect with ?user=<name>"))?;
        Ok(ConnectEventResponse::new()
            .user_id(user)
            .groups(["lobby"])
            .state("visits", 0))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let ctx = req.context;
        self.log.push(format!(
            "connected {} as {:?}",
            ctx.connection_id, ctx.user_id
        ));
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        self.log.push(format!(
            "disconnected {} because {:?}",
            req.context.connection_id, req.reason
        ));
    }

    async fn group_joined(&self, req: GroupJoinedEventRequest) {
        self.log.push(format!(
            "{} joined {}",
            req.context.connection_id, req.group
        ));
    }

    async fn group_left(&self, req: GroupLeftEventRequest) {
        self.log
            .push(format!("{} left {}", req.context.connection_id, req.group));
    }

    /// Counts visits in the connection state.
    #[user_event("visit")]
    async fn visit(
        &self,
        ctx: ConnectionContext,
        _data: EventData,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        let visits: u64 = ctx
            .state("visits")
            .map_err(|e| EventErrorResponse::user_error(format!("visits: {e}")))?
            .unwrap_or(0);
        let visits = visits + 1;
        Ok(UserEventResponse::text(format!("visit {visits}")).state("visits", visits))
    }
}

#[tokio::test]
async fn derived_connect_accepts_with_the_answer_its_method_returns() {
    let chat = Chat::default();
    let log = chat.log.clone();
    let router = router(chat);
    let request = testing::connect("chat", "c1")
        .query("user", "alice")
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some(JSON),
        "{answer:?}"
    );
    assert_eq!(
        answer.json(),
        json!({"userId": "alice", "groups": ["lobby"]})
    );
    let states = ConnectionStates::from_header(&answer.header("ce-connectionstate").unwrap())
        .expect("a state header in our format");
    assert_eq!(states.get::<u64>("visits").unwrap(), Some(0));
    assert_eq!(log.take(), ["connect c1"]);
}

#[tokio::test]
async fn derived_connect_refuses_with_the_error_its_method_returns() {
    let chat = Chat::default();
    let log = chat.log.clone();
    let router = router(chat);
    let (answer, logs) = call_logged(&router, testing::connect("chat", "c2").sign(KEY)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), "connect with ?user=<name>");
    assert_eq!(answer.header("content-type").as_deref(), Some(TEXT));
    assert!(answer.header("ce-connectionstate").is_none());
    assert_eq!(log.take(), ["connect c2"], "the method ran and refused");
    let refusals = logs.with_target("webpubsub::handler");
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(refusals[0].field("status"), Some("401"));
}

#[tokio::test]
async fn derived_notifications_call_their_methods_with_the_request_and_answer_204() {
    let chat = Chat::default();
    let log = chat.log.clone();
    let router = router(chat);
    let cases = [
        (
            testing::connected("chat", "c1").user("alice"),
            "connected c1 as Some(\"alice\")",
        ),
        (
            testing::disconnected("chat", "c1").reason("bye"),
            "disconnected c1 because Some(\"bye\")",
        ),
        (
            testing::disconnected("chat", "c2"),
            "disconnected c2 because None",
        ),
        (
            testing::group_joined("chat", "c1", "lobby"),
            "c1 joined lobby",
        ),
        (testing::group_left("chat", "c1", "lobby"), "c1 left lobby"),
    ];
    for (event, expected) in cases {
        let answer = call(&router, event.sign(KEY)).await;
        assert_no_reply(&answer, expected);
        assert_eq!(log.take(), [expected]);
    }
}

/// System methods that take no request.
#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    disconnected: AtomicUsize,
    joined: AtomicUsize,
    left: AtomicUsize,
}

#[webpubsub::event_handler]
impl Counters {
    async fn connected(&self) {
        self.connected.fetch_add(1, Ordering::SeqCst);
    }

    async fn disconnected(&self) {
        self.disconnected.fetch_add(1, Ordering::SeqCst);
    }

    async fn group_joined(&self) {
        self.joined.fetch_add(1, Ordering::SeqCst);
    }

    async fn group_left(&self) {
        self.left.fetch_add(1, Ordering::SeqCst);
    }

    /// An ordinary method: not an event.
    fn counts(&self) -> [usize; 4] {
        [
            &self.connected,
            &self.disconnected,
            &self.joined,
            &self.left,
        ]
        .map(|c| c.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn derived_notifications_without_a_request_argument_are_called() {
    let counters = Arc::new(Counters::default());
    let router = router(Arc::clone(&counters));
    let events = [
        testing::connected("chat", "c1"),
        testing::disconnected("chat", "c1"),
        testing::group_joined("chat", "c1", "g"),
        testing::group_joined("chat", "c2", "g"),
        testing::group_left("chat", "c1", "g"),
    ];
    for event in events {
        assert_no_reply(&call(&router, event.sign(KEY)).await, "notification");
    }
    assert_eq!(counters.counts(), [1, 1, 2, 1]);
}

#[tokio::test]
async fn events_without_a_derived_method_keep_the_trait_defaults() {
    let counters = Arc::new(Counters::default());
    let router = router(Arc::clone(&counters));
    let connect = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_no_reply(&connect, "connect is accepted, nothing changed");
    assert!(connect.header("ce-connectionstate").is_none());
    let message = call(&router, user_event("message").text("hi").sign(KEY)).await;
    assert_no_reply(&message, "user events get no reply");
    assert_eq!(counters.counts(), [0, 0, 0, 0]);
}

/// `connect` returning a bare `ConnectEventResponse`.
struct ConnectBare;

#[webpubsub::event_handler]
impl ConnectBare {
    async fn connect(&self, req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id(format!("user-of-{}", req.context.connection_id))
    }
}

/// `connect` returning `()`.
#[derive(Default)]
struct ConnectUnit {
    log: Log,
}

#[webpubsub::event_handler]
impl ConnectUnit {
    async fn connect(&self, req: ConnectEventRequest) {
        self.log.push(req.context.connection_id);
    }
}

/// `connect` returning `Result<(), InvalidData>`.
struct ConnectChecked;

#[webpubsub::event_handler]
impl ConnectChecked {
    async fn connect(&self, req: ConnectEventRequest) -> Result<(), InvalidData> {
        let token = req.query_value("token").unwrap_or_default();
        serde_json::from_str::<u32>(token).map_err(InvalidData)?;
        Ok(())
    }
}

#[tokio::test]
async fn derived_connect_returning_a_bare_response_accepts_with_it() {
    let answer = call(
        &router(ConnectBare),
        testing::connect("chat", "c7").sign(KEY),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type").as_deref(), Some(JSON));
    assert_eq!(answer.json(), json!({"userId": "user-of-c7"}));
}

#[tokio::test]
async fn derived_connect_returning_unit_accepts_and_changes_nothing() {
    let handler = ConnectUnit::default();
    let log = handler.log.clone();
    let answer = call(&router(handler), testing::connect("chat", "c3").sign(KEY)).await;
    assert_no_reply(&answer, "connect -> ()");
    assert!(answer.header("ce-connectionstate").is_none());
    assert_eq!(log.take(), ["c3"]);
}

#[tokio::test]
async fn derived_connect_error_converts_into_its_refusal() {
    let router = router(ConnectChecked);
    let accepted = call(
        &router,
        testing::connect("chat", "c1")
            .query("token", "12")
            .sign(KEY),
    )
    .await;
    assert_no_reply(&accepted, "Ok(())");
    let refused = call(
        &router,
        testing::connect("chat", "c1").query("token", "x").sign(KEY),
    )
    .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.text().starts_with("invalid JSON payload: "),
        "{refused:?}"
    );
}

#[tokio::test]
async fn connection_state_set_by_derived_replies_round_trips() {
    let router = router(Chat::default());
    let connect = testing::connect("chat", "c1").query("user", "bob");
    let mut header = call(&router, connect.sign(KEY))
        .await
        .header("ce-connectionstate")
        .expect("connect sets visits = 0");
    for expected in 1..=3_u64 {
        let request = user_event("visit").state_header(&header).sign(KEY);
        let answer = call(&router, request).await;
        assert_reply(
            &answer,
            TEXT,
            format!("visit {expected}").as_bytes(),
            "visit",
        );
        header = answer.header("ce-connectionstate").expect("visits updated");
        let states = ConnectionStates::from_header(&header).unwrap();
        assert_eq!(states.get::<u64>("visits").unwrap(), Some(expected));
    }
}

#[tokio::test]
async fn derived_reply_keeps_the_states_it_does_not_change() {
    let request = user_event("visit")
        .state("visits", 41)
        .state("name", "bob")
        .sign(KEY);
    let answer = call(&router(Chat::default()), request).await;
    assert_reply(&answer, TEXT, b"visit 42", "visit");
    let states =
        ConnectionStates::from_header(&answer.header("ce-connectionstate").unwrap()).unwrap();
    assert_eq!(states.get::<u64>("visits").unwrap(), Some(42));
    assert_eq!(
        states.get::<String>("name").unwrap().as_deref(),
        Some("bob")
    );
}

// ---------------------------------------------------- argument forms

#[derive(Debug, Deserialize)]
struct Typing {
    typing: bool,
}

/// One user event per argument form; each says what it was given.
#[derive(Default)]
struct Args {
    log: Log,
}

#[webpubsub::event_handler]
impl Args {
    #[user_event("none")]
    async fn none(&self) -> String {
        self.called("none")
    }

    #[user_event("request")]
    async fn request(&self, req: UserEventRequest) -> String {
        self.called(&format!(
            "request {} from {} as {:?}: {}",
            req.context.event_name,
            req.context.connection_id,
            req.data.data_type(),
            String::from_utf8_lossy(req.data.as_bytes())
        ))
    }

    #[user_event("string")]
    async fn string(&self, text: String) -> String {
        self.called(&format!("string {text:?}"))
    }

    #[user_event("bytes")]
    async fn bytes(&self, data: Bytes) -> String {
        self.called(&format!("bytes {:?}", data.as_ref()))
    }

    #[user_event("vec")]
    async fn vec(&self, data: Vec<u8>) -> String {
        self.called(&format!("vec {data:?}"))
    }

    #[user_event("value")]
    async fn value(&self, value: serde_json::Value) -> String {
        self.called(&format!("value {value}"))
    }

    #[user_event("data")]
    async fn data(&self, data: EventData) -> String {
        self.called(&format!(
            "data {:?} {:?}",
            data.data_type(),
            data.as_bytes()
        ))
    }

    #[user_event("typing")]
    async fn typing(&self, Json(typing): Json<Typing>) -> String {
        self.called(&format!("typing {}", typing.typing))
    }

    #[user_event("ctx_string")]
    async fn ctx_string(&self, ctx: ConnectionContext, text: String) -> String {
        self.called(&format!(
            "{} {} ({:?}) on {} said {text:?}",
            ctx.event_name, ctx.connection_id, ctx.user_id, ctx.hub
        ))
    }

    #[user_event("ctx_typing")]
    async fn ctx_typing(&self, ctx: ConnectionContext, body: Json<Typing>) -> String {
        let counter: Option<u32> = ctx.state("counter").unwrap();
        self.called(&format!(
            "{:?} typing {} with counter {counter:?}",
            ctx.user_id, body.0.typing
        ))
    }

    #[user_event("ctx_bytes")]
    async fn ctx_bytes(&self, ctx: ConnectionContext, data: Bytes) -> String {
        self.called(&format!("{} bytes {:?}", ctx.connection_id, data.as_ref()))
    }

    #[user_event("ctx_vec")]
    async fn ctx_vec(&self, ctx: ConnectionContext, data: Vec<u8>) -> String {
        self.called(&format!("{} vec {data:?}", ctx.connection_id))
    }

    #[user_event("ctx_value")]
    async fn ctx_value(&self, ctx: ConnectionContext, value: serde_json::Value) -> String {
        self.called(&format!("{} value {value}", ctx.connection_id))
    }

    #[user_event("ctx_data")]
    async fn ctx_data(&self, ctx: ConnectionContext, data: EventData) -> String {
        self.called(&format!(
            "{} data {:?}",
            ctx.connection_id,
            data.data_type()
        ))
    }

    /// An ordinary method: records the call and answers with the same text.
    fn called(&self, what: &str) -> String {
        self.log.push(what);
        what.to_owned()
    }
}

#[tokio::test]
async fn each_argument_form_receives_the_event_converted_to_its_type() {
    let args = Args::default();
    let log = args.log.clone();
    let router = router(args);
    let cases: Vec<(TestEvent, &str)> = vec![
        (user_event("none").text("ignored"), "none"),
        (
            user_event("request").text("hi"),
            "request request from c1 as Text: hi",
        ),
        (
            user_event("request").json(&json!({"a": 1})),
            r#"request request from c1 as Json: {"a":1}"#,
        ),
        (user_event("string").text("héllo"), r#"string "héllo""#),
        (
            user_event("string").json(&json!({"a": 1})),
            r#"string "{\"a\":1}""#,
        ),
        (
            user_event("string").binary(&b"utf-8 bytes"[..]),
            r#"string "utf-8 bytes""#,
        ),
        (user_event("string").text(""), r#"string """#),
        (
            user_event("bytes").binary(vec![0, 1, 255]),
            "bytes [0, 1, 255]",
        ),
        (user_event("bytes").text("hi"), "bytes [104, 105]"),
        (user_event("vec").binary(vec![7, 0xfe]), "vec [7, 254]"),
        (user_event("vec").json(&json!(1)), "vec [49]"),
        (
            user_event("value").json(&json!({"a": [1, 2]})),
            r#"value {"a":[1,2]}"#,
        ),
        (user_event("value").text("[1, 2]"), "value [1,2]"),
        (user_event("data").text("hi"), "data Text [104, 105]"),
        (
            user_event("data").json(&json!(true)),
            "data Json [116, 114, 117, 101]",
        ),
        (user_event("data").binary(vec![1]), "data Binary [1]"),
        (
            user_event("typing").json(&json!({"typing": true})),
            "typing true",
        ),
        (
            user_event("typing").text(r#"{"typing": false}"#),
            "typing false",
        ),
        (
            user_event("ctx_string").user("alice").text("hi"),
            r#"ctx_string c1 (Some("alice")) on chat said "hi""#,
        ),
        (
            user_event("ctx_typing")
                .user("bob")
                .state("counter", 3)
                .json(&json!({"typing": true})),
            r#"Some("bob") typing true with counter Some(3)"#,
        ),
        (
            user_event("ctx_typing").json(&json!({"typing": false})),
            "None typing false with counter None",
        ),
        (user_event("ctx_bytes").binary(vec![9]), "c1 bytes [9]"),
        (user_event("ctx_vec").text("A"), "c1 vec [65]"),
        (user_event("ctx_value").json(&json!("s")), r#"c1 value "s""#),
        (user_event("ctx_data").binary(vec![]), "c1 data Binary"),
    ];
    for (event, expected) in cases {
        let answer = call(&router, event.sign(KEY)).await;
        assert_reply(&answer, TEXT, expected.as_bytes(), expected);
        assert_eq!(log.take(), [expected], "exactly one method call");
    }
}

#[tokio::test]
async fn payload_that_does_not_convert_is_refused_with_400_and_the_method_is_not_called() {
    let args = Args::default();
    let log = args.log.clone();
    let router = router(args);
    // (event, body fragment)
    let cases: Vec<(TestEvent, &str)> = vec![
        (
            user_event("typing").json(&json!({"typing": "yes"})),
            "invalid JSON payload: invalid type: string \"yes\", expected a boolean",
        ),
        (
            user_event("typing").json(&json!({})),
            "invalid JSON payload: missing field `typing`",
        ),
        (
            user_event("typing").json(&json!([])),
            "invalid JSON payload: invalid length 0, expected struct Typing",
        ),
        (
            user_event("typing").text("yes please"),
            "invalid JSON payload: expected value",
        ),
        (
            user_event("typing").binary(vec![0xff]),
            "invalid JSON payload",
        ),
        (
            user_event("ctx_typing").json(&json!({"typing": 1})),
            "invalid JSON payload: invalid type: integer `1`, expected a boolean",
        ),
        (
            user_event("value").text("not json"),
            "invalid JSON payload: expected ident",
        ),
        (
            user_event("ctx_value").text(""),
            "invalid JSON payload: EOF",
        ),
        (
            user_event("string").binary(vec![0xff, 0xfe]),
            "payload is not UTF-8 text",
        ),
        (
            user_event("ctx_string").binary(vec![b'a', 0xc3]),
            "payload is not UTF-8 text",
        ),
    ];
    for (event, fragment) in cases {
        let (answer, logs) = call_logged(&router, event.sign(KEY)).await;
        assert_eq!(answer.status, 400, "{fragment}: {answer:?}");
        assert_eq!(answer.header("content-type").as_deref(), Some(TEXT));
        assert!(
            answer.text().contains(fragment),
            "{:?} should contain {fragment:?}",
            answer.text()
        );
        assert_eq!(
            log.take(),
            Vec::<String>::new(),
            "{fragment}: method not called"
        );
        let refusals = logs.with_target("webpubsub::handler");
        assert_eq!(refusals.len(), 1, "{fragment}: {refusals:#?}");
        assert_eq!(refusals[0].field("status"), Some("400"), "{fragment}");
        assert_eq!(
            refusals[0].field("message"),
            Some(answer.text().as_str()),
            "{fragment}: the log says why"
        );
    }
}

// ------------------------------------------------------ return forms

#[derive(Serialize)]
struct Pong {
    pong: bool,
    n: u32,
}

/// One user event per return form; the text payload picks the variant.
struct Returns;

#[webpubsub::event_handler]
impl Returns {
    #[user_event("response")]
    async fn response(&self) -> UserEventResponse {
        UserEventResponse::text("a response")
    }

    #[user_event("unit")]
    async fn unit(&self) {}

    #[user_event("string")]
    async fn string(&self, text: String) -> String {
        format!("you said {text}")
    }

    #[user_event("str")]
    async fn str(&self) -> &'static str {
        "pong"
    }

    #[user_event("json")]
    async fn json(&self) -> Json<Pong> {
        Json(Pong { pong: true, n: 2 })
    }

    #[user_event("unserialisable")]
    async fn unserialisable(&self) -> Json<BTreeMap<Vec<u8>, u8>> {
        Json(BTreeMap::from([(vec![1], 1)]))
    }

    #[user_event("bytes")]
    async fn bytes(&self) -> Bytes {
        Bytes::from_static(&[0, 159, 146, 150])
    }

    #[user_event("vec")]
    async fn vec(&self) -> Vec<u8> {
        vec![1, 2, 3]
    }

    #[user_event("echo")]
    async fn echo(&self, data: EventData) -> EventData {
        data
    }

    #[user_event("option")]
    async fn option(&self, text: String) -> Option<String> {
        (!text.is_empty()).then_some(text)
    }

    #[user_event("result")]
    async fn result(&self, text: String) -> Result<UserEventResponse, EventErrorResponse> {
        match text.as_str() {
            "muted" => Err(EventErrorResponse::unauthorized("you are muted")),
            "bad" => Err(EventErrorResponse::user_error("bad request")),
            "oops" => Err(EventErrorResponse::server_error("it broke")),
            _ => Ok(UserEventResponse::text("fine")),
        }
    }

    #[user_event("result_json")]
    async fn result_json(&self, n: Json<u32>) -> Result<Json<Pong>, EventErrorResponse> {
        if n.0 == 0 {
            return Err(EventErrorResponse::user_error("n must not be 0"));
        }
        Ok(Json(Pong {
            pong: false,
            n: n.0,
        }))
    }

    #[user_event("invalid_data")]
    async fn invalid_data(&self, text: String) -> Result<&'static str, InvalidData> {
        serde_json::from_str::<u32>(&text).map_err(InvalidData)?;
        Ok("a number")
    }

    #[user_event("option_of_result")]
    async fn option_of_result(&self, text: String) -> Option<Result<Bytes, EventErrorResponse>> {
        match text.as_str() {
            "" => None,
            "err" => Some(Err(EventErrorResponse::unauthorized("no"))),
            _ => Some(Ok(Bytes::from(text))),
        }
    }
}

#[tokio::test]
async fn each_return_form_becomes_its_reply() {
    let router = router(Returns);
    // (event, content type, body)
    let cases: Vec<(TestEvent, &str, &[u8])> = vec![
        (user_event("response"), TEXT, b"a response"),
        (user_event("string").text("hi"), TEXT, b"you said hi"),
        (user_event("str"), TEXT, b"pong"),
        (user_event("json"), JSON, br#"{"pong":true,"n":2}"#),
        (user_event("bytes"), BINARY, &[0, 159, 146, 150]),
        (user_event("vec"), BINARY, &[1, 2, 3]),
        (user_event("echo").text("same"), TEXT, b"same"),
        (
            user_event("echo").json(&json!({"a": null})),
            JSON,
            br#"{"a":null}"#,
        ),
        (user_event("echo").binary(vec![0xff]), BINARY, &[0xff]),
        (user_event("option").text("some"), TEXT, b"some"),
        (user_event("result").text("ok"), TEXT, b"fine"),
        (
            user_event("result_json").json(&json!(5)),
            JSON,
            br#"{"pong":false,"n":5}"#,
        ),
        (user_event("invalid_data").text("12"), TEXT, b"a number"),
        (user_event("option_of_result").text("raw"), BINARY, b"raw"),
    ];
    for (event, content_type, body) in cases {
        let case = format!("{event:?}");
        let answer = call(&router, event.sign(KEY)).await;
        assert_reply(&answer, content_type, body, &case);
    }
}

#[tokio::test]
async fn return_forms_meaning_no_reply_answer_204() {
    let router = router(Returns);
    for event in [
        user_event("unit").text("hi"),
        user_event("option").text(""),
        user_event("option_of_result").text(""),
    ] {
        let case = format!("{event:?}");
        assert_no_reply(&call(&router, event.sign(KEY)).await, &case);
    }
}

#[tokio::test]
async fn returned_errors_refuse_the_event_with_their_status_and_message() {
    let router = router(Returns);
    // (event, status, body fragment)
    let cases: Vec<(TestEvent, u16, &str)> = vec![
        (user_event("result").text("muted"), 401, "you are muted"),
        (user_event("result").text("bad"), 400, "bad request"),
        (user_event("result").text("oops"), 500, "it broke"),
        (
            user_event("result_json").json(&json!(0)),
            400,
            "n must not be 0",
        ),
        (
            user_event("invalid_data").text("many"),
            400,
            "invalid JSON payload: expected value",
        ),
        (user_event("option_of_result").text("err"), 401, "no"),
        (
            user_event("unserialisable"),
            500,
            "could not serialise the JSON reply",
        ),
    ];
    for (event, status, fragment) in cases {
        let (answer, logs) = call_logged(&router, event.sign(KEY)).await;
        assert_eq!(answer.status, status, "{fragment}: {answer:?}");
        assert_eq!(answer.header("content-type").as_deref(), Some(TEXT));
        assert!(
            answer.text().contains(fragment),
            "{:?} should contain {fragment:?}",
            answer.text()
        );
        let refusals = logs.with_target("webpubsub::handler");
        assert_eq!(refusals.len(), 1, "{fragment}: {refusals:#?}");
        assert_eq!(
            refusals[0].field("status"),
            Some(status.to_string().as_str())
        );
    }
}

// ----------------------------------------------------------- routing

/// Several names for one method, no fallback.
#[derive(Default)]
struct Routes {
    log: Log,
}

#[webpubsub::event_handler]
impl Routes {
    #[user_event("ping")]
    #[user_event("PING")]
    #[user_event("ping.v2")]
    async fn ping(&self, ctx: ConnectionContext, _data: EventData) -> String {
        self.log.push("ping");
        format!("ping answered {}", ctx.event_name)
    }

    #[user_event("echo")]
    async fn echo(&self, text: String) -> String {
        self.log.push("echo");
        text
    }
}

#[tokio::test]
async fn user_events_are_routed_to_the_method_named_for_them() {
    let routes = Routes::default();
    let log = routes.log.clone();
    let router = router(routes);
    let cases = [
        ("ping", "ping", "ping answered ping"),
        ("PING", "ping", "ping answered PING"),
        ("ping.v2", "ping", "ping answered ping.v2"),
        ("echo", "echo", "hello"),
    ];
    for (name, method, reply) in cases {
        let answer = call(&router, user_event(name).text("hello").sign(KEY)).await;
        assert_reply(&answer, TEXT, reply.as_bytes(), name);
        assert_eq!(log.take(), [method], "{name}");
    }
}

#[tokio::test]
async fn user_event_with_no_method_and_no_fallback_answers_204() {
    let routes = Routes::default();
    let log = routes.log.clone();
    let router = router(routes);
    for name in ["message", "Ping", "ping.v3", "pin", "echo2", "*"] {
        let answer = call(&router, user_event(name).text("hello").sign(KEY)).await;
        assert_no_reply(&answer, name);
    }
    assert_eq!(log.take(), Vec::<String>::new(), "no method was called");
}

/// A named event plus `#[user_event(fallback)]`.
#[derive(Default)]
struct WithFallback {
    log: Log,
}

#[webpubsub::event_handler]
impl WithFallback {
    #[user_event("ping")]
    async fn ping(&self) -> &'static str {
        self.log.push("ping");
        "pong"
    }

    #[user_event(fallback)]
    async fn other(&self, req: UserEventRequest) -> String {
        self.log.push("other");
        format!(
            "fallback got {} with {:?}",
            req.context.event_name, req.data
        )
    }
}

/// A named event plus `#[user_event("*")]`; the fallback also has a name.
#[derive(Default)]
struct WithStar {
    log: Log,
}

#[webpubsub::event_handler]
impl WithStar {
    #[user_event("ping")]
    async fn ping(&self) -> &'static str {
        self.log.push("ping");
        "pong"
    }

    #[user_event("named")]
    #[user_event("*")]
    async fn other(&self, ctx: ConnectionContext, text: String) -> String {
        self.log.push("other");
        format!("fallback got {} with {}", ctx.event_name, text)
    }
}

#[tokio::test]
async fn fallback_catches_every_event_without_a_method_of_its_own() {
    let fallback = WithFallback::default();
    let log = fallback.log.clone();
    let router = router(fallback);
    let pong = call(&router, user_event("ping").sign(KEY)).await;
    assert_reply(&pong, TEXT, b"pong", "ping");
    assert_eq!(
        log.take(),
        ["ping"],
        "a named method wins over the fallback"
    );
    for name in ["message", "PING", "ping2"] {
        let answer = call(&router, user_event(name).text("x").sign(KEY)).await;
        let expected = format!("fallback got {name} with Text(\"x\")");
        assert_reply(&answer, TEXT, expected.as_bytes(), name);
        assert_eq!(log.take(), ["other"], "{name}");
    }
}

#[tokio::test]
async fn star_fallback_catches_every_event_without_a_method_of_its_own() {
    let star = WithStar::default();
    let log = star.log.clone();
    let router = router(star);
    let pong = call(&router, user_event("ping").sign(KEY)).await;
    assert_reply(&pong, TEXT, b"pong", "ping");
    assert_eq!(log.take(), ["ping"]);
    for name in ["named", "message", "Ping"] {
        let answer = call(&router, user_event(name).text("x").sign(KEY)).await;
        let expected = format!("fallback got {name} with x");
        assert_reply(&answer, TEXT, expected.as_bytes(), name);
        assert_eq!(log.take(), ["other"], "{name}");
    }
}

// ------------------------------------------------- #[cfg] variants

/// Two methods for one event behind complementary `#[cfg]`s (`test` /
/// `not(test)`, like `feature = "x"` / `not(feature = "x")`): only the
/// enabled one is compiled, and it answers. (The enabled `connect` comes
/// first: the last one must not win.)
struct CfgVariants;

#[webpubsub::event_handler]
impl CfgVariants {
    #[cfg(test)]
    #[user_event("which")]
    async fn which_in_tests(&self) -> &'static str {
        "test build"
    }

    #[cfg(not(test))]
    #[user_event("which")]
    async fn which_otherwise(&self) -> &'static str {
        "other build"
    }

    #[cfg(test)]
    #[user_event(fallback)]
    async fn fallback_enabled(&self) -> &'static str {
        "enabled fallback"
    }

    #[cfg(not(test))]
    #[user_event(fallback)]
    async fn fallback_disabled(&self) -> &'static str {
        "disabled fallback"
    }

    #[cfg(test)]
    async fn connect(&self, _req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id("enabled connect")
    }

    #[cfg(not(test))]
    async fn connect(&self, _req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id("disabled connect")
    }
}

#[tokio::test]
async fn methods_for_one_event_behind_complementary_cfgs_dispatch_to_the_enabled_one() {
    let router = router(CfgVariants);
    let which = call(&router, user_event("which").sign(KEY)).await;
    assert_reply(&which, TEXT, b"test build", "which");
    let other = call(&router, user_event("other").sign(KEY)).await;
    assert_reply(&other, TEXT, b"enabled fallback", "fallback");
    let connect = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(connect.status, 200, "{connect:?}");
    assert_eq!(connect.json(), json!({"userId": "enabled connect"}));
}

/// Methods named like the trait's own methods.
struct SameNames;

#[webpubsub::event_handler]
impl SameNames {
    #[user_event("echo")]
    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::text(format!(
            "inherent user_event got {}",
            req.context.event_name
        )))
    }

    #[user_event("hello")]
    async fn connect(&self) -> &'static str {
        "hello from the user event named connect"
    }
}

#[tokio::test]
async fn event_methods_named_like_trait_methods_call_the_users_method() {
    let router = router(SameNames);
    let echo = call(&router, user_event("echo").sign(KEY)).await;
    assert_reply(&echo, TEXT, b"inherent user_event got echo", "echo");
    let hello = call(&router, user_event("hello").sign(KEY)).await;
    assert_reply(
        &hello,
        TEXT,
        b"hello from the user event named connect",
        "hello",
    );
    let connect = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_no_reply(
        &connect,
        "a #[user_event] method named connect is not the connect handler",
    );
    let other = call(&router, user_event("other").sign(KEY)).await;
    assert_no_reply(&other, "no fallback");
}

// -------------------------------------------- generics, Arc, several hubs

/// Where the application keeps chat lines.
trait Store: Send + Sync + 'static {
    fn add(&self, hub: &str, line: String) -> usize;
    fn lines(&self, hub: &str) -> Vec<String>;
}

#[derive(Default)]
struct MemoryStore(Mutex<BTreeMap<String, Vec<String>>>);

impl Store for MemoryStore {
    fn add(&self, hub: &str, line: String) -> usize {
        let mut hubs = self.0.lock().unwrap();
        let lines = hubs.entry(hub.to_owned()).or_default();
        lines.push(line);
        lines.len()
    }

    fn lines(&self, hub: &str) -> Vec<String> {
        self.0.lock().unwrap().get(hub).cloned().unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Say {
    text: String,
}

#[derive(Serialize)]
struct Said {
    hub: String,
    count: usize,
}

/// A generic handler whose state is shared with the application through an `Arc`.
struct Rooms<S: Store> {
    store: Arc<S>,
    connects: AtomicUsize,
}

impl<S: Store> Rooms<S> {
    fn new(store: Arc<S>) -> Self {
        Self {
            store,
            connects: AtomicUsize::new(0),
        }
    }
}

#[webpubsub::event_handler]
impl<S> Rooms<S>
where
    S: Store,
{
    async fn connect(&self, _req: ConnectEventRequest) {
        self.connects.fetch_add(1, Ordering::SeqCst);
    }

    #[user_event("say")]
    async fn say(&self, ctx: ConnectionContext, Json(say): Json<Say>) -> Json<Said> {
        let line = format!("{}: {}", ctx.user_id.unwrap_or_default(), say.text);
        let count = self.store.add(&ctx.hub, line);
        Json(Said {
            hub: ctx.hub,
            count,
        })
    }

    #[user_event("history")]
    async fn history(&self, ctx: ConnectionContext, _data: EventData) -> Json<Vec<String>> {
        Json(self.store.lines(&ctx.hub))
    }

    /// An ordinary method of the generic block.
    fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn generic_derived_handler_in_an_arc_shares_its_state_with_the_application() {
    let store = Arc::new(MemoryStore::default());
    let rooms = Arc::new(Rooms::new(Arc::clone(&store)));
    let router = router(Arc::clone(&rooms));

    let connect = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_no_reply(&connect, "connect -> ()");
    let say = user_event("say").user("ann").json(&json!({"text": "hi"}));
    let answer = call(&router, say.sign(KEY)).await;
    assert_reply(&answer, JSON, br#"{"hub":"chat","count":1}"#, "say");
    let history = call(&router, user_event("history").sign(KEY)).await;
    assert_reply(&history, JSON, br#"["ann: hi"]"#, "history");

    assert_eq!(
        store.lines("chat"),
        ["ann: hi"],
        "the app sees what the handler stored"
    );
    assert_eq!(
        rooms.connects(),
        1,
        "the app reads the handler through its Arc"
    );
    assert_eq!(Arc::strong_count(&rooms), 2);
}

#[tokio::test]
async fn one_derived_handler_serves_two_hubs() {
    let store = Arc::new(MemoryStore::default());
    let router = EventRouter::builder()
        .hubs(["chat", "news"], Rooms::new(Arc::clone(&store)))
        .access_key(KEY)
        .build()
        .unwrap();
    let cases = [
        ("chat", "a", r#"{"hub":"chat","count":1}"#),
        ("news", "b", r#"{"hub":"news","count":1}"#),
        ("chat", "c", r#"{"hub":"chat","count":2}"#),
    ];
    for (hub, text, reply) in cases {
        let say = testing::user_event(hub, "c1", "say").json(&json!({ "text": text }));
        let answer = call(&router, say.sign(KEY)).await;
        assert_reply(&answer, JSON, reply.as_bytes(), hub);
    }
    assert_eq!(store.lines("chat"), [": a", ": c"]);
    assert_eq!(store.lines("news"), [": b"]);
    let history = call(
        &router,
        testing::user_event("news", "c2", "history").sign(KEY),
    )
    .await;
    assert_reply(&history, JSON, br#"[": b"]"#, "news history");
}

#[tokio::test]
async fn one_derived_handler_in_an_arc_can_be_registered_for_two_hubs() {
    let store = Arc::new(MemoryStore::default());
    let rooms = Arc::new(Rooms::new(Arc::clone(&store)));
    let router = EventRouter::builder()
        .hub("chat", Arc::clone(&rooms))
        .hub("news", Arc::clone(&rooms))
        .access_key(KEY)
        .build()
        .unwrap();
    for hub in ["chat", "news", "NEWS"] {
        let answer = call(&router, testing::connect(hub, "c1").sign(KEY)).await;
        assert_no_reply(&answer, hub);
    }
    assert_eq!(rooms.connects(), 3);
}
