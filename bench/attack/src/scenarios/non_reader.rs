//! `non-reader`: a client that reads its `connected` frame and then nothing,
//! while the REST API sends it large messages
//! (`POST /api/hubs/<hub>/connections/<id>/:send`). Before the fix the send
//! queue counted messages (4,096), not bytes.
//!
//! Knobs: `MESSAGES` (1000), `MESSAGE_BYTES` (1048576), `HOLD` (5 s after the
//! sends), `TIME_LIMIT` (120 s for the sends).

use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{connect_within, Target, JSON_PROTOCOL};
use crate::wire;

const API_VERSION: &str = "api-version=2024-12-01";

pub async fn run(target: &Target) -> String {
    let messages: u64 = knob("MESSAGES", 1000);
    let size: usize = knob("MESSAGE_BYTES", 1024 * 1024);
    let hold = seconds("HOLD", 5);
    let deadline = Instant::now() + seconds("TIME_LIMIT", 120);

    let token = target.client_token("victim", &[]);
    let mut victim =
        match connect_within(target, &token, JSON_PROTOCOL, Duration::from_secs(10)).await {
            Ok(ws) => ws,
            Err(why) => return format!("the client could not connect: {why}"),
        };
    let id = match timeout(Duration::from_secs(5), victim.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("connectionId")?.as_str().map(str::to_owned)),
        _ => None,
    };
    let Some(id) = id else {
        return "the client got no `connected` frame".to_owned();
    };
    eprintln!("non-reader: {messages} × {size} bytes to connection {id}, which never reads");

    let connection = format!("/api/hubs/{}/connections/{id}", target.hub);
    let send = format!("{connection}/:send?{API_VERSION}");
    let send_token = target.rest_token(&send);
    let body = vec![b'a'; size];
    let mut answers = Tally::default();
    let started = Instant::now();
    for i in 0..messages {
        if Instant::now() >= deadline {
            answers.add("not sent (time limit)");
            break;
        }
        let answer = timeout(
            Duration::from_secs(10),
            wire::request(target.addr, "POST", &send, &send_token, "text/plain", &body),
        )
        .await;
        answers.add(match answer {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("{:?}", e.kind()),
            Err(_) => "timeout".to_owned(),
        });
        if i % 100 == 0 {
            eprintln!("  {i} sent, emulator {}", target.rss_text());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rss_sent = target.rss_text();

    // HEAD …/connections/<id>: 200 while the emulator still holds the client.
    let exists = format!("{connection}?{API_VERSION}");
    let still_connected = match wire::request(
        target.addr,
        "HEAD",
        &exists,
        &target.rest_token(&exists),
        "text/plain",
        b"",
    )
    .await
    {
        Ok(200) => "yes".to_owned(),
        Ok(404) => "no".to_owned(),
        Ok(status) => format!("HEAD answered {status}"),
        Err(e) => format!("{:?}", e.kind()),
    };
    sleep(hold).await;
    let rss_held = target.rss_text();
    drop(victim);
    format!(
        "{} MiB sent in {secs:.0} s, answers: {answers}; emulator after the sends: {rss_sent}, \
         {}s later: {rss_held}; the non-reader still connected after the sends: {still_connected}",
        (answers.count("202") * size as u64) >> 20,
        hold.as_secs()
    )
}
