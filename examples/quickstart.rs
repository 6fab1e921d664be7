//! A complete Web PubSub application in one file: the upstream event
//! handler, a service client, and a negotiate endpoint.
//!
//! - `GET /negotiate?id=alice` answers `{"url": "ws://…?access_token=…"}`, the
//!   URL a client connects to as `alice`;
//! - `connect` takes the user id from the token (or the `?user=` query
//!   parameter) and puts everyone in the `lobby` group;
//! - `connected` broadcasts "alice joined" to the hub through the service client;
//! - every user event is echoed back to its sender, with its data type;
//! - `disconnected` is logged.
//!
//! ```sh
//! cargo run --example quickstart
//! # against a real hub: set the event handler URL to https://<public host>/eventhandler
//! WebPubSubConnectionString='Endpoint=https://<name>.webpubsub.azure.com;AccessKey=<key>;Version=1.0;' \
//!   cargo run --example quickstart
//! ```

use std::process::ExitCode;

use axum::Router;
use webpubsub::client_access::{ClientAccessOptions, Negotiate, Permission};
use webpubsub::config::AccessKey;
use webpubsub::{
    async_trait, ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest,
    DisconnectedEventRequest, EventErrorResponse, EventHandler, EventRouter, UserEventRequest,
    UserEventResponse, WebPubSubServiceClient,
};

#[path = "common/mod.rs"]
mod common;

/// The hub this example serves.
const HUB: &str = "chat";
/// Used when `WebPubSubConnectionString` is not set: the local emulator's
/// defaults (`cargo run -p webpubsub-emulator`), so
/// the example runs without Azure.
const LOCAL_CONNECTION_STRING: &str =
    "Endpoint=http://localhost;Port=8080;AccessKey=webpubsub-emulator-local-key-0123456789;Version=1.0;";

struct Chat {
    service: WebPubSubServiceClient,
}

#[async_trait]
impl EventHandler for Chat {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .context
            .user_id
            .clone()
            .or_else(|| req.query_value("user").map(str::to_owned))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| EventErrorResponse::unauthorized("connect with ?user=<name>"))?;
        Ok(ConnectEventResponse::new().user_id(user).groups(["lobby"]))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let user = req.context.user_id.unwrap_or_default();
        tracing::info!(%user, connection = %req.context.connection_id, "connected");
        // The service does not wait for `connected`, and neither do we: the
        // broadcast runs on its own task, and a failure is logged.
        let service = self.service.clone();
        tokio::spawn(async move {
            if let Err(e) = service.send_to_all(format!("{user} joined")).await {
                tracing::warn!(error = %e, "could not announce {user}");
            }
        });
    }

    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::from(req.data))
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let ctx = &req.context;
        tracing::info!(
            user = ctx.user_id.as_deref(),
            reason = req.reason.as_deref(),
            "disconnected"
        );
    }
}

/// The application: the event handler at `/eventhandler`, client URLs at `/negotiate`.
fn app(connection_string: &str) -> Result<Router, webpubsub::ConfigError> {
    let service = WebPubSubServiceClient::from_connection_string(connection_string, HUB)?;
    // Demo only: `?id=` lets every caller pick any identity. A real app takes
    // the user its auth layer verified: `.user_id_with(|parts| …extensions…)`.
    let negotiate = Negotiate::new(service.signer().clone())
        .user_id_from_query("id")
        .options(ClientAccessOptions::new().role(Permission::JoinLeaveGroup.role()));
    let events = EventRouter::builder()
        .hub(HUB, Chat { service })
        .connection_string(connection_string)
        .build()?;
    Ok(Router::new()
        .nest_service("/eventhandler", events)
        .route_service("/negotiate", negotiate))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=debug".into()),
        )
        // Colours for a terminal only, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    common::exit(run().await)
}

