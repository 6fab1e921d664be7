//! Group streams (`sendToGroup` with `stream`, `streamData`, `streamEnd`)
//! end to end on 127.0.0.1 with raw WebSocket clients: the open and its
//! ack, ordered delivery with stream and reliable sequence ids,
//! keep-alives, replays (after recovery too) and gaps, the end with and
//! without error, refusals, idle timeout, the sender leaving, limits and
//! the live view.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use webpubsub::client_access::ClientAccessOptions;

use common::emulator::{self, ok_ack, Client, Env, JSON, RELIABLE};

const KEY: &str = "streams-test-key-0123456789abcdef0123456789";
const SEND: &str = "webpubsub.sendToGroup";
const JOIN: &str = "webpubsub.joinLeaveGroup";

async fn env() -> Env {
    emulator::start(emulator::builder(KEY), "chat").await
}

/// A sender `alice` (may send to any group, in no group) and a reliable
/// member `bob` of group `room`.
async fn sender_and_member(env: &Env) -> (Client, Client) {
    let sender = env
        .client(ClientAccessOptions::new().user_id("alice").role(SEND), JSON)
        .await;
    let member = env
        .client(
            ClientAccessOptions::new().user_id("bob").group("room"),
            RELIABLE,
        )
        .await;
    (sender, member)
}

fn open(id: &str) -> Value {
    json!({"type": "sendToGroup", "group": "room", "noEcho": false, "stream": {"streamId": id}})
}

fn data(id: &str, n: u64, text: &str) -> Value {
    json!({"type": "streamData", "streamId": id, "streamSequenceId": n, "dataType": "text", "data": text})
}

fn ack(id: &str, expected: u64) -> Value {
    json!({"type": "streamAck", "streamId": id, "expectedSequenceId": expected})
}

/// A fragment as a member sees it, minus its reliable `sequenceId`.
fn fragment(mut frame: Value) -> Value {
    if let Some(object) = frame.as_object_mut() {
        object.remove("sequenceId");
    }
    frame
}

fn text_fragment(id: &str, n: u64, text: &str) -> Value {
    json!({"type": "message", "from": "group", "group": "room", "fromUserId": "alice",
           "dataType": "text", "data": text, "stream": {"streamId": id, "streamSequenceId": n}})
}

fn end_fragment(id: &str, n: u64, error: Option<Value>) -> Value {
    let mut stream = json!({"streamId": id, "streamSequenceId": n, "endOfStream": true});
    if let Some(error) = error {
        stream["error"] = error;
    }
    json!({"type": "message", "from": "group", "group": "room", "fromUserId": "alice",
           "dataType": "text", "data": "", "stream": stream})
}

/// Opens stream `id` and checks its ack.
async fn opened(sender: &mut Client, id: &str) {
    assert_eq!(sender.request(open(id)).await, ack(id, 1));
}

#[tokio::test]
async fn an_open_stream_is_acked_and_its_fragments_reach_members_in_order_with_ids() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    opened(&mut sender, "s1").await;
    assert_eq!(sender.request(data("s1", 1, "a")).await, ack("s1", 2));
    assert_eq!(
        sender
            .request(json!({"type": "streamData", "streamId": "s1", "streamSequenceId": 2, "dataType": "json", "data": {"k": [1]}}))
            .await,
        ack("s1", 3)
    );
    assert_eq!(
        sender
            .request(json!({"type": "streamData", "streamId": "s1", "streamSequenceId": 3, "dataType": "binary", "data": "AP8="}))
            .await,
        ack("s1", 4)
    );
    let frames: Vec<Value> = [
        member.next_json().await,
        member.next_json().await,
        member.next_json().await,
    ]
    .into();
    // Reliable sequence ids as for any group message.
    let sequences: Vec<&Value> = frames.iter().map(|f| &f["sequenceId"]).collect();
    assert_eq!(sequences, [&json!(1), &json!(2), &json!(3)]);
    let mut frames = frames.into_iter().map(fragment);
    assert_eq!(frames.next().unwrap(), text_fragment("s1", 1, "a"));
    assert_eq!(
        frames.next().unwrap(),
        json!({"type": "message", "from": "group", "group": "room", "fromUserId": "alice",
               "dataType": "json", "data": {"k": [1]}, "stream": {"streamId": "s1", "streamSequenceId": 2}})
    );
    assert_eq!(
        frames.next().unwrap(),
        json!({"type": "message", "from": "group", "group": "room", "fromUserId": "alice",
               "dataType": "binary", "data": "AP8=", "stream": {"streamId": "s1", "streamSequenceId": 3}})
    );
    // The open itself is not delivered.
    assert!(member.until_pong().await.is_empty());
}

