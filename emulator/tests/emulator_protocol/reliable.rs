//! The reliable protocol: sequence ids and acks, recovery of a dropped
//! connection, and the ends of a reliable connection.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client::Message as RestMessage;
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub_emulator::HubSettings;

use crate::common::emulator::{ok_ack, open, refused_recovery, Client, Ws, JSON, RELIABLE, WAIT};
use crate::helpers::{builder, env, env_without_connect, reason_of, start, text_of};
use crate::recording_upstream::Upstream;

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn recovery_url(url: &str, id: &str, token: &str) -> String {
    format!(
        "{url}&awps_connection_id={}&awps_reconnection_token={}",
        enc(id),
        enc(token)
    )
}

impl Client {
    fn token(&self) -> String {
        self.connected["reconnectionToken"]
            .as_str()
            .expect("a reconnectionToken")
            .to_owned()
    }

    fn recovery_url(&self) -> String {
        recovery_url(&self.url, &self.id, &self.token())
    }

    /// Drops the TCP connection without a close frame; returns the recovery URL.
    fn break_transport(self) -> String {
        let url = self.recovery_url();
        drop(self.ws);
        url
    }
}

/// One recovery attempt: `Ok` with the frames resent before the pong of a
/// ping sent at once, or `Err` with the close code.
async fn try_recover(url: &str) -> Result<(Ws, Vec<Value>), Option<u16>> {
    let (mut ws, response) = open(url, &[RELIABLE])
        .await
        .expect("a recovery request is upgraded");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-protocol"], RELIABLE);
    let _ = ws
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await;
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer to the recovery in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame == json!({"type": "pong"}) {
                    return Ok((ws, frames));
                }
                frames.push(frame);
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Recovers a broken reliable connection. The emulator may take a moment
/// to notice the broken transport (until then it refuses with 1008), so
/// this retries for a few seconds.
async fn recover(url: &str) -> (Ws, Vec<Value>) {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_recover(url).await {
            Ok(recovered) => return recovered,
            Err(code) => {
                assert_eq!(code, Some(1008), "a refused recovery closes with 1008");
                assert!(Instant::now() < deadline, "recovery kept being refused");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn reliable_clients_get_a_reconnection_token_and_sequence_ids_on_messages_only() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("rel")
        .role(Permission::JoinLeaveGroup.role())
        .role(Permission::SendToGroup.role());
    let mut c = env.client(options, RELIABLE).await;
    assert!(!c.token().is_empty());
    assert_eq!(c.connected["userId"], "rel");

    env.service.send_to_connection(&c.id, "one").await.unwrap();
    env.service
        .send_to_connection(&c.id, json!({"n": 2}))
        .await
        .unwrap();
    env.service
        .send_to_connection(&c.id, vec![1u8, 2, 3])
        .await
        .unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 1, "type": "message", "from": "server", "dataType": "text", "data": "one"})
    );
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 2, "type": "message", "from": "server", "dataType": "json", "data": {"n": 2}})
    );
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 3, "type": "message", "from": "server", "dataType": "binary", "data": "AQID"})
    );

    // Acks (success and failure) and pongs carry no sequence id.
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    let duplicate = c
        .request(json!({"type": "joinGroup", "group": "g", "ackId": 1}))
        .await;
    assert_eq!(duplicate["error"]["name"], "Duplicate");
    assert!(duplicate.get("sequenceId").is_none(), "{duplicate}");
    assert!(c.until_pong().await.is_empty());

    // A group message to itself continues the sequence, before the ack.
    c.send(json!({"type": "sendToGroup", "group": "g", "dataType": "text", "data": "four", "ackId": 2}))
        .await;
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 4, "type": "message", "from": "group", "group": "g",
               "fromUserId": "rel", "dataType": "text", "data": "four"})
    );
    assert_eq!(c.next_json().await, ok_ack(2));

    // System messages carry none either.
    env.service
        .close_connection(&c.id)
        .reason("done")
        .await
        .unwrap();
    assert_eq!(
        c.next_json().await,
        json!({"type": "system", "event": "disconnected", "message": "done"})
    );
    assert_eq!(c.closed().await.1, Some(1000));
}