/// Reads the settings, prints how to try the app, and serves it until Ctrl-C.
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let from_env = common::var("WebPubSubConnectionString");
    let connection_string = from_env.as_deref().unwrap_or(LOCAL_CONNECTION_STRING);
    let app = app(connection_string).map_err(common::connection_string_error)?;
    let port = common::port("PORT", 3000)?;
    let listener = common::listen(port, "PORT").await?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let url = format!("{base}/eventhandler");

    println!("Web PubSub event handler for hub `{HUB}` listening on {url}");
    println!("Client URLs: curl '{base}/negotiate?id=alice'");
    println!(
        "Connect a client (Node 20 or later; it sends user event `hello` and prints the echo):"
    );
    println!(
        "  {}",
        common::node_client_command(&format!("{base}/negotiate?id=alice"), "hello", "hi")
    );
    if from_env.is_some() {
        println!("Set the hub's event handler URL template to https://<public host>/eventhandler");
    } else {
        let signature =
            AccessKey::new("webpubsub-emulator-local-key-0123456789")?.signature("conn-1");
        println!(
            "No WebPubSubConnectionString set: using a local key and a service on localhost:8080."
        );
        println!("Try it:");
        println!("  curl -i -X OPTIONS -H 'WebHook-Request-Origin: localhost' {url}");
        println!(
            "  curl -i {url} -H 'ce-type: azure.webpubsub.sys.connect' -H 'ce-hub: {HUB}' \\\n    \
             -H 'ce-connectionId: conn-1' -H 'ce-eventName: connect' -H 'WebHook-Request-Origin: localhost' \\\n    \
             -H 'ce-signature: {signature}' -H 'Content-Type: application/json' \\\n    \
             -d '{{\"query\":{{\"user\":[\"alice\"]}}}}'"
        );
        println!(
            "  curl -i {url} -H 'ce-type: azure.webpubsub.user.message' -H 'ce-hub: {HUB}' \\\n    \
             -H 'ce-connectionId: conn-1' -H 'WebHook-Request-Origin: localhost' \\\n    \
             -H 'ce-signature: {signature}' -H 'Content-Type: text/plain' -d 'hello'"
        );
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;
    use webpubsub::testing;

    /// The Node client `run` prints, run verbatim against the app and the
    /// emulator: it connects, sends `hello`, and gets the echo.
    #[tokio::test]
    async fn the_printed_node_client_gets_its_echo_through_the_emulator() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let emulator = webpubsub_emulator::Emulator::builder()
            .host("127.0.0.1")
            .hub(webpubsub_emulator::HubSettings::new(HUB).event_handler(
                webpubsub_emulator::EventHandlerSettings::new(format!("{base}/eventhandler")),
            ))
            .build()
            .unwrap()
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let router = app(&emulator.connection_string()).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let command =
            common::node_client_command(&format!("{base}/negotiate?id=alice"), "hello", "hi");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .output()
                .expect("sh runs (the tests need Node.js 22 or later)")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains(r#""event":"connected""#), "{stdout}");
        assert!(
            stdout.contains(r#""from":"server","dataType":"text","data":"hi""#),
            "the echo: {stdout}"
        );
        emulator.shutdown().await;
    }

    fn event(e: testing::TestEvent) -> axum::http::Request<axum::body::Body> {
        e.uri("/eventhandler").sign_as(LOCAL_CONNECTION_STRING)
    }

    #[tokio::test]
    async fn connect_takes_the_user_from_the_query_and_joins_the_lobby() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let response = app
            .oneshot(event(testing::connect(HUB, "c1").query("user", "alice")))
            .await
            .unwrap();
        let accepted = testing::read_connect_response(response).await.unwrap();
        assert_eq!(accepted.user_id.as_deref(), Some("alice"));
        assert_eq!(accepted.groups, Some(vec!["lobby".to_owned()]));
    }

    #[tokio::test]
    async fn connect_without_a_user_is_refused() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let response = app
            .oneshot(event(testing::connect(HUB, "c1")))
            .await
            .unwrap();
        let refused = testing::read_connect_response(response).await.unwrap_err();
        assert_eq!(refused.status(), 401);
    }

    /// A fake service on 127.0.0.1 that forwards each request it receives.
    async fn fake_service() -> (String, tokio::sync::mpsc::UnboundedReceiver<Recorded>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let service = Router::new().fallback(move |req: axum::extract::Request| {
            let tx = tx.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let _ = tx.send(Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap_or("").to_owned()),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                axum::http::StatusCode::ACCEPTED
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, service).await });
        let conn = format!(
            "Endpoint=http://127.0.0.1;Port={port};AccessKey=webpubsub-emulator-local-key-0123456789;Version=1.0;"
        );
        (conn, rx)
    }

    #[derive(Debug)]
    struct Recorded {
        method: String,
        path: String,
        content_type: Option<String>,
        body: String,
    }

    #[tokio::test]
    async fn connected_broadcasts_that_the_user_joined() {
        let (conn, mut received) = fake_service().await;
        let app = app(&conn).unwrap();
        let request = testing::connected(HUB, "c1")
            .user("alice")
            .uri("/eventhandler")
            .sign_as(&conn);
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 204);
        let sent = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
            .await
            .expect("the broadcast reaches the service")
            .unwrap();
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/api/hubs/chat/:send");
        assert_eq!(sent.content_type.as_deref(), Some("text/plain"));
        assert_eq!(sent.body, "alice joined");
    }

    #[tokio::test]
    async fn negotiate_hands_out_a_url_for_the_named_user() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let request = axum::http::Request::get("/negotiate?id=alice")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let url = json["url"].as_str().unwrap();
        assert!(
            url.starts_with("ws://localhost:8080/client/hubs/chat?access_token="),
            "{url}"
        );
    }

    #[tokio::test]
    async fn connect_prefers_the_user_of_the_token() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let response = app
            .oneshot(event(
                testing::connect(HUB, "c1")
                    .user("bob")
                    .query("user", "mallory"),
            ))
            .await
            .unwrap();
        let accepted = testing::read_connect_response(response).await.unwrap();
        assert_eq!(accepted.user_id.as_deref(), Some("bob"));
    }

    #[tokio::test]
    async fn messages_are_echoed_with_their_data_type() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let json = testing::user_event(HUB, "c1", "message").json(&serde_json::json!({"a": 1}));
        let reply = testing::read_user_event_response(app.oneshot(event(json)).await.unwrap())
            .await
            .unwrap();
        let data = reply.data().unwrap();
        assert_eq!(data.data_type(), webpubsub::events::DataType::Json);
        assert_eq!(data.as_bytes(), br#"{"a":1}"#);
    }
}
