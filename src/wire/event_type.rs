//! `ce-type`: which event a request carries.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;

const USER_PREFIX: &str = "azure.webpubsub.user.";

/// The event a `ce-type` names.
///
/// ```
/// use webpubsub::wire::EventType;
///
/// assert_eq!(EventType::parse("azure.webpubsub.sys.connect"), Some(EventType::Connect));
/// let chat = EventType::parse("azure.webpubsub.user.chat").unwrap();
/// assert_eq!(chat, EventType::User("chat"));
/// assert_eq!(chat.ce_type(), "azure.webpubsub.user.chat");
/// assert_eq!(EventType::GroupLeft.event_name(), "left");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType<'a> {
    /// `azure.webpubsub.sys.connect`: a client asks to connect (blocking).
    Connect,
    /// `azure.webpubsub.sys.connected`.
    Connected,
    /// `azure.webpubsub.sys.disconnected`.
    Disconnected,
    /// `azure.webpubsub.gp.joined`.
    GroupJoined,
    /// `azure.webpubsub.gp.left`.
    GroupLeft,
    /// A user event, with its name (the part after `azure.webpubsub.user.`).
    User(&'a str),
}

/// The system and group events: `ce-type` and `ce-eventName` of each.
const FIXED: [(EventType<'static>, &str, &str); 5] = [
    (EventType::Connect, "azure.webpubsub.sys.connect", "connect"),
    (
        EventType::Connected,
        "azure.webpubsub.sys.connected",
        "connected",
    ),
    (
        EventType::Disconnected,
        "azure.webpubsub.sys.disconnected",
        "disconnected",
    ),
    (
        EventType::GroupJoined,
        "azure.webpubsub.gp.joined",
        "joined",
    ),
    (EventType::GroupLeft, "azure.webpubsub.gp.left", "left"),
];

impl<'a> EventType<'a> {
    /// Reads a `ce-type` (ASCII case-insensitive, as the service's values
    /// are compared); `None` for anything that is not a Web PubSub event,
    /// a user event without a name included.
    #[must_use]
    pub fn parse(ce_type: &'a str) -> Option<Self> {
        // The service writes the types in lower case: an exact comparison
        // (a `memcmp`) finds them before the case-blind one, byte by byte.
        if let Some(&(kind, _, _)) = FIXED.iter().find(|(_, text, _)| *text == ce_type) {
            return Some(kind);
        }
        if let Some(prefix) = ce_type.get(..USER_PREFIX.len()) {
            if prefix.eq_ignore_ascii_case(USER_PREFIX) {
                let name = ce_type.get(USER_PREFIX.len()..).unwrap_or_default();
                return (!name.is_empty()).then_some(Self::User(name));
            }
        }
        FIXED
            .iter()
            .find(|(_, text, _)| text.eq_ignore_ascii_case(ce_type))
            .map(|(kind, _, _)| *kind)
    }

    /// The event an `ce-eventName` names: a system or group presence event
    /// by its fixed name (`connect`, `joined`, …), a user event otherwise.
    #[must_use]
    pub fn from_event_name(event_name: &'a str) -> Self {
        FIXED
            .iter()
            .find(|(_, _, name)| *name == event_name)
            .map_or(Self::User(event_name), |(kind, _, _)| *kind)
    }

    /// The `ce-type` the service sends for this event.
    #[must_use]
    pub fn ce_type(&self) -> Cow<'static, str> {
        match self {
            Self::User(name) => Cow::Owned(format!("{USER_PREFIX}{name}")),
            fixed => Cow::Borrowed(fixed.lookup().1),
        }
    }

    /// The `ce-eventName` the service sends for this event.
    #[must_use]
    pub fn event_name(&self) -> &'a str {
        match self {
            Self::User(name) => name,
            fixed => fixed.lookup().2,
        }
    }

    fn lookup(&self) -> (EventType<'static>, &'static str, &'static str) {
        FIXED
            .iter()
            .find(|(kind, _, _)| kind == self)
            .copied()
            .unwrap_or((EventType::Connect, "", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event of each kind.
    const EVERY_KIND: [EventType<'static>; 6] = [
        EventType::Connect,
        EventType::Connected,
        EventType::Disconnected,
        EventType::GroupJoined,
        EventType::GroupLeft,
        EventType::User("message"),
    ];

    #[test]
    fn ce_types_are_recognised_case_insensitively() {
        assert_eq!(
            EventType::parse("azure.webpubsub.sys.connect"),
            Some(EventType::Connect)
        );
        assert_eq!(
            EventType::parse("azure.webpubsub.sys.CONNECTED"),
            Some(EventType::Connected)
        );
        assert_eq!(
            EventType::parse("azure.webpubsub.user.chat.v2"),
            Some(EventType::User("chat.v2"))
        );
        assert_eq!(
            EventType::parse("azure.webpubsub.gp.left"),
            Some(EventType::GroupLeft)
        );
        assert_eq!(EventType::parse("azure.webpubsub.user."), None);
        assert_eq!(EventType::parse("azure.webpubsub.sys.foo"), None);
        assert_eq!(EventType::parse("azure.webpubsub.use"), None);
        assert_eq!(EventType::parse("é"), None);
    }

    #[test]
    fn every_type_writes_what_it_reads() {
        for kind in EVERY_KIND {
            assert_eq!(EventType::parse(&kind.ce_type()), Some(kind));
        }
        assert_eq!(EventType::Connect.event_name(), "connect");
        assert_eq!(EventType::GroupJoined.event_name(), "joined");
        assert_eq!(EventType::User("echo").event_name(), "echo");
    }

    #[test]
    fn event_names_give_back_their_type() {
        for kind in EVERY_KIND {
            assert_eq!(EventType::from_event_name(kind.event_name()), kind);
        }
    }
}