#[tokio::test]
async fn a_dropped_reliable_connection_resumes_with_its_unacknowledged_messages_in_order() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .client(
            ClientAccessOptions::new().user_id("rita").group("g"),
            RELIABLE,
        )
        .await;
    let id = c.id.clone();
    for i in 1..=3 {
        env.service
            .send_to_connection(&id, format!("m{i}"))
            .await
            .unwrap();
    }
    for i in 1..=3u64 {
        let frame = c.next_json().await;
        assert_eq!(frame["sequenceId"], i);
        assert_eq!(frame["data"], format!("m{i}"));
    }
    // Acknowledge 1 and 2; the pong proves the ack was read.
    c.send(json!({"type": "sequenceAck", "sequenceId": 2}))
        .await;
    assert!(c.until_pong().await.is_empty());

    let url = c.break_transport();
    env.service.send_to_connection(&id, "m4").await.unwrap();
    env.service.send_to_group("g", "m5").await.unwrap();
    env.service.send_to_user("rita", "m6").await.unwrap();

    let (ws, resent) = recover(&url).await;
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 3, "type": "message", "from": "server", "dataType": "text", "data": "m3"}),
            json!({"sequenceId": 4, "type": "message", "from": "server", "dataType": "text", "data": "m4"}),
            json!({"sequenceId": 5, "type": "message", "from": "group", "group": "g", "dataType": "text", "data": "m5"}),
            json!({"sequenceId": 6, "type": "message", "from": "server", "dataType": "text", "data": "m6"}),
        ]
    );
    // The logical connection survived: same id, same groups, no new
    // connect/connected and no disconnected upstream.
    assert!(env.exists(&id).await);
    assert!(env.service.group_exists("g").await.unwrap());
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "connected"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);

    // It works both ways after the recovery.
    let mut c = Client {
        ws,
        url: String::new(),
        id: id.clone(),
        connected: Value::Null,
    };
    c.send(
        json!({"type": "event", "event": "echo", "dataType": "text", "data": "again", "ackId": 10}),
    )
    .await;
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId": 7, "type": "message", "from": "server", "dataType": "text", "data": "again"})
    );
    assert_eq!(c.next_json().await, ok_ack(10));
    let echo = up.wait_event(&id, "echo").await;
    assert_eq!(echo.header("ce-subprotocol"), Some(RELIABLE));

    // Everything acknowledged: the next recovery resends nothing.
    c.send(json!({"type": "sequenceAck", "sequenceId": 7}))
        .await;
    assert!(c.until_pong().await.is_empty());
    drop(c);
    env.service.send_to_connection(&id, "m8").await.unwrap();
    let (ws, resent) = recover(&url).await;
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 8, "type": "message", "from": "server", "dataType": "text", "data": "m8"})
        ]
    );
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "connected"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);
    drop(ws);
}

#[tokio::test]
async fn a_recovery_takes_over_from_a_socket_the_emulator_still_thinks_is_open() {
    // A half-open TCP connection: the client gave up on its socket, the
    // emulator has not noticed. Recovery must not be refused for that.
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut old = env
        .client(
            ClientAccessOptions::new().user_id("hal").group("g"),
            RELIABLE,
        )
        .await;
    let id = old.id.clone();
    env.service.send_to_connection(&id, "m1").await.unwrap();
    assert_eq!(old.next_json().await["data"], "m1");

    let (ws, resent) = try_recover(&old.recovery_url())
        .await
        .expect("the first recovery attempt succeeds");
    assert_eq!(
        resent,
        vec![
            json!({"sequenceId": 1, "type": "message", "from": "server", "dataType": "text", "data": "m1"})
        ]
    );
    // The old socket is let go, the new one carries the connection on.
    let old_end = tokio::time::timeout(WAIT, async {
        loop {
            match old.ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the old socket ends");
    assert!(
        matches!(old_end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{old_end:?}"
    );
    let mut new = Client {
        ws,
        url: String::new(),
        id: id.clone(),
        connected: Value::Null,
    };
    env.service.send_to_group("g", "m2").await.unwrap();
    assert_eq!(new.next_json().await["data"], "m2");
    assert!(env.exists(&id).await);
    assert_eq!(up.count(&id, "connect"), 1);
    assert_eq!(up.count(&id, "disconnected"), 0);
}

#[tokio::test]
async fn a_failed_recovery_completes_the_upgrade_and_closes_with_1008() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let c = env
        .client(ClientAccessOptions::new().user_id("fred"), RELIABLE)
        .await;
    let id = c.id.clone();
    let token = c.token();
    let base = c.url.clone();

    // Unknown connection id.
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, "no-such-connection", &token),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );

    let good = c.break_transport();
    // A wrong token, and the right token with another protocol.
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, &id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );
    let other_connections_token = env
        .client(ClientAccessOptions::new().user_id("fred"), RELIABLE)
        .await
        .token();
    assert_eq!(
        refused_recovery(
            &recovery_url(&base, &id, &other_connections_token),
            &[RELIABLE]
        )
        .await,
        Some(1008)
    );
    assert_eq!(refused_recovery(&good, &[JSON]).await, Some(1008));

    // None of that used up the connection: the right request still recovers it.
    let (_ws, resent) = recover(&good).await;
    assert!(resent.is_empty());
    assert_eq!(up.count(&id, "disconnected"), 0);

    // A non-reliable JSON connection cannot be recovered.
    let plain = env
        .json_client(ClientAccessOptions::new().user_id("plain"))
        .await;
    let plain_id = plain.id.clone();
    drop(plain.ws);
    up.wait_event(&plain_id, "disconnected").await;
    assert_eq!(
        refused_recovery(&recovery_url(&base, &plain_id, &token), &[RELIABLE]).await,
        Some(1008)
    );
}