#[tokio::test]
async fn replays_are_dropped_and_acked_again_and_a_gap_is_nacked() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    opened(&mut sender, "s").await;
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    // A replay after a reconnect: not published again.
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    let nack = sender.request(data("s", 4, "d")).await;
    assert_eq!(nack["type"], "streamNack", "{nack}");
    assert_eq!(nack["streamId"], "s");
    assert_eq!(nack["expectedSequenceId"], 2);
    assert_eq!(nack["name"], "OutOfOrder");
    assert_eq!(sender.request(data("s", 2, "b")).await, ack("s", 3));
    let got: Vec<Value> = member
        .until_pong()
        .await
        .into_iter()
        .map(fragment)
        .collect();
    assert_eq!(
        got,
        [text_fragment("s", 1, "a"), text_fragment("s", 2, "b")]
    );
}

#[tokio::test]
async fn ending_publishes_a_terminal_fragment_acks_past_it_and_closes_the_stream() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    opened(&mut sender, "s").await;
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    sender
        .send(json!({"type": "streamEnd", "streamId": "s"}))
        .await;
    assert_eq!(sender.next_json().await, ack("s", 3));
    assert_eq!(
        sender.next_json().await,
        json!({"type": "streamClosed", "streamId": "s"})
    );
    let got: Vec<Value> = member
        .until_pong()
        .await
        .into_iter()
        .map(fragment)
        .collect();
    assert_eq!(
        got,
        [text_fragment("s", 1, "a"), end_fragment("s", 2, None)]
    );
    // Gone: more data is refused, and the id may be opened again.
    let closed = sender.request(data("s", 2, "late")).await;
    assert_eq!(closed["type"], "streamClosed");
    assert_eq!(closed["error"]["name"], "StreamNotFound");
    opened(&mut sender, "s").await;
}

#[tokio::test]
async fn ending_with_an_error_shows_it_to_members_as_a_user_error() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    opened(&mut sender, "s").await;
    sender
        .send(json!({"type": "streamEnd", "streamId": "s", "error": {"message": "boom", "userErrorCode": "E42"}}))
        .await;
    assert_eq!(sender.next_json().await, ack("s", 2));
    assert_eq!(
        sender.next_json().await,
        json!({"type": "streamClosed", "streamId": "s"})
    );
    assert_eq!(
        fragment(member.next_json().await),
        end_fragment(
            "s",
            1,
            Some(json!({"name": "UserError", "message": "boom", "userErrorCode": "E42"}))
        )
    );
}

#[tokio::test]
async fn a_sender_without_send_permission_cannot_open_a_stream() {
    let env = env().await;
    let mut nobody = env
        .client(ClientAccessOptions::new().user_id("nobody"), JSON)
        .await;
    let mut member = env
        .client(
            ClientAccessOptions::new().user_id("bob").group("room"),
            JSON,
        )
        .await;
    let refused = nobody.request(open("s")).await;
    assert_eq!(refused["type"], "streamClosed", "{refused}");
    assert_eq!(refused["streamId"], "s");
    assert_eq!(refused["error"]["name"], "Forbidden");
    // With an ackId, the ack says so too; data for the stream finds none.
    let mut with_ack = open("s2");
    with_ack["ackId"] = json!(7);
    assert_eq!(nobody.request(with_ack).await["error"]["name"], "Forbidden");
    let ack = nobody.next_json().await;
    assert_eq!(ack["ackId"], 7);
    assert_eq!(ack["error"]["name"], "Forbidden");
    assert_eq!(
        nobody.request(data("s", 1, "x")).await["error"]["name"],
        "StreamNotFound"
    );
    // A role for the group alone is enough.
    let mut scoped = env
        .client(
            ClientAccessOptions::new().role(format!("{SEND}.room")),
            JSON,
        )
        .await;
    opened(&mut scoped, "s").await;
    assert!(member.until_pong().await.is_empty());
}

#[tokio::test]
async fn malformed_opens_are_refused_and_an_acked_open_gets_an_ack() {
    let env = env().await;
    let (mut sender, _member) = sender_and_member(&env).await;
    let mut with_data = open("s");
    with_data["dataType"] = json!("text");
    with_data["data"] = json!("x");
    let refused = sender.request(with_data).await;
    assert_eq!(refused["error"]["name"], "BadRequest", "{refused}");
    let mut bad_timeout = open("s");
    bad_timeout["stream"]["idleTimeoutMs"] = json!("soon");
    assert_eq!(
        sender.request(bad_timeout).await["error"]["name"],
        "BadRequest"
    );
    let mut acked = open("s");
    acked["ackId"] = json!(1);
    assert_eq!(sender.request(acked).await, ack("s", 1));
    assert_eq!(sender.next_json().await, ok_ack(1));
    // Opening it again changes nothing; another group with the same id is refused.
    assert_eq!(sender.request(open("s")).await, ack("s", 1));
    let other = json!({"type": "sendToGroup", "group": "other", "stream": {"streamId": "s"}});
    assert_eq!(sender.request(other).await["error"]["name"], "BadRequest");
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
}

