//! `mqtt-inflight` (issue 21, 5): QoS 1 messages sent to an MQTT client
//! and not yet acknowledged (PUBACK) are kept outside the connection's
//! 16 MiB byte budget: up to 1,024 of them, of up to 1 MiB each, and
//! still for the session expiry (30 s) once the client has left.
//!
//! `INFLIGHT_CLIENTS` 3.1.1 clients (Clean Session 0, role
//! joinLeaveGroup) each subscribe at QoS 1 to a group of their own
//! (`inflight0`, …), read every PUBLISH and never acknowledge one; REST
//! sends `INFLIGHT_MESSAGES` messages of `MESSAGE_BYTES` to each group.
//! Then the clients leave (their sessions detach) and the emulator's
//! memory is read `HOLD` s later and again after the session expiry
//! (`EXPIRY_WAIT` s after they left).
//!
//! Knobs: `INFLIGHT_CLIENTS` (2), `INFLIGHT_MESSAGES` (1024),
//! `MESSAGE_BYTES` (1048576), `HOLD` (5 s), `EXPIRY_WAIT` (35 s),
//! `TIME_LIMIT` (60 s for the sends).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{sleep, Instant};

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::mqtt::{self, Client, Connect, Next, DISCONNECT, PUBLISH, SUBACK, V4};
use crate::target::Target;

/// What one subscriber's reader saw.
#[derive(Debug, Default)]
struct Seen {
    publishes: AtomicU64,
    ended: Mutex<Option<String>>,
}

pub async fn run(target: &Target) -> String {
    let clients: usize = knob("INFLIGHT_CLIENTS", 2);
    let messages: usize = knob("INFLIGHT_MESSAGES", 1024);
    let size: usize = knob("MESSAGE_BYTES", 1024 * 1024);
    let hold = seconds("HOLD", 5);
    let expiry_wait = seconds("EXPIRY_WAIT", 35);
    let deadline = Instant::now() + seconds("TIME_LIMIT", 60);

    let token = target.mqtt_token(None, &["webpubsub.joinLeaveGroup"]);
    let mut readers = Vec::new();
    let mut seen_all = Vec::new();
    for i in 0..clients {
        let id = format!("inflight{i}");
        let mut c = Connect::new(V4, &id);
        c.clean = false;
        let mut client = match Client::connect(target, &token, &c).await {
            Ok((client, ack)) if ack.connack_code() == Some(0) => client,
            Ok((_, ack)) => {
                return format!(
                    "CONNECT refused: {:#04x}",
                    ack.connack_code().unwrap_or(0xFF)
                )
            }
            Err(why) => return format!("could not connect: {why}"),
        };
        let _ = client
            .send(&mqtt::subscribe(V4, 1, &[(id.as_str(), 1)]))
            .await;
        match client.next(Duration::from_secs(5)).await {
            Next::Packet(p) if p.kind == SUBACK => {}
            other => return format!("no SUBACK for {id}: {other:?}"),
        }
        let seen = Arc::new(Seen::default());
        seen_all.push(seen.clone());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = client.next(Duration::from_secs(3600)) => next,
                    _ = &mut stop_rx => break,
                };
                match next {
                    // Read, never acknowledged.
                    Next::Packet(p) if p.kind == PUBLISH => {
                        seen.publishes.fetch_add(1, Ordering::Relaxed);
                    }
                    Next::Packet(p) if p.kind == DISCONNECT => {
                        *seen.ended.lock().expect("not poisoned") =
                            Some(format!("DISCONNECT {:#04x}", p.reason_code()));
                    }
                    Next::Packet(_) => {}
                    Next::Closed(how) => {
                        let mut ended = seen.ended.lock().expect("not poisoned");
                        if ended.is_none() {
                            *ended = Some(how);
                        }
                        break;
                    }
                    Next::Timeout => break,
                }
            }
            client.close().await;
        });
        readers.push((stop_tx, reader));
    }
    eprintln!(
        "mqtt-inflight: {clients} subscribers, {messages} × {size} bytes each, never PUBACKed"
    );
    let body = vec![b'a'; size];
    let mut answers = Tally::default();
    let started = Instant::now();
    'sends: for n in 0..messages {
        for i in 0..clients {
            if Instant::now() >= deadline {
                answers.add("not sent (time limit)");
                break 'sends;
            }
            answers.add(
                target
                    .rest_send(&target.group_send_path(&format!("inflight{i}")), &body)
                    .await,
            );
        }
        if n % 128 == 0 {
            eprintln!("  {n} rounds sent, emulator {}", target.rss_text());
        }
    }
    // Until every reader got its messages (or its socket ended).
    let wait_until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < wait_until
        && seen_all.iter().any(|s| {
            s.publishes.load(Ordering::Relaxed) < messages as u64
                && s.ended.lock().expect("not poisoned").is_none()
        })
    {
        sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rss_full = target.rss_text();
    let received: Vec<String> = seen_all
        .iter()
        .map(|s| {
            let ended = s.ended.lock().expect("not poisoned").clone();
            format!(
                "{}{}",
                s.publishes.load(Ordering::Relaxed),
                ended.map_or(String::new(), |e| format!(" then cut ({e})"))
            )
        })
        .collect();
    for (stop, reader) in readers {
        let _ = stop.send(());
        let _ = reader.await;
    }
    let ids: Vec<String> = (0..clients).map(|i| format!("inflight{i}")).collect();
    let left = Instant::now();
    sleep(hold).await;
    let rss_hold = target.rss_text();
    let (held_hold, _) = target.count_existing(&ids).await;
    sleep(expiry_wait.saturating_sub(left.elapsed())).await;
    let rss_expired = target.rss_text();
    let (held_expired, _) = target.count_existing(&ids).await;
    format!(
        "REST sends ({} MiB in {secs:.0} s): {answers}; unacknowledged PUBLISHes received per client: \
         {}; emulator with them in flight: {rss_full}; the clients left: {}s later {held_hold} of \
         {clients} sessions still held (HEAD 200), emulator {rss_hold}; {}s later (past the 30 s \
         session expiry) {held_expired} held, emulator {rss_expired} (freed memory is not always \
         given back to the system)",
        (answers.count("202") * size as u64) >> 20,
        received.join(", "),
        hold.as_secs(),
        expiry_wait.as_secs()
    )
}
