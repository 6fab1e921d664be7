//! What the upstream receives: CloudEvents headers and signatures,
//! connection state, connect answers, URL templates, hub names and keys.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub::config::AccessKey;
use webpubsub::WebPubSubServiceClient;
use webpubsub_emulator::{EventHandlerSettings, HubSettings};

use crate::common::emulator::{ok_ack, open, refused_handshake, Client, JSON, RELIABLE};
use crate::helpers::{builder, env, forbidden, reason_of, server_text, start, KEY, SECONDARY_KEY};
use crate::recording_upstream::{default_reply, Reply, Req, Upstream};

/// Seconds since the epoch of a `ce-time` value, after checking its format
/// (`YYYY-MM-DDTHH:MM:SSZ`).
fn ce_time_seconds(value: &str) -> i64 {
    let b = value.as_bytes();
    assert!(
        value.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z',
        "ce-time `{value}` is not UTC to the second"
    );
    let n = |from: usize, to: usize| value[from..to].parse::<i64>().unwrap();
    let (year, month, day) = (n(0, 4), n(5, 7), n(8, 10));
    // Days since 1970-01-01 of a civil date.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

#[tokio::test]
async fn events_carry_the_cloud_events_headers_and_a_valid_signature() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let url = format!(
        "{}&room=lobby",
        env.url(
            &ClientAccessOptions::new()
                .user_id("ursula")
                .claim("team", "blue")
        )
    );
    let mut c = env.client_at(url, JSON).await;
    let id = c.id.clone();
    c.send(json!({"type": "event", "event": "echo", "dataType": "text", "data": "x", "ackId": 1}))
        .await;
    assert_eq!(c.next_json().await, server_text("x"));
    assert_eq!(c.next_json().await, ok_ack(1));
    c.send(
        json!({"type": "event", "event": "keep", "dataType": "json", "data": {"k": 1}, "ackId": 2}),
    )
    .await;
    assert_eq!(c.next_json().await, ok_ack(2));
    c.send(
        json!({"type": "event", "event": "keep", "dataType": "binary", "data": "AQ==", "ackId": 3}),
    )
    .await;
    assert_eq!(c.next_json().await, ok_ack(3));
    c.ws.close(None).await.unwrap();
    up.wait_event(&id, "disconnected").await;

    let events = up.events_of(&id);
    let names: Vec<&str> = events.iter().map(Req::event).collect();
    assert_eq!(
        names,
        [
            "connect",
            "connected",
            "echo",
            "keep",
            "keep",
            "disconnected"
        ]
    );
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let signature = AccessKey::new(KEY).unwrap().signature(&id);
    for (i, event) in events.iter().enumerate() {
        let name = event.event();
        let what = format!("{name} #{i}");
        let ce_type = match name {
            "connect" | "connected" | "disconnected" => format!("azure.webpubsub.sys.{name}"),
            user => format!("azure.webpubsub.user.{user}"),
        };
        assert_eq!(event.header("ce-specversion"), Some("1.0"), "{what}");
        assert_eq!(event.header("ce-awpsversion"), Some("1.0"), "{what}");
        assert_eq!(event.header("ce-type"), Some(ce_type.as_str()), "{what}");
        assert_eq!(
            event.header("ce-source"),
            Some(format!("/hubs/chat/client/{id}").as_str()),
            "{what}"
        );
        assert_eq!(
            event.header("ce-id"),
            Some(i.to_string().as_str()),
            "{what}"
        );
        let time = ce_time_seconds(event.header("ce-time").expect("ce-time"));
        assert!((time - now).abs() < 60, "{what}: ce-time far from now");
        assert_eq!(event.header("ce-hub"), Some("chat"), "{what}");
        assert_eq!(event.header("ce-connectionId"), Some(id.as_str()), "{what}");
        assert_eq!(event.header("ce-userId"), Some("ursula"), "{what}");
        assert_eq!(
            event.header("ce-signature"),
            Some(signature.as_str()),
            "{what}"
        );
        assert_eq!(
            event.header("WebHook-Request-Origin"),
            Some("127.0.0.1"),
            "{what}"
        );
        assert_eq!(event.path, format!("/eh/chat/{name}"), "{what}");
        if name == "connect" {
            assert!(event.header("ce-subprotocol").is_none(), "{what}");
        } else {
            assert_eq!(event.header("ce-subprotocol"), Some(JSON), "{what}");
        }
        assert!(event.header("ce-connectionState").is_none(), "{what}");
    }
    let content_types: Vec<&str> = events
        .iter()
        .map(|e| e.header("content-type").unwrap_or_default())
        .collect();
    for system in [0, 1, 5] {
        assert!(
            content_types[system].starts_with("application/json"),
            "{content_types:?}"
        );
    }
    assert!(
        content_types[2].starts_with("text/plain"),
        "{content_types:?}"
    );
    assert!(
        content_types[3].starts_with("application/json"),
        "{content_types:?}"
    );
    assert_eq!(content_types[4], "application/octet-stream");

    let connect = events[0].json();
    assert_eq!(connect["claims"]["sub"], json!(["ursula"]));
    assert_eq!(connect["claims"]["team"], json!(["blue"]));
    assert_eq!(connect["query"]["room"], json!(["lobby"]));
    assert!(connect["query"].get("access_token").is_none(), "{connect}");
    assert_eq!(connect["subprotocols"], json!([JSON]));
    assert!(connect["headers"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.eq_ignore_ascii_case("host")));
    assert!(!connect["headers"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization")));
    assert_eq!(connect["clientCertificates"], json!([]));
    assert_eq!(events[1].json(), json!({}));
    assert_eq!(events[3].json(), json!({"k": 1}));
    assert_eq!(&events[4].body[..], &[1u8]);
    assert!(reason_of(&events[5]).is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn connection_state_from_blocking_answers_is_echoed_and_an_empty_value_clears_it() {
    let up = Upstream::with(|req| match req.event() {
        "connect" => Reply::status(204).header("ce-connectionState", "c1"),
        "set" => Reply::status(200).header("ce-connectionState", "s2"),
        "clear" => Reply::status(204).header("ce-connectionState", ""),
        "refuse" => Reply::status(400).header("ce-connectionState", "bad"),
        _ => default_reply(req),
    })
    .await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("stateful"))
        .await;
    let id = c.id.clone();
    for (i, event) in ["keep", "set", "keep", "refuse", "keep", "clear", "keep"]
        .into_iter()
        .enumerate()
    {
        let ack = c
            .request(json!({"type": "event", "event": event, "data": 1, "ackId": i}))
            .await;
        assert_eq!(ack["success"], event != "refuse", "{event}: {ack}");
    }
    c.ws.close(None).await.unwrap();
    up.wait_event(&id, "disconnected").await;
    let seen: Vec<(String, Option<String>)> = up
        .events_of(&id)
        .iter()
        .map(|e| (e.event().to_owned(), e.state().map(str::to_owned)))
        .collect();
    let expected: Vec<(String, Option<String>)> = [
        ("connect", None),
        ("connected", Some("c1")),
        ("keep", Some("c1")),
        ("set", Some("c1")),
        ("keep", Some("s2")),
        // a refused event does not change the state
        ("refuse", Some("s2")),
        ("keep", Some("s2")),
        ("clear", Some("s2")),
        ("keep", None),
        ("disconnected", None),
    ]
    .into_iter()
    .map(|(e, s)| (e.to_owned(), s.map(str::to_owned)))
    .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_answer_to_connected_does_not_change_the_connection_state() {
    let up = Upstream::with(|req| match req.event() {
        "connect" => Reply::status(204).header("ce-connectionState", "c1"),
        "connected" => Reply::status(200).header("ce-connectionState", "from-connected"),
        _ => default_reply(req),
    })
    .await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "keep", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let keep = up.wait_event(&c.id, "keep").await;
    assert_eq!(keep.state(), Some("c1"));
}

#[tokio::test]
async fn a_connect_answer_sets_user_groups_roles_and_subprotocol() {
    let up = Upstream::with(|req| {
        if req.event() != "connect" {
            return default_reply(req);
        }
        match req.json()["query"]["case"][0].as_str() {
            Some("apply") => Reply::status(200).json(json!({
                "userId": "from-upstream",
                "groups": ["ga", "gb"],
                "roles": ["webpubsub.sendToGroup.ga"],
                "subprotocol": JSON,
            })),
            Some("empty") => Reply::status(200).json(json!({"groups": [], "roles": []})),
            Some("unoffered") => Reply::status(200).json(json!({"subprotocol": "mqtt"})),
            Some("refuse") => Reply::status(401),
            Some("garbage") => Reply::status(200).body("application/json", "{not json"),
            _ => Reply::status(204),
        }
    })
    .await;
    let env = env(&up).await;
    let token_options = ClientAccessOptions::new()
        .user_id("token-user")
        .role(Permission::JoinLeaveGroup.role())
        .group("tg");

    let url = format!("{}&case=apply", env.url(&token_options));
    let (ws, response) = open(&url, &[RELIABLE, JSON]).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], JSON);
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let connected = c.next_json().await;
    assert_eq!(connected["userId"], "from-upstream");
    assert!(
        connected.get("reconnectionToken").is_none(),
        "the chosen protocol is not the reliable one: {connected}"
    );
    c.id = connected["connectionId"].as_str().unwrap().to_owned();
    assert!(env.service.group_exists("ga").await.unwrap());
    assert!(env.service.group_exists("gb").await.unwrap());
    assert!(!env.service.group_exists("tg").await.unwrap());
    assert!(env.service.user_exists("from-upstream").await.unwrap());
    assert!(!env.service.user_exists("token-user").await.unwrap());
    // The answer's roles replaced the token's.
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "x", "ackId": 1}))
            .await,
        1,
    );
    c.send(
        json!({"type": "sendToGroup", "group": "ga", "dataType": "text", "data": "ok", "ackId": 2}),
    )
    .await;
    assert_eq!(c.next_json().await["fromUserId"], "from-upstream");
    assert_eq!(c.next_json().await, ok_ack(2));
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "gb", "data": 1, "ackId": 3}))
            .await,
        3,
    );
    c.send(json!({"type": "event", "event": "keep", "data": 1, "ackId": 4}))
        .await;
    assert_eq!(c.next_json().await, ok_ack(4));
    let keep = up.wait_event(&c.id, "keep").await;
    assert_eq!(keep.header("ce-userId"), Some("from-upstream"));
    assert_eq!(keep.header("ce-subprotocol"), Some(JSON));

    // Empty groups keep the token's; empty roles remove them.
    let url = format!(
        "{}&case=empty",
        env.url(&token_options.clone().user_id("keeper"))
    );
    let mut keeper = env.client_at(url, JSON).await;
    assert_eq!(keeper.connected["userId"], "keeper");
    let members = env.service.list_connections_in_group("tg").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].connection_id, keeper.id);
    forbidden(
        &keeper
            .request(json!({"type": "joinGroup", "group": "x", "ackId": 1}))
            .await,
        1,
    );

    // A subprotocol the client did not offer fails the handshake; a refusal
    // passes its status on and raises no further events.
    let url = format!("{}&case=unoffered", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    let url = format!("{}&case=garbage", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    let url = format!("{}&case=refuse", env.url(&token_options));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 401);
    let refused = up
        .requests()
        .into_iter()
        .find(|r| r.event() == "connect" && r.json()["query"]["case"][0] == "refuse")
        .unwrap();
    // A later connection's full life proves the emulator moved on.
    let later = env
        .json_client(ClientAccessOptions::new().user_id("later"))
        .await;
    let later_id = later.id.clone();
    drop(later);
    up.wait_event(&later_id, "disconnected").await;
    assert_eq!(up.events_of(refused.connection()).len(), 1);
}