#[tokio::test]
async fn frames_without_a_stream_id_break_the_protocol() {
    let env = env().await;
    for bad in [
        json!({"type": "streamData", "streamSequenceId": 1, "dataType": "text", "data": "x"}),
        json!({"type": "streamEnd", "streamId": ""}),
        json!({"type": "streamData", "streamId": "s", "dataType": "text", "data": "no id"}),
        json!({"type": "sendToGroup", "group": "room", "stream": {"streamId": 5}}),
        // A stream keeps its group's name while open: the group name rule
        // (1 to 1024 characters) holds, as for joinGroup.
        json!({"type": "sendToGroup", "group": "g".repeat(1025), "stream": {"streamId": "s"}}),
        json!({"type": "sendToGroup", "group": "g".repeat(1025), "dataType": "text", "data": "x"}),
    ] {
        let mut c = env
            .client(ClientAccessOptions::new().role(SEND), JSON)
            .await;
        c.send(bad.clone()).await;
        let (_, code) = c.closed().await;
        assert_eq!(code, Some(1003), "{bad}");
    }
}

#[tokio::test]
async fn an_idle_stream_is_closed_for_the_sender_and_ended_for_members() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    // 10 ms is raised to the shortest idle timeout, 1 s.
    let mut quick = open("s");
    quick["stream"]["idleTimeoutMs"] = json!(10);
    assert_eq!(sender.request(quick).await, ack("s", 1));
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    let closed = sender.next_json().await;
    assert_eq!(
        closed,
        json!({"type": "streamClosed", "streamId": "s",
               "error": {"name": "IdleTimeout", "message": "No data or keep-alive for 1000 ms."}})
    );
    assert_eq!(
        fragment(member.next_json().await),
        text_fragment("s", 1, "a")
    );
    assert_eq!(
        fragment(member.next_json().await),
        end_fragment(
            "s",
            2,
            Some(json!({"name": "IdleTimeout", "message": "No data or keep-alive for 1000 ms."}))
        )
    );
}

#[tokio::test]
async fn keep_alives_hold_an_idle_stream_open() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    let mut quick = open("s");
    quick["stream"]["idleTimeoutMs"] = json!(1000);
    assert_eq!(sender.request(quick).await, ack("s", 1));
    // Twice the idle timeout, with a keep-alive every 250 ms.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        sender
            .send(json!({"type": "streamData", "streamId": "s"}))
            .await;
    }
    assert!(
        sender.until_pong().await.is_empty(),
        "keep-alives get no answer"
    );
    assert_eq!(sender.request(data("s", 1, "still")).await, ack("s", 2));
    assert_eq!(
        fragment(member.next_json().await),
        text_fragment("s", 1, "still")
    );
}

#[tokio::test]
async fn a_sender_disconnecting_ends_its_streams_for_members_with_an_error() {
    let env = env().await;
    let (mut sender, mut member) = sender_and_member(&env).await;
    opened(&mut sender, "s").await;
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    sender.ws.close(None).await.unwrap();
    assert_eq!(
        fragment(member.next_json().await),
        text_fragment("s", 1, "a")
    );
    let end = fragment(member.next_json().await);
    assert_eq!(end["stream"]["endOfStream"], true, "{end}");
    assert_eq!(end["stream"]["streamSequenceId"], 2);
    assert_eq!(end["stream"]["error"]["name"], "SenderDisconnected");
}

#[tokio::test]
async fn no_echo_leaves_the_sender_out_and_a_member_that_left_stops_receiving() {
    let env = env().await;
    let mut sender = env
        .client(
            ClientAccessOptions::new()
                .user_id("alice")
                .roles([SEND, JOIN])
                .group("room"),
            JSON,
        )
        .await;
    let mut member = env
        .client(
            ClientAccessOptions::new()
                .user_id("bob")
                .role(JOIN)
                .group("room"),
            JSON,
        )
        .await;
    let mut quiet = open("quiet");
    quiet["noEcho"] = json!(true);
    assert_eq!(sender.request(quiet).await, ack("quiet", 1));
    assert_eq!(sender.request(data("quiet", 1, "a")).await, ack("quiet", 2));
    opened(&mut sender, "loud").await;
    // Without noEcho the sender gets its own fragment (published before the ack).
    assert_eq!(
        sender.request(data("loud", 1, "b")).await,
        text_fragment("loud", 1, "b")
    );
    assert_eq!(sender.next_json().await, ack("loud", 2));
    assert_eq!(member.next_json().await, text_fragment("quiet", 1, "a"));
    assert_eq!(member.next_json().await, text_fragment("loud", 1, "b"));
    assert_eq!(
        member
            .request(json!({"type": "leaveGroup", "group": "room", "ackId": 1}))
            .await,
        ok_ack(1)
    );
    assert_eq!(sender.request(data("quiet", 2, "c")).await, ack("quiet", 3));
    assert!(member.until_pong().await.is_empty());
}

