//! Robustness: a slow upstream, message order, a reader that never reads,
//! and shutdown.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client::Message as RestMessage;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub_emulator::HubSettings;

use crate::common::emulator::{ok_ack, open, JSON, RELIABLE, WAIT};
use crate::helpers::{builder, env, env_without_connect, reason_of, server_text, start, text_of};
use crate::recording_upstream::Upstream;

#[tokio::test]
async fn a_slow_event_handler_does_not_hold_up_other_connections() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut slow = env
        .json_client(ClientAccessOptions::new().user_id("slow"))
        .await;
    let mut quick = env
        .json_client(ClientAccessOptions::new().user_id("quick"))
        .await;
    slow.send(json!({"type": "event", "event": "slow", "data": 1, "ackId": 1}))
        .await;
    let in_flight = up.wait_event(&slow.id, "slow").await;

    let started = Instant::now();
    assert_eq!(
        quick
            .request(json!({"type": "event", "event": "echo", "dataType": "text", "data": "fast", "ackId": 1}))
            .await,
        server_text("fast")
    );
    assert_eq!(quick.next_json().await, ok_ack(1));
    let newcomer = env
        .json_client(ClientAccessOptions::new().user_id("newcomer"))
        .await;
    env.service
        .send_to_connection(&slow.id, "meanwhile")
        .await
        .unwrap();
    // Messages to the busy connection are not held up either.
    assert_eq!(slow.next_json().await, server_text("meanwhile"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "other connections waited {:?}",
        started.elapsed()
    );
    assert!(
        up.wait_event(&newcomer.id, "connected").await.at < in_flight.at + Duration::from_secs(1)
    );

    assert_eq!(slow.next_json().await, ok_ack(1));
    assert!(in_flight.at.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn messages_to_one_connection_arrive_in_the_order_they_were_sent() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut json_client = env
        .json_client(ClientAccessOptions::new().user_id("order"))
        .await;
    let mut reliable = env
        .client(ClientAccessOptions::new().user_id("order"), RELIABLE)
        .await;
    let mut raw = env
        .raw_client("order", ClientAccessOptions::new(), "")
        .await;
    for i in 0..200u64 {
        env.service
            .send_to_user("order", RestMessage::json(&i).unwrap())
            .await
            .unwrap();
    }
    for i in 0..200u64 {
        assert_eq!(json_client.next_json().await["data"], i);
        let frame = reliable.next_json().await;
        assert_eq!(frame["data"], i);
        assert_eq!(frame["sequenceId"], i + 1);
        assert_eq!(raw.next_frame().await, Message::Text(i.to_string().into()));
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_when_its_queue_fills() {
    let up = Upstream::start().await;
    let env = start(
        builder()
            .send_queue(16)
            .hub(HubSettings::new("chat").event_handler(up.handler())),
    )
    .await;
    let slow = env
        .json_client(ClientAccessOptions::new().user_id("never-reads"))
        .await;
    let mut fast = env
        .json_client(ClientAccessOptions::new().user_id("reads"))
        .await;
    let fast_id = fast.id.clone();
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        loop {
            let frame = fast.next_json().await;
            if frame["data"] == "done" {
                // Hand the client back so it stays connected.
                return (received, fast);
            }
            received.push(frame["data"].as_str().unwrap().to_owned());
        }
    });

    let big = "x".repeat(256 * 1024);
    let mut sent = Vec::new();
    let mut dropped = false;
    for i in 0..400 {
        env.service
            .send_to_connection(&slow.id, big.as_str())
            .await
            .unwrap();
        let small = format!("n{i}");
        env.service
            .send_to_connection(&fast_id, small.as_str())
            .await
            .unwrap();
        sent.push(small);
        if i % 8 == 7 && !env.exists(&slow.id).await {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the client that never reads is still connected");
    let disconnected = up.wait_event(&slow.id, "disconnected").await;
    assert!(reason_of(&disconnected).is_some_and(|r| !r.is_empty()));

    env.service
        .send_to_connection(&fast_id, "done")
        .await
        .unwrap();
    let (received, fast) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(
        received, sent,
        "the reading client got everything, in order"
    );
    assert!(env.exists(&fast_id).await);
    drop((slow, fast));
}

#[tokio::test]
async fn shutdown_closes_every_client_and_returns() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let mut json_client = env
        .json_client(ClientAccessOptions::new().user_id("j"))
        .await;
    let mut reliable = env
        .client(ClientAccessOptions::new().user_id("r"), RELIABLE)
        .await;
    let mut raw = env.raw_client("w", ClientAccessOptions::new(), "").await;
    let addr = env.emulator.local_addr();
    let url = env.url(&ClientAccessOptions::new().user_id("late"));

    tokio::time::timeout(WAIT, env.emulator.shutdown())
        .await
        .expect("shutdown returns");

    let (frames, code) = json_client.closed().await;
    assert!(code.is_some(), "the JSON client got a close frame");
    assert_eq!(text_of(&frames[0])["event"], "disconnected");
    let (frames, code) = reliable.closed().await;
    assert!(code.is_some(), "the reliable client got a close frame");
    assert_eq!(text_of(&frames[0])["event"], "disconnected");
    let (frames, code) = raw.closed().await;
    assert!(code.is_some(), "the raw client got a close frame");
    assert!(frames.is_empty());
    for id in [&json_client.id, &reliable.id, &raw.id] {
        up.wait_event(id, "disconnected").await;
    }
    assert!(
        open(&url, &[JSON]).await.is_err(),
        "nothing listens on {addr}"
    );
}
