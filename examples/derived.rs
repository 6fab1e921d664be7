//! An event handler written with `#[webpubsub::event_handler]`: plain async
//! methods on your own type, no trait impl and no `match` on event names.
//!
//! ```sh
//! cargo run --example derived
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use webpubsub::extract::Json;
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, ConnectionContext,
    DisconnectedEventRequest, EventErrorResponse, EventRouter, UserEventRequest, UserEventResponse,
};

#[path = "common/mod.rs"]
mod common;

const HUB: &str = "chat";
const LOCAL_CONNECTION_STRING: &str =
    "Endpoint=http://localhost;Port=8080;AccessKey=derived-local-key;Version=1.0;";

/// The application's state, shared with the rest of the app through an `Arc`.
#[derive(Default)]
struct Room {
    /// Connection id → user id of everyone online.
    online: Mutex<HashMap<String, String>>,
}

#[derive(serde::Deserialize)]
struct Rename {
    name: String,
}

#[derive(serde::Serialize)]
struct Who {
    online: Vec<String>,
}

#[webpubsub::event_handler]
impl Room {
    /// Who may connect: `?user=<name>` is required.
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .query_value("user")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| EventErrorResponse::unauthorized("connect with ?user=<name>"))?;
        Ok(ConnectEventResponse::new()
            .user_id(user)
            .groups(["lobby"])
            .state("renames", 0))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let ctx = req.context;
        let user = ctx.user_id.unwrap_or_default();
        tracing::info!(%user, "joined");
        self.lock().insert(ctx.connection_id, user);
    }

    /// Plain WebSocket clients send `message`: echo it.
    #[user_event("message")]
    async fn message(&self, req: UserEventRequest) -> UserEventResponse {
        req.data.into()
    }

    /// `who`: the users online, as JSON.
    #[user_event("who")]
    async fn who(&self) -> Json<Who> {
        let mut online: Vec<String> = self.lock().values().cloned().collect();
        online.sort();
        Json(Who { online })
    }

    /// `rename` with `{"name": "…"}`: counts renames in the connection state.
    #[user_event("rename")]
    async fn rename(&self, ctx: ConnectionContext, body: Json<Rename>) -> UserEventResponse {
        let renames: u64 = ctx.state("renames").ok().flatten().unwrap_or(0);
        self.lock().insert(ctx.connection_id, body.0.name.clone());
        UserEventResponse::text(format!("you are now {}", body.0.name))
            .state("renames", renames + 1)
    }

    #[user_event(fallback)]
    async fn unknown(&self, req: UserEventRequest) -> Result<(), EventErrorResponse> {
        Err(EventErrorResponse::user_error(format!(
            "unknown event `{}`",
            req.context.event_name
        )))
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        self.lock().remove(&req.context.connection_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.online
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn app(room: Arc<Room>, connection_string: &str) -> Result<Router, webpubsub::ConfigError> {
    let events = EventRouter::builder()
        .hub(HUB, room)
        .connection_string(connection_string)
        .build()?;
    Ok(Router::new().nest_service("/eventhandler", events))
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

/// Reads the settings and serves the app until Ctrl-C.
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let from_env = common::var("WebPubSubConnectionString");
    let connection_string = from_env.as_deref().unwrap_or(LOCAL_CONNECTION_STRING);
    let app = app(Arc::default(), connection_string).map_err(common::connection_string_error)?;
    let port = common::port("PORT", 8080)?;
    let listener = common::listen(port, "PORT").await?;
    let port = listener.local_addr()?.port();
    println!("derived event handler for hub `{HUB}` on http://127.0.0.1:{port}/eventhandler");
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

    async fn send(app: &Router, event: testing::TestEvent) -> axum::response::Response {
        let request = event.uri("/eventhandler").sign_as(LOCAL_CONNECTION_STRING);
        app.clone().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn who_lists_connected_users_and_forgets_disconnected_ones() {
        let room = Arc::new(Room::default());
        let app = app(Arc::clone(&room), LOCAL_CONNECTION_STRING).unwrap();
        send(&app, testing::connected(HUB, "c1").user("alice")).await;
        send(&app, testing::connected(HUB, "c2").user("bob")).await;
        send(&app, testing::disconnected(HUB, "c2")).await;
        let reply = testing::read_user_event_response(
            send(&app, testing::user_event(HUB, "c1", "who")).await,
        )
        .await
        .unwrap();
        assert_eq!(reply.data().unwrap().as_bytes(), br#"{"online":["alice"]}"#);
    }

    #[tokio::test]
    async fn rename_counts_in_the_connection_state() {
        let app = app(Arc::default(), LOCAL_CONNECTION_STRING).unwrap();
        let event = testing::user_event(HUB, "c1", "rename")
            .state("renames", 2)
            .json(&serde_json::json!({"name": "carol"}));
        let response = send(&app, event).await;
        let states = testing::response_states(&response).unwrap();
        assert_eq!(states.get::<u64>("renames").unwrap(), Some(3));
        let reply = testing::read_user_event_response(response).await.unwrap();
        assert_eq!(reply.data().unwrap().as_text(), Some("you are now carol"));
    }

    #[tokio::test]
    async fn unknown_events_are_refused_by_the_fallback() {
        let app = app(Arc::default(), LOCAL_CONNECTION_STRING).unwrap();
        let refused = testing::read_user_event_response(
            send(&app, testing::user_event(HUB, "c1", "dance")).await,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (refused.status().as_u16(), refused.message.as_str()),
            (400, "unknown event `dance`")
        );
    }
}
