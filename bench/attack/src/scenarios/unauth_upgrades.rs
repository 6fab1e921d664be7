//! `unauth-upgrades`: WebSocket recovery upgrades
//! (`?awps_connection_id=x&awps_reconnection_token=y`) without a token, each
//! for a hub name never used before. Before the fix the emulator created a
//! hub entry for each one and never freed it.
//!
//! Knobs: `UPGRADES` (200000), `UPGRADE_WORKERS` (32 connections at a time),
//! `TIME_LIMIT` (120 s). A 101 answer switches protocols, so each upgrade
//! needs its own connection: a worker reads the answer's head and resets the
//! connection (no TIME_WAIT, so 200,000 do not run out of ports).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{Target, RELIABLE_PROTOCOL};
use crate::wire;

pub async fn run(target: &Target) -> String {
    let total: u64 = knob("UPGRADES", 200_000);
    let workers: usize = knob("UPGRADE_WORKERS", 32);
    let started = Instant::now();
    let deadline = started + seconds("TIME_LIMIT", 120);
    let next = Arc::new(AtomicU64::new(0));
    // Hub names unique to this run: `u<pid>n<i>`.
    let run = std::process::id();
    eprintln!("unauth-upgrades: {total} upgrades over {workers} workers");

    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (next, addr) = (next.clone(), target.addr);
        set.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    return tally;
                }
                let path = format!(
                    "/client/hubs/u{run}n{i}?awps_connection_id=x&awps_reconnection_token=y"
                );
                let outcome = match timeout(Duration::from_secs(5), attempt(addr, &path)).await {
                    Ok(Ok(status)) => status.to_string(),
                    Ok(Err(e)) => format!("{:?}", e.kind()),
                    Err(_) => "timeout".to_owned(),
                };
                tally.add(outcome);
                if i % 20_000 == 0 {
                    eprintln!("  {i} sent");
                }
            }
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = set.join_next().await {
        tally.merge(done.expect("a worker panicked"));
    }
    let secs = started.elapsed().as_secs_f64();
    format!(
        "{} upgrades in {secs:.0} s ({:.0}/s): {tally}; emulator right after: {}",
        tally.total(),
        tally.total() as f64 / secs,
        target.rss_text()
    )
}

/// One upgrade: the status of the answer, then a reset.
async fn attempt(addr: std::net::SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (status, _) = wire::upgrade(&mut stream, addr, path, RELIABLE_PROTOCOL).await?;
    stream.set_zero_linger()?;
    Ok(status)
}
