//! The JSON protocol: pings, group actions and their permissions, events
//! and their acks, malformed frames, and every payload type.

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub_emulator::HubSettings;

use crate::common::emulator::ok_ack;
use crate::helpers::{
    builder, env, env_without_connect, forbidden, reason_of, server_text, start, text_of,
};
use crate::recording_upstream::{Req, Upstream};

#[tokio::test]
async fn ping_gets_pong_and_requests_without_ack_id_get_no_ack() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("pinger"))
        .await;
    assert_eq!(
        c.request(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    // Forbidden and successful operations alike are silent without an ackId.
    c.send(json!({"type": "joinGroup", "group": "g"})).await;
    c.send(json!({"type": "event", "event": "keep", "dataType": "text", "data": "x"}))
        .await;
    assert!(c.until_pong().await.is_empty());
    assert!(!env.service.group_exists("g").await.unwrap());
    up.wait_event(&c.id, "keep").await;
}

#[tokio::test]
async fn group_actions_without_a_role_get_forbidden_acks_and_the_connection_stays_open() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut member = env
        .json_client(ClientAccessOptions::new().user_id("member").group("g"))
        .await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("nobody"))
        .await;
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
            .await,
        1,
    );
    forbidden(
        &c.request(json!({"type": "leaveGroup", "group": "g", "ackId": 2}))
            .await,
        2,
    );
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "g", "dataType": "text", "data": "x", "ackId": 3}))
            .await,
        3,
    );
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "still here", "ackId": 4}))
            .await,
        server_text("still here")
    );
    assert_eq!(c.next_json().await, ok_ack(4));

    let members = env.service.list_connections_in_group("g").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].connection_id, member.id);
    assert!(
        member.until_pong().await.is_empty(),
        "nothing was published"
    );
    // Without a connect subscription the upstream hears only connected.
    assert_eq!(up.count(&c.id, "connect"), 0);
    up.wait_event(&c.id, "connected").await;
}

