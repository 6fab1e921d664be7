//! The emulator's settings ([`EmulatorBuilder`]): what can be set, with
//! the defaults and bounds; `build.rs` checks them into an [`Emulator`].

mod build;

use std::fmt;
use std::time::Duration;

use crate::entra;
use crate::server::Emulator;
use crate::settings::{HubSettings, DEFAULT_ACCESS_KEY};

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
/// | [bytes held](Self::send_queue_bytes) / [messages queued](Self::send_queue) per connection | 16 MiB / 4,096 | disconnected as too slow |
/// | [client silence](Self::client_timeout) | 60 s | socket dropped |
/// | WebSocket message and frame | 1 MiB | close `1009` |
/// | unacknowledged reliable messages | 1,000 (and the connection's bytes) | close `1008` |
/// | unacknowledged MQTT QoS 1 messages | 1,024 (and the connection's bytes) | DISCONNECT `0x97` |
/// | [connections kept without a socket](Self::max_detached_connections) | 512 in all, and per user | not kept: `disconnected` |
/// | [bytes held by one of them](Self::detached_bytes) | 1 MiB | not kept, or ended |
///
/// A message sent to many connections is held once, however many queues
/// and reliable buffers it waits in, so what clients can make the emulator
/// hold grows with what they upload, within the caps above.
///
/// # Authentication
///
/// | setting | default |
/// |---|---|
/// | [access key](Self::access_key) (HS256 REST and client tokens, `ce-signature`) | [`DEFAULT_ACCESS_KEY`] |
/// | [local auth](Self::disable_local_auth) (the access keys) | on |
/// | [tenant of its Entra ID](Self::tenant_id) | [`DEFAULT_TENANT_ID`](crate::DEFAULT_TENANT_ID) |
/// | [app registration](Self::app_registration) allowed to get tokens | [`DEFAULT_CLIENT_ID`](crate::DEFAULT_CLIENT_ID) / a random secret made by [`build`](Self::build) ([`Emulator::client_secret`]) |
/// | [its own managed identity](Self::managed_identity) (upstream bearer tokens) | [`DEFAULT_MANAGED_IDENTITY_CLIENT_ID`](crate::DEFAULT_MANAGED_IDENTITY_CLIENT_ID) / [`DEFAULT_MANAGED_IDENTITY_OBJECT_ID`](crate::DEFAULT_MANAGED_IDENTITY_OBJECT_ID) |
/// | [HTTPS listener](Self::https_port) | off |
/// | [token endpoint, Entra ID documents, live view](Self::insecure_allow_remote_admin) | loopback peers only |
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
    mqtt_session_expiry: Duration,
    max_detached: usize,
    detached_bytes: usize,
    max_connections: usize,
    header_read_timeout: Duration,
    connections_per_user: usize,
    groups_per_connection: usize,
    ack_ids: usize,
    client_timeout: Duration,
    local_auth: bool,
    tenant: uuid::Uuid,
    app_client_id: uuid::Uuid,
    /// `None`: a random one, made by `build`.
    app_secret: Option<String>,
    app_object_id: uuid::Uuid,
    identity: (uuid::Uuid, uuid::Uuid),
    https_port: Option<u16>,
    remote_admin: bool,
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
            .field("mqtt_session_expiry", &self.mqtt_session_expiry)
            .field("max_detached_connections", &self.max_detached)
            .field("detached_bytes", &self.detached_bytes)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections_per_user", &self.connections_per_user)
            .field("max_groups_per_connection", &self.groups_per_connection)
            .field("remembered_ack_ids", &self.ack_ids)
            .field("client_timeout", &self.client_timeout)
            .field("local_auth", &self.local_auth)
            .field("tenant_id", &self.tenant)
            .field("app_client_id", &self.app_client_id)
            .field(
                "app_secret",
                &if self.app_secret.is_some() {
                    "<redacted>"
                } else {
                    "<random>"
                },
            )
            .field("app_object_id", &self.app_object_id)
            .field("managed_identity", &self.identity)
            .field("https_port", &self.https_port)
            .field("remote_admin", &self.remote_admin)
            .finish()
    }
}

impl Emulator {
    /// Settings with defaults: key [`DEFAULT_ACCESS_KEY`], host `localhost`, no hubs configured.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::new()
    }
}

