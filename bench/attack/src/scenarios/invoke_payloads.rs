//! `invoke-payloads` (issue 21, 8): the payloads of pending invocations
//! (`invoke` frames of the JSON subprotocol) are held while the upstream
//! has not answered, outside the connection's byte budget: up to 64 of up
//! to 1 MiB per connection.
//!
//! `INVOKE_CONNECTIONS` JSON clients (token without `sub`) each send
//! `INVOCATIONS` `invoke` frames of `INVOKE_BYTES` of text to event
//! `hold`; the attacker's upstream (`--upstream`) reads each call and never
//! answers. The emulator's memory is read once the upstream holds them
//! all (or after 30 s), `HOLD` s later, and after the clients closed.
//! The `invokeResponse` frames the clients got meanwhile (refusals) are
//! counted.
//!
//! Runs on hub `upstreamed`, whose event handler is the attacker's
//! upstream (set by `attack.sh`).
//!
//! Knobs: `INVOKE_CONNECTIONS` (16), `INVOCATIONS` (64), `INVOKE_BYTES`
//! (1000000), `HOLD` (5 s).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{connect_within, Target, JSON_PROTOCOL, UPSTREAM_HUB};
use crate::upstream::Upstream;

pub async fn run(target: &Target) -> String {
    let connections: usize = knob("INVOKE_CONNECTIONS", 16);
    let invocations: usize = knob("INVOCATIONS", 64);
    let size: usize = knob("INVOKE_BYTES", 1_000_000);
    let hold = seconds("HOLD", 5);
    let Some(addr) = target.upstream else {
        return "needs --upstream (run it through attack.sh)".to_owned();
    };
    let upstream = match Upstream::start(addr, Duration::from_secs(120), true).await {
        Ok(upstream) => upstream,
        Err(e) => return format!("the upstream could not listen on {addr}: {e}"),
    };
    let target = target.on_hub(UPSTREAM_HUB);
    let token = target.anonymous_token(&[]);
    let data = "x".repeat(size);
    let responses = Arc::new(Mutex::new(Tally::default()));
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    let mut refused = Tally::default();
    for c in 0..connections {
        let ws = match connect_within(&target, &token, JSON_PROTOCOL, Duration::from_secs(10)).await
        {
            Ok(ws) => ws,
            Err(why) => {
                refused.add(why);
                continue;
            }
        };
        let (mut sink, mut stream) = ws.split();
        let responses = responses.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if frame.get("type").and_then(Value::as_str) == Some("invokeResponse") {
                    let name = frame
                        .pointer("/error/name")
                        .and_then(Value::as_str)
                        .unwrap_or("success");
                    responses.lock().expect("not poisoned").add(name);
                }
            }
        }));
        for i in 0..invocations {
            let frame = format!(
                r#"{{"type":"invoke","invocationId":"{c}-{i}","event":"hold","dataType":"text","data":"{data}"}}"#
            );
            if sink.feed(Message::text(frame)).await.is_err() {
                break;
            }
        }
        let _ = timeout(Duration::from_secs(10), sink.flush()).await;
        sinks.push(sink);
        eprintln!(
            "invoke-payloads: {} connections sent, upstream holds {}, emulator {}",
            c + 1,
            upstream.held.load(Ordering::Relaxed),
            target.rss_text()
        );
    }
    let expected = (sinks.len() * invocations) as u64;
    let wait_until = Instant::now() + Duration::from_secs(30);
    // Until every invocation is held upstream or answered (refused).
    while upstream.held.load(Ordering::Relaxed) + responses.lock().expect("not poisoned").total()
        < expected
        && Instant::now() < wait_until
    {
        sleep(Duration::from_millis(100)).await;
    }
    let held = upstream.held.load(Ordering::Relaxed);
    let rss_all = target.rss_text();
    sleep(hold).await;
    let rss_hold = target.rss_text();
    let answered = responses.lock().expect("not poisoned").to_string();
    for mut sink in sinks {
        let _ = timeout(Duration::from_secs(2), sink.close()).await;
    }
    sleep(Duration::from_secs(2)).await;
    let rss_closed = target.rss_text();
    for reader in readers {
        reader.abort();
    }
    upstream.stop();
    format!(
        "{connections} connections × {invocations} invocations of {size} bytes{}; the upstream \
         got {} and held {held} unanswered ({} MiB of bodies); invokeResponses meanwhile: \
         {answered}; emulator with them pending: {rss_all}, {}s later {rss_hold}; 2 s after the \
         clients closed: {rss_closed}",
        if refused.total() > 0 {
            format!(" (connects refused: {refused})")
        } else {
            String::new()
        },
        upstream.count_prefix("azure.webpubsub.user."),
        upstream.user_bytes.load(Ordering::Relaxed) >> 20,
        hold.as_secs()
    )
}
