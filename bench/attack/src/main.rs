//! `attack`: one scenario of the attack reviews (issues 10 and 21) against
//! a running `webpubsub-emulator`, on 127.0.0.1 only. Every loop is bounded in count
//! and in time, so a run ends by itself whatever the emulator does.
//!
//! ```text
//! attack <scenario> --addr 127.0.0.1:PORT --key ACCESS_KEY [--hub NAME] [--pid EMULATOR_PID]
//!        [--upstream 127.0.0.1:PORT]
//! ```
//!
//! `--upstream`: where the attacker listens as the event handler of hub
//! `upstreamed` (the emulator must be started with
//! `--hub upstreamed=http://127.0.0.1:PORT/upstream`), for the scenarios
//! that need one (`invoke-payloads`, `mqtt-user-props-panic`).
//!
//! Progress goes to stderr; the last line on stdout is the scenario's notes
//! (`bench/attack.sh` puts it in its table). Counts and durations come from
//! environment variables, named in each scenario's file; the defaults are the
//! issue's figures. With `--pid`, notes include the emulator's memory and
//! socket count at the moments that matter.

mod emulator;
mod knobs;
mod mqtt;
mod scenarios;
mod target;
mod token;
mod upstream;
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;

use target::Target;

const USAGE: &str = "\
attack: one attack scenario against a webpubsub-emulator on 127.0.0.1

USAGE:
    attack <SCENARIO> --addr 127.0.0.1:PORT --key KEY [--hub NAME] [--pid PID]
           [--upstream 127.0.0.1:PORT]

SCENARIOS (issue 10):
    unauth-upgrades   recovery upgrades without a token, each for a new hub name
    idle-sockets      many idle authenticated WebSockets with one token
    partial-frames    16 MiB frames sent without their last byte
    non-reader        a client that never reads, sent 1 MiB messages over REST
    many-groups       one client joins many long groups, then uses many ackIds
    slow-headers      connections trickling header bytes, and silent ones
SCENARIOS (issue 21):
    mqtt-takeover          a client with no role resumes / takes over another user's MQTT session
    entra-default-secret   the local Entra ID's token for the public default secret, used on REST
    mqtt-user-props-panic  PUBLISHes of 33,000 user properties to a user event (needs --upstream)
    mqtt-server-subs       one client subscribes to many long $webpubsub/server/ topics
    mqtt-inflight          subscribers that never PUBACK, fed 1 MiB QoS 1 messages
    detached-sessions      detached MQTT sessions and parked reliable connections, then fed
    connect-user-props     MQTT 5 CONNECTs of 1 MiB of empty user properties
    invoke-payloads        1 MiB invocations an upstream never answers (needs --upstream)
    stream-group-names     group streams opened to 1 MB group names
    mqtt-keepalive-zero    silent MQTT clients with keep-alive 0
    probe                  is the emulator still serving? (a fresh WebSocket, /api/health)";

fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, Target), String> {
    let scenario = args.next().ok_or("name a scenario")?;
    let mut addr: Option<SocketAddr> = None;
    let mut key = None;
    let mut hub = "attack".to_owned();
    let mut pid = None;
    let mut upstream: Option<SocketAddr> = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                addr = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--addr {value}: write 127.0.0.1:PORT"))?,
                )
            }
            "--key" => key = Some(value),
            "--hub" => hub = value,
            "--pid" => {
                pid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--pid {value}: not a pid"))?,
                )
            }
            "--upstream" => {
                let parsed: SocketAddr = value
                    .parse()
                    .map_err(|_| format!("--upstream {value}: write 127.0.0.1:PORT"))?;
                if !parsed.ip().is_loopback() {
                    return Err(format!("--upstream {parsed}: listen on 127.0.0.1 only"));
                }
                upstream = Some(parsed);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: attack only 127.0.0.1"
        ));
    }
    let key = key.ok_or("--key is required (the emulator's --access-key)")?;
    Ok((
        scenario,
        Target {
            addr,
            key,
            hub,
            pid,
            upstream,
        },
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (scenario, target) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let notes = match scenario.as_str() {
        "unauth-upgrades" => scenarios::unauth_upgrades::run(&target).await,
        "idle-sockets" => scenarios::idle_sockets::run(&target).await,
        "partial-frames" => scenarios::partial_frames::run(&target).await,
        "non-reader" => scenarios::non_reader::run(&target).await,
        "many-groups" => scenarios::many_groups::run(&target).await,
        "slow-headers" => scenarios::slow_headers::run(&target).await,
        "mqtt-takeover" => scenarios::mqtt_takeover::run(&target).await,
        "entra-default-secret" => scenarios::entra_default_secret::run(&target).await,
        "mqtt-user-props-panic" => scenarios::mqtt_user_props_panic::run(&target).await,
        "mqtt-server-subs" => scenarios::mqtt_server_subs::run(&target).await,
        "mqtt-inflight" => scenarios::mqtt_inflight::run(&target).await,
        "detached-sessions" => scenarios::detached_sessions::run(&target).await,
        "connect-user-props" => scenarios::connect_user_props::run(&target).await,
        "invoke-payloads" => scenarios::invoke_payloads::run(&target).await,
        "stream-group-names" => scenarios::stream_group_names::run(&target).await,
        "mqtt-keepalive-zero" => scenarios::mqtt_keepalive_zero::run(&target).await,
        "probe" => {
            let (serving, notes) = scenarios::probe::run(&target).await;
            println!("{notes}");
            return if serving {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        other => {
            eprintln!("error: unknown scenario `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{notes}");
    ExitCode::SUCCESS
}
