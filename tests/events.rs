//! Every event kind through the real router (spec §5, §6): what the handler
//! sees, and how its answer is written.

mod common;

use axum::http::HeaderValue;
use common::{call, call_count, only_call, router, Recorder, KEY};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webpubsub::events::{DataType, Event, EventData};
use webpubsub::{
    async_trait, testing, ConnectEventResponse, EventErrorResponse, EventHandler, UserEventResponse,
};

fn connect_request(event: Event) -> webpubsub::ConnectEventRequest {
    match event {
        Event::Connect(req) => req,
        other => panic!("expected connect, got {other:?}"),
    }
}

fn user_request(event: Event) -> webpubsub::UserEventRequest {
    match event {
        Event::UserEvent(req) => req,
        other => panic!("expected a user event, got {other:?}"),
    }
}

/// Echoes user events back with the same data type.
fn echo() -> Recorder {
    Recorder::new().on_user_event(|req| Ok(req.data.clone().into()))
}

// ---------------------------------------------------------------- connect

#[tokio::test]
async fn connect_with_nothing_set_answers_204_without_body() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let answer = call(&router(recorder), testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    assert!(answer.header("content-type").is_none());
    assert!(answer.header("ce-connectionstate").is_none());
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn connect_answer_lists_only_the_fields_that_were_set() {
    let cases: Vec<(ConnectEventResponse, serde_json::Value)> = vec![
        (
            ConnectEventResponse::new().user_id("alice"),
            json!({"userId": "alice"}),
        ),
        (
            ConnectEventResponse::new()
                .user_id("alice")
                .groups(["lobby", "news"]),
            json!({"userId": "alice", "groups": ["lobby", "news"]}),
        ),
        (
            ConnectEventResponse::new()
                .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.lobby"])
                .subprotocol("json.webpubsub.azure.v1"),
            json!({
                "roles": ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.lobby"],
                "subprotocol": "json.webpubsub.azure.v1"
            }),
        ),
        // An empty user id is valid for the service; an empty role list removes the token's roles.
        (
            ConnectEventResponse::new()
                .user_id("")
                .roles(Vec::<String>::new()),
            json!({"userId": "", "roles": []}),
        ),
    ];
    for (accept, expected) in cases {
        let reply = accept.clone();
        let router = router(Recorder::new().on_connect(move |_| Ok(reply.clone())));
        let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
        assert_eq!(answer.status, 200, "{accept:?}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(answer.json(), expected, "{accept:?}");
    }
}

#[tokio::test]
async fn connect_answer_never_sends_an_empty_subprotocol() {
    let router =
        router(Recorder::new().on_connect(|_| Ok(ConnectEventResponse::new().subprotocol(""))));
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 204, "{answer:?}");

    let router = router_with(|_| Ok(ConnectEventResponse::new().user_id("u").subprotocol("")));
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.json(), json!({"userId": "u"}));
}

