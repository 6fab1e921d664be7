//! Turning a binary-mode CloudEvent (headers + body) into an [`Event`].
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_TYPE};

use super::headers::{self, text, text_required, EventHeaders};
use super::rejection::excerpt;
use super::Rejection;
use crate::events::context::{CloudEventHeaders, MqttContext};
use crate::events::ConnectionContext;
use crate::events::{connect_body, ClientMaps};
use crate::events::{
    ConnectEventRequest, ConnectedEventRequest, DisconnectedEventRequest, Event, EventData,
    GroupJoinedEventRequest, GroupLeftEventRequest, UserEventRequest,
};
use crate::state::ConnectionStates;
use crate::wire::ConnectBody;
use crate::wire::EventType as Kind;

/// Decodes one upstream request into an [`Event`], checking everything the
/// handler relies on. Pure: it reads only its arguments and calls no user code.
///
/// What it refuses, always with a [`Rejection`] (never a panic):
///
/// - `400`: missing or empty `ce-type`, `ce-hub` or `ce-connectionId`; a
///   single-valued `ce-*` header repeated or not UTF-8; an unknown `ce-type`;
///   a `ce-connectionState` that is not base64 of a JSON object; a system
///   event body that is not the JSON the spec describes; a user event whose
///   `Content-Type` is not `text/plain`, `application/json` or
///   `application/octet-stream` (absent means binary), whose charset is not
///   UTF-8, whose text is not UTF-8 or whose JSON is not valid.
///
/// The hub is not checked here (the router does that).
///
/// ```
/// use webpubsub::upstream::{decode_event, Rejection};
/// use webpubsub::events::Event;
/// use axum::http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ce-type", "azure.webpubsub.user.message".parse().unwrap());
/// headers.insert("ce-hub", "chat".parse().unwrap());
/// headers.insert("content-type", "text/plain".parse().unwrap());
/// assert_eq!(
///     decode_event(&headers, "hi".into()).unwrap_err(),
///     Rejection::MissingHeader("ce-connectionId"),
/// );
/// headers.insert("ce-connectionId", "conn-1".parse().unwrap());
/// let Event::UserEvent(req) = decode_event(&headers, "hi".into())? else { unreachable!() };
/// assert_eq!(req.context.event_name, "message");
/// assert_eq!(req.data.as_text(), Some("hi"));
/// # Ok::<(), Rejection>(())
/// ```
pub fn decode_event(headers: &HeaderMap, body: Bytes) -> Result<Event, Rejection> {
    let found = EventHeaders::scan(headers);
    let mut event = decode_scanned(&found, body)?;
    keep_headers(&mut event, headers.clone(), found.more_origins);
    Ok(event)
}

/// Gives a decoded event the map of its headers, for the CloudEvents
/// attributes ([`decode_scanned`] leaves it empty, so that the router can
/// move the request's own map in once the scan's borrows end). Several
/// `WebHook-Request-Origin` lines become one, joined with `, `.
pub(crate) fn keep_headers(event: &mut Event, mut headers: HeaderMap, more_origins: bool) {
    if more_origins {
        let lines: Vec<&str> = headers
            .get_all(&headers::WEBHOOK_REQUEST_ORIGIN)
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .collect();
        match http::HeaderValue::try_from(lines.join(", ")) {
            Ok(joined) => headers.insert(headers::WEBHOOK_REQUEST_ORIGIN, joined),
            Err(_) => headers.remove(headers::WEBHOOK_REQUEST_ORIGIN),
        };
    }
    event.context_mut().meta = CloudEventHeaders(headers);
}

