//! Why the hubs refuse a connection, a group or a detached connection
//! ([`Refusal`]).

/// Why a connection was not added, or not added to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such connection (any more).
    UnknownConnection,
    /// The connection is in this many groups already, the cap.
    TooManyGroups(usize),
    /// The user has this many connections to the hub already, the cap.
    TooManyConnections(usize),
    /// This many connections are kept without a socket already (in all
    /// hubs, or of connections without a user id in this hub), the cap.
    TooManyDetached(usize),
    /// The connection holds this many bytes, more than the most one kept
    /// without a socket may (the second number).
    HoldsTooMuch(usize, usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownConnection => f.write_str("The connection does not exist."),
            Self::TooManyGroups(max) => write!(
                f,
                "Too many groups: a connection may be in at most {max} groups (max_groups_per_connection)."
            ),
            Self::TooManyConnections(max) => write!(
                f,
                "Too many connections: a user may have at most {max} connections to a hub (max_connections_per_user)."
            ),
            Self::TooManyDetached(max) => write!(
                f,
                "Too many connections kept without a socket: at most {max} (max_detached_connections, max_connections_per_user)."
            ),
            Self::HoldsTooMuch(held, max) => write!(
                f,
                "It holds {held} bytes, more than the {max} a connection kept without a socket may (detached_bytes)."
            ),
        }
    }
}
