//! `connect-user-props` (issue 21, 7): MQTT 5 user properties cost far
//! more in memory than on the wire: a CONNECT of about 1 MiB of empty user
//! properties (5 bytes each) is held, parsed, for the connection's life.
//!
//! `PROP_CONNECTIONS` 5.0 clients (token without `sub`, no role) each send
//! a CONNECT of `CONNECT_BYTES` holding only empty user properties, stay
//! connected `HOLD` s, then close.
//!
//! Knobs: `PROP_CONNECTIONS` (40), `CONNECT_BYTES` (1048000), `HOLD` (5 s).

use std::time::Duration;

use tokio::time::sleep;

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::mqtt::{Client, Connect, V5};
use crate::target::Target;

pub async fn run(target: &Target) -> String {
    let connections: usize = knob("PROP_CONNECTIONS", 40);
    let bytes: usize = knob("CONNECT_BYTES", 1_048_000);
    let hold = seconds("HOLD", 5);
    // Everything but the properties takes under 40 bytes.
    let count = bytes.saturating_sub(40) / 5;
    let mut properties = Vec::with_capacity(count * 5);
    for _ in 0..count {
        properties.extend_from_slice(&[0x26, 0, 0, 0, 0]);
    }
    let token = target.mqtt_token(None, &[]);
    let before = target.rss();
    let mut outcomes = Tally::default();
    let mut clients = Vec::new();
    let mut packet_len = 0;
    for i in 0..connections {
        let id = format!("props{i}");
        let mut c = Connect::new(V5, &id);
        c.properties = properties.clone();
        packet_len = c.encode().len();
        match Client::connect(target, &token, &c).await {
            Ok((client, ack)) => {
                outcomes.add(format!(
                    "CONNACK {:#04x}",
                    ack.connack_code().unwrap_or(0xFF)
                ));
                clients.push(client);
            }
            Err(why) => outcomes.add(why),
        }
        if i % 10 == 0 {
            eprintln!(
                "connect-user-props: {i} connected, emulator {}",
                target.rss_text()
            );
        }
    }
    let rss_open = target.rss();
    sleep(hold).await;
    let rss_held = target.rss_text();
    let accepted = outcomes.count("CONNACK 0x00");
    for client in clients {
        client.close().await;
    }
    sleep(Duration::from_secs(2)).await;
    let per = match (before, rss_open) {
        (Some(b), Some(o)) if accepted > 0 => format!("{:.1} MiB", (o - b) / accepted as f64),
        _ => "?".to_owned(),
    };
    format!(
        "{connections} CONNECTs of {count} empty user properties ({packet_len} bytes each): {outcomes}; \
         emulator with them open: {}, {}s later {rss_held} ({per} per accepted connection); 2 s \
         after they closed: {}",
        rss_open.map_or("?".to_owned(), |m| format!("{m:.0} MiB")),
        hold.as_secs(),
        target.rss_text()
    )
}
