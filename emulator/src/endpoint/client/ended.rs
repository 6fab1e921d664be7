//! How a client socket ends ([`Ended`]), and the end of one whose frame
//! broke the protocol ([`invalid`]).

use crate::protocol::Invalid;

/// How a socket ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The client sent a close frame.
    ClientClosed,
    /// The transport broke without a close handshake.
    Dropped,
    /// The service closed it (REST), with this reason.
    ServiceClosed(String),
    /// Closed by the service with this close code and reason (not recoverable).
    Terminated(u16, String),
}

impl From<Invalid> for Ended {
    /// A frame that broke the protocol ends the socket (close code 1003).
    fn from(Invalid(reason): Invalid) -> Self {
        Self::Terminated(1003, format!("Invalid message: {reason}"))
    }
}

/// The end of a socket that broke the protocol (close code 1003).
pub(super) fn invalid(reason: &str) -> Ended {
    Ended::from(Invalid(reason.to_owned()))
}
