//! A JSON-protocol client frame → a [`Command`]: all the reading of its
//! fields (`type`, `ackId`, and what each type carries). Nothing here acts.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::hub::Data;
use crate::protocol::{
    BadInvoke, Command, IdleTimeout, Invalid, StreamError, StreamOpen, MAX_ID_BYTES, MAX_STREAM_ID,
};
use webpubsub::events::DataType;
use webpubsub::names::GroupName;

/// Reads a text frame: a JSON object, a valid `ackId` if any, a known
/// `type`, then the fields of that type.
///
/// The fields of `invoke`, `cancelInvocation`, `streamData` and
/// `streamEnd` are checked here, in the order the endpoint always checked
/// them (nothing acts before them); the others are handed over as
/// `Result`s for the endpoint to check after its own first steps.
pub(crate) fn parse(text: &str) -> Result<Command, Invalid> {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return Err(Invalid::new("not a JSON object"));
    };
    let ack_id = match message.get("ackId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| Invalid::new("ackId must be an unsigned integer"))?,
        ),
    };
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(match kind {
        "ping" => Command::Ping,
        "sequenceAck" => Command::SequenceAck {
            sequence_id: message
                .get("sequenceId")
                .and_then(Value::as_u64)
                .ok_or_else(|| Invalid::new("sequenceAck needs a sequenceId")),
        },
        "invoke" => invoke(&mut message)?,
        "cancelInvocation" => Command::CancelInvocation {
            invocation_id: invocation_id(&message)?,
        },
        "streamData" => stream_data(&mut message)?,
        "streamEnd" => stream_end(&message)?,
        "joinGroup" => Command::JoinGroup {
            group: group(&message),
            ack_id,
        },
        "leaveGroup" => Command::LeaveGroup {
            group: group(&message),
            ack_id,
        },
        "sendToGroup" if message.contains_key("stream") => Command::OpenStream {
            group: group(&message),
            stream: stream_open(&message),
            ack_id,
        },
        "sendToGroup" => Command::SendToGroup {
            group: group(&message),
            no_echo: no_echo(&message),
            data: payload(&mut message),
            ack_id,
        },
        "event" => Command::Event {
            event: string(&message, "event")
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Invalid::new("an event name is required")),
            data: payload(&mut message),
            ack_id,
        },
        other => return Err(Invalid(format!("unknown type `{other}`"))),
    })
}

fn string<'a>(message: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    message.get(name).and_then(Value::as_str)
}

/// The `group`: a valid group name.
fn group(message: &Map<String, Value>) -> Result<String, Invalid> {
    string(message, "group")
        .filter(|g| GroupName::is_valid(g))
        .map(str::to_owned)
        .ok_or_else(|| Invalid::new("a group name is required"))
}

/// Whether the sender is left out (`noEcho`).
fn no_echo(message: &Map<String, Value>) -> bool {
    message
        .get("noEcho")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Whether the frame carries a payload (`data` or `dataType`).
fn has_payload(message: &Map<String, Value>) -> bool {
    message.contains_key("data") || message.contains_key("dataType")
}

/// `invoke`: its id, then its payload, break the protocol; its target and
/// event are refused (the socket stays).
fn invoke(message: &mut Map<String, Value>) -> Result<Command, Invalid> {
    let invocation_id = invocation_id(message)?;
    let data = payload(message)?;
    let event = match message.get("target") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(target)) if target == "event" => Ok(()),
        Some(_) => Err(BadInvoke::UnsupportedTarget),
    }
    .and_then(|()| match string(message, "event") {
        Some(event) if !event.is_empty() => Ok(event.to_owned()),
        _ => Err(BadInvoke::NoEvent),
    });
    Ok(Command::Invoke {
        invocation_id,
        event,
        data,
    })
}

/// The `invocationId`: a string of 1 to [`MAX_ID_BYTES`] bytes.
fn invocation_id(message: &Map<String, Value>) -> Result<String, Invalid> {
    match string(message, "invocationId") {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_BYTES => Ok(id.to_owned()),
        Some(id) if !id.is_empty() => Err(Invalid(format!(
            "invocationId is longer than {MAX_ID_BYTES} bytes"
        ))),
        _ => Err(Invalid::new("invocationId must be a non-empty string")),
    }
}

/// The `streamId` of a stream frame: a string of 1 to [`MAX_STREAM_ID`] bytes.
fn stream_id(value: Option<&Value>) -> Result<Arc<str>, Invalid> {
    match value.and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.len() <= MAX_STREAM_ID => Ok(Arc::from(id)),
        _ => Err(Invalid(format!(
            "streamId must be a string of 1 to {MAX_STREAM_ID} bytes"
        ))),
    }
}