fn router_with(
    f: impl Fn(&webpubsub::ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse>
        + Send
        + Sync
        + 'static,
) -> webpubsub::EventRouter {
    router(Recorder::new().on_connect(f))
}

#[tokio::test]
async fn connect_request_is_decoded_for_the_handler() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connect("chat", "c1")
        .claim("sub", "alice")
        .claim("role", "webpubsub.joinLeaveGroup")
        .claim("role", "webpubsub.sendToGroup")
        .query("room", "lobby")
        .query("tag", "a")
        .query("tag", "b")
        .client_header("Origin", "https://app.example.com")
        .subprotocols(["json.webpubsub.azure.v1", "protobuf.webpubsub.azure.v1"])
        .client_certificate("ABCDEF0123", Some("-----BEGIN CERTIFICATE-----"))
        .client_certificate("99887766", None)
        .origin("demo.webpubsub.azure.com")
        .sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);

    let req = connect_request(only_call(&calls));
    assert_eq!(req.claim("sub"), Some("alice"));
    assert_eq!(
        req.claims()["role"],
        ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]
    );
    assert_eq!(req.query_value("room"), Some("lobby"));
    assert_eq!(req.query()["tag"], ["a", "b"]);
    assert_eq!(req.header("origin"), Some("https://app.example.com"));
    assert_eq!(req.header("ORIGIN"), Some("https://app.example.com"));
    assert_eq!(
        req.subprotocols,
        ["json.webpubsub.azure.v1", "protobuf.webpubsub.azure.v1"]
    );
    assert_eq!(req.client_certificates.len(), 2);
    assert_eq!(req.client_certificates[0].thumbprint, "ABCDEF0123");
    assert_eq!(
        req.client_certificates[0].content.as_deref(),
        Some("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(req.client_certificates[1].content, None);
    assert!(req.mqtt.is_none());
    assert!(!req.context.is_mqtt());
    assert_eq!(req.context.hub, "chat");
    assert_eq!(req.context.connection_id, "c1");
    assert_eq!(req.context.event_name, "connect");
    assert_eq!(req.context.event_type(), "azure.webpubsub.sys.connect");
    assert_eq!(req.context.origin(), Some("demo.webpubsub.azure.com"));
    assert_eq!(req.context.user_id, None);
}

#[tokio::test]
async fn connect_body_of_the_spec_example_is_decoded() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let body = r#"{"claims":{"sub":["alice"],"role":["webpubsub.joinLeaveGroup"]},
 "query":{"room":["lobby"]},
 "headers":{"Host":["demo.webpubsub.azure.com"],"Origin":["https://app.example.com"]},
 "subprotocols":["json.webpubsub.azure.v1"],
 "clientCertificates":[]}"#;
    let request = testing::connect("chat", "Q2xpZW50MQ")
        .raw_body(body)
        .content_type(Some("application/json; charset=utf-8"))
        .sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let req = connect_request(only_call(&calls));
    assert_eq!(req.claim("sub"), Some("alice"));
    assert_eq!(req.query_value("room"), Some("lobby"));
    assert_eq!(req.header("host"), Some("demo.webpubsub.azure.com"));
    assert_eq!(req.subprotocols, ["json.webpubsub.azure.v1"]);
    assert!(req.client_certificates.is_empty());
}

#[tokio::test]
async fn connect_body_may_be_empty_null_or_have_null_fields() {
    for body in [
        "",
        "null",
        "{}",
        r#"{"claims":null,"query":null,"headers":null,"subprotocols":null,"clientCertificates":null}"#,
    ] {
        let recorder = Recorder::new();
        let calls = recorder.calls();
        let request = testing::connect("chat", "c1").raw_body(body).sign(KEY);
        let answer = call(&router(recorder), request).await;
        assert_eq!(answer.status, 204, "{body:?}: {answer:?}");
        let req = connect_request(only_call(&calls));
        assert!(req.claims().is_empty() && req.query().is_empty() && req.headers().is_empty());
        assert!(req.subprotocols.is_empty() && req.client_certificates.is_empty());
    }
}

#[tokio::test]
async fn connect_refusal_answers_its_status_with_a_text_body() {
    let cases = [
        (EventErrorResponse::user_error("bad room"), 400, "bad room"),
        (
            EventErrorResponse::unauthorized("who are you?"),
            401,
            "who are you?",
        ),
        (EventErrorResponse::server_error("db down"), 500, "db down"),
    ];
    for (refusal, status, body) in cases {
        let router = router_with(move |_| Err(refusal.clone()));
        let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.text(), body);
        assert!(answer
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")));
        assert!(answer.header("ce-connectionstate").is_none());
    }
}

#[tokio::test]
async fn connect_refusal_reads_back_with_the_testing_helper() {
    let router = router_with(|req| match req.query_value("user") {
        Some(user) => Ok(ConnectEventResponse::new().user_id(user)),
        None => Err(EventErrorResponse::unauthorized("add ?user=")),
    });
    let response = common::send(
        &router,
        testing::connect("chat", "c1")
            .query("user", "bob")
            .sign(KEY),
    )
    .await;
    let accepted = testing::read_connect_response(response).await.unwrap();
    assert_eq!(accepted.user_id.as_deref(), Some("bob"));
    let response = common::send(&router, testing::connect("chat", "c1").sign(KEY)).await;
    let refused = testing::read_connect_response(response).await.unwrap_err();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.message, "add ?user=");
}

// ---------------------------------------------------------------- MQTT connect

