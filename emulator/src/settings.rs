//! What the emulator is configured with: the hubs' event handlers and
//! which events each one receives, the listener's bounds, the default key.

use std::time::Duration;

use webpubsub::wire::EventType;

/// The access key the `webpubsub-emulator` binary uses unless given one.
pub const DEFAULT_ACCESS_KEY: &str = "webpubsub-emulator-local-key-0123456789";

/// How the listener bounds its connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerLimits {
    /// Open sockets at a time (HTTP and WebSocket alike).
    pub(crate) max_connections: usize,
    /// How long a connection may take to deliver a request head, counted
    /// from accept or from the previous response.
    pub(crate) header_read_timeout: Duration,
}

/// A system event an event handler can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemEvent {
    /// `connect`: blocking, before the WebSocket handshake completes.
    Connect,
    /// `connected`: after the client connected.
    Connected,
    /// `disconnected`: after the connection ended.
    Disconnected,
}

/// One event handler of a hub: where events go and which ones.
///
/// The URL template may hold `{hub}` and `{event}`. By default the handler
/// receives every system event and every user event (`*`), and its calls
/// carry no `Authorization` header (the service's "no authentication").
#[derive(Debug, Clone)]
#[must_use]
pub struct EventHandlerSettings {
    pub(crate) url_template: String,
    system_events: Vec<SystemEvent>,
    user_events: String,
    /// The audience of the managed-identity bearer token, if any.
    pub(crate) auth_resource: Option<String>,
}

impl EventHandlerSettings {
    /// A handler at `url_template` for all system and user events.
    pub fn new(url_template: impl Into<String>) -> Self {
        Self {
            url_template: url_template.into(),
            system_events: vec![
                SystemEvent::Connect,
                SystemEvent::Connected,
                SystemEvent::Disconnected,
            ],
            user_events: "*".to_owned(),
            auth_resource: None,
        }
    }

    /// Authenticates the calls with the emulator's managed identity, as the
    /// service's `auth: {"type": "ManagedIdentity", "managedIdentity":
    /// {"resource": …}}`: every event call (not the abuse-protection
    /// `OPTIONS`) carries `Authorization: Bearer <token>` from the
    /// emulator's own Entra ID, with `aud` = `resource`, `oid` / `sub` /
    /// `azp` = the emulator's [managed identity](crate::EmulatorBuilder::managed_identity)
    /// and `iss` = `{base}/{tenant}/v2.0`, whose keys are at
    /// `{base}/{tenant}/discovery/v2.0/keys`. The token is reused until 5
    /// minutes before it expires (it lives 1 hour).
    ///
    /// Microsoft's docs do not say whether the service sends a bearer token
    /// with the abuse-protection `OPTIONS`; the emulator sends none there.
    ///
    /// ```
    /// # use webpubsub_emulator::{Emulator, EventHandlerSettings, HubSettings};
    /// let handler = EventHandlerSettings::new("http://127.0.0.1:3000/eventhandler")
    ///     .managed_identity("api://my-app");
    /// let emulator = Emulator::builder().hub(HubSettings::new("chat").event_handler(handler)).build();
    /// assert!(emulator.is_ok());
    /// ```
    pub fn managed_identity(mut self, resource: impl Into<String>) -> Self {
        self.auth_resource = Some(resource.into());
        self
    }

    /// The system events this handler receives (replacing the default: all three).
    pub fn system_events(mut self, events: impl IntoIterator<Item = SystemEvent>) -> Self {
        self.system_events = events.into_iter().collect();
        self
    }

    /// The user events this handler receives: `*`, one name, or a
    /// comma-separated list (case-insensitive); empty for none.
    pub fn user_events(mut self, pattern: impl Into<String>) -> Self {
        self.user_events = pattern.into();
        self
    }

    fn matches(&self, kind: EventType<'_>) -> bool {
        match kind {
            EventType::Connect => self.system_events.contains(&SystemEvent::Connect),
            EventType::Connected => self.system_events.contains(&SystemEvent::Connected),
            EventType::Disconnected => self.system_events.contains(&SystemEvent::Disconnected),
            // The emulator sends no group presence events.
            EventType::GroupJoined | EventType::GroupLeft => false,
            EventType::User(name) => self
                .user_events
                .split(',')
                .map(str::trim)
                .any(|p| p == "*" || p.eq_ignore_ascii_case(name)),
        }
    }
}

/// Settings of one hub: its event handlers, tried in order.
#[derive(Debug, Clone)]
#[must_use]
pub struct HubSettings {
    pub(crate) name: String,
    pub(crate) handlers: Vec<EventHandlerSettings>,
}

impl HubSettings {
    /// A hub with no event handler yet (clients connect with their token's
    /// identity; user events fail).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            handlers: Vec::new(),
        }
    }

    /// Adds an event handler; for each event the first that subscribes to it is called.
    pub fn event_handler(mut self, handler: EventHandlerSettings) -> Self {
        self.handlers.push(handler);
        self
    }

    pub(crate) fn handler_for(&self, kind: EventType<'_>) -> Option<&EventHandlerSettings> {
        self.handlers.iter().find(|h| h.matches(kind))
    }
}
