//! Random requests never make the router panic or answer 5xx (issue item 9).
//!
//! Each case starts from a real event (or from nothing), is signed right,
//! wrongly or not at all, then has headers removed, replaced or added (from a
//! pool of the protocol's header names, with real, tricky or garbage values),
//! and maybe a new method and body. The handler never fails, so every answer
//! must be 2xx or 4xx; and a POST that was not correctly signed must never be
//! accepted nor reach the handler.

mod common;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use bytes::Bytes;
use common::{call, call_count, Recorder, HOST, KEY};
use proptest::prelude::*;
use proptest::sample::select;
use webpubsub::config::AccessKey;
use webpubsub::{testing, ConnectEventResponse, EventRouter};

const NAMES: &[&str] = &[
    "ce-type",
    "ce-hub",
    "ce-connectionid",
    "ce-eventname",
    "ce-userid",
    "ce-id",
    "ce-time",
    "ce-source",
    "ce-specversion",
    "ce-awpsversion",
    "ce-subprotocol",
    "ce-connectionstate",
    "ce-signature",
    "ce-physicalconnectionid",
    "ce-sessionid",
    "webhook-request-origin",
    "content-type",
    "content-length",
    "x-webpubsub-metadata-k",
    "mqtt-prop",
    "cookie",
    "authorization",
];

const VALUES: &[&str] = &[
    "",
    " ",
    ",",
    "chat",
    "CHAT",
    "other",
    "c1",
    "conn-ü",
    "azure.webpubsub.sys.connect",
    "azure.webpubsub.sys.connected",
    "azure.webpubsub.sys.disconnected",
    "azure.webpubsub.sys.CONNECT",
    "azure.webpubsub.sys.foo",
    "azure.webpubsub.user.message",
    "azure.webpubsub.user.",
    "azure.webpubsub.gp.joined",
    "azure.webpubsub.gp.left",
    "mqtt",
    "physical-1",
    "text/plain",
    "text/plain; charset=utf-8",
    "text/plain; charset=latin1",
    "text/plain; charset",
    "text/plain;;;=",
    "application/json",
    "application/json; charset=\"UTF-8\"",
    "application/octet-stream",
    "application/xml",
    ";",
    "eyJjb3VudGVyIjoxLCJuYW1lIjoiYm9iIn0=",
    "e30=",
    "%%%",
    "WzFd",
    "====",
    "sha256=",
    "sha256=zz",
    "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
    "0",
    "3",
    "-1",
    "99999999999999999999999",
    "a.com, b.com",
    HOST,
];

