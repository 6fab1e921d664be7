//! The JSON frames the service sends to `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1` clients.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::hub::{Data, Origin, StreamTag};
use webpubsub::events::DataType;

/// Appends `value` as a JSON string.
fn push_str(out: &mut String, value: &str) {
    // Serializing a `str` cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned()));
}

/// `{"type":"message",…}`, with a `sequenceId` for reliable clients.
pub(crate) fn message(origin: &Origin, data: &Data, sequence: Option<u64>) -> String {
    let mut out = String::with_capacity(96 + data.bytes.len() * 4 / 3);
    out.push('{');
    if let Some(sequence) = sequence {
        let _ = write!(out, "\"sequenceId\":{sequence},");
    }
    out.push_str("\"type\":\"message\",");
    match origin {
        Origin::Server => out.push_str("\"from\":\"server\","),
        Origin::Group {
            group,
            from_user,
            stream,
        } => {
            out.push_str("\"from\":\"group\",\"group\":");
            push_str(&mut out, group);
            out.push(',');
            if let Some(user) = from_user {
                out.push_str("\"fromUserId\":");
                push_str(&mut out, user);
                out.push(',');
            }
            if let Some(stream) = stream {
                push_stream(&mut out, stream);
                out.push(',');
            }
        }
    }
    let _ = write!(
        out,
        "\"dataType\":\"{}\",\"data\":",
        data.kind.json_protocol_name()
    );
    match data.kind {
        DataType::Text => push_str(&mut out, &String::from_utf8_lossy(&data.bytes)),
        // Checked to be one JSON value when it was received.
        DataType::Json => out.push_str(&String::from_utf8_lossy(&data.bytes)),
        // Binary, and any kind a later core version adds: base64.
        _ => {
            out.push('"');
            STANDARD.encode_string(&data.bytes, &mut out);
            out.push('"');
        }
    }
    out.push('}');
    out
}

/// The `"stream":{…}` member of a group stream's fragment.
fn push_stream(out: &mut String, stream: &StreamTag) {
    out.push_str("\"stream\":{\"streamId\":");
    push_str(out, &stream.id);
    let _ = write!(out, ",\"streamSequenceId\":{}", stream.sequence);
    if stream.end {
        out.push_str(",\"endOfStream\":true");
    }
    if let Some(error) = &stream.error {
        out.push_str(",\"error\":{\"name\":");
        push_str(out, error.name);
        out.push_str(",\"message\":");
        push_str(out, &error.message);
        if let Some(code) = &error.user_code {
            out.push_str(",\"userErrorCode\":");
            push_str(out, code);
        }
        out.push('}');
    }
    out.push('}');
}