#[tokio::test]
async fn mqtt_connect_is_decoded_for_the_handler() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connect("chat", "device-7").mqtt(5).sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let req = connect_request(only_call(&calls));
    let mqtt = req.mqtt.as_ref().expect("MQTT properties");
    assert_eq!(mqtt.protocol_version, 5);
    assert_eq!(mqtt.username.as_deref(), Some("user"));
    assert_eq!(mqtt.password.as_deref(), Some("cGFzcw=="));
    assert!(req.context.is_mqtt());
    let ids = req.context.mqtt.as_ref().unwrap();
    assert_eq!(ids.physical_connection_id, "physical-1");
    assert_eq!(ids.session_id, None);
    assert_eq!(req.context.subprotocol.as_deref(), Some("mqtt"));
}

#[tokio::test]
async fn mqtt_connect_of_the_spec_example_is_decoded() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let body = r#"{"mqtt":{"protocolVersion":5,"cleanStart":false,"username":"device-7","password":"c2VjcmV0","userProperties":[{"name":"fw","value":"1.2"}]},
 "claims":{},"query":{},"headers":{"Sec-WebSocket-Protocol":["mqtt"]},"subprotocols":["mqtt"],"clientCertificates":[]}"#;
    let request = testing::connect("chat", "device-7")
        .header("ce-subprotocol", "mqtt")
        .header("ce-physicalConnectionId", "p-77")
        .raw_body(body)
        .sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let req = connect_request(only_call(&calls));
    let mqtt = req.mqtt.expect("MQTT properties");
    assert_eq!(mqtt.protocol_version, 5);
    assert_eq!(mqtt.clean_start, Some(false));
    assert_eq!(mqtt.username.as_deref(), Some("device-7"));
    assert_eq!(mqtt.password.as_deref(), Some("c2VjcmV0"));
    assert_eq!(mqtt.user_properties.len(), 1);
    assert_eq!(
        (
            mqtt.user_properties[0].name.as_str(),
            mqtt.user_properties[0].value.as_str()
        ),
        ("fw", "1.2")
    );
    assert_eq!(req.context.mqtt.unwrap().physical_connection_id, "p-77");
    assert_eq!(req.subprotocols, ["mqtt"]);
}

/// (protocol version, generic refusal, HTTP status, CONNACK code), spec §6.1.
fn generic_mqtt_refusals() -> [(u8, EventErrorResponse, u16, u8); 6] {
    [
        (4, EventErrorResponse::user_error("nope"), 400, 4),
        (4, EventErrorResponse::unauthorized("nope"), 401, 5),
        (4, EventErrorResponse::server_error("nope"), 500, 3),
        (5, EventErrorResponse::user_error("nope"), 400, 134),
        (5, EventErrorResponse::unauthorized("nope"), 401, 135),
        (5, EventErrorResponse::server_error("nope"), 500, 128),
    ]
}

#[tokio::test]
async fn mqtt_connect_refusal_is_json_with_the_code_of_the_protocol_version() {
    for (version, refusal, status, code) in generic_mqtt_refusals() {
        let router = router_with(move |_| Err(refusal.clone()));
        let request = testing::connect("chat", "device-7").mqtt(version).sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, status, "v{version} code {code}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{answer:?}"
        );
        assert_eq!(
            answer.json(),
            json!({"mqtt": {"code": code, "reason": "nope"}}),
            "v{version}"
        );
    }
}

#[tokio::test]
async fn connect_with_an_mqtt_body_but_no_physical_connection_id_is_refused_in_plain_text() {
    // Spec §6.6: a client is an MQTT client only when `ce-physicalConnectionId`
    // is present; an `mqtt` object in the body alone does not make it one,
    // so its refusal is the plain text one.
    let router = router_with(|_| Err(EventErrorResponse::unauthorized("nope")));
    let body = json!({"mqtt": {"protocolVersion": 5}, "claims": {}, "query": {}});
    let request = testing::connect("chat", "device-7")
        .raw_body(body.to_string())
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.body, "nope");
}

#[tokio::test]
async fn mqtt_connect_refusal_without_message_omits_the_reason() {
    let router = router_with(|_| Err(EventErrorResponse::unauthorized("")));
    let request = testing::connect("chat", "device-7").mqtt(5).sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json(), json!({"mqtt": {"code": 135}}));
}

