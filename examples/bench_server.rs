//! The server measured by the load harness, `bench/load/run.sh`.
//!
//! An ordinary app: the router mounted with `route_service` on a default
//! multi-threaded tokio runtime, served by `axum::serve`, the same setup as
//! the harness's bare axum baseline (`bench/load/axum-baseline`). Hub
//! `$BENCH_HUB` (default `chat`) is served at `$BENCH_PATH` (default
//! `/api/webpubsub/hubs/chat/`) on `127.0.0.1:$PORT`, signatures checked with
//! `$BENCH_ACCESS_KEY`, handshake allowed from `localhost`; connect sets the
//! user id from `claims.sub`, else `query.id`, else the connection id, with
//! groups `["lobby"]`; the user event `message` is echoed with its data type.
//!
//! ```sh
//! bash bench/load/run.sh     # builds this example and the baseline, 5 reps
//! ```

use std::process::ExitCode;

use axum::Router;
use webpubsub::{
    async_trait, ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventHandler,
    EventRouter, UserEventRequest, UserEventResponse,
};

// This server reads no connection string: that helper goes unused.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

struct Bench;

#[async_trait]
impl EventHandler for Bench {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .claim("sub")
            .or_else(|| req.query_value("id"))
            .unwrap_or(&req.context.connection_id)
            .to_owned();
        Ok(ConnectEventResponse::new()
            .user_id(user)
            .groups(["lobby"])
            .roles(Vec::<String>::new()))
    }

    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        if req.context.event_name == "message" {
            Ok(UserEventResponse::from(req.data))
        } else {
            Ok(UserEventResponse::none())
        }
    }
}

fn app(hub: &str, path: &str, key: &str) -> Result<Router, webpubsub::ConfigError> {
    let events = EventRouter::builder()
        .hub(hub, Bench)
        .endpoint("localhost", key)
        .build()?;
    Ok(Router::new().route_service(path, events))
}

fn main() -> ExitCode {
    common::exit(run())
}

/// Reads the `BENCH_*` settings and serves until SIGTERM or Ctrl-C.
fn run() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| common::var(name).unwrap_or_else(|| default.to_owned());
    let port = common::port("PORT", 8080)?;
    let hub = env("BENCH_HUB", "chat");
    let path = env("BENCH_PATH", "/api/webpubsub/hubs/chat/");
    let key = env("BENCH_ACCESS_KEY", "anAccessKeyForBenchmarks0123456789");
    let app = app(&hub, &path, &key)
        .map_err(|e| format!("BENCH_HUB, BENCH_PATH or BENCH_ACCESS_KEY: {e}"))?;

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = common::listen(port, "PORT").await?;
            let port = listener.local_addr()?.port();
            println!("bench_server: hub {hub} at http://127.0.0.1:{port}{path}");
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                })
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
}
