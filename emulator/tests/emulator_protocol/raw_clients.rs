//! Raw (plain WebSocket) clients: frames as `message` events answered in
//! kind, send-to-group mode, and REST messages as bare frames.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client::Message as RestMessage;
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub_emulator::{EventHandlerSettings, HubSettings};

use crate::common::emulator::{open, Client};
use crate::helpers::{builder, env, env_without_connect, reason_of, start};
use crate::recording_upstream::{Req, Upstream};

#[tokio::test]
async fn raw_clients_in_send_to_group_mode_publish_their_frames_to_the_group() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut watcher = env
        .json_client(ClientAccessOptions::new().user_id("watcher").group("g"))
        .await;
    let mut publisher = env
        .raw_client(
            "pub",
            ClientAccessOptions::new()
                .role(Permission::SendToGroup.role_for("g"))
                .group("g"),
            "&webpubsub_mode=sendToGroup&group=g&noEcho=true",
        )
        .await;
    publisher.ws.send(Message::Text("hi".into())).await.unwrap();
    assert_eq!(
        watcher.next_json().await,
        json!({"type": "message", "from": "group", "group": "g", "fromUserId": "pub", "dataType": "text", "data": "hi"})
    );
    publisher
        .ws
        .send(Message::Binary(vec![9u8, 8].into()))
        .await
        .unwrap();
    assert_eq!(
        watcher.next_json().await,
        json!({"type": "message", "from": "group", "group": "g", "fromUserId": "pub", "dataType": "binary", "data": "CQg="})
    );
    // noEcho: the publisher, itself in g, got neither frame.
    env.service
        .send_to_connection(&publisher.id, "marker")
        .await
        .unwrap();
    assert_eq!(publisher.next_frame().await, Message::Text("marker".into()));

    // Without the send role nothing is published.
    let mut silent = env
        .raw_client(
            "silent",
            ClientAccessOptions::new(),
            "&webpubsub_mode=sendToGroup&group=g",
        )
        .await;
    silent
        .ws
        .send(Message::Text("denied".into()))
        .await
        .unwrap();
    assert!(silent.raw_sync().await.is_empty());
    assert!(watcher.until_pong().await.is_empty());
    // Frames in this mode are never user events.
    assert_eq!(up.count(&publisher.id, "message"), 0);
    assert_eq!(up.count(&silent.id, "message"), 0);
}

#[tokio::test]
async fn raw_frames_are_message_events_answered_in_kind() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut raw = env
        .raw_client("plain", ClientAccessOptions::new(), "")
        .await;
    raw.ws.send(Message::Text("ping?".into())).await.unwrap();
    assert_eq!(raw.next_frame().await, Message::Text("ping?".into()));
    raw.ws
        .send(Message::Binary(vec![0u8, 1].into()))
        .await
        .unwrap();
    assert_eq!(raw.next_frame().await, Message::Binary(vec![0u8, 1].into()));
    let messages: Vec<Req> = up
        .events_of(&raw.id)
        .into_iter()
        .filter(|r| r.event() == "message")
        .collect();
    assert_eq!(messages.len(), 2);
    assert!(messages[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        messages[1].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        messages[1].header("ce-type"),
        Some("azure.webpubsub.user.message")
    );
    assert!(messages[1].header("ce-subprotocol").is_none());
}

#[tokio::test]
async fn a_raw_frame_nobody_handles_or_a_failing_handler_closes_the_connection() {
    let up = Upstream::start().await;
    let failing =
        EventHandlerSettings::new(format!("http://{}/failing/{{hub}}/{{event}}", up.addr));
    let env = start(
        builder()
            .hub(HubSettings::new("chat").event_handler(up.handler().user_events("")))
            .hub(HubSettings::new("failing").event_handler(failing)),
    )
    .await;
    let mut lonely = env
        .raw_client("lonely", ClientAccessOptions::new(), "")
        .await;
    lonely
        .ws
        .send(Message::Text("anyone?".into()))
        .await
        .unwrap();
    let (frames, code) = lonely.closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert!(code.is_some(), "closed with a close frame");
    up.wait_event(&lonely.id, "disconnected").await;
    assert!(!env.exists(&lonely.id).await);

    let failing_hub = env.service_for("failing");
    let url = failing_hub.client_access_url(&ClientAccessOptions::new().user_id("f"));
    let (mut ws, _) = open(&url, &[]).await.unwrap();
    ws.send(Message::Text("boom".into())).await.unwrap();
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let (_, code) = c.closed().await;
    assert!(code.is_some(), "closed with a close frame");
    let message = up
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/failing/") && r.event() == "message")
        .expect("the event was sent");
    up.wait_event(message.connection(), "disconnected").await;
    assert_eq!(
        up.count(message.connection(), "message"),
        2,
        "500 retried once"
    );
}

#[tokio::test]
async fn a_raw_frame_nobody_handles_closes_with_1011() {
    let up = Upstream::start().await;
    let env =
        start(builder().hub(HubSettings::new("chat").event_handler(up.handler().user_events(""))))
            .await;
    let mut raw = env
        .raw_client("lonely", ClientAccessOptions::new(), "")
        .await;
    raw.ws.send(Message::Text("anyone?".into())).await.unwrap();
    assert_eq!(raw.closed().await.1, Some(1011));
}

#[tokio::test]
async fn rest_messages_reach_raw_clients_as_bare_frames() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut raw = env
        .raw_client("bare", ClientAccessOptions::new().group("g"), "")
        .await;
    let s = &env.service;
    s.send_to_connection(&raw.id, "plain").await.unwrap();
    s.send_to_connection(&raw.id, RestMessage::json(&"quoted").unwrap())
        .await
        .unwrap();
    s.send_to_user("bare", json!({"a": 1})).await.unwrap();
    s.send_to_group("g", vec![7u8, 0, 7]).await.unwrap();
    s.send_to_all(RestMessage::binary(Bytes::new()))
        .await
        .unwrap();
    s.send_to_all("last").await.unwrap();
    assert_eq!(raw.next_frame().await, Message::Text("plain".into()));
    assert_eq!(raw.next_frame().await, Message::Text("\"quoted\"".into()));
    assert_eq!(raw.next_frame().await, Message::Text(r#"{"a":1}"#.into()));
    assert_eq!(
        raw.next_frame().await,
        Message::Binary(vec![7u8, 0, 7].into())
    );
    let next = raw.next_frame().await;
    // An empty message may be sent as an empty frame or not at all.
    if next == Message::Binary(Bytes::new()) {
        assert_eq!(raw.next_frame().await, Message::Text("last".into()));
    } else {
        assert_eq!(next, Message::Text("last".into()));
    }

    // A JSON client's group message reaches a raw member as its bare data.
    let mut json_client = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("j")
                .role(Permission::SendToGroup.role()),
        )
        .await;
    json_client
        .send(
            json!({"type": "sendToGroup", "group": "g", "dataType": "json", "data": {"b": [true]}}),
        )
        .await;
    assert_eq!(
        raw.next_frame().await,
        Message::Text(r#"{"b":[true]}"#.into())
    );

    // A REST close ends it with 1000 and the reason.
    env.service
        .close_connection(&raw.id)
        .reason("raw bye")
        .await
        .unwrap();
    let next = raw.ws.next().await.unwrap().unwrap();
    match next {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1000);
            assert_eq!(frame.reason.as_str(), "raw bye");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let disconnected = up.wait_event(&raw.id, "disconnected").await;
    assert_eq!(reason_of(&disconnected).as_deref(), Some("raw bye"));
}
