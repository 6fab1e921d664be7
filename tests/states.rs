//! Connection state round trips (spec §7, issue decision 5): the express
//! format, base64 of a JSON object of plain values; changes are merged with
//! the states the request carried; clearing sends an empty header.

mod common;

use common::{call, only_call, router, Recorder, KEY};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webpubsub::events::Event;
use webpubsub::state::ConnectionStates;
use webpubsub::{testing, ConnectEventResponse, EventErrorResponse, UserEventResponse};

/// `{"counter":1,"name":"bob"}` in the express format (spec §7.2).
const COUNTER_1_BOB: &str = "eyJjb3VudGVyIjoxLCJuYW1lIjoiYm9iIn0=";
/// `{"counter":2,"name":"bob"}` (spec §6.4 example answer).
const COUNTER_2_BOB: &str = "eyJjb3VudGVyIjoyLCJuYW1lIjoiYm9iIn0=";

fn states_of(header: &str) -> serde_json::Value {
    let states = ConnectionStates::from_header(header).expect("a state header in our format");
    serde_json::Value::Object(
        states
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
    )
}

/// A user-event handler that bumps `counter` and applies the command in the text.
fn counter_handler() -> Recorder {
    Recorder::new().on_user_event(|req| {
        let counter: u32 = req
            .context
            .state("counter")
            .map_err(|e| EventErrorResponse::user_error(format!("counter is not a number: {e}")))?
            .unwrap_or(0);
        let reply = UserEventResponse::text(format!("counter was {counter}"));
        Ok(match req.data.as_text() {
            Some("bump") => reply.state("counter", counter + 1),
            Some("forget name") => reply.remove_state("name"),
            Some("forget everything") => reply.clear_states(),
            Some("forget counter") => reply.remove_state("counter"),
            _ => reply,
        })
    })
}

#[tokio::test]
async fn connect_states_are_sent_in_the_express_format() {
    let router = router(Recorder::new().on_connect(|_| {
        Ok(ConnectEventResponse::new()
            .state("counter", 1)
            .state("name", "bob"))
    }));
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 204, "states alone need no body");
    assert!(answer.body.is_empty());
    assert_eq!(
        answer.header("ce-connectionstate").as_deref(),
        Some(COUNTER_1_BOB)
    );
}

#[tokio::test]
async fn connect_states_go_with_a_json_body_when_other_fields_are_set() {
    let router = router(Recorder::new().on_connect(|_| {
        Ok(ConnectEventResponse::new()
            .user_id("bob")
            .state("counter", 1)
            .state("name", "bob"))
    }));
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"userId": "bob"}),
        "states are not in the body"
    );
    assert_eq!(
        answer.header("ce-connectionstate").as_deref(),
        Some(COUNTER_1_BOB)
    );
}

#[tokio::test]
async fn states_round_trip_from_connect_through_user_events() {
    let recorder = counter_handler().on_connect(|_| {
        Ok(ConnectEventResponse::new()
            .state("counter", 1)
            .state("name", "bob"))
    });
    let calls = recorder.calls();
    let router = router(recorder);

    // connect sets the state
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    let header = answer
        .header("ce-connectionstate")
        .expect("connect sets state");
    assert_eq!(header, COUNTER_1_BOB);

    // the service sends it back; the handler reads it typed and bumps one key
    let request = testing::user_event("chat", "c1", "message")
        .text("bump")
        .state_header(&header)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "counter was 1");
    let header = answer
        .header("ce-connectionstate")
        .expect("changed state is sent");
    assert_eq!(header, COUNTER_2_BOB, "merged with the untouched key");

    // removing one key keeps the others
    let request = testing::user_event("chat", "c1", "message")
        .text("forget name")
        .state_header(&header)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.text(), "counter was 2");
    let header = answer
        .header("ce-connectionstate")
        .expect("changed state is sent");
    assert_eq!(states_of(&header), json!({"counter": 2}));

    // clearing sends an empty header, which makes the service drop the state
    let request = testing::user_event("chat", "c1", "message")
        .text("forget everything")
        .state_header(&header)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.text(), "counter was 2");
    assert_eq!(answer.header("ce-connectionstate").as_deref(), Some(""));

    // the user events saw the states the service sent
    let seen: Vec<serde_json::Value> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::UserEvent(_)))
        .map(|e| {
            json!(e
                .context()
                .states
                .iter()
                .collect::<std::collections::BTreeMap<_, _>>())
        })
        .collect();
    assert_eq!(
        seen,
        [
            json!({"counter": 1, "name": "bob"}),
            json!({"counter": 2, "name": "bob"}),
            json!({"counter": 2}),
        ]
    );
}

#[tokio::test]
async fn removing_the_last_key_sends_an_empty_header() {
    let router = router(counter_handler());
    let request = testing::user_event("chat", "c1", "message")
        .text("forget counter")
        .state("counter", 5)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.text(), "counter was 5");
    assert_eq!(answer.header("ce-connectionstate").as_deref(), Some(""));
}

