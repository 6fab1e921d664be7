//! Counts and durations from the environment, with the figures as
//! defaults (`SOCKETS=200 bash bench/attack.sh idle-sockets` for a quick run).

use std::str::FromStr;
use std::time::Duration;

/// The environment variable `name` parsed as a `T`, or `default`.
pub fn knob<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| {
            eprintln!("{name}={value} is not valid; using the default");
            default
        }),
        Err(_) => default,
    }
}

/// A knob in whole seconds.
pub fn seconds(name: &str, default: u64) -> Duration {
    Duration::from_secs(knob(name, default))
}