#[tokio::test]
async fn mqtt_connect_refusal_with_an_explicit_code_takes_its_status_from_the_code() {
    let cases = [
        (5, 138, 403),
        (5, 151, 429),
        (5, 136, 500),
        (5, 129, 400),
        (4, 3, 503),
        (4, 2, 400),
        (4, 4, 401),
    ];
    for (version, code, status) in cases {
        let router = router_with(move |_| Err(EventErrorResponse::mqtt(code, "why")));
        let request = testing::connect("chat", "device-7").mqtt(version).sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, status, "code {code}");
        assert_eq!(
            answer.json(),
            json!({"mqtt": {"code": code, "reason": "why"}})
        );
    }
}

#[tokio::test]
async fn mqtt_refusal_with_user_properties_takes_its_code_from_the_client_protocol_version() {
    // The code of a generic refusal follows the client's version even when
    // user properties were added, and the HTTP status stays the generic one.
    for (version, refusal, status, code) in generic_mqtt_refusals() {
        let refusal = refusal.mqtt_user_property("region", "eu");
        let router = router_with(move |_| Err(refusal.clone()));
        let request = testing::connect("chat", "device-7").mqtt(version).sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, status, "v{version} code {code}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            answer.json(),
            json!({"mqtt": {
                "code": code,
                "reason": "nope",
                "userProperties": [{"name": "region", "value": "eu"}]
            }}),
            "v{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_user_property_on_an_explicit_code_keeps_the_code_and_its_status() {
    let refusal = EventErrorResponse::mqtt(138, "banned").mqtt_user_property("until", "friday");
    let router = router_with(move |_| Err(refusal.clone()));
    let request = testing::connect("chat", "device-7").mqtt(5).sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json(),
        json!({"mqtt": {
            "code": 138,
            "reason": "banned",
            "userProperties": [{"name": "until", "value": "friday"}]
        }})
    );
}

#[tokio::test]
async fn mqtt_user_property_does_not_change_the_answer_to_a_non_mqtt_client() {
    let cases = [
        (EventErrorResponse::user_error("nope"), 400),
        (EventErrorResponse::unauthorized("nope"), 401),
        (EventErrorResponse::server_error("nope"), 500),
    ];
    for (refusal, status) in cases {
        let refusal = refusal.mqtt_user_property("region", "eu");
        let router = router_with(move |_| Err(refusal.clone()));
        let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
        assert_eq!(answer.status, status);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(answer.text(), "nope");
    }
}

#[tokio::test]
async fn mqtt_connect_acceptance_carries_connack_user_properties() {
    let router =
        router_with(|_| Ok(ConnectEventResponse::new().mqtt_user_property("region", "eu")));
    let request = testing::connect("chat", "device-7").mqtt(5).sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"mqtt": {"userProperties": [{"name": "region", "value": "eu"}]}})
    );
}

// ---------------------------------------------------------------- connected

#[tokio::test]
async fn connected_answers_204_and_gives_the_handler_the_connection_context() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connected("Chat", "c1")
        .user("alice")
        .header("ce-subprotocol", "json.webpubsub.azure.v1")
        .origin("demo.webpubsub.azure.com")
        .sign(KEY);
    let answer = call(&router(recorder), request).await;
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    let Event::Connected(req) = only_call(&calls) else {
        panic!("expected connected");
    };
    let ctx = &req.context;
    assert_eq!(ctx.hub, "Chat", "the hub as the service spelled it");
    assert_eq!(ctx.connection_id, "c1");
    assert_eq!(ctx.user_id.as_deref(), Some("alice"));
    assert_eq!(ctx.subprotocol.as_deref(), Some("json.webpubsub.azure.v1"));
    assert_eq!(ctx.event_name, "connected");
    assert_eq!(ctx.event_type(), "azure.webpubsub.sys.connected");
    assert_eq!(ctx.event_id(), Some("1"));
    assert_eq!(ctx.time(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(ctx.source(), Some("/hubs/Chat/client/c1"));
    assert_eq!(ctx.spec_version(), Some("1.0"));
    assert_eq!(ctx.awps_version(), Some("1.0"));
    assert_eq!(ctx.origin(), Some("demo.webpubsub.azure.com"));
    assert!(ctx.states.is_empty());
    assert!(ctx.mqtt.is_none());
}

#[tokio::test]
async fn origin_lines_reach_the_handler_joined_and_debug_shows_no_signature() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connected("chat", "c1")
        .origin("a.example.com")
        .header("webhook-request-origin", "b.example.com")
        .header("x-forwarded-for", "203.0.113.7")
        .sign(KEY);
    let signature = request.headers()["ce-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let Event::Connected(req) = only_call(&calls) else {
        panic!("expected connected");
    };
    assert_eq!(req.context.origin(), Some("a.example.com, b.example.com"));
    let shown = format!("{:?}", req.context);
    assert!(shown.contains("\"event_id\": \"1\""), "{shown}");
    assert!(shown.contains("a.example.com, b.example.com"), "{shown}");
    for hidden in [signature.as_str(), "ce-signature", "203.0.113.7"] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
    assert_eq!(req.context.clone(), req.context);
}

