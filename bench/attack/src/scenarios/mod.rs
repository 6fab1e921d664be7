//! One file per scenario (issues 10 and 21); each `run` returns its notes.

pub mod connect_user_props;
pub mod detached_sessions;
pub mod entra_default_secret;
pub mod idle_sockets;
pub mod invoke_payloads;
pub mod many_groups;
pub mod mqtt_inflight;
pub mod mqtt_keepalive_zero;
pub mod mqtt_server_subs;
pub mod mqtt_takeover;
pub mod mqtt_user_props_panic;
pub mod non_reader;
pub mod partial_frames;
pub mod probe;
pub mod slow_headers;
pub mod stream_group_names;
pub mod unauth_upgrades;

use std::collections::BTreeMap;
use std::fmt;

/// How many times each outcome happened (`101×199998, timeout×2`).
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, outcome: impl Into<String>) {
        *self.0.entry(outcome.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        for (outcome, n) in other.0 {
            *self.0.entry(outcome).or_default() += n;
        }
    }

    pub fn count(&self, outcome: &str) -> u64 {
        self.0.get(outcome).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        f.write_str(&parts.join(", "))
    }
}
