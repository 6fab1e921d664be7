//! A complete Web PubSub upstream in one file.
//!
//! - `connect` takes the user id from the `?user=` query parameter (refuses
//!   without one) and puts everyone in the `lobby` group;
//! - every user event is echoed back to its sender, with its data type;
//! - `connected` / `disconnected` are logged.
//!
//! ```sh
//! cargo run --example quickstart
//! # against a real hub: set the event handler URL to http://<public host>/eventhandler
//! WebPubSubConnectionString='Endpoint=https://<name>.webpubsub.azure.com;AccessKey=<key>;Version=1.0;' \
//!   cargo run --example quickstart
//! ```

use axum::Router;
use webpubsub::{
    async_trait, AccessKey, ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest,
    DisconnectedEventRequest, EventErrorResponse, EventHandler, EventRouter, UserEventRequest,
    UserEventResponse,
};

/// The hub this example serves.
const HUB: &str = "chat";
/// Used when `WebPubSubConnectionString` is not set, so the example runs alone.
const LOCAL_CONNECTION_STRING: &str =
    "Endpoint=http://localhost;Port=8080;AccessKey=quickstart-local-key;Version=1.0;";

struct Chat;

#[async_trait]
impl EventHandler for Chat {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .query_value("user")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| EventErrorResponse::unauthorized("connect with ?user=<name>"))?;
        Ok(ConnectEventResponse::new().user_id(user).groups(["lobby"]))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let ctx = &req.context;
        tracing::info!(user = ctx.user_id.as_deref(), connection = %ctx.connection_id, "connected");
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

/// The application: the event handler mounted at `/eventhandler`.
fn app(connection_string: &str) -> Result<Router, webpubsub::ConfigError> {
    let events = EventRouter::builder()
        .hub(HUB, Chat)
        .connection_string(connection_string)?
        .build()?;
    Ok(Router::new().nest_service("/eventhandler", events))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=debug".into()),
        )
        .init();

    let from_env = std::env::var("WebPubSubConnectionString").ok();
    let connection_string = from_env.as_deref().unwrap_or(LOCAL_CONNECTION_STRING);
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://127.0.0.1:{port}/eventhandler");

    println!("Web PubSub event handler for hub `{HUB}` listening on {url}");
    if from_env.is_some() {
        println!("Set the hub's event handler URL template to https://<public host>/eventhandler");
    } else {
        let signature = AccessKey::new("quickstart-local-key").signature("conn-1");
        println!("No WebPubSubConnectionString set: using a local key. Try it:");
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
    axum::serve(listener, app(connection_string)?)
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

    #[tokio::test]
    async fn messages_are_echoed_with_their_data_type() {
        let app = app(LOCAL_CONNECTION_STRING).unwrap();
        let json = testing::user_event(HUB, "c1", "message").json(&serde_json::json!({"a": 1}));
        let reply = testing::read_user_event_response(app.oneshot(event(json)).await.unwrap())
            .await
            .unwrap();
        let data = reply.data().unwrap();
        assert_eq!(data.data_type(), webpubsub::DataType::Json);
        assert_eq!(data.as_bytes(), br#"{"a":1}"#);
    }
}
