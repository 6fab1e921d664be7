//! How a connection ends ([`End`]): the reason, the `disconnected` report,
//! the DISCONNECT the service sends, whether the will is published and
//! whether the session ends too.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::hub::EndReport;
use crate::protocol::mqtt::{v5, DecodeError, MAX_PACKET};

/// How a connection ends.
#[derive(Debug)]
pub(super) struct End {
    /// The `disconnected` reason (and that of a session kept after it).
    pub(super) reason: Option<String>,
    /// What `disconnected` reports of the MQTT side.
    pub(super) report: EndReport,
    /// The DISCONNECT the service sends (5.0 only): code and reason.
    pub(super) disconnect: Option<(u8, String)>,
    /// Whether the will is published.
    pub(super) will: bool,
    /// Whether another connection took the client id over.
    pub(super) taken_over: bool,
    /// Whether the session ends too (REST close), not only the connection.
    pub(super) ends_session: bool,
}

impl End {
    /// The service ends the connection: DISCONNECT `code` first for 5.0.
    pub(super) fn service(code: u8, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            reason: Some(reason.clone()),
            report: EndReport::default(),
            disconnect: Some((code, reason)),
            will: true,
            taken_over: false,
            ends_session: false,
        }
    }

    /// The transport broke (no DISCONNECT).
    pub(super) fn lost() -> Self {
        Self {
            reason: Some("The connection was lost.".to_owned()),
            report: EndReport::default(),
            disconnect: None,
            will: true,
            taken_over: false,
            ends_session: false,
        }
    }

    /// A packet that could not be read: DISCONNECT with its reason code.
    pub(super) fn decode(error: &DecodeError) -> Self {
        match error {
            DecodeError::TooLarge(_) => Self::service(
                v5::PACKET_TOO_LARGE,
                format!("Packet too large: the limit is {MAX_PACKET} bytes."),
            ),
            DecodeError::Malformed(_) => Self::service(v5::MALFORMED, error.to_string()),
            DecodeError::TooManyUserProperties => {
                Self::service(v5::QUOTA_EXCEEDED, error.to_string())
            }
        }
    }
}
