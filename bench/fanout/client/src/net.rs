//! The N clients: opening one (plain, JSON or MQTT) until it is ready, and
//! reading what it receives into the board.

use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::board::{bump, Board};
use crate::wire;
use crate::{Mode, Opts};

pub type Ws = WebSocketStream<TcpStream>;

/// Tries per client before it counts as failed, and the pause after the k-th failure.
const TRIES: u64 = 5;
const BACKOFF: Duration = Duration::from_millis(250);

/// A WebSocket to `url` with small buffers (many clients share one process).
pub async fn open_ws(url: &str, subprotocol: Option<&str>) -> Result<Ws, String> {
    let mut request = url.into_client_request().map_err(|e| format!("{url}: {e}"))?;
    if let Some(p) = subprotocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).map_err(|e| e.to_string())?);
    }
    let authority = request.uri().authority().map(|a| a.to_string()).ok_or("URL without host")?;
    let tcp = TcpStream::connect(&authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Reads MQTT packets (kept whole across WebSocket frames in `pending`)
/// until one of `kind` arrives; returns its body.
pub async fn mqtt_wait_for(ws: &mut Ws, pending: &mut Vec<u8>, kind: u8) -> Result<Vec<u8>, String> {
    loop {
        while let Some((p, used)) = wire::mqtt_split(pending) {
            let found = (p.kind == kind).then(|| p.body.to_vec());
            pending.drain(..used);
            if let Some(body) = found {
                return Ok(body);
            }
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => pending.extend_from_slice(&b),
            Some(Ok(Message::Close(c))) => return Err(format!("closed while waiting for MQTT packet {kind}: {c:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("waiting for MQTT packet {kind}: {e}")),
            None => return Err(format!("closed while waiting for MQTT packet {kind}")),
        }
    }
}

/// Client `i` up to ready: the handshake (raw), the `connected` system
/// frame (JSON), CONNACK then SUBACK (MQTT).
async fn open_client(o: &Opts, i: usize, pending: &mut Vec<u8>) -> Result<Ws, String> {
    let url = match &o.client_key {
        Some(key) => format!("{}?access_token={}", o.url, wire::client_token(key, &o.url, &format!("u{i}"), &o.roles)),
        None => o.url.clone(),
    };
    match o.mode {
        Mode::Raw => open_ws(&url, None).await,
        Mode::Json => {
            let mut ws = open_ws(&url, Some("json.webpubsub.azure.v1")).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let t = t.as_str();
                        if t.contains(r#""type":"system""#) && t.contains(r#""event":"connected""#) {
                            return Ok(ws);
                        }
                    }
                    Some(Ok(Message::Close(c))) => return Err(format!("closed before `connected`: {c:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("before `connected`: {e}")),
                    None => return Err("closed before `connected`".into()),
                }
            }
        }
        Mode::Mqtt => {
            let mut ws = open_ws(&url, Some("mqtt")).await?;
            let id = format!("fo{}c{i}", o.run_tag);
            ws.send(Message::Binary(wire::mqtt_connect(&id).into())).await.map_err(|e| e.to_string())?;
            let connack = mqtt_wait_for(&mut ws, pending, 2).await?;
            if connack.get(1) != Some(&0) {
                return Err(format!("CONNACK return code {:?}", connack.get(1)));
            }
            ws.send(Message::Binary(wire::mqtt_subscribe(&o.topic).into())).await.map_err(|e| e.to_string())?;
            let suback = mqtt_wait_for(&mut ws, pending, 9).await?;
            match suback.get(2) {
                Some(&granted) if granted < 0x80 => Ok(ws),
                other => Err(format!("SUBACK refused: {other:?}")),
            }
        }
    }
}

/// One client for the whole run: connect (holding one of the connect
/// permits, with retries), then feed everything it receives to the board.
pub async fn client(i: usize, o: Rc<Opts>, board: Rc<Board>, permits: Rc<Semaphore>) {
    let mut pending = Vec::new();
    let mut ws = {
        let _permit = permits.acquire().await.expect("never closed");
        let mut tries = 0;
        loop {
            tries += 1;
            pending.clear();
            match open_client(&o, i, &mut pending).await {
                Ok(ws) => break ws,
                Err(e) if tries >= TRIES => {
                    board.note_error(format!("client {i}: {e}"));
                    bump(&board.gave_up);
                    board.settled.notify_one();
                    return;
                }
                Err(_) => tokio::time::sleep(BACKOFF * tries as u32).await,
            }
        }
    };
    bump(&board.ready);
    if board.ready.get() + board.gave_up.get() == board.n {
        board.settled.notify_one();
    }

    let mut last_seq = vec![0u64; o.triggerers];
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(t)) => match o.mode {
                Mode::Json => match wire::json_message_data(t.as_bytes()) {
                    Some(data) => board.receive(data, &mut last_seq),
                    None if t.as_str().contains(r#""type":"system""#) => {}
                    None => bump(&board.stray),
                },
                _ => board.receive(t.as_bytes(), &mut last_seq),
            },
            Ok(Message::Binary(b)) if o.mode == Mode::Mqtt => {
                pending.extend_from_slice(&b);
                let mut used = 0;
                while let Some((p, len)) = wire::mqtt_split(&pending[used..]) {
                    match (p.kind, wire::mqtt_publish_payload(&p)) {
                        (3, Some(payload)) => board.receive(payload, &mut last_seq),
                        _ => bump(&board.stray),
                    }
                    used += len;
                }
                pending.drain(..used);
            }
            Ok(Message::Binary(b)) => board.receive(&b, &mut last_seq),
            Ok(Message::Close(_)) => break,
            Ok(_) => {} // pings are answered by tungstenite
            Err(e) => {
                board.note_error(format!("client {i} while reading: {e}"));
                break;
            }
        }
    }
    bump(&board.dropped);
}
