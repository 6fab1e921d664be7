//! `mqtt-server-subs` (issue 21, 4): `$webpubsub/server/…` subscriptions
//! need no role and were not counted in the 100-group cap, so one client
//! could keep any number of them, each with a topic of up to 65,535 bytes.
//!
//! One 3.1.1 client without roles sends SUBSCRIBE packets of as many
//! distinct `$webpubsub/server/<n>-xxx…` filters of `TOPIC_BYTES` bytes as
//! fit in 1 MiB, until `SERVER_SUBS` filters, and counts the granted
//! codes; then a plain group subscription for comparison (no role:
//! refused 0x80).
//!
//! Knobs: `SERVER_SUBS` (23000: about 1.5 GB of topics), `TOPIC_BYTES`
//! (65000), `TIME_LIMIT` (60 s).

use std::time::Duration;

use tokio::time::Instant;

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::mqtt::{self, Client, Connect, Next, SUBACK, V4};
use crate::target::Target;

/// The largest SUBSCRIBE written (the emulator's packet limit is 1 MiB).
const MAX_SUBSCRIBE: usize = 1_040_000;

pub async fn run(target: &Target) -> String {
    let total: usize = knob("SERVER_SUBS", 23_000);
    let topic_bytes: usize = knob::<usize>("TOPIC_BYTES", 65_000).clamp(32, 65_535);
    let deadline = Instant::now() + seconds("TIME_LIMIT", 60);
    let per_packet = (MAX_SUBSCRIBE / (topic_bytes + 3)).max(1);
    let token = target.mqtt_token(None, &[]);
    let mut client = match Client::connect(target, &token, &Connect::new(V4, "subscriber")).await {
        Ok((client, ack)) if ack.connack_code() == Some(0) => client,
        Ok((_, ack)) => {
            return format!(
                "CONNECT refused: {:#04x}",
                ack.connack_code().unwrap_or(0xFF)
            )
        }
        Err(why) => return format!("could not connect: {why}"),
    };
    eprintln!("mqtt-server-subs: {total} filters of {topic_bytes} bytes, {per_packet} a packet");
    let started = Instant::now();
    let mut codes = Tally::default();
    let mut sent = 0usize;
    let mut id: u16 = 0;
    let mut ended = None;
    while sent < total && Instant::now() < deadline {
        let n = per_packet.min(total - sent);
        let filters: Vec<(String, u8)> = (sent..sent + n)
            .map(|i| {
                let head = format!("$webpubsub/server/{i}-");
                (format!("{head:x<topic_bytes$}"), 1)
            })
            .collect();
        id = id.wrapping_add(1).max(1);
        if let Err(why) = client.send(&mqtt::subscribe(V4, id, &filters)).await {
            ended = Some(why);
            break;
        }
        sent += n;
        match client.next(Duration::from_secs(10)).await {
            Next::Packet(p) if p.kind == SUBACK => {
                for code in p.suback_codes(V4) {
                    codes.add(match code {
                        0..=2 => "granted".to_owned(),
                        other => format!("{other:#04x}"),
                    });
                }
            }
            Next::Packet(p) => {
                ended = Some(format!("packet type {} instead of SUBACK", p.kind));
                break;
            }
            Next::Closed(how) => {
                ended = Some(format!("socket ended ({how})"));
                break;
            }
            Next::Timeout => {
                ended = Some("no SUBACK within 10 s".to_owned());
                break;
            }
        }
        if (sent / per_packet).is_multiple_of(200) {
            eprintln!("  {sent} filters sent, emulator {}", target.rss_text());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rss = target.rss_text();
    // A plain group, for comparison.
    let group = if ended.is_none() {
        let _ = client
            .send(&mqtt::subscribe(V4, 9999, &[("plaingroup", 1)]))
            .await;
        match client.next(Duration::from_secs(5)).await {
            Next::Packet(p) if p.kind == SUBACK => p
                .suback_codes(V4)
                .first()
                .map_or("empty SUBACK".to_owned(), |c| format!("{c:#04x}")),
            other => format!("{other:?}"),
        }
    } else {
        "not tried".to_owned()
    };
    client.close().await;
    format!(
        "{sent} `$webpubsub/server/…` filters of {topic_bytes} bytes sent in {secs:.1} s by a client \
         with no role, SUBACK codes: {codes}; emulator: {rss}; a plain group subscription of the \
         same client: {group}{}",
        ended.map_or(String::new(), |why| format!("; the attack stopped: {why}"))
    )
}
