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

use crate::{emulator, token};

/// The JSON subprotocol of Web PubSub clients.
pub const JSON_PROTOCOL: &str = "json.webpubsub.azure.v1";
/// The reliable JSON subprotocol (the one that can recover a connection).
pub const RELIABLE_PROTOCOL: &str = "json.reliable.webpubsub.azure.v1";

/// A client WebSocket of the attacker.
pub type Ws = WebSocketStream<TcpStream>;

#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub key: String,
    pub hub: String,
    pub pid: Option<u32>,
}

impl Target {
    /// `/client/hubs/<hub>`, where clients connect.
    pub fn client_path(&self) -> String {
        format!("/client/hubs/{}", self.hub)
    }

    /// A client access token for `user`, valid for an hour, with `roles`.
    pub fn client_token(&self, user: &str, roles: &[&str]) -> String {
        let claims = json!({
            "aud": format!("http://{}{}", self.addr, self.client_path()),
            "exp": token::now() + 3600,
            "sub": user,
            "role": roles,
        });
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
        let url = format!(
            "ws://{}{}?access_token={token}",
            self.addr,
            self.client_path()
        );
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
