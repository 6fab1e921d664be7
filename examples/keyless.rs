//! Keyless: Microsoft Entra ID on every path, no access key anywhere.
//!
//! The same shape as an app in a tenant that disables local (key) auth on
//! Web PubSub, on one machine:
//!
//! - the embedded **emulator** runs with local auth disabled (it has no
//!   key, sends no `ce-signature`, refuses key-signed REST tokens) and acts
//!   as the tenant's **Entra ID** (discovery document, keys, token
//!   endpoint);
//! - the **service client** authenticates with a `TokenCredential` (here
//!   the emulator's own, `EmulatorCredential`; on Azure a managed identity
//!   from `azure_identity`): every REST call carries a bearer token;
//! - **negotiate** gets client URLs from the service's `:generateToken`
//!   (there is no key to sign them with);
//! - the hub's **event handler** is set to authenticate with the
//!   emulator's managed identity, and the router checks that bearer token
//!   (`EntraValidation`): issuer, audience, and that the caller is that
//!   identity.
//!
//! ```sh
//! cargo run --example keyless --features keyless
//! # then: curl 'http://127.0.0.1:3001/negotiate?name=alice'
//! ```
//!
//! Every chat line a client sends as user event `message` is broadcast to
//! everybody through the REST API.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use webpubsub::client::Message;
use webpubsub::client_access::Negotiate;
use webpubsub::entra::{EntraValidation, TokenCredential};
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectionContext, EventErrorResponse, EventRouter,
    WebPubSubServiceClient,
};
use webpubsub_emulator::{
    Emulator, EventHandlerSettings, HubSettings, RunningEmulator,
    DEFAULT_MANAGED_IDENTITY_OBJECT_ID,
};

// No connection string here: that helper goes unused.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

const HUB: &str = "chat";
/// The resource set on the hub's event handler: the audience of the
/// tokens the service sends it.
const AUDIENCE: &str = "api://webpubsub-keyless-example";

/// The event handler: a client that talks to the service with a credential.
struct Chat {
    service: WebPubSubServiceClient,
}

#[webpubsub::event_handler]
impl Chat {
    /// Accepts users whose token names them.
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .context
            .user_id
            .clone()
            .ok_or_else(|| EventErrorResponse::unauthorized("negotiate a URL with a name"))?;
        Ok(ConnectEventResponse::new().user_id(user))
    }

    /// A chat line: broadcast to everybody, through the REST API (bearer).
    #[user_event("message")]
    async fn message(
        &self,
        ctx: ConnectionContext,
        text: String,
    ) -> Result<(), EventErrorResponse> {
        let user = ctx.user_id.unwrap_or_default();
        let line = serde_json::json!({ "user": user, "text": text });
        self.service
            .send_to_all(Message::from(line))
            .await
            .map_err(|e| EventErrorResponse::server_error(format!("could not broadcast: {e}")))?;
        Ok(())
    }
}

/// Where the app finds the service and its tenant.
struct Tenant {
    endpoint: String,
    credential: Arc<dyn TokenCredential>,
    validation: EntraValidation,
}

/// The app: negotiate (client URLs from `:generateToken`) and the event
/// handler (bearer tokens checked).
fn app(tenant: Tenant) -> Result<Router, webpubsub::ConfigError> {
    let service = WebPubSubServiceClient::from_credential(tenant.endpoint, HUB, tenant.credential)?;
    let negotiate = Negotiate::from_client(service.clone()).user_id_with(|parts| {
        let query = parts.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "name")
            .map(|(_, name)| name.trim().to_owned())
            .filter(|name| !name.is_empty() && name.chars().count() <= 32)
    });
    let events = EventRouter::builder()
        .hub(HUB, Chat { service })
        .entra(tenant.validation)
        .build()?;
    Ok(Router::new()
        .route("/", axum::routing::get(index))
        .route_service("/negotiate", negotiate)
        .nest_service("/eventhandler", events))
}

/// `GET /`: what this app serves, for whoever opens it in a browser.
async fn index() -> &'static str {
    "A keyless Web PubSub app (no web page of its own):\n\
     GET /negotiate?name=<you>  a client URL from the service's :generateToken\n\
     POST /eventhandler         the hub's event handler (Entra ID bearer tokens)\n\
     Connect a client to the negotiated URL (subprotocol json.webpubsub.azure.v1)\n\
     and send user event `message`: every client gets it, broadcast by the app.\n"
}

/// The app and the emulator it runs against.
struct Running {
    app: SocketAddr,
    emulator: RunningEmulator,
    server: tokio::task::JoinHandle<()>,
}