#[tokio::test]
async fn non_ascii_user_id_reaches_the_handler() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connected("chat", "c1").user("zoë-日本").sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let Event::Connected(req) = only_call(&calls) else {
        panic!("expected connected");
    };
    assert_eq!(req.context.user_id.as_deref(), Some("zoë-日本"));
}

#[tokio::test]
async fn ce_id_is_exposed_so_handlers_can_drop_retried_duplicates() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    for id in ["7", "7", "8"] {
        let mut request = testing::user_event("chat", "c1", "message")
            .text("hi")
            .sign(KEY);
        request
            .headers_mut()
            .insert("ce-id", HeaderValue::from_static(id));
        assert_eq!(call(&router, request).await.status, 204);
    }
    let ids: Vec<Option<String>> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.context().event_id().map(str::to_owned))
        .collect();
    assert_eq!(ids, [Some("7".into()), Some("7".into()), Some("8".into())]);
}

// ---------------------------------------------------------------- user events

#[tokio::test]
async fn text_user_event_is_echoed_as_utf8_text_whatever_the_charset_spelling() {
    for content_type in [
        "text/plain",
        "text/plain; charset=utf-8",
        "text/plain; charset=UTF-8",
        "text/plain;charset=utf-8",
        "text/plain; charset=\"utf-8\"",
        "Text/Plain; Charset=utf-8",
    ] {
        let recorder = echo();
        let calls = recorder.calls();
        let request = testing::user_event("chat", "c1", "message")
            .text("héllo, wörld ✓")
            .content_type(Some(content_type))
            .sign(KEY);
        let answer = call(&router(recorder), request).await;
        assert_eq!(answer.status, 200, "{content_type}: {answer:?}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("text/plain; charset=utf-8"),
            "{content_type}"
        );
        assert_eq!(answer.text(), "héllo, wörld ✓");
        let req = user_request(only_call(&calls));
        assert_eq!(req.data.data_type(), DataType::Text, "{content_type}");
        assert_eq!(req.data.as_text(), Some("héllo, wörld ✓"));
    }
}

#[tokio::test]
async fn json_user_event_is_echoed_as_json_whatever_the_charset_spelling() {
    let payload = r#"{"text":"hé","n":[1,2.5,null,true]}"#;
    for content_type in [
        "application/json",
        "application/json;charset=utf-8",
        "application/json; charset=utf-8",
        "application/json; charset=UTF-8",
    ] {
        let recorder = echo();
        let calls = recorder.calls();
        let request = testing::user_event("chat", "c1", "message")
            .raw_body(payload)
            .content_type(Some(content_type))
            .sign(KEY);
        let answer = call(&router(recorder), request).await;
        assert_eq!(answer.status, 200, "{content_type}: {answer:?}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json; charset=utf-8"),
            "{content_type}"
        );
        assert_eq!(
            answer.text(),
            payload,
            "JSON is passed through byte for byte"
        );
        let req = user_request(only_call(&calls));
        assert_eq!(req.data.data_type(), DataType::Json);
        assert_eq!(req.data.to_json_value().unwrap()["text"], "hé");
    }
}

