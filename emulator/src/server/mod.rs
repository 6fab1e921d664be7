//! The emulator serving: its routes, and [`Emulator::start`] /
//! [`RunningEmulator::shutdown`]; `listen.rs` is its listener.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use http::{HeaderMap, Uri};

use crate::endpoint::{admin, client, entra, live, mqtt, rest};
use crate::service::Shared;
use crate::{hub, lifecycle};

mod listen;

/// A local Web PubSub service: build it, then [`start`](Self::start) it or
/// mount its [`router`](Self::router).
#[derive(Clone)]
pub struct Emulator {
    pub(crate) shared: Arc<Shared>,
}

impl Emulator {
    /// The emulator's routes (`/client/…`, `/api/…`, `/_emulator/…`, and
    /// its Entra ID's `/{tenant}/…`), to serve at the root of an axum server.
    ///
    /// Served this way (not [`start`](Self::start)ed), the Entra ID's base
    /// URL is `http://{host}` ([`host`](crate::EmulatorBuilder::host), no port).
    ///
    /// The admin routes — the Entra ID's discovery document, keys and token
    /// endpoint, and the live view — answer only peers whose socket address
    /// is loopback, unless [opened](crate::EmulatorBuilder::insecure_allow_remote_admin).
    /// The router learns the peer from axum's `ConnectInfo<SocketAddr>`:
    /// serve it with `into_make_service_with_connect_info::<SocketAddr>()`
    /// ([`start`](Self::start) does the same). Without it the peer is
    /// unknown and those routes answer `403`; the other routes do not care.
    /// A reverse proxy in front makes every peer look like the proxy: the
    /// check then only says the proxy runs on this machine.
    ///
    /// ```no_run
    /// # use std::net::SocketAddr;
    /// # use webpubsub_emulator::Emulator;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = axum::Router::new().merge(Emulator::builder().build()?.router());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// `/_emulator` is the live view (hubs, connections, recent upstream
    /// calls), fed by `GET /_emulator/api/state[?hub=&offset=&limit=&since=]`:
    /// one page of connections (`limit` 1 to 500, default 100), each with at
    /// most 10 groups and roles plus their counts, per-hub totals and the
    /// `nextOffset`. It is for this machine only, and rejects:
    ///
    /// - a peer that is not loopback, or unknown (above), with `403`;
    /// - a `Host` that is not `localhost`, `*.localhost`, `127.0.0.0/8`,
    ///   `[::1]` or the configured [host](crate::EmulatorBuilder::host) (port
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
    /// # use std::net::SocketAddr;
    /// # use webpubsub_emulator::Emulator;
    /// # use tower::ServiceExt;
    /// use axum::extract::connect_info::MockConnectInfo;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let router = Emulator::builder().build()?.router();
    /// // A page that rebound its DNS name to 127.0.0.1: a loopback peer, a foreign `Host`.
    /// let local = router.clone().layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50000))));
    /// let request = || http::Request::get("/_emulator/api/state")
    ///     .header("host", "attacker.example")
    ///     .body(axum::body::Body::empty());
    /// let response = local.oneshot(request()?).await?;
    /// assert_eq!(response.status(), http::StatusCode::MISDIRECTED_REQUEST);
    /// // Another host: refused whatever its `Host` says.
    /// let remote = router.layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 7], 50000))));
    /// let response = remote.oneshot(request()?).await?;
    /// assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
    /// # Ok(()) }
    /// ```
    pub fn router(&self) -> Router {
        Router::new()
            .route("/client/hubs/{hub}", any(client_by_path))
            .route("/clients/mqtt/hubs/{hub}", any(mqtt_client))
            .route("/client", any(client_by_query))
            .route("/client/", any(client_by_query))
            .route("/api/{*rest}", any(rest::handle))
            .route("/_emulator", get(live::page))
            .route("/_emulator/", get(live::page))
            .route("/_emulator/api/state", get(live::state))
            .merge(entra::routes(self.shared.entra.tenant))
            .with_state(self.shared.clone())
    }

    /// The client id of the app registration that may get tokens from the
    /// token endpoint ([`app_registration`](crate::EmulatorBuilder::app_registration)).
    #[must_use]
    pub fn client_id(&self) -> uuid::Uuid {
        self.shared.entra.app.client_id
    }

