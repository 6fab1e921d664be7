//! `many-groups`: one client joins many distinct long groups, then sends
//! many frames with fresh `ackId`s. Before the fix neither the groups of a
//! connection nor the ack ids it had used were bounded.
//!
//! Knobs: `JOIN_GROUPS` (200000), `GROUP_CHARS` (1000), `ACK_IDS` (1000000),
//! `ACK_WINDOW` (1000 frames awaiting their ack), `TIME_LIMIT` (120 s for
//! each phase).
//!
//! Joins carry no `ackId` (so the first phase grows groups only); one last
//! join with `ackId` 0 tells when the emulator has read them all, and
//! whether it still accepts a join. The second phase sends `sendToGroup`
//! frames to a group nobody is in, `ackId` 1, 2, …; a reader counts the acks.
//! Like a real client it keeps at most `ACK_WINDOW` frames unacknowledged:
//! the emulator reads a burst of frames before it writes their acks, and a
//! client that let more than its send queue (4,096) pile up would be cut as
//! too slow rather than remembered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::{sleep, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::knobs::{knob, seconds};
use crate::target::{connect_within, Target, Ws, JSON_PROTOCOL};

type Sink = SplitSink<Ws, Message>;

/// Frames written between two flushes.
const BATCH: u64 = 512;

/// What the reader saw.
#[derive(Debug)]
struct Seen {
    acked: AtomicU64,
    /// One permit per frame that may still be sent before its ack comes.
    window: Semaphore,
    failed: AtomicU64,
    /// The first failure's `name: message`.
    first_failure: Mutex<Option<String>>,
    /// How the socket ended, if it did.
    ended: Mutex<Option<String>>,
}

impl Seen {
    fn acks(&self) -> u64 {
        self.acked.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().expect("not poisoned").clone()
    }

    /// Takes a place in the window, flushing first if it has to wait.
    async fn take_window(&self, sink: &mut Sink, deadline: Instant) -> bool {
        if let Ok(permit) = self.window.try_acquire() {
            permit.forget();
            return true;
        }
        if sink.flush().await.is_err() {
            return false;
        }
        match tokio::time::timeout_at(deadline, self.window.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                true
            }
            _ => false,
        }
    }

    /// Waits until `n` acks came, the socket ended, or `deadline`.
    async fn wait_for(&self, n: u64, deadline: Instant) {
        while self.acks() < n && self.ended().is_none() && Instant::now() < deadline {
            sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn run(target: &Target) -> String {
    let groups: u64 = knob("JOIN_GROUPS", 200_000);
    let chars: usize = knob("GROUP_CHARS", 1000);
    let ack_ids: u64 = knob("ACK_IDS", 1_000_000);
    let limit = seconds("TIME_LIMIT", 120);
    let roles = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];
    let token = target.client_token("attacker", &roles);
    let ws = match connect_within(target, &token, JSON_PROTOCOL, Duration::from_secs(10)).await {
        Ok(ws) => ws,
        Err(why) => return format!("the client could not connect: {why}"),
    };
    let (mut sink, mut stream) = ws.split();
    let seen = Arc::new(Seen {
        acked: AtomicU64::new(0),
        window: Semaphore::new(knob("ACK_WINDOW", 1000)),
        failed: AtomicU64::new(0),
        first_failure: Mutex::new(None),
        ended: Mutex::new(None),
    });
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let ended = loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => count_ack(&seen, &text),
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or("close without code".to_owned(), |f| {
                            format!("close {} ({})", u16::from(f.code), f.reason)
                        })
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "end of stream".to_owned(),
                }
            };
            *seen.ended.lock().expect("not poisoned") = Some(ended);
        })
    };

    // Phase 1: joins.
    eprintln!("many-groups: joining {groups} groups of {chars} characters");
    let started = Instant::now();
    let deadline = started + limit;
    let mut joined = 0u64;
    while joined < groups && Instant::now() < deadline && seen.ended().is_none() {
        let name = format!("{:x<chars$}", format!("g{joined}-"));
        let frame = format!(r#"{{"type":"joinGroup","group":"{name}"}}"#);
        if sink.feed(Message::text(frame)).await.is_err() {
            break;
        }
        joined += 1;
        if joined.is_multiple_of(BATCH) && sink.flush().await.is_err() {
            break;
        }
    }
    let last = format!("{:x<chars$}", "last-");
    let barrier = format!(r#"{{"type":"joinGroup","group":"{last}","ackId":0}}"#);
    let _ = sink.send(Message::text(barrier)).await;
    seen.wait_for(1, deadline).await;
    let last_join = match (
        seen.acked.load(Ordering::Relaxed),
        seen.first_failure.lock().expect("not poisoned").clone(),
    ) {
        (1, _) => "accepted".to_owned(),
        (_, Some(failure)) => format!("refused ({failure})"),
        _ => "not acked".to_owned(),
    };
    let join_secs = started.elapsed().as_secs_f64();
    let rss_joined = target.rss_text();
    eprintln!("  {joined} joins written, emulator {rss_joined}");

    // Phase 2: fresh ack ids.
    let base = seen.acks();
    let started = Instant::now();
    let deadline = started + limit;
    let mut sent = 0u64;
    while sent < ack_ids && Instant::now() < deadline && seen.ended().is_none() {
        if !seen.take_window(&mut sink, deadline).await {
            break;
        }
        sent += 1;
        let frame = format!(
            r#"{{"type":"sendToGroup","group":"nobody","ackId":{sent},"dataType":"text","data":"x"}}"#
        );
        if sink.feed(Message::text(frame)).await.is_err() {
            break;
        }
        if sent.is_multiple_of(BATCH) && sink.flush().await.is_err() {
            break;
        }
        if sent.is_multiple_of(200_000) {
            eprintln!("  {sent} ackIds sent, emulator {}", target.rss_text());
        }
    }
    let _ = sink.flush().await;
    seen.wait_for(base + sent, deadline).await;
    let ack_secs = started.elapsed().as_secs_f64();
    let rss_acked = target.rss_text();
    let acks = seen.acks() - base;
    let failure = seen.first_failure.lock().expect("not poisoned").clone();
    let ended = seen.ended();
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    reader.abort();
    format!(
        "{joined} joins written in {join_secs:.1} s, one more join after them: {last_join}; \
         emulator: {rss_joined}; {sent} ackIds sent, {acks} acked in {ack_secs:.1} s ({} failed{}); \
         emulator: {rss_acked}; \
         socket ended by the emulator: {}",
        seen.failed.load(Ordering::Relaxed),
        failure.map_or(String::new(), |f| format!(", first: {f}")),
        ended.unwrap_or_else(|| "no".to_owned())
    )
}

/// Counts an `ack` frame as a success or a failure.
fn count_ack(seen: &Seen, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if frame.get("type").and_then(Value::as_str) != Some("ack") {
        return;
    }
    if frame.get("success").and_then(Value::as_bool) == Some(true) {
        seen.acked.fetch_add(1, Ordering::Relaxed);
        seen.window.add_permits(1);
        return;
    }
    seen.failed.fetch_add(1, Ordering::Relaxed);
    seen.window.add_permits(1);
    let mut first = seen.first_failure.lock().expect("not poisoned");
    if first.is_none() {
        let error = frame.get("error");
        let part = |name: &str| {
            error
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        *first = Some(format!("{}: {}", part("name"), part("message")));
    }
}