#[tokio::test]
async fn a_connection_has_at_most_16_open_streams() {
    let env = env().await;
    let (mut sender, _member) = sender_and_member(&env).await;
    for i in 0..16 {
        opened(&mut sender, &format!("s{i}")).await;
    }
    let refused = sender.request(open("s16")).await;
    assert_eq!(refused["type"], "streamClosed");
    assert_eq!(refused["error"]["name"], "TooManyStreams");
    // Ending one makes room.
    sender
        .send(json!({"type": "streamEnd", "streamId": "s0"}))
        .await;
    assert_eq!(sender.next_json().await, ack("s0", 2));
    assert_eq!(sender.next_json().await["type"], "streamClosed");
    opened(&mut sender, "s16").await;
    // Overlong stream ids break the protocol.
    sender.send(open(&"x".repeat(257))).await;
    assert_eq!(sender.closed().await.1, Some(1003));
}

#[tokio::test]
async fn the_live_view_lists_open_streams_without_their_data() {
    let env = env().await;
    let (mut sender, _member) = sender_and_member(&env).await;
    opened(&mut sender, "live-stream").await;
    assert_eq!(
        sender
            .request(data("live-stream", 1, "secret payload"))
            .await,
        ack("live-stream", 2)
    );
    let body = env.live_state_text("hub=chat").await;
    assert!(!body.contains("secret payload"));
    let state: Value = serde_json::from_str(&body).unwrap();
    let streams = &state["streams"];
    assert_eq!(streams["total"], 1, "{streams}");
    let open = &streams["open"][0];
    assert_eq!(open["hub"], "chat");
    assert_eq!(open["group"], "room");
    assert_eq!(open["streamId"], "live-stream");
    assert_eq!(open["connectionId"], sender.id.as_str());
    assert_eq!(open["userId"], "alice");
    assert_eq!(open["fragments"], 1);
    assert_eq!(open["idleTimeoutMs"], 60_000);
    assert!(open["ageMs"].is_u64());
}

/// Recovers a reliable connection whose transport broke (retried while
/// the emulator has not noticed the break yet and refuses with 1008).
async fn recover(url: &str) -> common::emulator::Ws {
    let deadline = std::time::Instant::now() + common::emulator::WAIT;
    loop {
        let (mut ws, _) = emulator::open(url, &[RELIABLE]).await.unwrap();
        emulator::send_json(&mut ws, json!({"type": "ping"})).await;
        match emulator::next_frame(&mut ws, common::emulator::WAIT).await {
            tokio_tungstenite::tungstenite::Message::Close(_) => {
                assert!(std::time::Instant::now() < deadline, "recovery refused");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return ws,
        }
    }
}

#[tokio::test]
async fn a_reliable_sender_keeps_its_stream_across_recovery_and_its_replays_are_not_published_again(
) {
    let env = env().await;
    let mut sender = env
        .client(
            ClientAccessOptions::new().user_id("alice").role(SEND),
            RELIABLE,
        )
        .await;
    let mut member = env
        .client(
            ClientAccessOptions::new().user_id("bob").group("room"),
            JSON,
        )
        .await;
    opened(&mut sender, "s").await;
    assert_eq!(sender.request(data("s", 1, "a")).await, ack("s", 2));
    let url = format!(
        "{}&awps_connection_id={}&awps_reconnection_token={}",
        sender.url,
        sender.id,
        url::form_urlencoded::byte_serialize(
            sender.connected["reconnectionToken"]
                .as_str()
                .unwrap()
                .as_bytes()
        )
        .collect::<String>()
    );
    drop(sender.ws);
    let mut ws = recover(&url).await;
    // The client replays everything not acked yet when it resumes.
    emulator::send_json(&mut ws, data("s", 1, "a")).await;
    assert_eq!(
        emulator::next_json(&mut ws, common::emulator::WAIT).await,
        ack("s", 2)
    );
    emulator::send_json(&mut ws, data("s", 2, "b")).await;
    assert_eq!(
        emulator::next_json(&mut ws, common::emulator::WAIT).await,
        ack("s", 3)
    );
    assert_eq!(
        member.until_pong().await,
        [text_fragment("s", 1, "a"), text_fragment("s", 2, "b")]
    );
}
