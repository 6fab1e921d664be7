//! `fanout-floor`: the cheapest broadcast server we can write with tokio and
//! tokio-tungstenite, the yardstick the other peers of bench/fanout are
//! divided by.
//!
//! One port (`PORT`, default 8080, on 127.0.0.1) serves both:
//!
//! * a WebSocket upgrade (`GET`, any path): a subscriber. It is sent every
//!   broadcast as a text frame; what it sends is read and thrown away.
//! * `POST /broadcast` (HTTP/1.1, keep-alive, parsed with httparse): the body
//!   goes to every subscriber; the answer is `200` with an empty body.
//!
//! Per subscriber: an unbounded channel and a writer task that feeds every
//! frame already queued into the sink and flushes once, so a burst costs one
//! write. A broadcast pushes a clone of one reference-counted frame into each
//! channel. Read buffers are 4 KiB (tungstenite's 128 KiB default would put
//! some 140 KiB per idle subscriber in RSS). The runtime is tokio's default
//! multi-thread one: as many workers as CPUs it may use (one under taskset).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Subscribers = Arc<Mutex<HashMap<u64, UnboundedSender<Message>>>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn broadcast(subs: &Subscribers, text: Utf8Bytes) {
    let frame = Message::Text(text);
    for queue in subs.lock().expect("not poisoned").values() {
        let _ = queue.send(frame.clone());
    }
}

/// Writes what is queued for one subscriber: everything waiting, then one flush.
async fn writer<S>(mut sink: S, mut queue: UnboundedReceiver<Message>)
where
    S: futures_util::Sink<Message> + Unpin,
{
    while let Some(frame) = queue.recv().await {
        let mut batch = Some(frame);
        while let Some(frame) = batch.take() {
            if sink.feed(frame).await.is_err() {
                return;
            }
            batch = queue.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

async fn subscriber(subs: Subscribers, tcp: TcpStream) {
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else { return };
    let (sink, mut source) = ws.split();
    let (tx, rx) = unbounded_channel();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    subs.lock().expect("not poisoned").insert(id, tx);
    let write_task = tokio::spawn(writer(sink, rx));
    // Drain the read side until the client leaves (tungstenite queues the pongs).
    while let Some(Ok(_)) = source.next().await {}
    subs.lock().expect("not poisoned").remove(&id);
    write_task.abort();
}

/// Reads more bytes into `buf`; false at end of stream or on an error.
async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// HTTP/1.1 requests on one keep-alive connection, one after the other.
async fn http(subs: Subscribers, mut tcp: TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (head, body_len, is_broadcast) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(head)) => {
                    let body_len = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (head, body_len, req.method == Some("POST") && req.path == Some("/broadcast"));
                }
                Ok(httparse::Status::Partial) if fill(&mut tcp, &mut buf).await => {}
                _ => return,
            }
        };
        while buf.len() < head + body_len {
            if !fill(&mut tcp, &mut buf).await {
                return;
            }
        }
        let answer = if !is_broadcast {
            NOT_FOUND
        } else if let Ok(text) = Utf8Bytes::try_from(buf[head..head + body_len].to_vec()) {
            broadcast(&subs, text);
            OK
        } else {
            BAD
        };
        if tcp.write_all(answer).await.is_err() {
            return;
        }
        buf.drain(..head + body_len);
    }
}

/// A new connection: `GET` is a WebSocket upgrade, anything else plain HTTP.
async fn route(subs: Subscribers, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let mut start = [0u8; 4];
    let n = loop {
        match tcp.peek(&mut start).await {
            Ok(0) | Err(_) => return,
            // peek returns what has arrived; wait for 4 bytes unless they already differ from "GET ".
            Ok(n) if n == 4 || start[..n] != b"GET "[..n] => break n,
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    if start[..n] == *b"GET " {
        subscriber(subs, tcp).await;
    } else {
        http(subs, tcp).await;
    }
}

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(8080);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1:PORT");
    eprintln!("fanout-floor on 127.0.0.1:{port}");
    let subs: Subscribers = Arc::default();
    loop {
        if let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(route(subs.clone(), tcp));
        }
    }
}