    /// The app registration's client secret: the one given to
    /// [`app_registration`](crate::EmulatorBuilder::app_registration), else a
    /// random one made by [`build`](crate::EmulatorBuilder::build) (different on
    /// every build). With [`client_id`](Self::client_id), it gets tokens
    /// from the token endpoint, which every REST API accepts: keep it to
    /// this machine.
    ///
    /// ```
    /// # use webpubsub_emulator::Emulator;
    /// let a = Emulator::builder().build()?;
    /// let b = Emulator::builder().build()?;
    /// assert_ne!(a.client_secret(), b.client_secret());
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    #[must_use]
    pub fn client_secret(&self) -> &str {
        &self.shared.entra.app.secret
    }

    /// The connection string of this emulator listening on `port`; with
    /// [local auth disabled](crate::EmulatorBuilder::disable_local_auth), it has
    /// no `AccessKey=` (use a token credential).
    #[must_use]
    pub fn connection_string(&self, port: u16) -> String {
        if !self.shared.local_auth {
            return format!(
                "Endpoint=http://{};Port={port};Version=1.0;",
                self.shared.host
            );
        }
        format!(
            "Endpoint=http://{};Port={port};AccessKey={};Version=1.0;",
            self.shared.host, self.shared.key_text
        )
    }

    /// Binds `addr` and serves in the background until
    /// [`RunningEmulator::shutdown`], with the listener's bounds
    /// ([`max_connections`](crate::EmulatorBuilder::max_connections),
    /// [`header_read_timeout`](crate::EmulatorBuilder::header_read_timeout)),
    /// plus the HTTPS listener on the same IP if [`https_port`](crate::EmulatorBuilder::https_port)
    /// is set. Fixes the Entra ID's base URL to `http://{addr}` (the bound
    /// address; `http://{host}:{port}` when bound to `0.0.0.0` / `::`).
    ///
    /// Every request carries its peer's address (`ConnectInfo<SocketAddr>`),
    /// by which the admin routes answer loopback peers only (see
    /// [`router`](Self::router)). Bound to an address other hosts can reach
    /// (`0.0.0.0`, `::`, a LAN address), it logs a warning: the REST API and
    /// the client endpoints are then guarded only by the access key and
    /// Entra ID tokens; the warning also says whether the admin routes were
    /// [opened](crate::EmulatorBuilder::insecure_allow_remote_admin).
    ///
    /// # Errors
    ///
    /// When an address cannot be bound.
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let https = match &self.shared.https {
            None => None,
            Some((port, cert)) => {
                let listener =
                    tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), *port)).await?;
                let https_addr = listener.local_addr()?;
                let acceptor = tokio_rustls::TlsAcceptor::from(cert.config.clone());
                Some((listener, https_addr, acceptor))
            }
        };
        let base = if addr.ip().is_unspecified() {
            format!("http://{}:{}", self.shared.host, addr.port())
        } else {
            format!("http://{addr}")
        };
        self.shared.entra.set_base(base);
        let _ = self.shared.bound_ports.set((
            addr.port(),
            https.as_ref().map(|(_, https_addr, _)| https_addr.port()),
        ));
        let limits = self.shared.listener;
        let permits = listen::permits(limits);
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(listen::serve(
            listener,
            self.router(),
            limits,
            permits.clone(),
            None,
            stopped,
        )));
        let https_addr = match https {
            None => None,
            Some((listener, https_addr, acceptor)) => {
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                stops.push(stop);
                tasks.push(tokio::spawn(listen::serve(
                    listener,
                    self.router(),
                    limits,
                    permits,
                    Some(acceptor),
                    stopped,
                )));
                Some(https_addr)
            }
        };
        tracing::info!(target: "webpubsub::emulator", %addr, https = ?https_addr,
            max_connections = limits.max_connections, "emulator listening");
        self.warn_if_exposed(addr);
        Ok(RunningEmulator {
            emulator: self,
            addr,
            https_addr,
            stops,
            tasks,
        })
    }
}

