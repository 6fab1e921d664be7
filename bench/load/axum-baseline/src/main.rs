//! The baseline of `bench/load/run.sh`: what any axum upstream pays before
//! doing any work of its own.
//!
//! It is set up the way `examples/bench_server.rs` is (same runtime, same
//! `axum::serve`, same graceful shutdown, the route mounted at the same
//! `$BENCH_PATH`), reads each request body in full and answers `200` with
//! `{"ok":true}`. No signature check, no parsing: the difference between
//! this server and ours is what the crate costs per event.
//!
//! `BENCH_WORK_NS=N` (default 0) makes it spin for N ns of CPU per request
//! before answering: a calibration of the harness, telling what a known
//! amount of pure work per request shows as under load (run it under a name
//! starting with `baseline`, e.g. `baseline-850=/path/to/axum-baseline`
//! with the variable set in a wrapper script).

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `BENCH_WORK_NS`, read once at start.
static WORK: OnceLock<Duration> = OnceLock::new();

async fn answer(body: Bytes) -> impl IntoResponse {
    // Keep the body read (and its length used) so nothing is optimised away.
    std::hint::black_box(body.len());
    let work = WORK.get().copied().unwrap_or_default();
    if !work.is_zero() {
        // Arithmetic, not `spin_loop` (whose PAUSE a VM may trap), and the
        // clock read only every 64 steps.
        let start = Instant::now();
        let mut x = 1u64;
        while start.elapsed() < work {
            for _ in 0..64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
    }
    ([(CONTENT_TYPE, "application/json")], r#"{"ok":true}"#)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work: u64 = std::env::var("BENCH_WORK_NS").unwrap_or_else(|_| "0".into()).parse()?;
    WORK.get_or_init(|| Duration::from_nanos(work));
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
