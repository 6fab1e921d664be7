//! Fan-out through the emulator, in one process, on 127.0.0.1:
//!
//! - **broadcast latency**: 1,000 WebSocket clients (JSON subprotocol) are
//!   connected; one REST `send_to_all` is made and the time until the *last*
//!   client has the message is measured, 200 times → p50 / p99 / max;
//! - **sustained group sends**: the 1,000 clients are in one group; 8 tasks
//!   send `send_to_group` calls as fast as the service accepts them for 5 s;
//!   reported as REST calls/s and messages delivered/s (calls × 1,000).
//!
//! Run with `cargo bench -p webpubsub-emulator --bench fanout`
//! (`FANOUT_CLIENTS`, `FANOUT_ROUNDS` change the sizes). Not a criterion
//! benchmark: one sample is a 1,000-socket round, so it reports percentiles.
//!
//! What it is for: a quick check, with nothing but cargo, that the whole
//! path (REST call → queues → 1,000 real sockets) still works at size and
//! has not grown slower from one commit to the next on the same machine.
//! What it is not: the server's figure. The clients and the emulator share
//! the process and both cores, so a round's time is mostly the clients'
//! (about 2.5 times the server-only latency). The server's figures, beside
//! a bare tokio server, Node `ws` and mosquitto, come from
//! `bench/fanout/run.sh` (`bench/fanout/RESULTS.md`).

#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub::WebPubSubServiceClient;
use webpubsub_emulator::Emulator;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either way: keep the smoke run small.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let clients = if smoke {
        20
    } else {
        env("FANOUT_CLIENTS", 1000)
    };
    let rounds = if smoke { 5 } else { env("FANOUT_ROUNDS", 200) };
    let sustain = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    };

    let emulator = Emulator::builder()
        .host("127.0.0.1")
        .send_queue(65_536)
        // One socket per client, plus the service client's.
        .max_connections(clients + 64)
        .build()
        .expect("emulator settings")
        .start("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("emulator starts");
    let service =
        WebPubSubServiceClient::from_connection_string(&emulator.connection_string(), "bench")
            .expect("client");

    // Every client reports each message it receives on one channel.
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let received = Arc::new(AtomicU64::new(0));
    for i in 0..clients {
        let url = service.client_access_url(
            &ClientAccessOptions::new()
                .user_id(format!("u{i}"))
                .group("all"),
        );
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "json.webpubsub.azure.v1".parse().expect("header"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("client connects");
        let tx = tx.clone();
        let received = received.clone();
        tokio::spawn(async move {
            // The first frame is the `connected` system message.
            let _ = ws.next().await;
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(_) = frame {
                    received.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(i);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = Instant::now();
        service
            .send_to_all(format!("round {round}"))
            .await
            .expect("broadcast accepted");
        for _ in 0..clients {
            rx.recv().await.expect("a delivery");
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "fanout/broadcast_to_{clients}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({rounds} rounds)",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );

    // Sustained group sends.
    while rx.try_recv().is_ok() {}
    let before = received.load(Ordering::Relaxed);
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let service = service.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < sustain {
                service
                    .send_to_group("all", "tick")
                    .await
                    .expect("group send accepted");
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
    let sent = calls.load(Ordering::Relaxed);
    let expected = before + sent * clients as u64;
    let drain_started = Instant::now();
    while received.load(Ordering::Relaxed) < expected
        && drain_started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = received.load(Ordering::Relaxed) - before;
    println!(
        "fanout/group_sends_to_{clients}: {:.0} REST calls/s, {:.0} messages delivered/s ({delivered} of {} delivered in {elapsed:.2} s)",
        sent as f64 / sustain.as_secs_f64(),
        delivered as f64 / elapsed,
        sent * clients as u64,
    );
    assert_eq!(
        delivered,
        sent * clients as u64,
        "every message reaches every client"
    );
    emulator.shutdown().await;
}
