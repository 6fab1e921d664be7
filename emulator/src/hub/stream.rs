//! The group streams a connection sends, as state: which are open, where
//! they go, how far they got. What stream frames mean is the client
//! endpoint's (`endpoint/client/stream.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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
