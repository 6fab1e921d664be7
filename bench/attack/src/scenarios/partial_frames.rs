//! `partial-frames`: authenticated sockets that each send the header of a
//! 16 MiB binary frame and all of its payload but the last byte. Before the
//! fix only the message size was capped, at completion, so the emulator
//! buffered every partial frame.
//!
//! Knobs: `PARTIAL_SOCKETS` (40), `FRAME_BYTES` (16777216), `HOLD` (10 s
//! after the writes), `TIME_LIMIT` (60 s for the writes).
//!
//! Reports, per socket, how far the write got and how the emulator ended
//! the socket: a close frame (with its code), end of stream, reset, or not
//! at all.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout_at, Instant};

use super::Tally;
use crate::knobs::{knob, seconds};
use crate::target::{Target, JSON_PROTOCOL};
use crate::wire::{self, ServerFrames};

/// Payload bytes written per call.
const CHUNK: usize = 64 * 1024;

/// One attacking socket.
struct Socket {
    written: u64,
    write_error: Option<String>,
    /// How the emulator ended the socket, once it has.
    fate: Arc<Mutex<Option<String>>>,
    reader: JoinHandle<()>,
    /// Kept open until the end of the scenario.
    _writer: OwnedWriteHalf,
}

pub async fn run(target: &Target) -> String {
    let count: usize = knob("PARTIAL_SOCKETS", 40);
    let frame: u64 = knob("FRAME_BYTES", 16 * 1024 * 1024);
    let hold = seconds("HOLD", 10);
    let deadline = Instant::now() + seconds("TIME_LIMIT", 60);
    let token = target.client_token("attacker", &[]);
    let path = format!("{}?access_token={token}", target.client_path());
    eprintln!("partial-frames: {count} sockets × {frame}-byte frames less one byte");

    let mut set = JoinSet::new();
    for _ in 0..count {
        let (addr, path) = (target.addr, path.clone());
        set.spawn(async move { attack(addr, &path, frame, deadline).await });
    }
    let mut sockets = Vec::new();
    let mut refused = Tally::default();
    while let Some(done) = set.join_next().await {
        match done.expect("a socket panicked") {
            Ok(socket) => sockets.push(socket),
            Err(why) => refused.add(why),
        }
    }
    let rss_written = target.rss_text();
    eprintln!("  writes done, holding {hold:?}");
    sleep(hold).await;
    let rss_held = target.rss_text();

    let full = frame.saturating_sub(1);
    let mut writes = Tally::default();
    let mut fates = Tally::default();
    for socket in &sockets {
        writes.add(match &socket.write_error {
            None if socket.written == full => "all".to_owned(),
            None => format!("{} MiB (time limit)", socket.written >> 20),
            Some(e) => format!("{} MiB then {e}", socket.written >> 20),
        });
        let fate = socket.fate.lock().expect("not poisoned").clone();
        fates.add(fate.unwrap_or_else(|| "still open".to_owned()));
        socket.reader.abort();
    }
    format!(
        "{} of {count} upgraded (refused: {refused}); payload written: {writes}; \
         emulator after the writes: {rss_written}, after {}s: {rss_held}; \
         the emulator's end of the sockets: {fates}",
        sockets.len(),
        hold.as_secs()
    )
}

/// Upgrades one socket, then writes the frame but its last byte.
async fn attack(
    addr: std::net::SocketAddr,
    path: &str,
    frame: u64,
    deadline: Instant,
) -> Result<Socket, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{:?}", e.kind()))?;
    let (status, rest) = wire::upgrade(&mut stream, addr, path, JSON_PROTOCOL)
        .await
        .map_err(|e| format!("{:?}", e.kind()))?;
    if status != 101 {
        return Err(status.to_string());
    }
    let (read, mut write) = stream.into_split();
    let fate = Arc::new(Mutex::new(None));
    let reader = tokio::spawn(watch(ServerFrames::new(read, rest), fate.clone()));

    let zeros = vec![0u8; CHUNK];
    let mut written = 0u64;
    let write_error = async {
        write
            .write_all(&wire::client_frame_header(0x2, frame))
            .await?;
        let last = frame.saturating_sub(1);
        while written < last {
            let n = usize::try_from(last - written).map_or(CHUNK, |left| left.min(CHUNK));
            write.write_all(&zeros[..n]).await?;
            written += n as u64;
        }
        Ok::<_, std::io::Error>(())
    };
    let write_error = match timeout_at(deadline, write_error).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{:?}", e.kind())),
        Err(_) => None,
    };
    Ok(Socket {
        written,
        write_error,
        fate,
        reader,
        _writer: write,
    })
}

/// Reads what the emulator sends until it ends the socket; records how.
async fn watch(
    mut frames: ServerFrames<tokio::net::tcp::OwnedReadHalf>,
    fate: Arc<Mutex<Option<String>>>,
) {
    let started = Instant::now();
    let ended = loop {
        match frames.next().await {
            Ok(Some((wire::CLOSE, payload))) => {
                break format!("close {}", wire::close_code(&payload))
            }
            Ok(Some(_)) => continue,
            Ok(None) => break "end of stream, no close frame".to_owned(),
            Err(e) => break format!("{:?}, no close frame", e.kind()),
        }
    };
    let after = started.elapsed().as_secs();
    *fate.lock().expect("not poisoned") = Some(format!("{ended} after {after}s"));
}