#[tokio::test]
async fn a_client_close_frame_ends_a_reliable_connection_at_once() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let close_frames = [
        // What `@azure/web-pubsub-client`'s stop() sends: no status code.
        None,
        Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }),
    ];
    for (i, frame) in close_frames.into_iter().enumerate() {
        let user = format!("closer{i}");
        let mut c = env
            .client(ClientAccessOptions::new().user_id(&user), RELIABLE)
            .await;
        let id = c.id.clone();
        let url = c.recovery_url();
        c.ws.close(frame).await.unwrap();
        // Well within the default 30 s recovery window.
        let disconnected = up
            .wait_event_within(&id, "disconnected", Duration::from_secs(2))
            .await;
        assert!(
            reason_of(&disconnected).is_none_or(|r| r.is_empty()),
            "a normal close has no reason: {:?}",
            disconnected.json()
        );
        assert!(!env.exists(&id).await);
        assert!(!env.service.user_exists(&user).await.unwrap());
        assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
    }
}

#[tokio::test]
async fn a_reliable_connection_ends_when_the_recovery_window_passes() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .recovery_window(Duration::from_secs(2))
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let c = env
        .client(ClientAccessOptions::new().user_id("wendy"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.break_transport();
    let dropped = Instant::now();
    // Kept during the window.
    assert!(env.service.user_exists("wendy").await.unwrap());
    assert!(env.exists(&id).await);

    let disconnected = up
        .wait_event_within(&id, "disconnected", Duration::from_secs(6))
        .await;
    let waited = disconnected.at.duration_since(dropped);
    assert!(
        waited >= Duration::from_millis(1500),
        "disconnected after only {waited:?}"
    );
    assert!(
        reason_of(&disconnected).is_some_and(|r| !r.is_empty()),
        "a lost connection says why: {:?}",
        disconnected.json()
    );
    assert!(!env.service.user_exists("wendy").await.unwrap());
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
    assert_eq!(up.count(&id, "disconnected"), 1);
}

#[tokio::test]
async fn closing_a_reliable_connection_that_awaits_recovery_ends_it_at_once() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let c = env
        .client(ClientAccessOptions::new().user_id("parked"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.break_transport();
    env.service
        .close_connection(&id)
        .reason("gone")
        .await
        .unwrap();
    let disconnected = up
        .wait_event_within(&id, "disconnected", Duration::from_secs(2))
        .await;
    assert_eq!(reason_of(&disconnected).as_deref(), Some("gone"));
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
}

#[tokio::test]
async fn too_many_unacknowledged_messages_end_a_reliable_connection_for_good() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut c = env
        .client(ClientAccessOptions::new().user_id("hoarder"), RELIABLE)
        .await;
    let id = c.id.clone();
    let url = c.recovery_url();
    // 1000 unacknowledged messages are kept; the 1001st is one too many.
    for i in 1..=1001u64 {
        env.service
            .send_to_connection(&id, RestMessage::json(&i).unwrap())
            .await
            .unwrap();
    }
    for i in 1..=1000u64 {
        assert_eq!(c.next_json().await["sequenceId"], i);
    }
    let (frames, code) = c.closed().await;
    assert!(code.is_some_and(|c| c != 1000), "closed with {code:?}");
    for frame in &frames {
        let frame = text_of(frame);
        assert!(
            frame["sequenceId"] == 1001 || frame["event"] == "disconnected",
            "{frame}"
        );
    }
    let disconnected = up.wait_event(&id, "disconnected").await;
    assert!(reason_of(&disconnected).is_some_and(|r| !r.is_empty()));
    assert!(!env.exists(&id).await);
    assert_eq!(refused_recovery(&url, &[RELIABLE]).await, Some(1008));
}

#[tokio::test]
async fn ack_ids_used_before_a_recovery_are_still_duplicates_after_it() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let options = ClientAccessOptions::new()
        .user_id("acker")
        .role(Permission::JoinLeaveGroup.role());
    let mut c = env.client(options, RELIABLE).await;
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "g", "ackId": 5}))
            .await,
        ok_ack(5)
    );
    let url = c.break_transport();
    let (ws, _) = recover(&url).await;
    let mut c = Client {
        ws,
        url,
        id: String::new(),
        connected: Value::Null,
    };
    let again = c
        .request(json!({"type": "joinGroup", "group": "g", "ackId": 5}))
        .await;
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["error"]["name"], "Duplicate", "{again}");
}