#[tokio::test]
async fn an_answer_that_changes_nothing_sends_no_state_header() {
    let router = router(counter_handler());
    let request = testing::user_event("chat", "c1", "message")
        .text("just talking")
        .state_header(COUNTER_1_BOB)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.text(), "counter was 1");
    assert_eq!(answer.header("ce-connectionstate"), None);

    let router = common::router(Recorder::new());
    let request = testing::connect("chat", "c1")
        .state_header(COUNTER_1_BOB)
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("ce-connectionstate"), None);
}

#[tokio::test]
async fn a_user_event_without_reply_can_still_set_state() {
    let router = router(
        Recorder::new().on_user_event(|_| Ok(UserEventResponse::none().state("seen", true))),
    );
    let request = testing::user_event("chat", "c1", "message")
        .text("x")
        .sign(KEY);
    let response = common::send(&router, request).await;
    assert_eq!(response.status(), 204);
    let states = testing::response_states(&response).expect("state header");
    assert_eq!(states.get::<bool>("seen").unwrap(), Some(true));
}

#[tokio::test]
async fn a_refusal_never_changes_state() {
    let router =
        router(counter_handler().on_connect(|_| Err(EventErrorResponse::unauthorized("no"))));
    let request = testing::connect("chat", "c1").state("counter", 1).sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("ce-connectionstate"), None);

    // A user event whose stored counter has the wrong type is refused, state untouched.
    let request = testing::user_event("chat", "c1", "message")
        .text("bump")
        .state("counter", "not a number")
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text().starts_with("counter is not a number"),
        "{}",
        answer.text()
    );
    assert_eq!(answer.header("ce-connectionstate"), None);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    room: String,
    level: u8,
    tags: Vec<String>,
}

#[tokio::test]
async fn structured_state_values_read_back_typed() {
    let profile = Profile {
        room: "lobby".into(),
        level: 3,
        tags: vec!["a".into(), "b".into()],
    };
    let stored = profile.clone();
    let router = router(Recorder::new().on_connect(move |_| {
        Ok(ConnectEventResponse::new().state("profile", serde_json::to_value(&stored).unwrap()))
    }));
    let answer = call(&router, testing::connect("chat", "c1").sign(KEY)).await;
    let header = answer.header("ce-connectionstate").unwrap();
    assert_eq!(
        states_of(&header),
        json!({"profile": {"room": "lobby", "level": 3, "tags": ["a", "b"]}})
    );

    let recorder = Recorder::new();
    let calls = recorder.calls();
    let request = testing::connected("chat", "c1")
        .state_header(&header)
        .sign(KEY);
    assert_eq!(call(&common::router(recorder), request).await.status, 204);
    let event = only_call(&calls);
    assert_eq!(
        event.context().state::<Profile>("profile").unwrap(),
        Some(profile)
    );
    assert_eq!(event.context().state::<Profile>("missing").unwrap(), None);
    assert!(event.context().state::<u32>("profile").is_err());
}

#[tokio::test]
async fn the_docs_example_state_reaches_every_event_kind() {
    // `eyJrZXkiOiJhIn0=` is the docs' example: {"key":"a"}.
    let events = [
        testing::connect("chat", "c1"),
        testing::connected("chat", "c1"),
        testing::user_event("chat", "c1", "message").text("x"),
        testing::disconnected("chat", "c1"),
        testing::group_joined("chat", "c1", "g"),
    ];
    for event in events {
        let recorder = Recorder::new();
        let calls = recorder.calls();
        let request = event.clone().state_header("eyJrZXkiOiJhIn0=").sign(KEY);
        assert_eq!(
            call(&common::router(recorder), request).await.status,
            204,
            "{event:?}"
        );
        let event = only_call(&calls);
        assert_eq!(
            event.context().state::<String>("key").unwrap().as_deref(),
            Some("a")
        );
    }
}

#[tokio::test]
async fn an_empty_or_unpadded_state_header_is_accepted() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    let request = testing::connected("chat", "c1").state_header("").sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    let request = testing::connected("chat", "c1")
        .state_header("eyJrZXkiOiJhIn0")
        .sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    let calls = calls.lock().unwrap();
    assert!(calls[0].context().states.is_empty());
    assert_eq!(
        calls[1]
            .context()
            .state::<String>("key")
            .unwrap()
            .as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn clearing_then_setting_keeps_only_the_new_key() {
    let router = router(Recorder::new().on_user_event(|_| {
        Ok(UserEventResponse::text("ok")
            .clear_states()
            .state("fresh", 1))
    }));
    let request = testing::user_event("chat", "c1", "message")
        .text("x")
        .state_header(COUNTER_1_BOB)
        .sign(KEY);
    let answer = call(&router, request).await;
    let header = answer.header("ce-connectionstate").unwrap();
    assert_eq!(states_of(&header), json!({"fresh": 1}));
}

#[tokio::test]
async fn read_connect_response_returns_the_states_as_a_replacement() {
    let router =
        router(Recorder::new().on_connect(|_| Ok(ConnectEventResponse::new().state("a", 1))));
    let request = testing::connect("chat", "c1").state("b", 2).sign(KEY);
    let accept = testing::read_connect_response(common::send(&router, request).await)
        .await
        .unwrap();
    let after = accept
        .states
        .apply(&ConnectionStates::new().with("stale", 0))
        .expect("states were set");
    assert_eq!(after, ConnectionStates::new().with("a", 1).with("b", 2));
}
