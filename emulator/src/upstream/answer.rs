//! An event handler's answer ([`UpstreamAnswer`]): what the emulator
//! reads of it, within its size limits.

use bytes::Bytes;
use http::StatusCode;

use super::error::NoAnswer;
use webpubsub::wire::headers::{CE_CONNECTION_STATE, MQTT_USER_PROPERTY_PREFIX};

/// The most of an upstream answer that is read.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// The most of a refusing (non-2xx, not retried) answer's body that is
/// kept: an invocation hands it to the client as its error message.
const ERROR_BODY_LIMIT: usize = 4096;

/// A 2xx answer of the upstream.
#[derive(Debug)]
pub(crate) struct UpstreamAnswer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
    /// `Some` when the answer carried `ce-connectionState` (empty: cleared).
    pub(crate) state: Option<String>,
    /// The answer's `mqtt-{name}` headers as MQTT user properties
    /// `(name, value)`: a user event's answer hands them to MQTT 5 clients.
    pub(crate) mqtt_properties: Vec<(String, String)>,
}

pub(super) async fn read_answer(
    mut response: reqwest::Response,
) -> Result<UpstreamAnswer, NoAnswer> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let state = response
        .headers()
        .get(CE_CONNECTION_STATE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mqtt_properties = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix(MQTT_USER_PROPERTY_PREFIX)?;
            Some((name.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > ANSWER_LIMIT {
                    return Err(NoAnswer::Broken(format!(
                        "the answer exceeds {ANSWER_LIMIT} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(NoAnswer::of(&e)),
        }
    }
    Ok(UpstreamAnswer {
        status,
        content_type,
        body: Bytes::from(body),
        state,
        mqtt_properties,
    })
}

/// The start of a refusing answer's body ([`ERROR_BODY_LIMIT`] bytes at
/// most, lossy UTF-8); empty when it cannot be read.
pub(super) async fn read_error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
