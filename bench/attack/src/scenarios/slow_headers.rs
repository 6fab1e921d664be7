//! `slow-headers`: connections that trickle a request head one byte at a
//! time and never finish it, beside connections that say nothing at all.
//! Before the fix the emulator had no header-read or idle timeout and no
//! connection limit, so they stayed, and with 1,024 file descriptors it
//! stopped answering.
//!
//! Knobs: `SLOW` (1000), `SILENT` (1000), `TRICKLE_MS` (1000 between two
//! bytes), `CHECKS` ("30,70": seconds after all are open at which to count).
//!
//! At each check: how many of each kind the emulator has not cut, how many
//! sockets it holds, and whether a fresh request is answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{interval, sleep_until, timeout, timeout_at, Instant};

use super::probe;
use crate::knobs::knob;
use crate::target::Target;

/// The head the slow connections send, then `a`s forever.
const HEAD: &[u8] =
    b"GET /api/health?api-version=2024-12-01 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Connections of one kind the emulator has not cut yet.
#[derive(Debug, Default)]
struct Alive {
    slow: AtomicU64,
    silent: AtomicU64,
    refused: AtomicU64,
}

pub async fn run(target: &Target) -> String {
    let slow: u64 = knob("SLOW", 1000);
    let silent: u64 = knob("SILENT", 1000);
    let trickle = Duration::from_millis(knob("TRICKLE_MS", 1000));
    let checks: Vec<u64> = knob::<String>("CHECKS", "30,70".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let last = checks.iter().copied().max().unwrap_or(0);
    eprintln!("slow-headers: {slow} trickling, {silent} silent; checks at {checks:?} s");

    let alive = Arc::new(Alive::default());
    // Every connection is dropped at `end` at the latest.
    let end = Instant::now() + Duration::from_secs(last + 60);
    let parallel = Arc::new(Semaphore::new(100));
    let mut set = JoinSet::new();
    // Interleaved, so that a limit hits both kinds alike.
    let kinds = (0..slow.max(silent))
        .flat_map(|i| [(i < slow).then_some(true), (i < silent).then_some(false)]);
    for is_slow in kinds.flatten() {
        let permit = parallel
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let (addr, alive) = (target.addr, alive.clone());
        set.spawn(async move {
            let stream = timeout(Duration::from_secs(3), TcpStream::connect(addr)).await;
            drop(permit);
            let Ok(Ok(stream)) = stream else {
                alive.refused.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let counter = if is_slow { &alive.slow } else { &alive.silent };
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = timeout_at(end, hold(stream, is_slow.then_some(trickle))).await;
            counter.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Wait until every connect has been tried.
    let _ = parallel.acquire_many(100).await;
    let opened = Instant::now();
    let mut notes = vec![format!(
        "opened {} slow and {} silent ({} not accepted within 3 s), emulator sockets {}",
        alive.slow.load(Ordering::Relaxed),
        alive.silent.load(Ordering::Relaxed),
        alive.refused.load(Ordering::Relaxed),
        target.sockets_text()
    )];
    for at in checks {
        sleep_until(opened + Duration::from_secs(at)).await;
        let held = format!(
            "after {at}s: {} slow and {} silent not cut, emulator sockets {}, {}",
            alive.slow.load(Ordering::Relaxed),
            alive.silent.load(Ordering::Relaxed),
            target.sockets_text(),
            target.rss_text()
        );
        let fresh = probe::health(target).await;
        eprintln!("  {held}; fresh request: {fresh}");
        notes.push(format!("{held}, a fresh request: {fresh}"));
    }
    set.abort_all();
    notes.join("; ")
}

/// Holds a connection until the emulator ends it: writes one more byte of
/// [`HEAD`] every `trickle`, or nothing when `trickle` is `None`.
async fn hold(stream: TcpStream, trickle: Option<Duration>) {
    let (mut read, mut write) = stream.into_split();
    let mut buf = [0u8; 1024];
    let Some(every) = trickle else {
        // Anything read or the end of the stream: the emulator answered or cut.
        let _ = read.read(&mut buf).await;
        return;
    };
    let mut tick = interval(every);
    let mut sent = 0usize;
    loop {
        tokio::select! {
            _ = read.read(&mut buf) => return,
            _ = tick.tick() => {
                let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                if write.write_all(&[byte]).await.is_err() {
                    return;
                }
                sent += 1;
            }
        }
    }
}