#[tokio::test]
async fn json_user_event_may_be_any_json_value() {
    for payload in ["1", "\"s\"", "true", "null", "[1,{}]", " {\"a\":1} "] {
        let router = router(echo());
        let request = testing::user_event("chat", "c1", "message")
            .raw_body(payload)
            .content_type(Some("application/json"))
            .sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 200, "{payload}: {answer:?}");
        assert_eq!(answer.text(), payload);
    }
}

#[tokio::test]
async fn binary_user_event_is_echoed_as_octet_stream() {
    let bytes: Vec<u8> = vec![0, 1, 2, 0xff, 0xfe, b'\n', 0x80];
    for content_type in [Some("application/octet-stream"), None] {
        let recorder = echo();
        let calls = recorder.calls();
        let request = testing::user_event("chat", "c1", "message")
            .binary(bytes.clone())
            .content_type(content_type)
            .sign(KEY);
        let answer = call(&router(recorder), request).await;
        assert_eq!(answer.status, 200, "{content_type:?}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(answer.body.as_ref(), bytes.as_slice());
        let req = user_request(only_call(&calls));
        assert_eq!(
            req.data,
            EventData::binary(bytes.clone()),
            "{content_type:?}"
        );
    }
}

#[tokio::test]
async fn binary_user_event_ignores_a_charset_parameter() {
    let router = router(echo());
    let request = testing::user_event("chat", "c1", "message")
        .binary(vec![0xff, 0x00])
        .content_type(Some("application/octet-stream; charset=binary"))
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body.as_ref(), [0xff, 0x00]);
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    text: String,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
struct Ack {
    ok: bool,
    len: usize,
}

struct Typed;

#[async_trait]
impl EventHandler for Typed {
    async fn user_event(
        &self,
        req: webpubsub::UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        let message: ChatMessage = req.json()?;
        assert_eq!(message.to, None);
        UserEventResponse::json(&Ack {
            ok: true,
            len: message.text.chars().count(),
        })
    }
}

#[tokio::test]
async fn json_payload_deserialises_into_a_typed_value() {
    let router = router(Typed);
    let request = testing::user_event("chat", "c1", "chat")
        .json(&json!({"text": "héllo"}))
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), json!({"ok": true, "len": 5}));

    // `json::<T>()` also reads JSON sent as a text frame.
    let request = testing::user_event("chat", "c1", "chat")
        .text(r#"{"text":"hi"}"#)
        .sign(KEY);
    assert_eq!(
        call(&router, request).await.json(),
        json!({"ok": true, "len": 2})
    );
}

