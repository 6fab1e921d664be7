//! Emulator setup shared by the emulator test files: an emulator on
//! 127.0.0.1 with a service client, hubs whose events go to an upstream,
//! WebSocket clients speaking a subprotocol, and reads bounded in time.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use webpubsub::client_access::ClientAccessOptions;
use webpubsub::WebPubSubServiceClient;
use webpubsub_emulator::{
    Emulator, EmulatorBuilder, EventHandlerSettings, HubSettings, RunningEmulator,
};

pub(crate) const JSON: &str = "json.webpubsub.azure.v1";
pub(crate) const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
/// The longest any single wait of a [`Client`] (and of the helpers here that
/// take no limit) may take.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An emulator with `key`, going by 127.0.0.1, that retries a failed
/// upstream call once after 10 ms.
pub(crate) fn builder(key: &str) -> EmulatorBuilder {
    Emulator::builder()
        .access_key(key)
        .host("127.0.0.1")
        .upstream_retry_delays([Duration::from_millis(10)])
}

/// Hub `chat`, every event sent to the upstream at `url_template`.
pub(crate) fn chat_hub(url_template: impl Into<String>) -> HubSettings {
    HubSettings::new("chat").event_handler(EventHandlerSettings::new(url_template))
}

/// A running emulator and a service client for one of its hubs.
pub(crate) struct Env {
    pub(crate) emulator: RunningEmulator,
    pub(crate) service: WebPubSubServiceClient,
}

/// Starts `builder` on a free port of 127.0.0.1, with a service client for `hub`.
pub(crate) async fn start(builder: EmulatorBuilder, hub: &str) -> Env {
    let emulator = builder
        .build()
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let service =
        WebPubSubServiceClient::from_connection_string(&emulator.connection_string(), hub).unwrap();
    Env { emulator, service }
}

impl Env {
    /// The live view's state (`/_emulator/api/state?{query}`), as text.
    pub(crate) async fn live_state_text(&self, query: &str) -> String {
        reqwest::get(format!(
            "http://{}/_emulator/api/state?{query}",
            self.emulator.local_addr()
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    }

    /// The live view's state, parsed.
    pub(crate) async fn live_state(&self, query: &str) -> Value {
        serde_json::from_str(&self.live_state_text(query).await).unwrap()
    }

    pub(crate) fn url(&self, options: &ClientAccessOptions) -> String {
        self.service.client_access_url(options)
    }

    pub(crate) fn service_for(&self, hub: &str) -> WebPubSubServiceClient {
        WebPubSubServiceClient::from_connection_string(&self.emulator.connection_string(), hub)
            .unwrap()
    }

    pub(crate) async fn client(&self, options: ClientAccessOptions, protocol: &str) -> Client {
        self.client_at(self.url(&options), protocol).await
    }

    /// A JSON-protocol client at `url`, after its `connected` message.
    pub(crate) async fn client_at(&self, url: String, protocol: &str) -> Client {
        let (ws, connected) = connect(&url, protocol, WAIT).await;
        let id = connected["connectionId"]
            .as_str()
            .expect("connected names the connection")
            .to_owned();
        Client {
            ws,
            url,
            id,
            connected,
        }
    }

    pub(crate) async fn exists(&self, connection: &str) -> bool {
        self.service.connection_exists(connection).await.unwrap()
    }
}

/// A WebSocket handshake to `url` offering `protocols` (no header when empty).
pub(crate) async fn open(
    url: &str,
    protocols: &[&str],
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

/// A JSON-protocol client at `url` speaking `protocol`, and its `connected`
/// message, read within `limit`.
pub(crate) async fn connect(url: &str, protocol: &str, limit: Duration) -> (Ws, Value) {
    let (mut ws, response) = open(url, &[protocol])
        .await
        .expect("the handshake succeeds");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    let connected = next_json(&mut ws, limit).await;
    assert_eq!(connected["type"], "system", "{connected}");
    assert_eq!(connected["event"], "connected", "{connected}");
    (ws, connected)
}

/// The status and body of a refused handshake.
pub(crate) async fn refused_handshake(url: &str, protocols: &[&str]) -> (u16, String) {
    match open(url, protocols).await {
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Ok(_) => panic!("the handshake to {url} unexpectedly succeeded"),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// A recovery that must fail: the upgrade succeeds (101), then the server
/// closes; returns the close code.
pub(crate) async fn refused_recovery(url: &str, protocols: &[&str]) -> Option<u16> {
    let (mut ws, response) = open(url, protocols)
        .await
        .expect("a refused recovery still completes the upgrade");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the refused recovery is closed in time");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(Message::Text(text))) => panic!("the recovery was not refused: got {text}"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// The next data or close frame (pings and pongs skipped), each read within `limit`.
pub(crate) async fn next_frame(ws: &mut Ws, limit: Duration) -> Message {
    loop {
        let frame = tokio::time::timeout(limit, ws.next())
            .await
            .unwrap_or_else(|_| panic!("a frame within {limit:?}"))
            .expect("the socket is open")
            .expect("a valid frame");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// The next frame, which must be JSON text (pings and pongs skipped).
pub(crate) async fn next_json(ws: &mut Ws, limit: Duration) -> Value {
    match next_frame(ws, limit).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a JSON text frame, got {other:?}"),
    }
}

/// Sends `value` as a text frame.
pub(crate) async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// Polls `check` every 10 ms until it gives a value.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A REST call to `url` with the text body `x`, signed with `key` (a bearer
/// token for `url`, valid for five minutes).
pub(crate) async fn signed_rest_call(
    method: reqwest::Method,
    url: &str,
    key: &str,
) -> reqwest::Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"aud": url, "iat": now, "exp": now + 300}),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap();
    reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap()
}

pub(crate) fn ok_ack(ack_id: u64) -> Value {
    json!({"type": "ack", "ackId": ack_id, "success": true})
}

/// A connected WebSocket client.
pub(crate) struct Client {
    pub(crate) ws: Ws,
    /// The URL it connected with.
    pub(crate) url: String,
    pub(crate) id: String,
    /// The `connected` system message (JSON protocols).
    pub(crate) connected: Value,
}

impl Client {
    pub(crate) async fn send(&mut self, value: Value) {
        send_json(&mut self.ws, value).await;
    }

    /// The next data or close frame (pings and pongs skipped).
    pub(crate) async fn next_frame(&mut self) -> Message {
        next_frame(&mut self.ws, WAIT).await
    }

    pub(crate) async fn next_json(&mut self) -> Value {
        next_json(&mut self.ws, WAIT).await
    }

    /// Sends a `ping` and returns every frame that arrived before the
    /// `pong`: everything queued for this connection before the ping was read.
    pub(crate) async fn until_pong(&mut self) -> Vec<Value> {
        self.send(serde_json::json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame == serde_json::json!({"type": "pong"}) {
                return before;
            }
            before.push(frame);
        }
    }

    /// Sends `request` and returns the next frame.
    pub(crate) async fn request(&mut self, request: Value) -> Value {
        self.send(request).await;
        self.next_json().await
    }

    /// Reads until the server closes: the frames before the close frame and
    /// its code (`None` when the transport ended without one).
    pub(crate) async fn closed(&mut self) -> (Vec<Message>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the server closes the socket in time");
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return (frames, Some(frame.map_or(1005, |f| u16::from(f.code))))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => frames.push(other),
                Some(Err(_)) | None => return (frames, None),
            }
        }
    }
}