/// `{"type":"streamAck",…}`, or `streamNack` with an error name and message:
/// the next `streamSequenceId` the service expects.
pub(crate) fn stream_ack(
    stream_id: &str,
    expected: u64,
    nack: Option<(&'static str, &str)>,
) -> String {
    let mut out = String::from(if nack.is_some() {
        "{\"type\":\"streamNack\",\"streamId\":"
    } else {
        "{\"type\":\"streamAck\",\"streamId\":"
    });
    push_str(&mut out, stream_id);
    if let Some((name, message)) = nack {
        out.push_str(",\"name\":");
        push_str(&mut out, name);
        out.push_str(",\"message\":");
        push_str(&mut out, message);
    }
    let _ = write!(out, ",\"expectedSequenceId\":{expected}}}");
    out
}

/// `{"type":"streamClosed","streamId":…}`, with `error` when it failed.
pub(crate) fn stream_closed(stream_id: &str, error: Option<(&'static str, &str)>) -> String {
    let mut out = String::from("{\"type\":\"streamClosed\",\"streamId\":");
    push_str(&mut out, stream_id);
    if let Some((name, message)) = error {
        out.push_str(",\"error\":{\"name\":");
        push_str(&mut out, name);
        out.push_str(",\"message\":");
        push_str(&mut out, message);
        out.push('}');
    }
    out.push('}');
    out
}

/// `{"type":"ack",…}`.
pub(crate) fn ack(id: u64, error: Option<&(&'static str, String)>) -> String {
    match error {
        None => format!("{{\"type\":\"ack\",\"ackId\":{id},\"success\":true}}"),
        Some((name, message)) => {
            let mut out = format!(
                "{{\"type\":\"ack\",\"ackId\":{id},\"success\":false,\"error\":{{\"name\":\"{name}\",\"message\":"
            );
            push_str(&mut out, message);
            out.push_str("}}");
            out
        }
    }
}

/// `{"type":"system","event":"connected",…}`.
pub(crate) fn connected(
    connection_id: &str,
    user_id: Option<&str>,
    reconnection_token: Option<&str>,
) -> String {
    let mut out = String::from("{\"type\":\"system\",\"event\":\"connected\",\"userId\":");
    match user_id {
        Some(user) => push_str(&mut out, user),
        None => out.push_str("null"),
    }
    out.push_str(",\"connectionId\":");
    push_str(&mut out, connection_id);
    if let Some(token) = reconnection_token {
        out.push_str(",\"reconnectionToken\":");
        push_str(&mut out, token);
    }
    out.push('}');
    out
}

/// `{"type":"system","event":"disconnected","message":…}`.
pub(crate) fn disconnected(reason: &str) -> String {
    let mut out = String::from("{\"type\":\"system\",\"event\":\"disconnected\",\"message\":");
    push_str(&mut out, reason);
    out.push('}');
    out
}

pub(crate) const PONG: &str = "{\"type\":\"pong\"}";

/// `{"type":"invokeResponse",…}`: `dataType` / `data` only when the answer
/// had a body; a failure is its error's name and message.
pub(crate) fn invoke_response(id: &str, result: Result<Option<&Data>, (&str, &str)>) -> String {
    let mut out = Map::new();
    out.insert("type".into(), "invokeResponse".into());
    out.insert("invocationId".into(), id.into());
    match result {
        Ok(reply) => {
            out.insert("success".into(), true.into());
            if let Some(data) = reply {
                let value = match data.kind {
                    DataType::Text => Value::String(String::from_utf8_lossy(&data.bytes).into()),
                    // Checked to be one JSON value when the answer was read.
                    DataType::Json => serde_json::from_slice(&data.bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&data.bytes).into())
                    }),
                    // Binary, and any kind a later core version adds: base64.
                    _ => Value::String(STANDARD.encode(&data.bytes)),
                };
                out.insert("dataType".into(), data.kind.json_protocol_name().into());
                out.insert("data".into(), value);
            }
        }
        Err((name, message)) => {
            out.insert("success".into(), false.into());
            let mut error = Map::new();
            error.insert("name".into(), name.into());
            error.insert("message".into(), message.into());
            out.insert("error".into(), error.into());
        }
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn frames_are_the_documented_json() {
        let group = Origin::Group {
            group: Arc::from("g\"1"),
            from_user: Some(Arc::from("alice")),
            stream: None,
        };
        let json_data = Data {
            kind: DataType::Json,
            bytes: Bytes::from_static(br#"{"a":[1,2]}"#),
        };
        assert_eq!(
            parse(&message(&group, &json_data, Some(7))),
            json!({"sequenceId":7,"type":"message","from":"group","group":"g\"1","fromUserId":"alice","dataType":"json","data":{"a":[1,2]}})
        );
        let bin = Data {
            kind: DataType::Binary,
            bytes: Bytes::from_static(&[0, 255]),
        };
        assert_eq!(
            parse(&message(&Origin::Server, &bin, None)),
            json!({"type":"message","from":"server","dataType":"binary","data":"AP8="})
        );
        assert_eq!(
            parse(&ack(3, Some(&("Forbidden", "no \"role\"".to_owned())))),
            json!({"type":"ack","ackId":3,"success":false,"error":{"name":"Forbidden","message":"no \"role\""}})
        );
        assert_eq!(
            parse(&ack(4, None)),
            json!({"type":"ack","ackId":4,"success":true})
        );
        assert_eq!(
            parse(&connected("c1", None, Some("t"))),
            json!({"type":"system","event":"connected","userId":null,"connectionId":"c1","reconnectionToken":"t"})
        );
        assert_eq!(
            parse(&disconnected("bye")),
            json!({"type":"system","event":"disconnected","message":"bye"})
        );
    }

    #[test]
    fn stream_frames_are_the_documented_json() {
        let end = Origin::Group {
            group: Arc::from("room"),
            from_user: None,
            stream: Some(Arc::new(StreamTag {
                id: Arc::from("s\"1"),
                sequence: 3,
                end: true,
                error: Some(crate::hub::StreamError {
                    name: "UserError",
                    message: "boom".to_owned(),
                    user_code: Some("E42".to_owned()),
                }),
            })),
        };
        let empty = Data {
            kind: DataType::Text,
            bytes: Bytes::new(),
        };
        assert_eq!(
            parse(&message(&end, &empty, None)),
            json!({"type":"message","from":"group","group":"room","dataType":"text","data":"",
                   "stream":{"streamId":"s\"1","streamSequenceId":3,"endOfStream":true,
                             "error":{"name":"UserError","message":"boom","userErrorCode":"E42"}}})
        );
        assert_eq!(
            parse(&stream_ack("s", 2, None)),
            json!({"type":"streamAck","streamId":"s","expectedSequenceId":2})
        );
        assert_eq!(
            parse(&stream_ack("s", 2, Some(("OutOfOrder", "gap")))),
            json!({"type":"streamNack","streamId":"s","name":"OutOfOrder","message":"gap","expectedSequenceId":2})
        );
        assert_eq!(
            parse(&stream_closed("s", Some(("IdleTimeout", "idle")))),
            json!({"type":"streamClosed","streamId":"s","error":{"name":"IdleTimeout","message":"idle"}})
        );
        assert_eq!(
            parse(&stream_closed("s", None)),
            json!({"type":"streamClosed","streamId":"s"})
        );
    }
}