#[tokio::test]
async fn json_payload_of_the_wrong_shape_is_refused_with_400_by_the_question_mark() {
    let router = router(Typed);
    let request = testing::user_event("chat", "c1", "chat")
        .json(&json!({"txt": "typo"}))
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text().starts_with("invalid JSON payload"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn user_event_refusal_answers_its_status_with_a_text_body() {
    let cases = [
        (EventErrorResponse::user_error("too long"), 400),
        (EventErrorResponse::unauthorized("muted"), 401),
        (EventErrorResponse::server_error("oops"), 500),
    ];
    for (refusal, status) in cases {
        let message = refusal.message.clone();
        let router = router(Recorder::new().on_user_event(move |_| Err(refusal.clone())));
        let request = testing::user_event("chat", "c1", "message")
            .text("x")
            .sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.text(), message);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
}

#[tokio::test]
async fn user_event_with_no_reply_answers_204() {
    let router = router(Recorder::new().on_user_event(|_| Ok(UserEventResponse::none())));
    for event in [
        testing::user_event("chat", "c1", "message").text("hi"),
        testing::user_event("chat", "c1", "message").json(&json!({"a": 1})),
        testing::user_event("chat", "c1", "message").binary(vec![1, 2, 3]),
    ] {
        let answer = call(&router, event.sign(KEY)).await;
        assert_eq!(answer.status, 204);
        assert!(answer.body.is_empty());
        assert!(answer.header("content-type").is_none());
    }
}

#[tokio::test]
async fn user_event_reply_reads_back_with_the_testing_helper() {
    let router = router(Recorder::new().on_user_event(|req| {
        Ok(UserEventResponse::text(format!(
            "got {}",
            req.data.as_text().unwrap_or("?")
        )))
    }));
    let request = testing::user_event("chat", "c1", "message")
        .text("hi")
        .sign(KEY);
    let reply = testing::read_user_event_response(common::send(&router, request).await)
        .await
        .unwrap();
    assert_eq!(reply.data(), Some(&EventData::text("got hi")));
}

#[tokio::test]
async fn user_event_name_comes_from_the_event() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    let request = testing::user_event("chat", "c1", "chat.v2")
        .text("x")
        .sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    // Without ce-eventName, the name is the suffix of ce-type.
    let mut request = testing::user_event("chat", "c1", "typing")
        .text("x")
        .sign(KEY);
    request.headers_mut().remove("ce-eventname");
    assert_eq!(call(&router, request).await.status, 204);
    let names: Vec<(String, String)> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.context().event_name.clone(),
                e.context().event_type().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "chat.v2".to_owned(),
                "azure.webpubsub.user.chat.v2".to_owned()
            ),
            (
                "typing".to_owned(),
                "azure.webpubsub.user.typing".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn mqtt_user_event_carries_the_mqtt_ids() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::user_event("chat", "device-7", "telemetry")
        .binary(vec![1, 2])
        .mqtt(5)
        .header("ce-sessionId", "session-9")
        .sign(KEY);
    assert_eq!(call(&router(recorder), request).await.status, 204);
    let req = user_request(only_call(&calls));
    let ids = req.context.mqtt.expect("MQTT ids");
    assert_eq!(ids.physical_connection_id, "physical-1");
    assert_eq!(ids.session_id.as_deref(), Some("session-9"));
}

// ---------------------------------------------------------------- disconnected

#[tokio::test]
async fn disconnected_answers_204_and_gives_the_reason() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    let request = testing::disconnected("chat", "c1")
        .user("alice")
        .reason("network lost")
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 204);
    let Event::Disconnected(req) = only_call(&calls) else {
        panic!("expected disconnected");
    };
    assert_eq!(req.reason.as_deref(), Some("network lost"));
    assert_eq!(req.context.user_id.as_deref(), Some("alice"));
    assert!(req.mqtt.is_none());
}

#[tokio::test]
async fn disconnected_without_reason_has_none() {
    for body in [r#"{"reason":null}"#, "{}", ""] {
        let recorder = Recorder::new();
        let calls = recorder.calls();
        let request = testing::disconnected("chat", "c1").raw_body(body).sign(KEY);
        assert_eq!(
            call(&router(recorder), request).await.status,
            204,
            "{body:?}"
        );
        let Event::Disconnected(req) = only_call(&calls) else {
            panic!("expected disconnected");
        };
        assert_eq!(req.reason, None, "{body:?}");
    }
}

#[tokio::test]
async fn mqtt_disconnected_gives_the_disconnect_packet() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    let body = r#"{"reason":null,
 "mqtt":{"initiatedByClient":true,
         "disconnectPacket":{"code":0,"userProperties":[{"name":"a","value":"b"}]}}}"#;
    let request = testing::disconnected("chat", "device-7")
        .mqtt(5)
        .raw_body(body)
        .sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    let request = testing::disconnected("chat", "device-7")
        .mqtt(5)
        .raw_body(r#"{"reason":"keep alive timeout","mqtt":{"initiatedByClient":false,"disconnectPacket":{"code":141,"userProperties":null}}}"#)
        .sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    let request = testing::disconnected("chat", "device-7")
        .mqtt(4)
        .raw_body(
            r#"{"reason":"network","mqtt":{"initiatedByClient":false,"disconnectPacket":null}}"#,
        )
        .sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);

    let calls = calls.lock().unwrap();
    let requests: Vec<_> = calls
        .iter()
        .map(|e| match e {
            Event::Disconnected(req) => req.clone(),
            other => panic!("expected disconnected, got {other:?}"),
        })
        .collect();
    assert_eq!(requests.len(), 3);

    let mqtt = requests[0].mqtt.as_ref().expect("MQTT part");
    assert!(mqtt.initiated_by_client);
    let packet = mqtt.disconnect_packet.as_ref().expect("a packet");
    assert_eq!(packet.code, 0);
    let props = packet.user_properties.as_ref().expect("client properties");
    assert_eq!(
        (props[0].name.as_str(), props[0].value.as_str()),
        ("a", "b")
    );
    assert!(requests[0].context.is_mqtt());

    let mqtt = requests[1].mqtt.as_ref().expect("MQTT part");
    assert!(!mqtt.initiated_by_client);
    let packet = mqtt.disconnect_packet.as_ref().expect("a packet");
    assert_eq!(packet.code, 141);
    assert_eq!(
        packet.user_properties, None,
        "server-sent packet has no properties"
    );
    assert_eq!(requests[1].reason.as_deref(), Some("keep alive timeout"));

    let mqtt = requests[2].mqtt.as_ref().expect("MQTT part");
    assert_eq!(mqtt.disconnect_packet, None, "no packet on network failure");
}

