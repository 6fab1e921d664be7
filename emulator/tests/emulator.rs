//! The emulator end to end: a real upstream built with this crate, a real
//! WebSocket client, and the crate's service client, all on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::emulator::{self, send_json, Env, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, DisconnectedEventRequest,
    EventErrorResponse, UserEventRequest, UserEventResponse, WebPubSubServiceClient,
};
use webpubsub_emulator::RunningEmulator;

const KEY: &str = "emulator-test-key-0123456789abcdef";

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<String>>,
}

struct App {
    seen: Arc<Seen>,
}

#[webpubsub::event_handler]
impl App {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        self.seen.events.lock().unwrap().push(format!(
            "connect {}",
            req.context.user_id.clone().unwrap_or_default()
        ));
        if req.query_value("reject").is_some() {
            return Err(EventErrorResponse::unauthorized("rejected"));
        }
        Ok(ConnectEventResponse::new().roles([
            Permission::JoinLeaveGroup.role(),
            Permission::SendToGroup.role(),
        ]))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        self.seen
            .events
            .lock()
            .unwrap()
            .push(format!("connected {}", req.context.connection_id));
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        self.seen
            .events
            .lock()
            .unwrap()
            .push(format!("disconnected {}", req.reason.unwrap_or_default()));
    }

    #[user_event("echo")]
    async fn echo(&self, req: UserEventRequest) -> UserEventResponse {
        UserEventResponse::from(req.data)
    }

    #[user_event(fallback)]
    async fn other(&self, req: UserEventRequest) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::text(format!(
            "got {}",
            req.context.event_name
        )))
    }
}

struct Setup {
    emulator: RunningEmulator,
    seen: Arc<Seen>,
    service: WebPubSubServiceClient,
}

async fn setup() -> Setup {
    let seen = Arc::new(Seen::default());
    let events = common::local_router(App { seen: seen.clone() }, KEY);
    let upstream = common::serve(common::at_eventhandler(events)).await;
    let Env { emulator, service } = emulator::start(
        emulator::builder(KEY).hub(emulator::chat_hub(format!(
            "http://{upstream}/eventhandler/{{hub}}/{{event}}"
        ))),
        "chat",
    )
    .await;
    Setup {
        emulator,
        seen,
        service,
    }
}

async fn connect(service: &WebPubSubServiceClient, user: &str, protocol: Option<&str>) -> Ws {
    let url = service.client_access_url(&ClientAccessOptions::new().user_id(user));
    let (ws, response) = emulator::open(&url, protocol.as_slice()).await.unwrap();
    if let Some(protocol) = protocol {
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    }
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    emulator::next_json(ws, Duration::from_secs(10)).await
}

#[tokio::test]
async fn json_clients_join_groups_send_events_and_get_replies_before_acks() {
    let s = setup().await;
    let mut alice = connect(&s.service, "alice", Some("json.webpubsub.azure.v1")).await;
    let connected = next_json(&mut alice).await;
    assert_eq!(connected["type"], "system");
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["userId"], "alice");

    send_json(
        &mut alice,
        json!({"type":"joinGroup","group":"room","ackId":1}),
    )
    .await;
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type":"ack","ackId":1,"success":true})
    );

    send_json(
        &mut alice,
        json!({"type":"event","event":"echo","dataType":"text","data":"hi","ackId":2}),
    )
    .await;
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type":"message","from":"server","dataType":"text","data":"hi"})
    );
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type":"ack","ackId":2,"success":true})
    );

    send_json(
        &mut alice,
        json!({"type":"sendToGroup","group":"room","dataType":"json","data":{"n":1},"ackId":3}),
    )
    .await;
    let first = next_json(&mut alice).await;
    let second = next_json(&mut alice).await;
    let mut frames = [first, second];
    frames.sort_by_key(|f| f["type"].as_str().unwrap_or("").to_owned());
    assert_eq!(frames[0], json!({"type":"ack","ackId":3,"success":true}));
    assert_eq!(
        frames[1],
        json!({"type":"message","from":"group","group":"room","fromUserId":"alice","dataType":"json","data":{"n":1}})
    );

    send_json(
        &mut alice,
        json!({"type":"joinGroup","group":"room","ackId":3}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await["error"]["name"], "Duplicate");

    s.service.send_to_group("room", "from rest").await.unwrap();
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type":"message","from":"group","group":"room","dataType":"text","data":"from rest"})
    );
    assert!(s.service.group_exists("room").await.unwrap());
    assert!(s.service.user_exists("alice").await.unwrap());
    let members = s.service.list_connections_in_group("room").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id.as_deref(), Some("alice"));

    s.service
        .close_user_connections("alice")
        .reason("bye")
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type":"system","event":"disconnected","message":"bye"})
    );
    for _ in 0..100 {
        if s.seen
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e == "disconnected bye")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = s.seen.events.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("connect alice"));
    assert!(
        events.iter().any(|e| e.starts_with("connected ")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e == "disconnected bye"), "{events:?}");
    assert!(!s.service.user_exists("alice").await.unwrap());
    s.emulator.shutdown().await;
}

#[tokio::test]
async fn a_refused_connect_fails_the_handshake_with_its_status() {
    let s = setup().await;
    let url = s
        .service
        .client_access_url(&ClientAccessOptions::new().user_id("mallory"))
        + "&reject=1";
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected an HTTP error, got {other}"),
    }
    let bad = format!(
        "ws://{}/client/hubs/chat?access_token=not-a-token",
        s.emulator.local_addr()
    );
    match tokio_tungstenite::connect_async(bad).await.unwrap_err() {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected an HTTP error, got {other}"),
    }
}

#[tokio::test]
async fn plain_websocket_frames_are_message_events_answered_in_kind() {
    let s = setup().await;
    let mut ws = connect(&s.service, "bob", None).await;
    ws.send(Message::Text("ping".into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::Text("got message".into()));
    s.service
        .send_to_user("bob", vec![1u8, 2, 3])
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame, Message::Binary(vec![1u8, 2, 3].into()));
}