/// Starts the emulator (local auth disabled, the hub's handler set to
/// managed-identity auth) and the app, on `app_port` and `emulator_port`
/// (0 picks free ports).
async fn start(app_port: u16, emulator_port: u16) -> Result<Running, Box<dyn std::error::Error>> {
    let listener = common::listen(app_port, "PORT").await?;
    let app_addr = listener.local_addr()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], emulator_port));
    let emulator = Emulator::builder()
        .host("127.0.0.1")
        .disable_local_auth(true)
        .hub(
            HubSettings::new(HUB).event_handler(
                EventHandlerSettings::new(format!("http://{app_addr}/eventhandler"))
                    .managed_identity(AUDIENCE),
            ),
        )
        .build()?
        .start(addr)
        .await
        .map_err(|e| common::bind_error(addr, &e, "EMULATOR_PORT"))?;
    let tenant = Tenant {
        endpoint: emulator.endpoint(),
        credential: emulator.credential(),
        validation: EntraValidation::new(emulator.tenant_id().to_string())
            .authority(emulator.entra_base())
            .audience(AUDIENCE)
            .allowed_caller(DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string()),
    };
    let router = app(tenant)?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running {
        app: app_addr,
        emulator,
        server,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=info".into()),
        )
        // Colours for a terminal only, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    common::exit(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let running = start(
        common::port("PORT", 3001)?,
        common::port("EMULATOR_PORT", 8081)?,
    )
    .await?;
    println!();
    println!("  Keyless Web PubSub app (no access key anywhere):");
    println!("  negotiate:  http://{}/negotiate?name=<you>", running.app);
    println!(
        "  service:    the emulator at {} (local auth disabled; Entra ID issuer {})",
        running.emulator.endpoint(),
        running.emulator.issuer()
    );
    println!("  live view:  {}/_emulator", running.emulator.endpoint());
    println!();
    println!(
        "  Try it (Node 20 or later): alice sends a chat line; every client gets it back as a broadcast"
    );
    println!(
        "    {}",
        common::node_client_command(
            &format!("http://{}/negotiate?name=alice", running.app),
            "message",
            "hello from alice"
        )
    );
    println!();
    tokio::signal::ctrl_c().await?;
    running.emulator.shutdown().await;
    running.server.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message as Frame;

    const SUBPROTOCOL: &str = "json.webpubsub.azure.v1";

    async fn negotiate(app: SocketAddr, name: &str) -> String {
        let body = reqwest::get(format!("http://{app}/negotiate?name={name}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&body).expect("negotiate answers JSON");
        answer["url"].as_str().expect("a url").to_owned()
    }

    async fn connect(
        url: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", SUBPROTOCOL.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the negotiated URL connects");
        socket
    }

    /// The next JSON frame of `socket` for which `wanted` holds.
    async fn next_json(
        socket: &mut (impl futures_util::Stream<Item = Result<Frame, tokio_tungstenite::tungstenite::Error>>
                  + Unpin),
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let frame = socket.next().await.expect("open").expect("a frame");
                if let Frame::Text(text) = frame {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if wanted(&value) {
                        return value;
                    }
                }
            }
        })
        .await
        .expect("the frame arrives")
    }

    #[tokio::test]
    async fn the_root_says_what_the_app_serves() {
        let running = start(0, 0).await.unwrap();
        let response = reqwest::get(format!("http://{}/", running.app))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains("GET /negotiate?name=<you>"), "{text}");
        running.emulator.shutdown().await;
    }

    #[tokio::test]
    async fn a_chat_line_goes_through_with_entra_id_on_every_path() {
        let running = start(0, 0).await.unwrap();
        // No key anywhere: the emulator's connection string has none.
        assert!(!running.emulator.connection_string().contains("AccessKey="));

        // Negotiate: a client token from `:generateToken`, signed by the
        // service's own key (`kid`), not an access key.
        let url = negotiate(running.app, "alice").await;
        let token = url.split("access_token=").nth(1).expect("a token");
        let header = token.split('.').next().unwrap();
        let header: serde_json::Value = serde_json::from_slice(&base64_url(header)).unwrap();
        assert!(
            header["kid"].as_str().is_some_and(|k| !k.is_empty()),
            "{header}"
        );

        // connect and connected go upstream with a bearer token the router
        // accepts; the chat line comes back through the REST API (bearer).
        let mut socket = connect(&url).await;
        let connected = next_json(&mut socket, |v| v["event"] == "connected").await;
        assert_eq!(connected["userId"], "alice");
        let event = serde_json::json!({
            "type": "event", "event": "message", "dataType": "text", "data": "hello, keyless",
        });
        socket.send(Frame::text(event.to_string())).await.unwrap();
        let line = next_json(&mut socket, |v| v["type"] == "message").await;
        assert_eq!(line["data"]["user"], "alice", "{line}");
        assert_eq!(line["data"]["text"], "hello, keyless", "{line}");

        running.emulator.shutdown().await;
        running.server.abort();
    }

    #[tokio::test]
    async fn the_event_handler_refuses_events_without_a_valid_bearer_token() {
        let running = start(0, 0).await.unwrap();
        let event = webpubsub::testing::connected(HUB, "conn-1").request();
        let url = format!("http://{}/eventhandler", running.app);
        let client = reqwest::Client::new();
        let send = |authorization: Option<&str>| {
            let mut request = client.post(&url);
            for (name, value) in event.headers() {
                request = request.header(name, value);
            }
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            request.send()
        };
        let missing = send(None).await.unwrap();
        assert_eq!(missing.status(), 401);
        assert_eq!(
            missing.text().await.unwrap(),
            "missing Authorization: Bearer token"
        );
        // A genuine token of the emulator's Entra ID, but for the REST API's
        // audience and from the app registration: not the event handler's.
        let token = running.emulator.credential();
        let rest_token =
            TokenCredential::get_token(&*token, &["https://webpubsub.azure.com/.default"], None)
                .await
                .unwrap();
        let wrong = send(Some(&format!("Bearer {}", rest_token.token.secret())))
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            wrong.text().await.unwrap(),
            "bearer token refused: wrong audience"
        );
        running.emulator.shutdown().await;
        running.server.abort();
    }

    fn base64_url(text: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap()
    }
}
