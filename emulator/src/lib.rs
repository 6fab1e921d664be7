//! A local emulator of the Azure Web PubSub service.
//!
//! It serves the client WebSocket endpoint (`/client/hubs/{hub}`, plain
//! WebSocket and the `json.webpubsub.azure.v1` / `json.reliable.webpubsub.azure.v1`
//! subprotocols), calls the hubs' event handlers exactly as the service
//! does (abuse-protection handshake, signed CloudEvents, connection state),
//! and answers the REST data plane (`/api/…`) with the service's paths,
//! token check and status codes. Microsoft's own client libraries work
//! against it unchanged, and so does [`WebPubSubServiceClient`](webpubsub::WebPubSubServiceClient).
//!
//! Its live view at `/_emulator` shows each hub's connections (a page at a
//! time, with their groups and roles) and the latest 200 upstream calls
//! with their request headers. It is for this machine only: it answers
//! only when the request's `Host` is `localhost`, `*.localhost`,
//! `127.0.0.0/8`, `[::1]` or the [host](EmulatorBuilder::host) the emulator
//! goes by (else `421`), and refuses cross-site browser requests (`403`).
//! It never shows `ce-signature`, `ce-connectionState`, `Authorization`
//! or cookie values (only their length), nor token-like query values of
//! handler URLs.
//!
//! Run it alone with `cargo run -p webpubsub-emulator`,
//! or embed it:
//!
//! ```no_run
//! use webpubsub_emulator::{Emulator, EventHandlerSettings, HubSettings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::builder()
//!     .access_key("local-emulator-key-0123456789abcdef")
//!     .hub(HubSettings::new("chat").event_handler(EventHandlerSettings::new(
//!         "http://127.0.0.1:3000/eventhandler",
//!     )))
//!     .build()?;
//! let running = emulator.start("127.0.0.1:8080".parse()?).await?;
//! println!("{}", running.connection_string());
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod filter;
mod frames;
mod hub;
mod listen;
mod live;
mod permissions;
mod rest;
mod upstream;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use http::{HeaderMap, Uri};

use webpubsub::config::{AccessKey, ConfigError};
use webpubsub::wire::EventType;

/// Entry points for `fuzz/` (not a public API).
#[doc(hidden)]
pub mod __fuzz {
    use super::filter::{FilterSubject, ODataFilter};

    struct Subject<'a> {
        user: Option<&'a str>,
        id: &'a str,
        groups: &'a [&'a str],
    }

    impl FilterSubject for Subject<'_> {
        fn user_id(&self) -> Option<&str> {
            self.user
        }
        fn connection_id(&self) -> &str {
            self.id
        }
        fn in_group(&self, group: &str) -> bool {
            self.groups.contains(&group)
        }
        fn group_count(&self) -> usize {
            self.groups.len()
        }
    }

    /// Parses `text` as an OData filter and, if it is valid, evaluates it
    /// (and its negation) against a few connections. Panics only if the
    /// filter module breaks its own rules.
    pub fn odata_filter(text: &str) {
        let Ok(filter) = ODataFilter::parse(text) else {
            return;
        };
        let subjects = [
            Subject {
                user: None,
                id: "c1",
                groups: &[],
            },
            Subject {
                user: Some("alice"),
                id: "c2",
                groups: &["g1", "room"],
            },
            Subject {
                user: Some(""),
                id: "",
                groups: &["ü", "a.b"],
            },
        ];
        let negated = ODataFilter::parse(&format!("not ({text})"));
        for subject in &subjects {
            let yes = filter.matches(subject);
            if let Ok(negated) = &negated {
                assert_ne!(
                    yes,
                    negated.matches(subject),
                    "`not ({text})` must invert `{text}`"
                );
            }
        }
    }
}

/// The access key the `webpubsub-emulator` binary uses unless given one.
pub const DEFAULT_ACCESS_KEY: &str = "webpubsub-emulator-local-key-0123456789";

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
/// receives every system event and every user event (`*`).
#[derive(Debug, Clone)]
#[must_use]
pub struct EventHandlerSettings {
    url_template: String,
    system_events: Vec<SystemEvent>,
    user_events: String,
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
        }
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
    name: String,
    handlers: Vec<EventHandlerSettings>,
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

    fn handler_for(&self, kind: EventType<'_>) -> Option<&EventHandlerSettings> {
        self.handlers.iter().find(|h| h.matches(kind))
    }
}

