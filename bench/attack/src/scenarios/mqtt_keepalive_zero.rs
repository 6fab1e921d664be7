//! `mqtt-keepalive-zero` (issue 21, 8): an MQTT client whose CONNECT says
//! keep-alive 0 ("no keep-alive") was never timed out: a silent one stayed
//! connected for good, where JSON clients are dropped after 60 s of
//! silence.
//!
//! `KEEPALIVE_CLIENTS` 3.1.1 clients (token without `sub`) connect with
//! keep-alive 0, and one with keep-alive 2 for comparison (the emulator
//! cuts it after 1.5 × 2 s); then nothing is read or sent (WebSocket pings
//! go unanswered) for `KEEPALIVE_HOLD` s, just past the emulator's 60 s of
//! client silence. Then: how many sockets the emulator ended (close,
//! reset, DISCONNECT) and how many connections it still holds (`HEAD
//! …/connections/<id>`).
//!
//! Knobs: `KEEPALIVE_CLIENTS` (50), `KEEPALIVE_HOLD` (70 s; this scenario
//! takes that long).

use std::time::Duration;

use tokio::time::{sleep, Instant};

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::mqtt::{Client, Connect, Next, V4};
use crate::target::Target;

pub async fn run(target: &Target) -> String {
    let count: usize = knob("KEEPALIVE_CLIENTS", 50);
    let hold = seconds("KEEPALIVE_HOLD", 70);
    let token = target.mqtt_token(None, &[]);
    let mut clients = Vec::new();
    let mut refused = Tally::default();
    for i in 0..count {
        let id = format!("silent{i}");
        let mut c = Connect::new(V4, &id);
        c.keep_alive = 0;
        match Client::connect(target, &token, &c).await {
            Ok((client, ack)) if ack.connack_code() == Some(0) => clients.push((id, client)),
            Ok((_, ack)) => refused.add(format!(
                "CONNACK {:#04x}",
                ack.connack_code().unwrap_or(0xFF)
            )),
            Err(why) => refused.add(why),
        }
    }
    let mut c = Connect::new(V4, "control");
    c.keep_alive = 2;
    let control = match Client::connect(target, &token, &c).await {
        Ok((client, ack)) if ack.connack_code() == Some(0) => Some(client),
        _ => None,
    };
    let started = Instant::now();
    eprintln!(
        "mqtt-keepalive-zero: {} silent clients with keep-alive 0, holding {} s",
        clients.len(),
        hold.as_secs()
    );
    // The control: when does the emulator end it?
    let control = match control {
        Some(mut client) => {
            let ended = loop {
                match client.next(hold).await {
                    Next::Packet(_) => {}
                    Next::Closed(how) => break Some(how),
                    Next::Timeout => break None,
                }
            };
            match ended {
                Some(how) => format!(
                    "ended after {:.1} s ({how})",
                    started.elapsed().as_secs_f64()
                ),
                None => format!("still open after {} s", hold.as_secs()),
            }
        }
        None => "could not connect".to_owned(),
    };
    sleep(hold.saturating_sub(started.elapsed())).await;
    let ids: Vec<String> = clients.iter().map(|(id, _)| id.clone()).collect();
    let (held, _) = target.count_existing(&ids).await;
    let mut sockets = Tally::default();
    for (_, mut client) in clients {
        sockets.add(match client.next(Duration::from_millis(200)).await {
            Next::Packet(p) => format!("packet type {}", p.kind),
            Next::Closed(how) => format!("ended ({how})"),
            Next::Timeout => "open".to_owned(),
        });
        client.close().await;
    }
    format!(
        "{} silent clients with keep-alive 0{}: after {} s, {held} still held by the emulator \
         (HEAD 200), sockets: {sockets}; the keep-alive 2 client for comparison: {control}",
        ids.len(),
        if refused.total() > 0 {
            format!(" (refused: {refused})")
        } else {
            String::new()
        },
        hold.as_secs()
    )
}
