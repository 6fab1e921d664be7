//! The emulator and its clients: a hub `chat` whose events go to a
//! [`Upstream`], and what the tests ask of JSON and raw clients.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub_emulator::{EmulatorBuilder, HubSettings, SystemEvent};

use crate::common::emulator::{self, eventually, open, Client, Env, JSON, WAIT};
use crate::recording_upstream::{Req, Upstream};

pub(crate) const KEY: &str = "emulator-protocol-test-key-0123456789abcdef";
pub(crate) const SECONDARY_KEY: &str = "emulator-protocol-secondary-key-0123456789";

pub(crate) fn builder() -> EmulatorBuilder {
    emulator::builder(KEY)
}

/// Starts `builder`, with a service client for hub `chat`.
pub(crate) async fn start(builder: EmulatorBuilder) -> Env {
    emulator::start(builder, "chat").await
}

/// Hub `chat`, every event sent to `up`.
pub(crate) async fn env(up: &Upstream) -> Env {
    start(builder().hub(HubSettings::new("chat").event_handler(up.handler()))).await
}

/// Hub `chat` whose handler is not sent `connect`: clients keep their token's roles and groups.
pub(crate) async fn env_without_connect(up: &Upstream) -> Env {
    start(
        builder().hub(
            HubSettings::new("chat").event_handler(
                up.handler()
                    .system_events([SystemEvent::Connected, SystemEvent::Disconnected]),
            ),
        ),
    )
    .await
}

impl Env {
    pub(crate) async fn json_client(&self, options: ClientAccessOptions) -> Client {
        self.client(options, JSON).await
    }

    /// The connection ids of `user`, from the emulator's live view.
    pub(crate) async fn connections_of(&self, user: &str) -> Vec<String> {
        let state = self.live_state("").await;
        let mut ids = Vec::new();
        for connections in state["hubs"]
            .as_object()
            .into_iter()
            .flat_map(|h| h.values())
        {
            for c in connections.as_array().into_iter().flatten() {
                if c["userId"] == user {
                    ids.push(c["connectionId"].as_str().unwrap().to_owned());
                }
            }
        }
        ids
    }

    /// A plain WebSocket client of `user` (the URL gets `extra_query`
    /// appended), once the emulator has registered it.
    pub(crate) async fn raw_client(
        &self,
        user: &str,
        options: ClientAccessOptions,
        extra: &str,
    ) -> Client {
        let before = self.connections_of(user).await;
        let url = format!("{}{extra}", self.url(&options.user_id(user)));
        let (ws, response) = open(&url, &[]).await.expect("the handshake succeeds");
        assert!(response.headers().get("sec-websocket-protocol").is_none());
        let before = &before;
        let id = eventually("the raw connection to register", move || async move {
            self.connections_of(user)
                .await
                .into_iter()
                .find(|id| !before.contains(id))
        })
        .await;
        Client {
            ws,
            url,
            id,
            connected: Value::Null,
        }
    }
}

impl Client {
    /// Raw clients: a WebSocket ping; returns the frames before its pong.
    /// The pong proves the emulator processed every frame sent before it.
    pub(crate) async fn raw_sync(&mut self) -> Vec<Message> {
        self.ws
            .send(Message::Ping(Bytes::from_static(b"sync")))
            .await
            .unwrap();
        let mut before = Vec::new();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a pong in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match frame {
                Message::Pong(_) => return before,
                Message::Ping(_) => {}
                other => before.push(other),
            }
        }
    }
}

pub(crate) fn text_of(frame: &Message) -> Value {
    match frame {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub(crate) fn server_text(data: &str) -> Value {
    json!({"type": "message", "from": "server", "dataType": "text", "data": data})
}

pub(crate) fn forbidden(frame: &Value, ack_id: u64) {
    assert_eq!(frame["type"], "ack", "{frame}");
    assert_eq!(frame["ackId"], ack_id, "{frame}");
    assert_eq!(frame["success"], false, "{frame}");
    assert_eq!(frame["error"]["name"], "Forbidden", "{frame}");
}

pub(crate) fn reason_of(disconnected: &Req) -> Option<String> {
    disconnected.json()["reason"].as_str().map(str::to_owned)
}