#[tokio::test]
async fn url_templates_expand_hub_and_event_in_path_and_query() {
    let up = Upstream::start().await;
    let handler = EventHandlerSettings::new(format!(
        "http://{}/t/{{event}}?hub={{hub}}&e={{event}}",
        up.addr
    ));
    let env = start(builder().hub(HubSettings::new("chat").event_handler(handler))).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "keep", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let paths: Vec<String> = up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/t/validate?hub=chat&e=validate",
            "/t/connect?hub=chat&e=connect",
            "/t/connected?hub=chat&e=connected",
            "/t/keep?hub=chat&e=keep",
        ]
    );
}

#[tokio::test]
async fn url_templates_leave_unreserved_characters_unescaped() {
    let up = Upstream::start().await;
    let env = start(builder().hub(HubSettings::new("my_hub").event_handler(up.handler()))).await;
    let service = env.service_for("my_hub");
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("u"));
    let mut c = env.client_at(url, JSON).await;
    assert_eq!(
        c.request(json!({"type": "event", "event": "my.event_1-x", "data": 1, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let event = up.wait_event(&c.id, "my.event_1-x").await;
    assert_eq!(event.path, "/eh/my_hub/my.event_1-x");
}

#[tokio::test]
async fn hub_names_are_case_insensitive_for_clients_and_rest() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let upper = env.service_for("CHAT");
    let url = upper.client_access_url(&ClientAccessOptions::new().user_id("shout"));
    assert!(url.contains("/client/hubs/CHAT?"), "{url}");
    let mut c = env.client_at(url, JSON).await;
    // The lower-case hub's REST client reaches it, and vice versa.
    env.service.send_to_user("shout", "lower").await.unwrap();
    assert_eq!(c.next_json().await, server_text("lower"));
    upper.send_to_connection(&c.id, "upper").await.unwrap();
    assert_eq!(c.next_json().await, server_text("upper"));
    assert!(env.service.connection_exists(&c.id).await.unwrap());
    up.wait_event(&c.id, "connected").await;
}

#[tokio::test]
async fn events_name_the_hub_in_lower_case() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let upper = env.service_for("CHAT");
    let url = upper.client_access_url(&ClientAccessOptions::new().user_id("shout"));
    let c = env.client_at(url, JSON).await;
    let connected = up.wait_event(&c.id, "connected").await;
    assert_eq!(connected.header("ce-hub"), Some("chat"));
    assert_eq!(
        connected.header("ce-source"),
        Some(format!("/hubs/chat/client/{}", c.id).as_str())
    );
    assert_eq!(connected.path, "/eh/chat/connected");
}

#[tokio::test]
async fn a_secondary_key_adds_a_second_signature_entry() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .secondary_access_key(SECONDARY_KEY)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let connected = up.wait_event(&c.id, "connected").await;
    let expected = format!(
        "{},{}",
        AccessKey::new(KEY).unwrap().signature(&c.id),
        AccessKey::new(SECONDARY_KEY).unwrap().signature(&c.id)
    );
    for event in up.events_of(&c.id) {
        assert_eq!(event.header("ce-signature"), Some(expected.as_str()));
    }
    assert_eq!(connected.header("ce-signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn tokens_signed_with_the_secondary_key_are_accepted() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .secondary_access_key(SECONDARY_KEY)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let secondary = WebPubSubServiceClient::from_connection_string(
        &format!(
            "Endpoint=http://127.0.0.1;Port={};AccessKey={SECONDARY_KEY};Version=1.0;",
            env.emulator.local_addr().port()
        ),
        "chat",
    )
    .unwrap();
    secondary.send_to_all("rotated").await.unwrap();
    let url = secondary.client_access_url(&ClientAccessOptions::new().user_id("u"));
    env.client_at(url, JSON).await;
}