impl EmulatorBuilder {
    /// The defaults ([`Emulator::builder`]).
    pub(crate) fn new() -> Self {
        Self {
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
            mqtt_session_expiry: Duration::from_secs(30),
            max_detached: 512,
            detached_bytes: 1024 * 1024,
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            connections_per_user: 100,
            groups_per_connection: 100,
            ack_ids: 1000,
            client_timeout: Duration::from_secs(60),
            local_auth: true,
            tenant: entra::DEFAULT_TENANT_ID,
            app_client_id: entra::DEFAULT_CLIENT_ID,
            app_secret: None,
            app_object_id: entra::DEFAULT_APP_OBJECT_ID,
            identity: (
                entra::DEFAULT_MANAGED_IDENTITY_CLIENT_ID,
                entra::DEFAULT_MANAGED_IDENTITY_OBJECT_ID,
            ),
            https_port: None,
            remote_admin: false,
        }
    }

    /// Turns the access keys off, as Azure's `disableLocalAuth: true`
    /// (default: on). Then:
    ///
    /// - the emulator has no access key: its connection string has no
    ///   `AccessKey=`, and upstream calls carry no `ce-signature`;
    /// - REST calls need a bearer token of its own [Entra ID](Self::tenant_id)
    ///   (HS256 tokens get `401`);
    /// - client tokens come from `:generateToken`, signed (HS256, with a
    ///   `kid`) by an internal key of the emulator made at build time, as
    ///   the service does; the client WebSocket accepts them.
    ///
    /// ```
    /// # use webpubsub_emulator::Emulator;
    /// let emulator = Emulator::builder().disable_local_auth(true).build()?;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn disable_local_auth(mut self, disabled: bool) -> Self {
        self.local_auth = !disabled;
        self
    }

    /// The tenant id of the emulator's Entra ID (default
    /// [`DEFAULT_TENANT_ID`](crate::DEFAULT_TENANT_ID)). Its endpoints are
    /// served under `/{tenant}/` and its tokens' `iss` is
    /// `{base}/{tenant}/v2.0`, `{base}` being the emulator's http URL
    /// ([`RunningEmulator::entra_base`](crate::RunningEmulator::entra_base)).
    pub fn tenant_id(mut self, tenant: uuid::Uuid) -> Self {
        self.tenant = tenant;
        self
    }

    /// The app registration whose client id and secret may get tokens
    /// from the token endpoint (client-credentials grant), replacing the
    /// default: [`DEFAULT_CLIENT_ID`](crate::DEFAULT_CLIENT_ID) with a
    /// random secret that [`build`](Self::build) makes from the system's
    /// random source (244 bits), different on every build — read it with
    /// [`Emulator::client_secret`], or use
    /// [`RunningEmulator::credential`](crate::RunningEmulator::credential).
    /// There is no published default secret: anyone who can reach the
    /// token endpoint and knows the secret can call every REST API.
    ///
    /// Its tokens carry `azp` = `client_id` and `oid` = the
    /// [object id](Self::app_object_id); the REST API takes no other
    /// principal's tokens. An empty or blank `client_secret` is refused by
    /// [`build`](Self::build).
    ///
    /// ```
    /// # use webpubsub_emulator::{Emulator, DEFAULT_CLIENT_ID};
    /// let emulator = Emulator::builder()
    ///     .app_registration(DEFAULT_CLIENT_ID, "my-own-secret")
    ///     .build()?;
    /// assert_eq!(emulator.client_secret(), "my-own-secret");
    /// assert!(Emulator::builder().app_registration(DEFAULT_CLIENT_ID, " ").build().is_err());
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn app_registration(
        mut self,
        client_id: uuid::Uuid,
        client_secret: impl Into<String>,
    ) -> Self {
        self.app_client_id = client_id;
        self.app_secret = Some(client_secret.into());
        self
    }

    /// The client id of the app registration, keeping its secret (the one
    /// [`app_registration`](Self::app_registration) set, else a random one).
    pub fn app_client_id(mut self, client_id: uuid::Uuid) -> Self {
        self.app_client_id = client_id;
        self
    }

    /// The object id (`oid`, `sub`) of the app registration's service
    /// principal (default [`DEFAULT_APP_OBJECT_ID`](crate::DEFAULT_APP_OBJECT_ID)).
    pub fn app_object_id(mut self, object_id: uuid::Uuid) -> Self {
        self.app_object_id = object_id;
        self
    }

    /// Lets peers on other hosts reach the admin routes: the Entra ID's
    /// discovery document, keys and token endpoint (`/{tenant}/…`) and the
    /// live view (`/_emulator`, `/_emulator/api/state`). Default: off —
    /// they answer only peers whose socket address is loopback
    /// (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`), judged by the address
    /// the listener accepted, never by `Host`, and answer others `403`.
    /// The REST API and the client endpoints are not admin routes: they
    /// answer every peer that presents a valid token.
    ///
    /// This is the emulator's choice: Azure's Entra ID is a remote
    /// service, but the emulator's token endpoint mints REST tokens to
    /// anyone with the client secret, and the live view shows users,
    /// groups and upstream calls. Turn it on only when another host (a
    /// container, a phone) must get tokens; [`Emulator::start`] then logs a
    /// warning, as does the binary's `--allow-remote-admin`. It also lets
    /// a [`router`](Emulator::router) served without connect info answer.
    ///
    /// ```
    /// # use webpubsub_emulator::Emulator;
    /// let emulator = Emulator::builder().insecure_allow_remote_admin(true).build()?;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn insecure_allow_remote_admin(mut self, allowed: bool) -> Self {
        self.remote_admin = allowed;
        self
    }

    /// The client id (`azp`) and object id (`oid`, `sub`) of the
    /// emulator's own managed identity, in the bearer tokens of event
    /// handlers configured with
    /// [`EventHandlerSettings::managed_identity`](crate::EventHandlerSettings::managed_identity).
    pub fn managed_identity(mut self, client_id: uuid::Uuid, object_id: uuid::Uuid) -> Self {
        self.identity = (client_id, object_id);
        self
    }

    /// Also serves every route over HTTPS on `port` (0 picks a free one)
    /// of the address given to [`Emulator::start`], with a self-signed
    /// certificate for `127.0.0.1`, `localhost` and `::1` made at build
    /// time ([`RunningEmulator::certificate_pem`](crate::RunningEmulator::certificate_pem)).
    /// Azure SDKs send bearer tokens only over HTTPS. Default: off.
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
        self
    }

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
    /// `WebHook-Request-Origin`, and used in [`RunningEmulator::connection_string`](crate::RunningEmulator::connection_string).
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
    /// error, `408` or `5xx` (default 1 s, 3 s, 5 s, as the service: four
    /// attempts at most; other `4xx` answers are final).
    ///
    /// A client waits for its blocking events (`connect`, user events), so
    /// for them a handler that could not be reached at all (connection
    /// refused, unknown host, failure while connecting) is retried once,
    /// after the first delay, and one that did not answer within
    /// [`upstream_timeout`](Self::upstream_timeout) is not retried: a
    /// client's handshake to a hub whose handler is down fails after about
    /// 1 s, not 9 s. `408` and `5xx` answers keep the whole schedule, as
    /// do non-blocking events (`connected`, `disconnected`, group
    /// presence). See the README's "When an event handler fails".
    pub fn upstream_retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.retry_delays = delays.into_iter().collect();
        self
    }

    /// How long one upstream call may take (default 100 s, as the service):
    /// connecting, sending and reading the whole answer. A blocking event
    /// that runs out of it is not retried, and a `connect` that does is
    /// refused with `500` and `The event handler did not answer within
    /// 100s.`; the log and the live view say `timed out after 100s`.
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

    /// How many bytes one connection may make the emulator hold before it
    /// is disconnected as too slow (default 16 MiB). One budget counts
    /// everything a connection holds: a queued message its payload plus 64
    /// bytes until it is written to the socket, then, for reliable and MQTT
    /// QoS 1 clients, its payload until it is acknowledged; an invocation's
    /// payload until it is answered; an MQTT client's will and CONNECT user
    /// properties for its life. Keep this above the largest message you send.
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

    /// How long an MQTT session outlives its network connection (default
    /// 30 s, the service's documented minimum): the whole time for 3.1.1
    /// clients with Clean Session = 0, and the most a 5.0 client's Session
    /// Expiry Interval gets.
    pub fn mqtt_session_expiry(mut self, expiry: Duration) -> Self {
        self.mqtt_session_expiry = expiry;
        self
    }

    /// How many connections may be kept without a socket at a time, in all
    /// hubs (default 512; 0 keeps none): reliable connections waiting for
    /// recovery and detached MQTT sessions. They hold no socket, so
    /// [`max_connections`](Self::max_connections) does not see them; they
    /// count toward [`max_connections_per_user`](Self::max_connections_per_user)
    /// as connected ones do, and so do those without a user id, together
    /// per hub (the emulator's choice: otherwise tokens without `sub` could
    /// keep any number). One more is not kept: it ends with its socket, and
    /// `disconnected` is raised.
    pub fn max_detached_connections(mut self, connections: usize) -> Self {
        self.max_detached = connections;
        self
    }

    /// How many bytes a connection kept without a socket may hold (default
    /// 1 MiB, at most [`send_queue_bytes`](Self::send_queue_bytes)): what a
    /// reliable connection waiting for recovery or a detached MQTT session
    /// has unacknowledged or queued. One holding more when its socket goes
    /// is not kept; one that grows past it while detached ends.
    pub fn detached_bytes(mut self, bytes: usize) -> Self {
        self.detached_bytes = bytes;
        self
    }
}
