//! Bytes on the wire: access tokens (HS256 JWT), the four MQTT 3.1.1 packets
//! the client needs, and the payload formats of the harness.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

// ------------------------------------------------------------------ tokens

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An HS256 JWT of `claims`, signed with `key` (the access key's bytes).
pub fn sign_jwt(key: &str, claims: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let unsigned = format!("{head}.{body}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(unsigned.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{unsigned}.{signature}")
}

/// `aud` of a token: the URL with an http(s) scheme and without its query.
pub fn audience(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    if let Some(rest) = no_query.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = no_query.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        no_query.to_string()
    }
}

/// A client access token for user `sub`, valid for six hours.
pub fn client_token(key: &str, url: &str, sub: &str, roles: &[String]) -> String {
    let now = unix_now();
    let mut claims = json!({ "aud": audience(url), "sub": sub, "iat": now, "exp": now + 6 * 3600 });
    if !roles.is_empty() {
        claims["role"] = json!(roles);
    }
    sign_jwt(key, &claims)
}

/// A REST token for `url` (its query is not part of the audience).
pub fn rest_token(key: &str, url: &str) -> String {
    let now = unix_now();
    sign_jwt(key, &json!({ "aud": audience(url), "iat": now, "exp": now + 6 * 3600 }))
}

// ------------------------------------------------------------------ MQTT 3.1.1

fn put_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let digit = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(digit);
            return;
        }
        out.push(digit | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    put_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// CONNECT: protocol level 4, clean session, keep-alive 0, no will, no login.
pub fn mqtt_connect(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.extend_from_slice(&[4, 0b0000_0010, 0, 0]);
    put_str(&mut body, client_id.as_bytes());
    packet(0x10, &body)
}

/// SUBSCRIBE (packet id 1) to one topic filter at QoS 0.
pub fn mqtt_subscribe(topic: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    put_str(&mut body, topic.as_bytes());
    body.push(0);
    packet(0x82, &body)
}

/// PUBLISH at QoS 0, not retained.
pub fn mqtt_publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + topic.len() + payload.len());
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// One MQTT packet split off the front of a byte stream.
pub struct MqttPacket<'a> {
    pub kind: u8,
    pub flags: u8,
    pub body: &'a [u8],
}

/// The packet at the front of `buf` if it is all there, and its length.
pub fn mqtt_split(buf: &[u8]) -> Option<(MqttPacket<'_>, usize)> {
    let first = *buf.first()?;
    let mut len = 0usize;
    let mut at = 1;
    for shift in [0, 7, 14, 21] {
        let b = *buf.get(at)?;
        at += 1;
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            let end = at + len;
            let body = buf.get(at..end)?;
            return Some((MqttPacket { kind: first >> 4, flags: first & 0x0f, body }, end));
        }
    }
    None // a malformed length: wait for a packet that never completes
}

/// The application payload of a PUBLISH body (topic and packet id skipped).
pub fn mqtt_publish_payload<'a>(p: &MqttPacket<'a>) -> Option<&'a [u8]> {
    let topic_len = u16::from_be_bytes([*p.body.first()?, *p.body.get(1)?]) as usize;
    let mut at = 2 + topic_len;
    if (p.flags >> 1) & 3 > 0 {
        at += 2;
    }
    p.body.get(at..)
}

// ------------------------------------------------------------------ payloads

/// What a payload of the harness says.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload {
    /// `R<round>`: a broadcast round.
    Round(usize),
    /// `S<triggerer>-<seq>-<id>`: a sustained-phase message; `seq` counts
    /// from 1 per triggerer, `id` from 0 over all triggerers.
    Stream { triggerer: usize, seq: u64, id: usize },
}

pub fn round_payload(round: usize, pad: usize) -> Vec<u8> {
    padded(format!("R{round}"), pad)
}

pub fn stream_payload(triggerer: usize, seq: u64, id: usize, pad: usize) -> Vec<u8> {
    padded(format!("S{triggerer}-{seq}-{id}"), pad)
}

/// `pad` bytes of `_` after a `~`, so payloads of any size can be measured.
fn padded(text: String, pad: usize) -> Vec<u8> {
    let mut v = text.into_bytes();
    if pad > 0 {
        v.push(b'~');
        v.resize(v.len() + pad, b'_');
    }
    v
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u64))
}

pub fn parse_payload(p: &[u8]) -> Option<Payload> {
    let p = match p.iter().position(|&b| b == b'~') {
        Some(i) => &p[..i],
        None => p,
    };
    match p.split_first()? {
        (b'R', rest) => Some(Payload::Round(number(rest)? as usize)),
        (b'S', rest) => {
            let mut parts = rest.split(|&b| b == b'-');
            let triggerer = number(parts.next()?)? as usize;
            let seq = number(parts.next()?)?;
            let id = number(parts.next()?)? as usize;
            Some(Payload::Stream { triggerer, seq, id })
        }
        _ => None,
    }
}

/// The `data` of a `json.webpubsub.azure.v1` message frame
/// (`{"type":"message","from":"server","dataType":"text","data":"..."}`),
/// read without a JSON parser: the harness's payloads need no unescaping.
/// `None` for system frames, acks and anything else.
pub fn json_message_data(frame: &[u8]) -> Option<&[u8]> {
    const TYPE: &[u8] = br#""type":"message""#;
    const DATA: &[u8] = br#""data":""#;
    find(frame, TYPE)?;
    let start = find(frame, DATA)? + DATA.len();
    let len = frame[start..].iter().position(|&b| b == b'"')?;
    Some(&frame[start..start + len])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        assert_eq!(parse_payload(&round_payload(17, 0)), Some(Payload::Round(17)));
        assert_eq!(
            parse_payload(&stream_payload(3, 9, 1234, 40)),
            Some(Payload::Stream { triggerer: 3, seq: 9, id: 1234 })
        );
        assert_eq!(parse_payload(b"hello"), None);
    }

    #[test]
    fn mqtt_packets_split() {
        let mut stream = mqtt_publish("bench", b"R5");
        stream.extend(mqtt_publish("bench", &vec![b'x'; 300]));
        let (p, used) = mqtt_split(&stream).expect("first");
        assert_eq!((p.kind, mqtt_publish_payload(&p)), (3, Some(&b"R5"[..])));
        let (p, rest) = mqtt_split(&stream[used..]).expect("second");
        assert_eq!(mqtt_publish_payload(&p).map(<[u8]>::len), Some(300));
        assert_eq!(used + rest, stream.len());
        assert!(mqtt_split(&stream[..used - 1]).is_none());
    }

    #[test]
    fn json_data_is_found() {
        let f = br#"{"type":"message","from":"server","dataType":"text","data":"S1-2-3"}"#;
        assert_eq!(json_message_data(f), Some(&b"S1-2-3"[..]));
        assert_eq!(json_message_data(br#"{"type":"system","event":"connected"}"#), None);
    }

    #[test]
    fn audience_drops_query_and_uses_http() {
        assert_eq!(audience("ws://127.0.0.1:9/client/hubs/bench?x=1"), "http://127.0.0.1:9/client/hubs/bench");
        assert_eq!(audience("http://h/api/hubs/b/:send?api-version=1"), "http://h/api/hubs/b/:send");
    }
}