#[tokio::test]
async fn roles_and_groups_in_the_token_apply_without_a_connect_handler() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("scoped")
        .role(Permission::JoinLeaveGroup.role_for("g1"))
        .role(Permission::SendToGroup.role_for("g1"))
        .group("start");
    let mut c = env.json_client(options).await;
    assert!(env.service.group_exists("start").await.unwrap());
    env.service.send_to_group("start", "hello").await.unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"type": "message", "from": "group", "group": "start", "dataType": "text", "data": "hello"})
    );

    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g1", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    forbidden(
        &c.request(json!({"type": "joinGroup", "group": "g2", "ackId": 2}))
            .await,
        2,
    );
    c.send(json!({"type": "sendToGroup", "group": "g1", "dataType": "text", "data": "in g1", "ackId": 3}))
        .await;
    assert_eq!(c.next_json().await["data"], "in g1");
    assert_eq!(c.next_json().await, ok_ack(3));
    forbidden(
        &c.request(json!({"type": "sendToGroup", "group": "g2", "dataType": "text", "data": "x", "ackId": 4}))
            .await,
        4,
    );
    // A group joined through the token still needs the role to be left.
    forbidden(
        &c.request(json!({"type": "leaveGroup", "group": "start", "ackId": 5}))
            .await,
        5,
    );
    assert_eq!(
        c.request(json!({"type": "leaveGroup", "group": "g1", "ackId": 6}))
            .await,
        ok_ack(6)
    );
    assert!(!env.service.group_exists("g1").await.unwrap());

    // The unscoped role covers every group, and only that action.
    let mut all = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("all")
                .role(Permission::JoinLeaveGroup.role()),
        )
        .await;
    assert_eq!(
        all.request(json!({"type": "joinGroup", "group": "anything", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    forbidden(
        &all.request(json!({"type": "sendToGroup", "group": "anything", "data": 1, "ackId": 2}))
            .await,
        2,
    );
}

#[tokio::test]
async fn no_echo_leaves_out_the_sender_and_group_messages_name_the_sending_user() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let sender = ClientAccessOptions::new()
        .role(Permission::SendToGroup.role())
        .group("room");
    let mut ann = env.json_client(sender.clone().user_id("ann")).await;
    let mut bob = env
        .json_client(ClientAccessOptions::new().user_id("bob").group("room"))
        .await;
    let mut anon = env.json_client(sender).await;
    assert_eq!(anon.connected["userId"], Value::Null);

    assert_eq!(
        ann.request(json!({"type": "sendToGroup", "group": "room", "dataType": "text", "data": "quiet", "noEcho": true, "ackId": 1}))
            .await,
        ok_ack(1)
    );
    assert!(ann.until_pong().await.is_empty(), "noEcho skips the sender");
    let quiet = json!({"type": "message", "from": "group", "group": "room", "fromUserId": "ann", "dataType": "text", "data": "quiet"});
    assert_eq!(bob.next_json().await, quiet);
    assert_eq!(anon.next_json().await, quiet);

    ann.send(json!({"type": "sendToGroup", "group": "room", "dataType": "json", "data": {"loud": true}, "ackId": 2}))
        .await;
    let loud = json!({"type": "message", "from": "group", "group": "room", "fromUserId": "ann", "dataType": "json", "data": {"loud": true}});
    assert_eq!(ann.next_json().await, loud);
    assert_eq!(ann.next_json().await, ok_ack(2));
    assert_eq!(bob.next_json().await, loud);
    assert_eq!(anon.next_json().await, loud);

    // An anonymous sender's messages carry no fromUserId.
    anon.send(json!({"type": "sendToGroup", "group": "room", "dataType": "text", "data": "who", "noEcho": true}))
        .await;
    assert_eq!(
        bob.next_json().await,
        json!({"type": "message", "from": "group", "group": "room", "dataType": "text", "data": "who"})
    );
}

#[tokio::test]
async fn malformed_frames_close_a_json_connection() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let cases: Vec<(&str, Message)> = vec![
        ("not JSON", Message::Text("hello".into())),
        ("a JSON array", Message::Text("[1,2]".into())),
        (
            "an unknown type",
            Message::Text(r#"{"type":"nonsense"}"#.into()),
        ),
        ("no type", Message::Text(r#"{"group":"g"}"#.into())),
        (
            "joinGroup without a group",
            Message::Text(r#"{"type":"joinGroup","ackId":1}"#.into()),
        ),
        (
            "text data that is not a string",
            Message::Text(r#"{"type":"event","event":"echo","dataType":"text","data":5}"#.into()),
        ),
        (
            "binary data that is not base64",
            Message::Text(
                r#"{"type":"event","event":"echo","dataType":"binary","data":"*not base64*"}"#
                    .into(),
            ),
        ),
        ("a binary frame", Message::Binary(vec![1u8, 2, 3].into())),
    ];
    for (i, (what, frame)) in cases.into_iter().enumerate() {
        let mut c = env
            .json_client(ClientAccessOptions::new().user_id(format!("bad{i}")))
            .await;
        c.ws.send(frame).await.unwrap();
        let (frames, code) = c.closed().await;
        assert!(code.is_some(), "{what}: closed with a close frame");
        for frame in &frames {
            let frame = text_of(frame);
            assert_eq!(frame["event"], "disconnected", "{what}: {frame}");
        }
        let disconnected = up.wait_event(&c.id, "disconnected").await;
        assert!(
            reason_of(&disconnected).is_some_and(|r| !r.is_empty()),
            "{what}: the upstream hears why"
        );
        assert!(!env.exists(&c.id).await, "{what}");
        assert_eq!(up.count(&c.id, "echo"), 0, "{what}: nothing was raised");
    }
}

#[tokio::test]
async fn an_event_no_handler_subscribes_to_gets_an_internal_server_error_ack() {
    let up = Upstream::start().await;
    let env = start(
        builder().hub(HubSettings::new("chat").event_handler(up.handler().user_events("echo"))),
    )
    .await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let ack = c
        .request(
            json!({"type": "event", "event": "other", "dataType": "text", "data": "x", "ackId": 7}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["ackId"], 7);
    assert_eq!(ack["success"], false);
    assert_eq!(ack["error"]["name"], "InternalServerError");
    // Without an ackId the failure is silent; the connection stays open.
    c.send(json!({"type": "event", "event": "other", "data": 1}))
        .await;
    assert!(c.until_pong().await.is_empty());
    // Subscriptions match event names case-insensitively.
    assert_eq!(
        c.request(
            json!({"type": "event", "event": "ECHO", "dataType": "text", "data": "up", "ackId": 8})
        )
        .await,
        ok_ack(8)
    );
    assert_eq!(up.count(&c.id, "ECHO"), 1);
    assert_eq!(up.count(&c.id, "other"), 0);
}

#[tokio::test]
async fn an_upstream_error_for_an_event_gets_an_error_ack_and_5xx_is_retried_with_the_same_id() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    let ack = c
        .request(
            json!({"type": "event", "event": "fail", "dataType": "text", "data": "x", "ackId": 1}),
        )
        .await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "InternalServerError");
    let fails: Vec<Req> = up
        .events_of(&c.id)
        .into_iter()
        .filter(|r| r.event() == "fail")
        .collect();
    assert_eq!(fails.len(), 2, "one retry after 500 with one retry delay");
    assert_eq!(fails[0].header("ce-id"), fails[1].header("ce-id"));

    let ack = c
        .request(json!({"type": "event", "event": "refuse", "dataType": "text", "data": "x", "ackId": 2}))
        .await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "InternalServerError");
    assert_eq!(up.count(&c.id, "refuse"), 1, "a 4xx is not retried");
    assert!(c.until_pong().await.is_empty(), "the connection stays open");
}

#[tokio::test]
async fn text_binary_and_json_payloads_round_trip_through_events_and_groups() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .role(Permission::SendToGroup.role())
        .group("mix");
    let mut c = env.json_client(options.clone().user_id("c")).await;
    let mut other = env.json_client(options.user_id("other")).await;

    // text
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "héllo", "ackId": 1}))
            .await,
        server_text("héllo")
    );
    assert_eq!(c.next_json().await, ok_ack(1));
    // binary, base64 on the wire, raw bytes upstream
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "binary", "data": "AAEC/w==", "ackId": 2}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "binary", "data": "AAEC/w=="})
    );
    assert_eq!(c.next_json().await, ok_ack(2));
    // json, and json by default
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "dataType": "json", "data": {"a": [1, true, null]}, "ackId": 3}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": {"a": [1, true, null]}})
    );
    assert_eq!(c.next_json().await, ok_ack(3));
    assert_eq!(
        c.request(json!({"type": "event", "event": "echo", "data": "s", "ackId": 4}))
            .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": "s"})
    );
    assert_eq!(c.next_json().await, ok_ack(4));
    // a JSON reply of the upstream
    assert_eq!(
        c.request(
            json!({"type": "event", "event": "json", "dataType": "text", "data": "?", "ackId": 5})
        )
        .await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": {"hello": ["world", 1]}})
    );
    assert_eq!(c.next_json().await, ok_ack(5));

    let echoes: Vec<Req> = up
        .events_of(&c.id)
        .into_iter()
        .filter(|r| r.event() == "echo")
        .collect();
    assert_eq!(echoes.len(), 4);
    assert!(echoes[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(&echoes[0].body[..], "héllo".as_bytes());
    assert_eq!(
        echoes[1].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(&echoes[1].body[..], &[0u8, 1, 2, 255]);
    assert!(echoes[2]
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(echoes[2].json(), json!({"a": [1, true, null]}));
    assert_eq!(echoes[3].json(), json!("s"));

    // The same types reach other group members.
    for (data_type, data) in [
        ("text", json!("t")),
        ("binary", json!("CQg=")),
        ("json", json!([1, {"x": null}])),
    ] {
        c.send(json!({"type": "sendToGroup", "group": "mix", "dataType": data_type, "data": data, "noEcho": true}))
            .await;
        assert_eq!(
            other.next_json().await,
            json!({"type": "message", "from": "group", "group": "mix", "fromUserId": "c", "dataType": data_type, "data": data})
        );
    }
}
