//! `detached-sessions` (issue 21, 6): detached MQTT sessions and parked
//! reliable connections hold no socket, so the socket cap (512) does not
//! bound them, and a token without `sub` meets no per-user cap either; each
//! may queue up to the 16 MiB budget while nobody reads.
//!
//! 1. `PARKED` reliable JSON connections (subprotocol
//!    `json.reliable.webpubsub.azure.v1`, token without `sub`) read their
//!    `connected` frame, then drop their TCP connection without a close
//!    frame: the emulator keeps each for recovery (30 s).
//! 2. `DETACHED` 3.1.1 sessions (Clean Session 0, token without `sub`)
//!    connect and close: the emulator keeps each for the session expiry
//!    (30 s).
//! 3. How many of both the emulator still holds (`HEAD
//!    …/connections/<id>`), with how many sockets open.
//! 4. `FED` of the detached sessions each get `FEED_MESSAGES` REST sends
//!    of `FEED_BYTES` (just under the 16 MiB budget in all).
//!
//! `CONCURRENCY` (64) connections are opened at a time, below the cap.
//!
//! Knobs: `PARKED` (3000), `DETACHED` (3000), `FED` (100), `FEED_MESSAGES`
//! (16), `FEED_BYTES` (1040000), `CONCURRENCY` (64).

use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::Tally;
use crate::knobs::knob;
use crate::mqtt::{Client, Connect, V4};
use crate::target::{connect_within, Target, RELIABLE_PROTOCOL};

pub async fn run(target: &Target) -> String {
    let parked: usize = knob("PARKED", 3000);
    let detached: usize = knob("DETACHED", 3000);
    let fed: usize = knob("FED", 100);
    let feed_messages: usize = knob("FEED_MESSAGES", 16);
    let feed_bytes: usize = knob("FEED_BYTES", 1_040_000);
    let concurrency: usize = knob::<usize>("CONCURRENCY", 64).max(1);
    let started = Instant::now();

    // 1. Parked reliable connections.
    let token = target.anonymous_token(&[]);
    let results: Vec<Result<String, String>> = futures_util::stream::iter(0..parked)
        .map(|_| park_one(target, &token))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut parked_tally = Tally::default();
    let mut parked_ids = Vec::new();
    for result in results {
        match result {
            Ok(id) => {
                parked_tally.add("parked");
                parked_ids.push(id);
            }
            Err(why) => parked_tally.add(why),
        }
    }
    eprintln!(
        "detached-sessions: reliable: {parked_tally}, emulator {}",
        target.rss_text()
    );

    // 2. Detached MQTT sessions.
    let token = target.mqtt_token(None, &[]);
    let results: Vec<(String, Result<(), String>)> = futures_util::stream::iter(0..detached)
        .map(|i| {
            let token = &token;
            async move {
                let id = format!("detached{i}");
                let mut c = Connect::new(V4, &id);
                c.clean = false;
                let outcome = match Client::connect(target, token, &c).await {
                    Ok((client, ack)) if ack.connack_code() == Some(0) => {
                        client.close().await;
                        Ok(())
                    }
                    Ok((_, ack)) => Err(format!(
                        "CONNACK {:#04x}",
                        ack.connack_code().unwrap_or(0xFF)
                    )),
                    Err(why) => Err(why),
                };
                (id, outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut detached_tally = Tally::default();
    let mut detached_ids = Vec::new();
    for (id, result) in results {
        match result {
            Ok(()) => {
                detached_tally.add("detached");
                detached_ids.push(id);
            }
            Err(why) => detached_tally.add(why),
        }
    }
    let opened_secs = started.elapsed().as_secs_f64();
    eprintln!("  MQTT: {detached_tally}, emulator {}", target.rss_text());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 3. What the emulator holds.
    let rss_held = target.rss_text();
    let sockets = target.sockets_text();
    let (parked_held, _) = target.count_existing(&parked_ids).await;
    let (detached_held, _) = target.count_existing(&detached_ids).await;
    let counted_secs = started.elapsed().as_secs_f64();
    eprintln!("  held: {parked_held} reliable, {detached_held} MQTT at {counted_secs:.0} s");

    // 4. Feed some of the detached sessions.
    let body = vec![b'a'; feed_bytes];
    let body = &body;
    let sends: Vec<String> = futures_util::stream::iter(
        detached_ids
            .iter()
            .take(fed)
            .flat_map(|id| std::iter::repeat_n(id, feed_messages)),
    )
    .map(|id| async move {
        target
            .rest_send(&target.connection_send_path(id), body)
            .await
    })
    .buffer_unordered(8)
    .collect()
    .await;
    let mut answers = Tally::default();
    for status in sends {
        answers.add(status);
    }
    let fed_secs = started.elapsed().as_secs_f64();
    let rss_fed = target.rss_text();
    let fed_ids: Vec<String> = detached_ids.iter().take(fed).cloned().collect();
    let (fed_held, _) = target.count_existing(&fed_ids).await;
    format!(
        "reliable connections dropped for recovery: {parked_tally}; MQTT sessions detached: \
         {detached_tally} (all opened in {opened_secs:.0} s, {concurrency} at a time); held at \
         {counted_secs:.0} s: {parked_held} of {} reliable and {detached_held} of {} MQTT \
         (HEAD 200) with {sockets} sockets open, emulator {rss_held}; {} detached sessions fed \
         {feed_messages} × {feed_bytes} bytes each by REST ({answers}) by {fed_secs:.0} s: \
         emulator {rss_fed}, {fed_held} of them still held",
        parked_ids.len(),
        detached_ids.len(),
        fed_ids.len(),
    )
}

/// One reliable connection, dropped without a close frame once connected:
/// its connection id, or why not.
async fn park_one(target: &Target, token: &str) -> Result<String, String> {
    let mut ws = connect_within(target, token, RELIABLE_PROTOCOL, Duration::from_secs(10)).await?;
    let id = match timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("connectionId")?.as_str().map(str::to_owned)),
        _ => None,
    };
    // Dropped: the TCP connection ends without a WebSocket close.
    drop(ws);
    id.ok_or_else(|| "no connected frame".to_owned())
}
