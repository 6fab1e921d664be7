//! The attacker's own event handler, on 127.0.0.1 (`--upstream`): a plain
//! HTTP/1.1 server that passes the abuse-protection `OPTIONS`, answers
//! every system event (`connect`, `connected`, `disconnected`) with `204`
//! and, when told to hold them, never answers a user event (it reads the
//! request and holds the connection until [`Upstream::stop`] or its time
//! limit; else it answers `204` too). It counts what it got, per event
//! type and connection id.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The largest request head read.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
pub struct Upstream {
    /// `ce-type` → how many requests.
    events: Mutex<HashMap<String, u64>>,
    /// `(ce-type, ce-connectionId)` → how many.
    per_connection: Mutex<HashMap<(String, String), u64>>,
    /// User events held unanswered right now.
    pub held: AtomicU64,
    /// User-event body bytes received.
    pub user_bytes: AtomicU64,
    /// Whether user events are held unanswered.
    hold_user_events: bool,
    stop: watch::Sender<bool>,
}

impl Upstream {
    /// Listens on `addr` for at most `limit`; user events are held
    /// unanswered when `hold_user_events`.
    pub async fn start(
        addr: SocketAddr,
        limit: Duration,
        hold_user_events: bool,
    ) -> io::Result<Arc<Self>> {
        let listener = TcpListener::bind(addr).await?;
        let upstream = Arc::new(Self {
            events: Mutex::default(),
            per_connection: Mutex::default(),
            held: AtomicU64::new(0),
            user_bytes: AtomicU64::new(0),
            hold_user_events,
            stop: watch::channel(false).0,
        });
        let server = upstream.clone();
        tokio::spawn(async move {
            let mut stop = server.stop.subscribe();
            let deadline = tokio::time::sleep(limit);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            tokio::spawn(serve(server.clone(), stream));
                        }
                    }
                    _ = stop.wait_for(|s| *s) => break,
                    () = &mut deadline => {
                        server.stop.send_replace(true);
                        break;
                    }
                }
            }
        });
        Ok(upstream)
    }

    /// Ends every held request (their connections close) and stops listening.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Requests of `ce-type` starting with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> u64 {
        self.events
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests of `kind` for connection `id`.
    pub fn count_for(&self, kind: &str, id: &str) -> u64 {
        self.per_connection
            .lock()
            .expect("not poisoned")
            .get(&(kind.to_owned(), id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn note(&self, kind: &str, id: &str) {
        *self
            .events
            .lock()
            .expect("not poisoned")
            .entry(kind.to_owned())
            .or_default() += 1;
        *self
            .per_connection
            .lock()
            .expect("not poisoned")
            .entry((kind.to_owned(), id.to_owned()))
            .or_default() += 1;
    }
}

/// One connection from the emulator: requests one after the other.
async fn serve(upstream: Arc<Upstream>, mut stream: TcpStream) {
    let mut stop = upstream.stop.subscribe();
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = tokio::select! {
            head = read_head(&mut stream, &mut buf) => head,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(head) = head else { return };
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let kind = header("ce-type").unwrap_or_default();
        let id = header("ce-connectionid").unwrap_or_default();
        // The body: drained, not kept.
        let mut left = length.saturating_sub(buf.len());
        buf.drain(..length.min(buf.len()));
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = tokio::select! {
                n = stream.read(&mut chunk) => n,
                _ = stop.wait_for(|s| *s) => return,
            };
            match n {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
        if head.starts_with("OPTIONS") {
            let answer =
                "HTTP/1.1 200 OK\r\nWebHook-Allowed-Origin: *\r\nContent-Length: 0\r\n\r\n";
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        upstream.note(&kind, &id);
        if kind.starts_with("azure.webpubsub.user.") {
            upstream
                .user_bytes
                .fetch_add(length as u64, Ordering::Relaxed);
        }
        if kind.starts_with("azure.webpubsub.user.") && upstream.hold_user_events {
            upstream.held.fetch_add(1, Ordering::Relaxed);
            // Never answered: held until the attacker stops, or the
            // emulator gives up and closes the connection.
            let mut probe = [0u8; 1];
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {}
                _ = stream.read(&mut probe) => {}
            }
            upstream.held.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let answer = "HTTP/1.1 204 No Content\r\n\r\n";
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads a request head into a string; what was read past it stays in `buf`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