const BODIES: &[&str] = &[
    "",
    "{}",
    "null",
    "[]",
    "42",
    "\"s\"",
    "{",
    "{\"claims\":{\"sub\":[\"a\"]},\"mqtt\":{\"protocolVersion\":5}}",
    "{\"mqtt\":{\"protocolVersion\":300}}",
    "{\"mqtt\":{\"protocolVersion\":\"x\"}}",
    "{\"claims\":{\"a\":{\"b\":1}}}",
    "{\"clientCertificates\":[{\"thumbprint\":null}]}",
    "{\"reason\":7}",
    "{\"group\":\"g\"}",
    "{\"group\":null}",
    "{\"mqtt\":{\"disconnectPacket\":{\"code\":999}}}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Remove(&'static str),
    Set(&'static str, Vec<u8>),
    Append(&'static str, Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Signing {
    Unsigned,
    Right,
    Wrong,
}

#[derive(Debug, Clone)]
struct Input {
    base: usize,
    signing: Signing,
    mutations: Vec<Mutation>,
    method: Option<Method>,
    body: Option<Vec<u8>>,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(VALUES).prop_map(|v| v.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => "[ -~]{0,24}".prop_map(String::into_bytes),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let name = || select(NAMES);
    prop_oneof![
        name().prop_map(Mutation::Remove),
        (name(), value()).prop_map(|(n, v)| Mutation::Set(n, v)),
        (name(), value()).prop_map(|(n, v)| Mutation::Append(n, v)),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let method = prop_oneof![
        6 => Just(None),
        1 => select(vec![
            Method::GET,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::PATCH,
            Method::OPTIONS,
            Method::TRACE,
        ])
        .prop_map(Some),
    ];
    let body = prop_oneof![
        3 => Just(None),
        2 => select(BODIES).prop_map(|b| Some(b.as_bytes().to_vec())),
        1 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(Some),
    ];
    let signing = select(vec![
        Signing::Right,
        Signing::Right,
        Signing::Unsigned,
        Signing::Wrong,
    ]);
    (
        0..9usize,
        signing,
        proptest::collection::vec(mutation(), 0..6),
        method,
        body,
    )
        .prop_map(|(base, signing, mutations, method, body)| Input {
            base,
            signing,
            mutations,
            method,
            body,
        })
}

fn base_event(base: usize) -> Option<testing::TestEvent> {
    Some(match base {
        0 => testing::connect("chat", "c1")
            .claim("sub", "alice")
            .query("q", "1"),
        1 => testing::connect("chat", "device").mqtt(5),
        2 => testing::connected("chat", "c1").user("alice"),
        3 => testing::user_event("chat", "c1", "message").text("hi"),
        4 => testing::user_event("chat", "c1", "message").json(&serde_json::json!({"a": [1]})),
        5 => testing::user_event("chat", "c1", "message").binary(vec![0, 255]),
        6 => testing::disconnected("chat", "c1").reason("bye"),
        7 => testing::group_joined("chat", "c1", "lobby").state("k", "v"),
        _ => return None,
    })
}

fn build(input: &Input) -> Request<Body> {
    let mut request = match base_event(input.base) {
        Some(event) => event.origin(HOST).request(),
        None => Request::new(Body::empty()),
    };
    if let Some(method) = &input.method {
        *request.method_mut() = method.clone();
    } else if input.base >= 8 {
        *request.method_mut() = Method::POST;
    }
    for mutation in &input.mutations {
        let headers = request.headers_mut();
        match mutation {
            Mutation::Remove(name) => {
                headers.remove(*name);
            }
            Mutation::Set(name, value) | Mutation::Append(name, value) => {
                let Ok(value) = HeaderValue::from_bytes(value) else {
                    continue; // not representable as a header value
                };
                let name = HeaderName::from_static(name);
                if matches!(mutation, Mutation::Set(..)) {
                    headers.insert(name, value);
                } else {
                    headers.append(name, value);
                }
            }
        }
    }
    if let Some(body) = &input.body {
        *request.body_mut() = Body::from(Bytes::from(body.clone()));
    }
    // Sign last, over whatever connection id the request ended up with.
    let key = match input.signing {
        Signing::Unsigned => None,
        Signing::Right => Some(KEY),
        Signing::Wrong => Some("wrong-key"),
    };
    let connection_id = request
        .headers()
        .get("ce-connectionid")
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_owned);
    let headers = request.headers_mut();
    headers.remove("ce-signature");
    if let (Some(key), Some(id)) = (key, connection_id) {
        let signature = AccessKey::new(key).unwrap().signature(&id);
        headers.insert("ce-signature", HeaderValue::from_str(&signature).unwrap());
    }
    request
}

fn check(input: &Input) -> Result<(), TestCaseError> {
    let recorder = Recorder::new()
        .on_connect(|req| {
            Ok(ConnectEventResponse::new()
                .user_id(req.context.connection_id.clone())
                .state("n", 1))
        })
        .on_user_event(|req| Ok(req.data.clone().into()));
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .endpoint(HOST, KEY)
        .access_key("extra-key")
        .body_limit(256)
        .build()
        .unwrap();
    let request = build(input);
    let method = request.method().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = runtime.block_on(call(&router, request));
    let status = answer.status;
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "status {status} for {input:#?}: {:?}",
        answer.text()
    );
    if method == Method::OPTIONS {
        prop_assert!(
            status == 200 || status == 400,
            "preflight answered {status}"
        );
    }
    if input.signing != Signing::Right {
        prop_assert!(
            !(method == Method::POST && status.is_success()),
            "an unsigned or wrongly signed POST was accepted: {input:#?}"
        );
        prop_assert_eq!(
            call_count(&calls),
            0,
            "the handler was reached without a valid signature"
        );
    }
    if status.is_client_error() {
        prop_assert_eq!(
            call_count(&calls),
            0,
            "a refused request reached the handler"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_requests_never_panic_nor_answer_5xx(input in input()) {
        check(&input)?;
    }
}

#[test]
fn the_generator_reaches_the_handler_often_enough_to_matter() {
    // Guards the property above against a generator that only makes garbage:
    // an unmutated, correctly signed event of every kind is accepted.
    for base in 0..8 {
        let input = Input {
            base,
            signing: Signing::Right,
            mutations: Vec::new(),
            method: None,
            body: None,
        };
        let request = build(&input);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let router = common::router(Recorder::new());
        let answer = runtime.block_on(call(&router, request));
        assert!(answer.status.is_success(), "base {base}: {answer:?}");
    }
}
