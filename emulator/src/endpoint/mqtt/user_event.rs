//! User events: a PUBLISH to `$webpubsub/server/events/{event}` goes to
//! the upstream as user event `event`, and its answer comes back as a
//! PUBLISH on `…/{event}/succeeded` or `…/failed`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;

use crate::hub::Connection;
use crate::lifecycle::{event_call, keep_state};
use crate::protocol::mqtt::{Properties, Publish, EVENTS_PREFIX};
use crate::service::Shared;
use crate::upstream::UpstreamError;
use webpubsub::wire::headers::mqtt_user_property_header;
use webpubsub::wire::EventType;

/// A user event in flight: its answer, to publish back to the client.
pub(super) type Pending = Pin<Box<dyn Future<Output = Option<Publish>> + Send>>;

/// A PUBLISH to `$webpubsub/server/events/{event}` as user event `event`;
/// the answer, to publish back on `…/{event}/succeeded` or `…/failed`.
pub(super) async fn user_event(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    event: String,
    p: Publish,
) -> Option<Publish> {
    conn.connected_delivered().await;
    let mut call = event_call(
        &conn,
        EventType::User(&event),
        "application/octet-stream",
        p.payload.clone(),
    );
    if let Some(value) = p
        .properties
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        call.extra.insert(http::header::CONTENT_TYPE, value);
    }
    for (name, value) in &p.properties.user_properties {
        let name = mqtt_user_property_header(name);
        let value = HeaderValue::from_str(value);
        if let (Some(name), Ok(value)) = (name, value) {
            // The codec bounds the count far below a header map's capacity;
            // a full map drops the rest rather than panic.
            if call.extra.try_append(name, value).is_err() {
                break;
            }
        }
    }
    let result = shared.upstream.call(shared.settings(&conn.hub), call).await;
    let (status, content_type, payload, mut user) = match result {
        Ok(Some(answer)) => {
            keep_state(&conn, &answer);
            (
                answer.status.as_u16(),
                answer.content_type,
                answer.body,
                answer.mqtt_properties,
            )
        }
        Ok(None) => (
            500,
            Some("text/plain".to_owned()),
            Bytes::from(format!(
                "No event handler is registered for the event `{event}`."
            )),
            Vec::new(),
        ),
        Err(UpstreamError::Status { status, body, .. }) => {
            (status.as_u16(), None, Bytes::from(body), Vec::new())
        }
        Err(error) => {
            tracing::warn!(target: "webpubsub_emulator::mqtt", client = %conn.id, event, error = %error, "user event failed: {}", error.summary());
            (500, None, Bytes::new(), Vec::new())
        }
    };
    user.push(("azure-status-code".to_owned(), status.to_string()));
    let outcome = if (200..300).contains(&status) {
        "succeeded"
    } else {
        "failed"
    };
    Some(Publish {
        dup: false,
        qos: p.qos.min(1),
        retain: false,
        topic: format!("{EVENTS_PREFIX}{event}/{outcome}"),
        packet_id: 0,
        properties: Properties {
            content_type,
            correlation_data: p.properties.correlation_data.clone(),
            user_properties: user,
            ..Properties::default()
        },
        payload,
    })
}
