//! The one writer of binary-mode CloudEvent requests, as the service sends
//! them: used by [`testing`](crate::testing) and the emulator's upstream calls.

use http::{HeaderMap, HeaderValue};

use super::headers::{
    CE_AWPS_VERSION, CE_CONNECTION_ID, CE_CONNECTION_STATE, CE_EVENT_NAME, CE_HUB, CE_ID,
    CE_SIGNATURE, CE_SOURCE, CE_SPEC_VERSION, CE_SUBPROTOCOL, CE_TIME, CE_TYPE, CE_USER_ID,
    WEBHOOK_REQUEST_ORIGIN,
};

/// The headers of one event. `ce_type` and `event_name` are text (not an
/// [`EventType`](super::EventType)) so tests can send what the service never
/// would; take both from an `EventType` otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CloudEvent<'a> {
    pub(crate) ce_type: &'a str,
    pub(crate) event_name: &'a str,
    pub(crate) hub: &'a str,
    pub(crate) connection_id: &'a str,
    pub(crate) id: &'a str,
    pub(crate) time: &'a str,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) subprotocol: Option<&'a str>,
    /// `ce-connectionState`, as sent (base64 of a JSON object).
    pub(crate) state: Option<&'a str>,
    /// `ce-signature`: the `sha256=…` entries joined with `,`.
    pub(crate) signature: Option<&'a str>,
    /// `WebHook-Request-Origin`: the service's host.
    pub(crate) origin: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
}

impl CloudEvent<'_> {
    /// The request headers. A value that is not a valid header value (only
    /// possible for text a test chose) is left out.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(16);
        let mut put = |name, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name, value);
            }
        };
        put(CE_SPEC_VERSION, "1.0");
        put(CE_AWPS_VERSION, "1.0");
        put(CE_TYPE, self.ce_type);
        put(
            CE_SOURCE,
            &format!("/hubs/{}/client/{}", self.hub, self.connection_id),
        );
        put(CE_ID, self.id);
        put(CE_TIME, self.time);
        put(CE_HUB, self.hub);
        put(CE_CONNECTION_ID, self.connection_id);
        put(CE_EVENT_NAME, self.event_name);
        let optional = [
            (CE_USER_ID, self.user_id),
            (CE_SUBPROTOCOL, self.subprotocol),
            (CE_CONNECTION_STATE, self.state),
            (CE_SIGNATURE, self.signature),
            (WEBHOOK_REQUEST_ORIGIN, self.origin),
            (http::header::CONTENT_TYPE, self.content_type),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                put(name, value);
            }
        }
        headers
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::EventType;

    #[test]
    fn what_the_writer_writes_the_decoder_reads() {
        let kind = EventType::User("message");
        let ce_type = kind.ce_type();
        let headers = CloudEvent {
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
        let event = crate::decode_event(&headers, bytes::Bytes::from_static(b"hi")).unwrap();
        let crate::Event::UserEvent(event) = event else {
            panic!("a user event: {event:?}")
        };
        assert_eq!(event.context.user_id.as_deref(), Some("ü"));
        assert_eq!(event.context.event_name, "message");
    }
}