/// Settings of an [`Emulator`], checked by [`build`](Self::build).
///
/// Its `Debug` output shows neither access key.
///
/// # Bounds
///
/// Whatever its clients do, the emulator holds a bounded amount: the
/// defaults below keep a laptop responsive, and every bound has a setter.
///
/// | bound | default | over it |
/// |---|---|---|
/// | [open sockets](Self::max_connections) ([`start`](Emulator::start) only) | 512 | `503` and closed at once |
/// | [time for a request head](Self::header_read_timeout) ([`start`](Emulator::start) only) | 10 s | closed |
/// | [connections per user and hub](Self::max_connections_per_user) | 100 | handshake `429` |
/// | [groups per connection](Self::max_groups_per_connection) | 100 | `joinGroup` error ack, REST `403`, handshake `400` |
/// | [remembered ack ids](Self::remembered_ack_ids) | 1,000 | older ids forgotten |
/// | [queued bytes](Self::send_queue_bytes) / [messages](Self::send_queue) per connection | 16 MiB / 4,096 | disconnected as too slow |
/// | [client silence](Self::client_timeout) | 60 s | socket dropped |
/// | WebSocket message and frame | 1 MiB | close `1009` |
/// | unacknowledged reliable messages | 1,000 or 16 MiB | close `1008` |
///
/// A message sent to many connections is held once, however many queues
/// and reliable buffers it waits in, so what clients can make the emulator
/// hold grows with what they upload, within the caps above.
#[derive(Clone)]
#[must_use]
pub struct EmulatorBuilder {
    access_key: String,
    secondary_key: Option<String>,
    host: String,
    hubs: Vec<HubSettings>,
    retry_delays: Vec<Duration>,
    upstream_timeout: Duration,
    queue: usize,
    queue_bytes: usize,
    recovery_window: Duration,
    max_connections: usize,
    header_read_timeout: Duration,
    connections_per_user: usize,
    groups_per_connection: usize,
    ack_ids: usize,
    client_timeout: Duration,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("access_key", &"<redacted>")
            .field(
                "secondary_access_key",
                &self.secondary_key.as_ref().map(|_| "<redacted>"),
            )
            .field("host", &self.host)
            .field("hubs", &self.hubs)
            .field("upstream_retry_delays", &self.retry_delays)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("send_queue", &self.queue)
            .field("send_queue_bytes", &self.queue_bytes)
            .field("recovery_window", &self.recovery_window)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections_per_user", &self.connections_per_user)
            .field("max_groups_per_connection", &self.groups_per_connection)
            .field("remembered_ack_ids", &self.ack_ids)
            .field("client_timeout", &self.client_timeout)
            .finish()
    }
}

impl EmulatorBuilder {
    /// The access key (default [`DEFAULT_ACCESS_KEY`]).
    pub fn access_key(mut self, key: impl Into<String>) -> Self {
        self.access_key = key.into();
        self
    }

    /// A second key: events are signed with both, tokens made with it are accepted too.
    pub fn secondary_access_key(mut self, key: impl Into<String>) -> Self {
        self.secondary_key = Some(key.into());
        self
    }

    /// The host name the emulator goes by (default `localhost`): sent as
    /// `WebHook-Request-Origin`, and used in [`RunningEmulator::connection_string`].
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Configures a hub.
    pub fn hub(mut self, hub: HubSettings) -> Self {
        self.hubs.push(hub);
        self
    }