/// [`decode_event`] for headers already scanned (the router reads `ce-hub`
/// from the same scan), except for [`keep_headers`].
pub(crate) fn decode_scanned(found: &EventHeaders<'_>, body: Bytes) -> Result<Event, Rejection> {
    if let Some(name) = found.repeated {
        return Err(Rejection::RepeatedHeader(name));
    }
    let ce_type = text_required(found.single.ce_type, &headers::CE_TYPE)?;
    let kind = Kind::parse(ce_type).ok_or_else(|| Rejection::UnknownEventType(excerpt(ce_type)))?;
    let context = context(found, ce_type, kind)?;
    Ok(match kind {
        Kind::Connect => Event::Connect(connect_request(context, body)?),
        Kind::Connected => Event::Connected(ConnectedEventRequest::new(context)),
        Kind::Disconnected => {
            let body = json_body(&body)?.unwrap_or_default();
            Event::Disconnected(DisconnectedEventRequest::from_body(context, body))
        }
        Kind::GroupJoined | Kind::GroupLeft => {
            let group = json_body::<crate::wire::GroupBody>(&body)?
                .ok_or_else(|| {
                    Rejection::InvalidJson("expected an object with a `group` field".to_owned())
                })?
                .group;
            if kind == Kind::GroupJoined {
                Event::GroupJoined(GroupJoinedEventRequest::new(context, group))
            } else {
                Event::GroupLeft(GroupLeftEventRequest::new(context, group))
            }
        }
        Kind::User(_) => Event::UserEvent(UserEventRequest::new(
            context,
            user_data(found.single.content_type, body)?,
        )),
    })
}

fn context(
    found: &EventHeaders<'_>,
    ce_type: &str,
    kind: Kind<'_>,
) -> Result<ConnectionContext, Rejection> {
    let hub = text_required(found.single.hub, &headers::CE_HUB)?;
    let connection_id = text_required(found.single.connection_id, &headers::CE_CONNECTION_ID)?;
    let event_name = match text(found.single.event_name, &headers::CE_EVENT_NAME)? {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => match kind {
            Kind::User(name) => name.to_owned(),
            _ => ce_type.rsplit('.').next().unwrap_or_default().to_owned(),
        },
    };
    let states = match text(found.single.connection_state, &headers::CE_CONNECTION_STATE)? {
        Some(value) => ConnectionStates::from_header(value)?,
        None => ConnectionStates::default(),
    };
    let subprotocol = owned(found.single.subprotocol, &headers::CE_SUBPROTOCOL)?;
    let physical = owned(
        found.single.physical_connection_id,
        &headers::CE_PHYSICAL_CONNECTION_ID,
    )?;
    let mqtt = match (&subprotocol, physical) {
        (Some(p), Some(physical_connection_id)) if p.eq_ignore_ascii_case("mqtt") => {
            Some(MqttContext {
                physical_connection_id,
                session_id: owned(found.single.session_id, &headers::CE_SESSION_ID)?,
            })
        }
        _ => None,
    };
    // The attributes kept for later reads are checked now.
    headers::check_text(found.single.id, &headers::CE_ID)?;
    headers::check_text(found.single.time, &headers::CE_TIME)?;
    headers::check_text(found.single.source, &headers::CE_SOURCE)?;
    headers::check_text(found.single.spec_version, &headers::CE_SPEC_VERSION)?;
    headers::check_text(found.single.awps_version, &headers::CE_AWPS_VERSION)?;
    Ok(ConnectionContext {
        hub: hub.to_owned(),
        connection_id: connection_id.to_owned(),
        user_id: text(found.single.user_id, &headers::CE_USER_ID)?.map(str::to_owned),
        event_name,
        subprotocol,
        states,
        mqtt,
        meta: CloudEventHeaders::default(),
    })
}

/// A header's value as an owned string; `None` when absent or empty.
fn owned(
    value: Option<&http::HeaderValue>,
    name: &http::HeaderName,
) -> Result<Option<String>, Rejection> {
    Ok(text(value, name)?
        .filter(|v| !v.is_empty())
        .map(str::to_owned))
}

/// A system event's JSON body; `None` for an empty body or `null`.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Rejection> {
    let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    // Derived structs would also accept an array of their fields in order.
    if !matches!(first, b'{' | b'n') {
        return Err(Rejection::InvalidJson("expected a JSON object".to_owned()));
    }
    // Read as bytes, serde_json checks UTF-8 string by string; a body that
    // is UTF-8 as a whole (one fast pass) is read as text instead, which
    // parses the same. Any other body keeps serde_json's own error.
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Option<T>>(text),
        Err(_) => serde_json::from_slice::<Option<T>>(body),
    }
    .map_err(|e| Rejection::InvalidJson(e.to_string()))
}

