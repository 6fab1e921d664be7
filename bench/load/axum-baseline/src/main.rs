//! The baseline of `bench/load/run.sh`: what any axum upstream pays before
//! doing any work of its own.
//!
//! It is set up the way `examples/bench_server.rs` is (same runtime, same
//! `axum::serve`, same graceful shutdown, the route mounted at the same
//! `$BENCH_PATH`), reads each request body in full and answers `200` with
//! `{"ok":true}`. No signature check, no parsing: the difference between
//! this server and ours is what the crate costs per event.

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;

async fn answer(body: Bytes) -> impl IntoResponse {
    // Keep the body read (and its length used) so nothing is optimised away.
    std::hint::black_box(body.len());
    ([(CONTENT_TYPE, "application/json")], r#"{"ok":true}"#)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").unwrap_or_else(|_| "8080".into()).parse()?;
    let path =
        std::env::var("BENCH_PATH").unwrap_or_else(|_| "/api/webpubsub/hubs/chat/".into());
    let app = Router::new().route(&path, any(answer));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("axum-baseline: http://127.0.0.1:{port}{path}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