impl Emulator {
    /// Warns when other hosts can reach what `start` serves on `addr`.
    fn warn_if_exposed(&self, addr: SocketAddr) {
        let remote_admin = self.shared.remote_admin;
        if !admin::is_loopback(addr.ip()) {
            let admin = if remote_admin {
                "the token endpoint and the live view are reachable from other hosts too \
                 (remote admin allowed): anyone there with the client secret gets REST tokens"
            } else {
                "the token endpoint, the Entra ID documents and the live view answer loopback \
                 only (open them with --allow-remote-admin / insecure_allow_remote_admin)"
            };
            tracing::warn!(target: "webpubsub::emulator", %addr, remote_admin,
                "listening on an address other hosts can reach: the REST API and the client \
                 endpoints are reachable from other hosts, guarded only by the access key and \
                 Entra ID bearer tokens; {admin}");
        } else if remote_admin {
            tracing::warn!(target: "webpubsub::emulator", %addr, remote_admin,
                "remote admin allowed: the token endpoint, the Entra ID documents and the live \
                 view answer any peer (e.g. through a proxy), not only loopback ones");
        }
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
    https_addr: Option<SocketAddr>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
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

    /// How many connections the emulator keeps without a socket (reliable
    /// ones waiting for recovery, detached MQTT sessions). For tests of its
    /// bounds; not a stable API.
    #[doc(hidden)]
    #[must_use]
    pub fn __detached_connections(&self) -> usize {
        self.emulator.shared.hubs.detached_count()
    }

    /// `claims` signed as an access token of the emulator's Entra ID (its
    /// key, its `kid`), as given: for tests of the checks. Not a stable API.
    #[doc(hidden)]
    #[must_use]
    pub fn __sign_entra_token(&self, claims: &serde_json::Value) -> Option<String> {
        self.emulator.shared.entra.sign(claims)
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

    /// The address of the HTTPS listener, if [on](crate::EmulatorBuilder::https_port).
    #[must_use]
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// `https://{host}:{https port}`, if the HTTPS listener is
    /// [on](crate::EmulatorBuilder::https_port). Its certificate names
    /// `localhost`, `127.0.0.1` and `::1` only.
    #[must_use]
    pub fn https_endpoint(&self) -> Option<String> {
        self.https_addr
            .map(|a| format!("https://{}:{}", self.emulator.shared.host, a.port()))
    }

    /// The HTTPS listener's self-signed certificate (PEM, no private key),
    /// to trust in clients: e.g. write it to a file and start Node with
    /// `NODE_EXTRA_CA_CERTS=<file>`.
    #[must_use]
    pub fn certificate_pem(&self) -> Option<&str> {
        self.emulator
            .shared
            .https
            .as_ref()
            .map(|(_, cert)| cert.pem.as_str())
    }

    /// The base URL of the emulator's Entra ID (`http://{ip}:{port}`):
    /// its issuer is `{base}/{tenant}/v2.0`.
    #[must_use]
    pub fn entra_base(&self) -> &str {
        self.emulator.shared.entra.base()
    }

    /// The tenant id of the emulator's Entra ID.
    #[must_use]
    pub fn tenant_id(&self) -> uuid::Uuid {
        self.emulator.shared.entra.tenant
    }

    /// The `iss` of its tokens: `{base}/{tenant}/v2.0`.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.emulator.shared.entra.issuer()
    }

    /// `{base}/{tenant}/v2.0/.well-known/openid-configuration`, the
    /// discovery document to point a token validator at.
    #[must_use]
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`, the token endpoint.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        let entra = &self.emulator.shared.entra;
        format!("{}/{}/oauth2/v2.0/token", entra.base(), entra.tenant)
    }

    /// The app registration's client id ([`Emulator::client_id`]).
    #[must_use]
    pub fn client_id(&self) -> uuid::Uuid {
        self.emulator.client_id()
    }

    /// The app registration's client secret ([`Emulator::client_secret`]):
    /// random unless [`app_registration`](crate::EmulatorBuilder::app_registration)
    /// set it.
    #[must_use]
    pub fn client_secret(&self) -> &str {
        self.emulator.client_secret()
    }

    /// A token credential of the configured [app registration](crate::EmulatorBuilder::app_registration)
    /// (its client id and [secret](Self::client_secret)) that gets its
    /// tokens from this emulator's token endpoint.
    #[cfg(feature = "credential")]
    #[cfg_attr(docsrs, doc(cfg(feature = "credential")))]
    #[must_use]
    pub fn credential(&self) -> Arc<crate::EmulatorCredential> {
        let app = &self.emulator.shared.entra.app;
        crate::EmulatorCredential::new(self.token_endpoint(), app.client_id, app.secret.clone())
    }

    /// Closes every client connection and stops serving.
    pub async fn shutdown(mut self) {
        close_all(&self.emulator.shared, "The service is shutting down.");
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in &mut self.tasks {
            let _ = task.await;
        }
    }
}

fn close_all(shared: &Arc<Shared>, reason: &str) {
    for conn in shared.hubs.connections() {
        if hub::lock(&conn.parked).take().is_some() {
            lifecycle::finish(shared, &conn, Some(reason.to_owned()));
        } else {
            conn.send(hub::Outbound::Close {
                reason: reason.into(),
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

async fn mqtt_client(
    State(shared): State<Arc<Shared>>,
    Path(hub): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    mqtt::mqtt_handshake(shared, hub, uri, headers, ws).await
}

async fn client_by_query(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    client::handshake(shared, None, uri, headers, ws).await
}
