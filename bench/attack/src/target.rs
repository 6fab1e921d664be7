//! The emulator under attack: its address, key and hub, the tokens it
//! accepts, an authenticated WebSocket client, and its process's figures.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

use crate::{emulator, token, wire};

/// The JSON subprotocol of Web PubSub clients.
pub const JSON_PROTOCOL: &str = "json.webpubsub.azure.v1";
/// The reliable JSON subprotocol (the one that can recover a connection).
pub const RELIABLE_PROTOCOL: &str = "json.reliable.webpubsub.azure.v1";

/// A client WebSocket of the attacker.
pub type Ws = WebSocketStream<TcpStream>;

/// The WebSocket subprotocol of MQTT clients.
pub const MQTT_PROTOCOL: &str = "mqtt";
/// The REST API version the attacker names.
pub const API_VERSION: &str = "api-version=2024-12-01";

#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub key: String,
    pub hub: String,
    pub pid: Option<u32>,
    /// Where the attacker's own event handler listens, for the scenarios
    /// that need one (`attack.sh` points the emulator's hub
    /// [`UPSTREAM_HUB`] there).
    pub upstream: Option<SocketAddr>,
}

/// The hub whose event handler is the attacker's upstream (`--hub
/// upstreamed=…` in `attack.sh`); the other scenarios use a hub without one.
pub const UPSTREAM_HUB: &str = "upstreamed";

impl Target {
    /// `/client/hubs/<hub>`, where clients connect.
    pub fn client_path(&self) -> String {
        format!("/client/hubs/{}", self.hub)
    }

    /// `/clients/mqtt/hubs/<hub>`, where MQTT clients connect.
    pub fn mqtt_path(&self) -> String {
        format!("/clients/mqtt/hubs/{}", self.hub)
    }

    /// The same target on another hub.
    pub fn on_hub(&self, hub: &str) -> Target {
        Target {
            hub: hub.to_owned(),
            ..self.clone()
        }
    }

    /// A client access token for `user`, valid for an hour, with `roles`.
    pub fn client_token(&self, user: &str, roles: &[&str]) -> String {
        self.token_for(&self.client_path(), Some(user), roles)
    }

    /// A client access token for the MQTT path; `user` `None`: no `sub`.
    pub fn mqtt_token(&self, user: Option<&str>, roles: &[&str]) -> String {
        self.token_for(&self.mqtt_path(), user, roles)
    }

    /// A client token without `sub` (no user: no per-user cap).
    pub fn anonymous_token(&self, roles: &[&str]) -> String {
        self.token_for(&self.client_path(), None, roles)
    }

    fn token_for(&self, path: &str, user: Option<&str>, roles: &[&str]) -> String {
        let mut claims = json!({
            "aud": format!("http://{}{path}", self.addr),
            "exp": token::now() + 3600,
            "role": roles,
        });
        if let Some(user) = user {
            claims["sub"] = json!(user);
        }
        token::sign(&self.key, &claims)
    }

    /// A REST token whose audience is exactly `path_and_query` on this host.
    pub fn rest_token(&self, path_and_query: &str) -> String {
        let claims = json!({
            "aud": format!("http://{}{}", self.addr, path_and_query),
            "exp": token::now() + 3600,
        });
        token::sign(&self.key, &claims)
    }

    /// Opens a client WebSocket with `token` and `protocol`, with a small
    /// read buffer so that thousands of them cost the attacker little.
    pub async fn connect(&self, token: &str, protocol: &str) -> Result<Ws, WsError> {
        self.connect_at(&self.client_path(), token, protocol).await
    }

    /// Opens a WebSocket to `path` (the client or the MQTT path).
    pub async fn connect_at(&self, path: &str, token: &str, protocol: &str) -> Result<Ws, WsError> {
        let url = format!("ws://{}{path}?access_token={token}", self.addr);
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).map_err(|e| WsError::HttpFormat(e.into()))?,
        );
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let stream = TcpStream::connect(self.addr).await?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(ws)
    }

    /// `HEAD /api/hubs/<hub>/connections/<id>`: `Some(true)` while the
    /// emulator holds the connection (200), `Some(false)` on 404.
    pub async fn connection_exists(&self, id: &str) -> Option<bool> {
        let path = format!("/api/hubs/{}/connections/{id}?{API_VERSION}", self.hub);
        let token = self.rest_token(&path);
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            wire::request(self.addr, "HEAD", &path, &token, "text/plain", b""),
        )
        .await;
        match answer {
            Ok(Ok(200)) => Some(true),
            Ok(Ok(404)) => Some(false),
            _ => None,
        }
    }

    /// How many of `ids` the emulator still holds (HEAD, 16 at a time), and
    /// how many checks failed.
    pub async fn count_existing(&self, ids: &[String]) -> (usize, usize) {
        use futures_util::StreamExt as _;
        let answers: Vec<Option<bool>> = futures_util::stream::iter(ids)
            .map(|id| self.connection_exists(id))
            .buffer_unordered(16)
            .collect()
            .await;
        let held = answers.iter().filter(|a| **a == Some(true)).count();
        let failed = answers.iter().filter(|a| a.is_none()).count();
        (held, failed)
    }

    /// A REST `POST` of `body` (text/plain) to `path` (`…/:send`, without
    /// the query): its status, or why there is none.
    pub async fn rest_send(&self, path: &str, body: &[u8]) -> String {
        let path = format!("{path}?{API_VERSION}");
        let token = self.rest_token(&path);
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            wire::request(self.addr, "POST", &path, &token, "text/plain", body),
        )
        .await;
        match answer {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("{:?}", e.kind()),
            Err(_) => "timeout".to_owned(),
        }
    }

    /// `/api/hubs/<hub>/connections/<id>/:send`.
    pub fn connection_send_path(&self, id: &str) -> String {
        format!("/api/hubs/{}/connections/{id}/:send", self.hub)
    }

    /// `/api/hubs/<hub>/groups/<group>/:send`.
    pub fn group_send_path(&self, group: &str) -> String {
        format!("/api/hubs/{}/groups/{group}/:send", self.hub)
    }

    /// The emulator's resident memory now, in MiB.
    pub fn rss(&self) -> Option<f64> {
        emulator::status_mib(self.pid?, "VmRSS")
    }

    /// "123 MiB" or "?" when no `--pid` was given.
    pub fn rss_text(&self) -> String {
        self.rss().map_or("?".to_owned(), |m| format!("{m:.0} MiB"))
    }

    /// The number of sockets the emulator holds, or "?".
    pub fn sockets_text(&self) -> String {
        self.pid
            .and_then(emulator::sockets)
            .map_or("?".to_owned(), |n| n.to_string())
    }
}

/// How a WebSocket connect failed, in a word or two (`401`, `timeout`, …).
pub fn refusal(
    result: Result<Result<Ws, WsError>, tokio::time::error::Elapsed>,
) -> Result<Ws, String> {
    match result {
        Ok(Ok(ws)) => Ok(ws),
        Ok(Err(WsError::Http(response))) => Err(response.status().as_u16().to_string()),
        Ok(Err(WsError::Io(e))) => Err(format!("{:?}", e.kind())),
        Ok(Err(e)) => Err(short(&e.to_string())),
        Err(_) => Err("timeout".to_owned()),
    }
}

/// The first few words of an error message.
pub fn short(message: &str) -> String {
    message
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A connect attempt, bounded in time.
pub async fn connect_within(
    target: &Target,
    token: &str,
    protocol: &str,
    limit: Duration,
) -> Result<Ws, String> {
    refusal(tokio::time::timeout(limit, target.connect(token, protocol)).await)
}