/// The `stream` object of a `sendToGroup` that opens a stream.
fn stream_open(message: &Map<String, Value>) -> Result<StreamOpen, Invalid> {
    let Some(Value::Object(stream)) = message.get("stream") else {
        return Err(Invalid::new("stream must be an object"));
    };
    let stream_id = stream_id(stream.get("streamId"))?;
    let idle_timeout = match stream.get("idleTimeoutMs") {
        None | Some(Value::Null) => IdleTimeout::Default,
        Some(Value::Number(ms)) => IdleTimeout::Millis(ms.as_f64().unwrap_or(0.0)),
        Some(_) => IdleTimeout::NotANumber,
    };
    Ok(StreamOpen {
        stream_id,
        with_data: has_payload(message),
        idle_timeout,
        no_echo: no_echo(message),
    })
}

/// `streamData`: a fragment (`streamSequenceId`, `dataType`, `data`), or
/// a keep-alive (only `streamId`).
fn stream_data(message: &mut Map<String, Value>) -> Result<Command, Invalid> {
    let stream_id = stream_id(message.get("streamId"))?;
    let sequence = match message.get("streamSequenceId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| Invalid::new("streamSequenceId must be an unsigned integer"))?,
        ),
    };
    if sequence.is_some() != has_payload(message) {
        return Err(Invalid::new(
            "streamData carries streamSequenceId, dataType and data together, or none (keep-alive)",
        ));
    }
    let fragment = match sequence {
        Some(n) => Some((n, payload(message)?)),
        None => None,
    };
    Ok(Command::StreamData {
        stream_id,
        fragment,
    })
}

/// `streamEnd`: its stream, and the sender's `error` if any.
fn stream_end(message: &Map<String, Value>) -> Result<Command, Invalid> {
    let stream_id = stream_id(message.get("streamId"))?;
    let error = match message.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::Object(error)) => {
            let text = |name: &str| string(error, name).map(str::to_owned);
            Some(StreamError {
                message: text("message"),
                user_error_code: text("userErrorCode"),
            })
        }
        Some(_) => return Err(Invalid::new("streamEnd's error must be an object")),
    };
    Ok(Command::StreamEnd { stream_id, error })
}

/// The `dataType` + `data` of a client message. The `data` is taken out of
/// the frame, so a text payload becomes the message's bytes without a copy.
fn payload(message: &mut Map<String, Value>) -> Result<Data, Invalid> {
    let data = message.remove("data").unwrap_or(Value::Null);
    match string(message, "dataType").unwrap_or("json") {
        "json" => Ok(Data {
            kind: DataType::Json,
            bytes: Bytes::from(data.to_string()),
        }),
        "text" => match data {
            Value::String(s) => Ok(Data {
                kind: DataType::Text,
                bytes: Bytes::from(s),
            }),
            _ => Err(Invalid::new("text data must be a string")),
        },
        "binary" | "protobuf" => match data {
            Value::String(s) => STANDARD
                .decode(s.as_bytes())
                .map(|b| Data {
                    kind: DataType::Binary,
                    bytes: Bytes::from(b),
                })
                .map_err(|_| Invalid::new("binary data must be base64")),
            _ => Err(Invalid::new("binary data must be a base64 string")),
        },
        other => Err(Invalid(format!("unknown dataType `{other}`"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_group_is_handed_over_so_a_duplicate_ack_id_wins() {
        let Ok(Command::JoinGroup { group, ack_id }) =
            parse(r#"{"type":"joinGroup","group":"","ackId":7}"#)
        else {
            panic!("joinGroup");
        };
        assert!(group.is_err());
        assert_eq!(ack_id, Some(7));
    }

    #[test]
    fn send_to_group_with_a_stream_opens_one_and_keeps_its_bad_parts() {
        let Ok(Command::OpenStream { group, stream, .. }) =
            parse(r#"{"type":"sendToGroup","group":"g","stream":1}"#)
        else {
            panic!("sendToGroup with stream");
        };
        assert_eq!(group.unwrap(), "g");
        assert!(stream.is_err());
    }

    #[test]
    fn invoke_checks_its_id_then_its_payload_and_hands_over_its_target() {
        let err = |text: &str| parse(text).err().unwrap().0;
        assert_eq!(
            err(r#"{"type":"invoke","dataType":"nope"}"#),
            "invocationId must be a non-empty string"
        );
        assert_eq!(
            err(r#"{"type":"invoke","invocationId":"1","dataType":"nope","target":"x"}"#),
            "unknown dataType `nope`"
        );
        let Ok(Command::Invoke { event, data, .. }) = parse(
            r#"{"type":"invoke","invocationId":"1","target":"x","dataType":"text","data":"hi"}"#,
        ) else {
            panic!("invoke");
        };
        assert_eq!(event.unwrap_err(), BadInvoke::UnsupportedTarget);
        assert_eq!(&data.bytes[..], b"hi");
    }
}
