//! The emulator serving: what its request handlers share ([`Shared`]),
//! its routes, and [`Emulator::start`] / [`RunningEmulator::shutdown`].

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

use webpubsub::config::AccessKey;

use crate::{auth, client, hub, listen, live, rest, upstream, EmulatorBuilder, HubSettings};

/// What every request handler of the emulator shares.
pub(crate) struct Shared {
    pub(crate) key: AccessKey,
    pub(crate) secondary: Option<AccessKey>,
    pub(crate) key_text: String,
    pub(crate) host: String,
    pub(crate) settings: HashMap<String, HubSettings>,
    pub(crate) hubs: hub::Hubs,
    pub(crate) upstream: upstream::Upstream,
    pub(crate) queue: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) ack_ids: usize,
    pub(crate) client_timeout: Duration,
    pub(crate) listener: listen::Limits,
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
    pub(crate) shared: Arc<Shared>,
}

impl Emulator {
    /// Settings with defaults: key [`DEFAULT_ACCESS_KEY`](crate::DEFAULT_ACCESS_KEY), host `localhost`, no hubs configured.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::new()
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
