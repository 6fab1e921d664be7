//! Plain WebSocket clients (no subprotocol): every frame is the data
//! alone, a `message` event unless the query put the client in
//! `sendToGroup` mode ([`RawMode`]); what they get is the data alone too
//! ([`frame`]).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::extract::ws::{Message, Utf8Bytes};

use crate::hub::Data;
use webpubsub::events::DataType;

/// Options of simple clients.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawMode {
    /// `sendToGroup` mode: frames go to this group.
    pub(crate) group: Option<String>,
    /// In `sendToGroup` mode, whether the sender is left out.
    pub(crate) no_echo: bool,
}

impl RawMode {
    /// Reads `webpubsub_mode=sendToGroup&group=…` (optionally
    /// `noEcho=true`) from the query, `param` giving a parameter's first
    /// value. `Err`: why the mode is refused (an unknown mode, a missing
    /// group).
    pub(crate) fn from_query<'a>(
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Self, &'static str> {
        let mode = param("webpubsub_mode").unwrap_or("sendEvent");
        let group = if mode.eq_ignore_ascii_case("sendToGroup") {
            match param("group").filter(|g| !g.trim().is_empty()) {
                Some(group) => Some(group.to_owned()),
                None => return Err("webpubsub_mode=sendToGroup needs a group"),
            }
        } else if mode.eq_ignore_ascii_case("sendEvent") {
            None
        } else {
            return Err("webpubsub_mode must be sendEvent or sendToGroup");
        };
        let no_echo = param("noEcho").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Self { group, no_echo })
    }
}

/// A message as a plain client gets it: binary data as a binary frame,
/// anything else as text.
pub(crate) fn frame(data: &Data) -> Message {
    let bytes = data.bytes.clone();
    match data.kind {
        DataType::Binary => Message::Binary(bytes),
        _ => Message::Text(
            Utf8Bytes::try_from(bytes.clone())
                .unwrap_or_else(|_| Utf8Bytes::from(String::from_utf8_lossy(&bytes).into_owned())),
        ),
    }
}
