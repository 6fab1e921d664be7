//! The group streams a connection sends, as state: which are open, where
//! they go, how far they got. What stream frames mean is the client
//! endpoint's (`endpoint/client/stream.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{lock, Hubs};
use crate::shown::{clip, SHOWN_VALUE};

/// The open streams of one connection (its sender side).
#[derive(Debug, Default)]
pub(crate) struct Streams {
    pub(crate) open: HashMap<Arc<str>, OpenStream>,
    /// Tells a reopened stream id from the stream an idle timer watches.
    pub(crate) opened: u64,
}

/// One open stream: where it goes and how far it got.
#[derive(Debug)]
pub(crate) struct OpenStream {
    pub(crate) group: Arc<str>,
    pub(crate) no_echo: bool,
    /// The next `streamSequenceId` to publish.
    pub(crate) expected: u64,
    /// How long it may go without data or keep-alive.
    pub(crate) idle: Duration,
    pub(crate) last_seen: Instant,
    pub(crate) since: Instant,
    /// Which opening of this stream id an idle timer watches.
    pub(crate) token: u64,
}

/// An open stream as the live view shows it: where it goes, who sends
/// it, how far it got. Never its data.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamView {
    hub: String,
    connection_id: String,
    user_id: Option<String>,
    stream_id: String,
    group: String,
    /// Fragments published so far.
    fragments: u64,
    age_ms: u64,
    idle_timeout_ms: u64,
}

impl Hubs {
    /// The open streams of `hub` (or of every hub), oldest first, at most
    /// `max` of them, and how many are open in all.
    pub(crate) fn open_streams(&self, hub: Option<&str>, max: usize) -> (Vec<StreamView>, usize) {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut total = 0;
        let mut views = Vec::new();
        for conn in self.connections() {
            if hub.is_some_and(|hub| !conn.hub.eq_ignore_ascii_case(hub)) {
                continue;
            }
            let streams = lock(&conn.streams);
            total += streams.open.len();
            views.extend(streams.open.iter().map(|(id, s)| {
                (
                    s.since,
                    StreamView {
                        hub: clip(&conn.hub.to_ascii_lowercase(), SHOWN_VALUE),
                        connection_id: clip(&conn.id, SHOWN_VALUE),
                        user_id: conn.user_id.as_deref().map(|u| clip(u, SHOWN_VALUE)),
                        stream_id: clip(id, SHOWN_VALUE),
                        group: clip(&s.group, SHOWN_VALUE),
                        fragments: s.expected.saturating_sub(1),
                        age_ms: millis(s.since.elapsed()),
                        idle_timeout_ms: millis(s.idle),
                    },
                )
            }));
        }
        views.sort_unstable_by_key(|(since, _)| *since);
        views.truncate(max);
        (views.into_iter().map(|(_, view)| view).collect(), total)
    }
}