    /// Waits before retrying an upstream call that failed with a network
    /// error, `408` or `5xx` (default 1 s, 3 s, 5 s, as the service).
    pub fn upstream_retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.retry_delays = delays.into_iter().collect();
        self
    }

    /// How long one upstream call may take (default 100 s).
    pub fn upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = timeout;
        self
    }

    /// How many messages may wait for one connection before it is
    /// disconnected as too slow (default 4096).
    pub fn send_queue(mut self, messages: usize) -> Self {
        self.queue = messages;
        self
    }

    /// How many bytes of messages may wait for one connection before it is
    /// disconnected as too slow (default 16 MiB). A message counts its
    /// payload plus 64 bytes from when it is queued until it is written to
    /// the socket; keep this above the largest message you send.
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// How many sockets [`Emulator::start`] keeps open at a time, HTTP and
    /// WebSocket alike (default 512; 0 counts as 1). Sockets over it get a
    /// `503 Service Unavailable` and are closed at once. Keep it below the
    /// process's file-descriptor limit (`ulimit -n`). Does not apply to a
    /// [`router`](Emulator::router) you serve yourself.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a socket of [`Emulator::start`] may take to send a
    /// complete request head, counted from when it opened or from the
    /// previous response (default 10 s). Covers sockets that send nothing,
    /// heads trickled byte by byte and idle keep-alive connections: all are
    /// closed when it passes. Does not apply to a
    /// [`router`](Emulator::router) you serve yourself.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How many connections one user id may have to one hub at a time
    /// (default 100; 0 counts as 1). The handshake of one more is refused
    /// with `429 Too Many Requests`. Connections without a user id are
    /// bounded by [`max_connections`](Self::max_connections) only.
    pub fn max_connections_per_user(mut self, connections: usize) -> Self {
        self.connections_per_user = connections;
        self
    }

    /// How many groups one connection may be in (default 100; 0 counts as
    /// 1). Joining one more is refused: a `joinGroup` gets an error ack
    /// (`Forbidden`, "Too many groups…"), a REST add of that connection
    /// `403`, REST adds of a user or by filter leave that connection out,
    /// and a token or `connect` answer with more groups fails the handshake
    /// (`400` / `500`).
    pub fn max_groups_per_connection(mut self, groups: usize) -> Self {
        self.groups_per_connection = groups;
        self
    }

    /// How many of its last `ackId`s a connection's duplicates are checked
    /// against (default 1000; 0 counts as 1). A repeated id among them gets
    /// a `Duplicate` ack and is not executed again; older ids are forgotten
    /// and count as new. Client libraries number acks 1, 2, 3… and retry
    /// within seconds, so only a retry more than this many requests late
    /// would run twice.
    pub fn remembered_ack_ids(mut self, ack_ids: usize) -> Self {
        self.ack_ids = ack_ids;
        self
    }

    /// How long a client WebSocket may stay silent — no message, no pong —
    /// before its socket is dropped (default 60 s). The emulator pings every
    /// client every third of this (at most every 20 s, as the service), so a
    /// live client always has something to answer. A reliable connection
    /// whose socket is dropped can still be recovered.
    pub fn client_timeout(mut self, timeout: Duration) -> Self {
        self.client_timeout = timeout;
        self
    }

    /// How long a reliable connection whose transport broke is kept for
    /// recovery (default 30 s).
    pub fn recovery_window(mut self, window: Duration) -> Self {
        self.recovery_window = window;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::EmptyAccessKey`] for an empty or blank key (primary or secondary);
    /// - [`ConfigError::InvalidHub`] / [`ConfigError::DuplicateHub`] for a bad or repeated hub;
    /// - [`ConfigError::InvalidEndpoint`] for an event handler URL that is not `http(s)`;
    /// - [`ConfigError::HttpClient`] when the HTTP client cannot be set up.
    pub fn build(self) -> Result<Emulator, ConfigError> {
        let key = AccessKey::new(&self.access_key)?;
        let secondary = self
            .secondary_key
            .as_deref()
            .map(AccessKey::new)
            .transpose()?;
        let mut settings = HashMap::new();
        for hub in self.hubs {
            if !webpubsub::names::HubName::is_valid(&hub.name) {
                return Err(ConfigError::InvalidHub { hub: hub.name });
            }
            for handler in &hub.handlers {
                let sample = upstream::expand(&handler.url_template, &hub.name, "connect");
                let ok = url::Url::parse(&sample).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                });
                if !ok {
                    return Err(ConfigError::InvalidEndpoint {
                        value: handler.url_template.clone(),
                        reason: "an event handler URL template must be an http(s) URL".to_owned(),
                    });
                }
            }
            let key = hub.name.to_ascii_lowercase();
            if settings.contains_key(&key) {
                return Err(ConfigError::DuplicateHub { hub: hub.name });
            }
            settings.insert(key, hub);
        }
        let mut keys = vec![key.clone()];
        keys.extend(secondary.clone());
        let upstream = upstream::Upstream::new(
            keys,
            self.host.clone(),
            self.retry_delays,
            self.upstream_timeout,
        )
        .map_err(|e| ConfigError::HttpClient {
            reason: e.to_string(),
        })?;
        Ok(Emulator {
            shared: Arc::new(Shared {
                key,
                secondary,
                key_text: self.access_key,
                host: self.host,
                settings,
                hubs: hub::Hubs::new(hub::Caps {
                    connections_per_user: self.connections_per_user,
                    groups_per_connection: self.groups_per_connection,
                }),
                upstream,
                queue: self.queue,
                queue_bytes: self.queue_bytes,
                ack_ids: self.ack_ids,
                client_timeout: self.client_timeout,
                listener: listen::Limits {
                    max_connections: self.max_connections,
                    header_read_timeout: self.header_read_timeout,
                },
                reconnect_key: client::ReconnectKey::random(),
                recovery_window: self.recovery_window,
            }),
        })
    }
}

/// What every request handler of the emulator shares.
pub(crate) struct Shared {
    pub(crate) key: AccessKey,
    pub(crate) secondary: Option<AccessKey>,
    pub(crate) key_text: String,
    pub(crate) host: String,
    settings: HashMap<String, HubSettings>,
    pub(crate) hubs: hub::Hubs,
    pub(crate) upstream: upstream::Upstream,
    pub(crate) queue: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) ack_ids: usize,
    pub(crate) client_timeout: Duration,
    listener: listen::Limits,
    /// Signs reconnection tokens; random, made at build time.
    pub(crate) reconnect_key: client::ReconnectKey,
    pub(crate) recovery_window: Duration,
}

impl Shared {
    pub(crate) fn settings(&self, hub: &str) -> Option<&HubSettings> {
        self.settings.get(&hub.to_ascii_lowercase())
    }

    /// Verifies a token signed with the primary or the secondary key.
    pub(crate) fn verify_token(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, auth::AuthError> {
        match (auth::verify(token, &self.key), &self.secondary) {
            (Err(auth::AuthError::Signature), Some(secondary)) => auth::verify(token, secondary),
            (result, _) => result,
        }
    }

    /// Tells the live view something changed.
    pub(crate) fn changed(&self) {
        self.upstream.changes.send_modify(|n| *n += 1);
    }
}

/// A local Web PubSub service: build it, then [`start`](Self::start) it or
/// mount its [`router`](Self::router).
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// Settings with defaults: key [`DEFAULT_ACCESS_KEY`], host `localhost`, no hubs configured.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            access_key: DEFAULT_ACCESS_KEY.to_owned(),
            secondary_key: None,
            host: "localhost".to_owned(),
            hubs: Vec::new(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(5),
            ],
            upstream_timeout: Duration::from_secs(100),
            queue: 4096,
            queue_bytes: 16 * 1024 * 1024,
            recovery_window: Duration::from_secs(30),
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            connections_per_user: 100,
            groups_per_connection: 100,
            ack_ids: 1000,
            client_timeout: Duration::from_secs(60),
        }
    }

    /// The emulator's routes (`/client/…`, `/api/…`, `/_emulator/…`), to
    /// serve at the root of an axum server.
    ///
    /// `/_emulator` is the live view (hubs, connections, recent upstream
    /// calls), fed by `GET /_emulator/api/state[?hub=&offset=&limit=&since=]`:
    /// one page of connections (`limit` 1 to 500, default 100), each with at
    /// most 10 groups and roles plus their counts, per-hub totals and the
    /// `nextOffset`. It is for this machine only, and rejects:
    ///
    /// - a `Host` that is not `localhost`, `*.localhost`, `127.0.0.0/8`,
    ///   `[::1]` or the configured [host](EmulatorBuilder::host) (port
    ///   ignored) — so DNS rebinding does not reach it — with
    ///   `421 Misdirected Request`; a missing `Host` with `400`;
    /// - `Sec-Fetch-Site: cross-site`, or an `Origin` other than the `Host`,
    ///   with `403`;
    /// - a malformed `since`, `hub`, `offset` or `limit` with `400`.
    ///
    /// The values of `ce-signature`, `ce-connectionState`, `Authorization`,
    /// `Proxy-Authorization` and `Cookie` are never shown (only their
    /// length), nor passwords and token-like query values (`access_token`,
    /// `code`, `key`, `sig`, …) in handler URLs; other values are cut to
    /// 256 bytes.
    ///
    /// ```
    /// # use webpubsub_emulator::Emulator;
    /// # use tower::ServiceExt;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let router = Emulator::builder().build()?.router();
    /// let request = http::Request::get("/_emulator/api/state")
    ///     .header("host", "attacker.example")
    ///     .body(axum::body::Body::empty())?;
    /// let response = router.oneshot(request).await?;
    /// assert_eq!(response.status(), http::StatusCode::MISDIRECTED_REQUEST);
    /// # Ok(()) }
    /// ```
    pub fn router(&self) -> Router {
        Router::new()
            .route("/client/hubs/{hub}", any(client_by_path))
            .route("/client", any(client_by_query))
            .route("/client/", any(client_by_query))
            .route("/api/{*rest}", any(rest::handle))
            .route("/_emulator", get(live::page))
            .route("/_emulator/", get(live::page))
            .route("/_emulator/api/state", get(live::state))
            .with_state(self.shared.clone())
    }

    /// The connection string of this emulator listening on `port`.
    #[must_use]
    pub fn connection_string(&self, port: u16) -> String {
        format!(
            "Endpoint=http://{};Port={port};AccessKey={};Version=1.0;",
            self.shared.host, self.shared.key_text
        )
    }

    /// Binds `addr` and serves in the background until
    /// [`RunningEmulator::shutdown`], with the listener's bounds
    /// ([`max_connections`](EmulatorBuilder::max_connections),
    /// [`header_read_timeout`](EmulatorBuilder::header_read_timeout)).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = self.router();
        let limits = self.shared.listener;
        let task = tokio::spawn(listen::serve(listener, router, limits, stopped));
        tracing::info!(target: "webpubsub::emulator", %addr,
            max_connections = limits.max_connections, "emulator listening");
        Ok(RunningEmulator {
            emulator: self,
            addr,
            stop: Some(stop),
            task,
        })
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("host", &self.shared.host)
            .field("hubs", &self.shared.settings.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// An emulator serving in the background.
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many hubs the emulator holds state for (hubs with a connection).
    /// For tests of its bounds; not a stable API.
    #[doc(hidden)]
    #[must_use]
    pub fn __hubs_with_state(&self) -> usize {
        self.emulator.shared.hubs.hub_count()
    }

    /// `http://{host}:{port}`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.emulator.shared.host, self.addr.port())
    }

    /// A connection string for applications and service clients.
    #[must_use]
    pub fn connection_string(&self) -> String {
        self.emulator.connection_string(self.addr.port())
    }

    /// Closes every client connection and stops serving.
    pub async fn shutdown(mut self) {
        close_all(&self.emulator.shared, "The service is shutting down.");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn close_all(shared: &Arc<Shared>, reason: &str) {
    for conn in shared.hubs.connections() {
        if hub::lock(&conn.parked).take().is_some() {
            client::finish(shared, &conn, Some(reason.to_owned()));
        } else {
            conn.send(hub::Outbound::Close {
                reason: reason.to_owned(),
            });
        }
    }
}

async fn client_by_path(
    State(shared): State<Arc<Shared>>,
    Path(hub): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    client::handshake(shared, Some(hub), uri, headers, ws).await
}

async fn client_by_query(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    client::handshake(shared, None, uri, headers, ws).await
}