/// A `connect` request from its body. A body in the plain form the service
/// sends keeps its three maps as text, built only when the handler asks
/// for them ([`ClientMaps`]); any other body (empty, escaped strings,
/// numbers, certificates, MQTT, malformed) is read whole by
/// [`ConnectBody`]'s serde reader, which gives the same request or the
/// refusal.
fn connect_request(
    context: ConnectionContext,
    body: Bytes,
) -> Result<ConnectEventRequest, Rejection> {
    if let Some(plain) = std::str::from_utf8(&body).ok().and_then(connect_body::read) {
        let maps = ClientMaps::from_spans(body, plain.spans);
        return Ok(ConnectEventRequest::from_parts(
            context,
            maps,
            plain.subprotocols,
            Vec::new(),
            None,
        ));
    }
    let body = json_body::<ConnectBody>(&body)?.unwrap_or_default();
    Ok(ConnectEventRequest::from_body(context, body))
}

/// The payload of a user event, typed by its `Content-Type`.
fn user_data(
    content_type: Option<&http::HeaderValue>,
    body: Bytes,
) -> Result<EventData, Rejection> {
    let Some(content_type) = text(content_type, &CONTENT_TYPE)? else {
        return Ok(EventData::Binary(body));
    };
    let mut parts = content_type.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    let kind = if media_type.eq_ignore_ascii_case("text/plain") {
        crate::events::DataType::Text
    } else if media_type.eq_ignore_ascii_case("application/json") {
        crate::events::DataType::Json
    } else if media_type.eq_ignore_ascii_case("application/octet-stream") {
        crate::events::DataType::Binary
    } else {
        return Err(Rejection::UnsupportedContentType(excerpt(content_type)));
    };
    if kind != crate::events::DataType::Binary {
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("charset") {
                let charset = value.trim().trim_matches('"');
                let utf8 = ["utf-8", "utf8", "us-ascii"]
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(charset));
                if !utf8 {
                    return Err(Rejection::UnsupportedCharset(excerpt(charset)));
                }
            }
        }
    }
    match kind {
        crate::events::DataType::Text => String::from_utf8(Vec::from(body))
            .map(EventData::Text)
            .map_err(|_| Rejection::TextNotUtf8),
        crate::events::DataType::Json => {
            serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                .map_err(|e| Rejection::InvalidJson(e.to_string()))?;
            Ok(EventData::Json(body))
        }
        crate::events::DataType::Binary => Ok(EventData::Binary(body)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::wire::ConnectBody;

    #[test]
    fn system_bodies_read_as_text_or_bytes_fail_as_serde_json_says() {
        let cases: [&[u8]; 4] = [
            b"{\"claims\":{\"sub\":[\"\xff\"]}}",
            br#"{"claims":{"sub":["a"]},"query":[}"#,
            br#"{"claims":{"sub":"\ud800"}}"#,
            b"{\"claims\":{\"sub\":[\"caf\xc3\xa9\"]},\"subprotocols\":\"x\"}",
        ];
        for body in cases {
            let by_bytes = serde_json::from_slice::<Option<ConnectBody>>(body)
                .err()
                .map(|e| Rejection::InvalidJson(e.to_string()));
            assert_eq!(json_body::<ConnectBody>(body).err(), by_bytes, "{body:?}");
        }
        let ok = json_body::<ConnectBody>(b"{\"claims\":{\"sub\":[\"caf\xc3\xa9\"]}}");
        assert!(ok.unwrap().is_some());
    }

    #[test]
    fn what_the_writer_writes_the_decoder_reads() {
        let kind = crate::wire::EventType::User("message");
        let ce_type = kind.ce_type();
        let headers = crate::wire::CloudEvent {
            ce_type: &ce_type,
            event_name: kind.event_name(),
            hub: "chat",
            connection_id: "c1",
            id: "7",
            time: "2024-01-01T00:00:00Z",
            user_id: Some("ü"),
            subprotocol: None,
            state: None,
            signature: None,
            origin: Some("localhost"),
            content_type: Some("text/plain"),
        }
        .headers();
        assert_eq!(headers["ce-source"], "/hubs/chat/client/c1");
        assert!(headers.get("ce-subprotocol").is_none());
        let event = decode_event(&headers, bytes::Bytes::from_static(b"hi")).unwrap();
        let crate::events::Event::UserEvent(event) = event else {
            panic!("a user event: {event:?}")
        };
        assert_eq!(event.context.user_id.as_deref(), Some("ü"));
        assert_eq!(event.context.event_name, "message");
    }
}
