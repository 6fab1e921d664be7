//! `stream-group-names` (issue 21, 8): the group of a group stream
//! (`sendToGroup` with a `stream` object) was not checked against the
//! group-name rule (1 to 1,024 characters), so a stream could be opened to
//! a group of about 1 MB, whose name the emulator keeps while the stream is
//! open (16 streams per connection, 60 s idle timeout).
//!
//! `STREAM_CONNECTIONS` JSON clients (token without `sub`, role
//! `webpubsub.sendToGroup`) each open `STREAMS` streams to distinct groups
//! of `GROUP_BYTES` characters, and count the answers (`streamAck`:
//! opened; `streamClosed` with an error, an `ack` with an error, or the
//! socket closed: refused). The emulator's memory is read with all open.
//!
//! Knobs: `STREAM_CONNECTIONS` (20), `STREAMS` (16), `GROUP_BYTES`
//! (1000000), `HOLD` (5 s).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{connect_within, Target, JSON_PROTOCOL};

pub async fn run(target: &Target) -> String {
    let connections: usize = knob("STREAM_CONNECTIONS", 20);
    let streams: usize = knob("STREAMS", 16);
    let chars: usize = knob("GROUP_BYTES", 1_000_000);
    let hold = seconds("HOLD", 5);
    let token = target.anonymous_token(&["webpubsub.sendToGroup"]);
    let answers = Arc::new(Mutex::new(Tally::default()));
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    let mut refused = Tally::default();
    for c in 0..connections {
        let ws = match connect_within(target, &token, JSON_PROTOCOL, Duration::from_secs(10)).await
        {
            Ok(ws) => ws,
            Err(why) => {
                refused.add(why);
                continue;
            }
        };
        let (mut sink, mut stream) = ws.split();
        let answers = answers.clone();
        readers.push(tokio::spawn(async move {
            loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                            continue;
                        };
                        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
                        let outcome = match kind {
                            "streamAck" => "streamAck".to_owned(),
                            "streamClosed" | "streamNack" | "ack" => {
                                match frame.pointer("/error/name").and_then(Value::as_str) {
                                    Some(name) => format!("{kind} {name}"),
                                    None => continue,
                                }
                            }
                            _ => continue,
                        };
                        answers.lock().expect("not poisoned").add(outcome);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let how = frame.map_or("close".to_owned(), |f| {
                            format!("close {}", u16::from(f.code))
                        });
                        answers
                            .lock()
                            .expect("not poisoned")
                            .add(format!("socket {how}"));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        }));
        for s in 0..streams {
            // (A format width stops at 65,535: padded by hand.)
            let mut group = format!("g{c}-{s}-");
            group.extend(std::iter::repeat_n('x', chars.saturating_sub(group.len())));
            let frame = format!(
                r#"{{"type":"sendToGroup","group":"{group}","stream":{{"streamId":"s{c}-{s}"}}}}"#
            );
            if sink.feed(Message::text(frame)).await.is_err() {
                break;
            }
        }
        let _ = timeout(Duration::from_secs(10), sink.flush()).await;
        sinks.push(sink);
    }
    let expected = (sinks.len() * streams) as u64;
    let wait_until = Instant::now() + Duration::from_secs(20);
    while answers.lock().expect("not poisoned").total() < expected && Instant::now() < wait_until {
        sleep(Duration::from_millis(100)).await;
    }
    let rss_open = target.rss_text();
    sleep(hold).await;
    let rss_hold = target.rss_text();
    let seen = answers.lock().expect("not poisoned").to_string();
    for mut sink in sinks {
        let _ = timeout(Duration::from_secs(2), sink.close()).await;
    }
    sleep(Duration::from_secs(2)).await;
    for reader in readers {
        reader.abort();
    }
    format!(
        "{connections} connections × {streams} stream opens to distinct groups of {chars} \
         characters{}; answers: {seen}; emulator with them open: {rss_open}, {}s later \
         {rss_hold}; 2 s after the clients closed: {}",
        if refused.total() > 0 {
            format!(" (connects refused: {refused})")
        } else {
            String::new()
        },
        hold.as_secs(),
        target.rss_text()
    )
}
