//! `idle-sockets`: many authenticated WebSockets opened with one token (one
//! user), held idle, then closed. Before the fix each cost the emulator a
//! 128 KiB read buffer, and one token opened any number.
//!
//! Knobs: `SOCKETS` (5000), `HOLD` (10 s), `CONNECT_PARALLEL` (64 handshakes
//! at a time), `TIME_LIMIT` (120 s for the connecting phase).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{connect_within, Target, JSON_PROTOCOL};

pub async fn run(target: &Target) -> String {
    let count: usize = knob("SOCKETS", 5000);
    let hold = seconds("HOLD", 10);
    let parallel = Arc::new(Semaphore::new(knob("CONNECT_PARALLEL", 64)));
    let deadline = Instant::now() + seconds("TIME_LIMIT", 120);
    let token = target.client_token("attacker", &[]);
    eprintln!("idle-sockets: {count} sockets with one token");

    let mut set = JoinSet::new();
    for _ in 0..count {
        let permit = parallel
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        if Instant::now() >= deadline {
            break;
        }
        let (target, token) = (target.clone(), token.clone());
        set.spawn(async move {
            let result =
                connect_within(&target, &token, JSON_PROTOCOL, Duration::from_secs(10)).await;
            drop(permit);
            result
        });
    }
    let mut open = Vec::new();
    let mut refused = Tally::default();
    while let Some(done) = set.join_next().await {
        match done.expect("a connect panicked") {
            Ok(ws) => open.push(ws),
            Err(why) => refused.add(why),
        }
    }
    let (rss_open, sockets_open) = (target.rss_text(), target.sockets_text());
    eprintln!("  {} open, holding {hold:?}", open.len());
    sleep(hold).await;
    let rss_held = target.rss_text();

    let accepted = open.len();
    let mut closing = JoinSet::new();
    for mut ws in open {
        closing.spawn(async move {
            let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
        });
    }
    while closing.join_next().await.is_some() {}
    format!(
        "{accepted} of {count} accepted, refused: {refused}; emulator with all open: \
         {rss_open}, {sockets_open} sockets; after {}s idle: {rss_held}",
        hold.as_secs()
    )
}