// ---------------------------------------------------------------- group presence

#[tokio::test]
async fn group_joined_and_left_answer_204_and_name_the_group() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    let answer = call(
        &router,
        testing::group_joined("chat", "c1", "lobby")
            .user("alice")
            .sign(KEY),
    )
    .await;
    assert_eq!(answer.status, 204);
    let answer = call(&router, testing::group_left("chat", "c1", "news").sign(KEY)).await;
    assert_eq!(answer.status, 204);
    let calls = calls.lock().unwrap();
    match (&calls[0], &calls[1]) {
        (Event::GroupJoined(joined), Event::GroupLeft(left)) => {
            assert_eq!(joined.group, "lobby");
            assert_eq!(joined.context.user_id.as_deref(), Some("alice"));
            assert_eq!(joined.context.event_name, "joined");
            assert_eq!(left.group, "news");
            assert_eq!(left.context.event_type(), "azure.webpubsub.gp.left");
        }
        other => panic!("unexpected events {other:?}"),
    }
}

// ---------------------------------------------------------------- defaults

struct Defaults;

#[async_trait]
impl EventHandler for Defaults {}

#[tokio::test]
async fn a_handler_that_implements_nothing_accepts_everything_with_204() {
    let router = router(Defaults);
    let events = [
        testing::connect("chat", "c1").claim("sub", "x"),
        testing::connect("chat", "c1").mqtt(5),
        testing::connected("chat", "c1"),
        testing::user_event("chat", "c1", "message").text("hi"),
        testing::disconnected("chat", "c1").reason("bye"),
        testing::group_joined("chat", "c1", "g"),
        testing::group_left("chat", "c1", "g"),
    ];
    for event in events {
        let answer = call(&router, event.clone().sign(KEY)).await;
        assert_eq!(answer.status, 204, "{event:?}");
        assert!(answer.body.is_empty());
    }
}

#[tokio::test]
async fn events_reach_the_handler_through_an_axum_mount_on_any_sub_path() {
    let recorder = echo();
    let calls = recorder.calls();
    let app = axum::Router::new().nest_service("/eventhandler", router(recorder));
    for path in [
        "/eventhandler",
        "/eventhandler/chat/message",
        "/eventhandler/x?y=z",
    ] {
        let request = testing::user_event("chat", "c1", "message")
            .text(path)
            .uri(path)
            .sign(KEY);
        let answer = call(&app, request).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.text(), path);
    }
    assert_eq!(call_count(&calls), 3);
    let request = testing::user_event("chat", "c1", "message")
        .uri("/elsewhere")
        .sign(KEY);
    assert_eq!(call(&app, request).await.status, 404);
    assert_eq!(call_count(&calls), 3);
}

#[tokio::test]
async fn handler_in_an_arc_can_be_shared_with_the_application() {
    let shared = std::sync::Arc::new(echo());
    let calls = shared.calls();
    let router = router(std::sync::Arc::clone(&shared));
    let request = testing::user_event("chat", "c1", "message")
        .text("hi")
        .sign(KEY);
    assert_eq!(call(&router, request).await.text(), "hi");
    assert_eq!(call_count(&calls), 1);
    assert_eq!(std::sync::Arc::strong_count(&shared), 2);
}
