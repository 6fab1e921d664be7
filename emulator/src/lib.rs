//! A local emulator of the Azure Web PubSub service.
//!
//! It serves the client WebSocket endpoint (`/client/hubs/{hub}`, plain
//! WebSocket and the `json.webpubsub.azure.v1` / `json.reliable.webpubsub.azure.v1`
//! subprotocols), calls the hubs' event handlers exactly as the service
//! does (abuse-protection handshake, signed CloudEvents, connection state),
//! and answers the REST data plane (`/api/…`) with the service's paths,
//! token check and status codes. Microsoft's own client libraries work
//! against it unchanged, and so does `webpubsub::WebPubSubServiceClient`.
//! The JSON subprotocols include what `@azure/web-pubsub-client` 1.1.0
//! adds: `invoke` / `cancelInvocation` (a user event whose reply comes
//! back as `invokeResponse`) and group streams (`sendToGroup` with
//! `stream`, `streamData`, `streamEnd`; `streamAck`, `streamNack`,
//! `streamClosed`); see the README for each frame and error name.
//! MQTT 3.1.1 and 5.0 clients connect over WebSocket at
//! `/clients/mqtt/hubs/{hub}` (subprotocol `mqtt`): CONNECT raises
//! `connect` with its `mqtt` object and gets the CONNACK code the handler
//! chooses, topics are groups (shared with JSON clients and REST), PUBLISH
//! to `$webpubsub/server/events/{event}` raises user events; see the
//! README's MQTT section for every packet, property and choice.
//!
//! Its live view at `/_emulator` shows each hub's connections (a page at a
//! time, with their groups and roles), the latest 200 upstream calls
//! with their request headers, the latest invocations (event, outcome,
//! latency) and the open group streams. It is for this machine only: it answers
//! only loopback peers (by socket address, else `403`), and only when the
//! request's `Host` is `localhost`, `*.localhost`,
//! `127.0.0.0/8`, `[::1]` or the [host](EmulatorBuilder::host) the emulator
//! goes by (else `421`), and refuses cross-site browser requests (`403`).
//! It never shows `ce-signature`, `ce-connectionState`, `Authorization`
//! or cookie values (only their length), nor token-like query values of
//! handler URLs.
//!
//! It is also its own Microsoft Entra ID, for keyless code: a discovery
//! document, keys and a client-credentials token endpoint under
//! `/{tenant}/` (see [`EmulatorBuilder::tenant_id`]); the REST API takes
//! bearer tokens of that issuer (any valid one may call every API: there is
//! no RBAC); event handlers set up with
//! [`EventHandlerSettings::managed_identity`] get bearer tokens of the
//! emulator's own managed identity; local auth can be
//! [disabled](EmulatorBuilder::disable_local_auth); an
//! [HTTPS listener](EmulatorBuilder::https_port) serves the same routes for
//! SDKs that send bearer tokens only over TLS; and, with the `credential`
//! feature, [`EmulatorCredential`] is an `azure_core` `TokenCredential`
//! that gets tokens from it.
//!
//! Where Azure's Entra ID is remote and its apps are registered on purpose,
//! the emulator's is local and its app registration is made for you, so it
//! chooses (see [`EmulatorBuilder::app_registration`] and
//! [`EmulatorBuilder::insecure_allow_remote_admin`]): the client secret is
//! random per build unless you give one ([`Emulator::client_secret`]); the
//! token endpoint, the discovery document, the keys and the live view
//! answer loopback peers only, by socket address (a router you serve
//! yourself needs `into_make_service_with_connect_info::<SocketAddr>()`,
//! see [`Emulator::router`]); the token endpoint mints tokens for the REST
//! API's audience only ([`WEBPUBSUB_AUDIENCE`]); the REST API takes only
//! tokens minted for the app registration; and no event handler gets a
//! token for the REST API's audience.
//!
//! | feature | what |
//! |---|---|
//! | `credential` | `EmulatorCredential` (`azure_core`'s `TokenCredential`; Rust 1.88) |
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
//!
//! # Source layout
//!
//! Layers, lowest first; a module imports only from the layers below it
//! (`python3 .ci/imports.py --layers emulator/src` checks it):
//!
//! | folder / file | what lives there |
//! |---|---|
//! | `settings.rs`, `auth/`, `permissions.rs`, `filter/`, `entra/`, `tls.rs`, `shown.rs`, `sync.rs` | rules without state: hub settings and defaults, token checks and keys, roles, OData filters, the Entra ID's identity and signing key, the HTTPS certificate, what the live view may show, locking |
//! | `hub/` | the state: connections, groups, users, send queues, messages (with their frames encoded once per protocol), group streams, the views the REST API and the live view read |
//! | `upstream/` | calls to event handlers: the call, its answer, its errors, the call log |
//! | `service.rs` | `Shared`, what every endpoint's handlers share (settings, keys, hubs, upstream) |
//! | `lifecycle/` | a connection's life for every protocol: handshake steps, `connect` and its answer, `connected` and user events, the end (`disconnected`) |
//! | `protocol/` | one module per client protocol: frames → the protocol-neutral `Command` (`command.rs`), messages → frames (`json/`, `raw.rs`, `mqtt/`) |
//! | `endpoint/` | the routes' handlers: `client/` (WebSocket clients), `rest/`, `live.rs`, `entra.rs`, `admin.rs`, `mqtt/` (MQTT clients) |
//! | `server/`, `builder/` | `Emulator` / `RunningEmulator` (the routes, start, shutdown), the listener, `EmulatorBuilder` (settings; `build.rs`: their checks) |
//! | `credential.rs` | `EmulatorCredential` (feature `credential`) |
//!
//! A new client protocol is one module in `protocol/` (its frames →
//! `Command`s, messages → frames) plus its handshake entry in `endpoint/`,
//! which drives `lifecycle/`; a message's frame in a new encoding gets its
//! slot in `hub/message.rs`'s `FrameCache`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod builder;
#[cfg(feature = "credential")]
mod credential;
mod endpoint;
mod entra;
mod filter;
mod hub;
mod lifecycle;
mod permissions;
mod protocol;
mod server;
mod service;
mod settings;
mod shown;
mod sync;
mod tls;
mod upstream;

pub use builder::EmulatorBuilder;
#[cfg(feature = "credential")]
#[cfg_attr(docsrs, doc(cfg(feature = "credential")))]
pub use credential::EmulatorCredential;
pub use entra::{
    DEFAULT_APP_OBJECT_ID, DEFAULT_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_CLIENT_ID,
    DEFAULT_MANAGED_IDENTITY_OBJECT_ID, DEFAULT_TENANT_ID, WEBPUBSUB_AUDIENCE,
};
pub use server::{Emulator, RunningEmulator};
pub use settings::{EventHandlerSettings, HubSettings, SystemEvent, DEFAULT_ACCESS_KEY};

/// Entry points for `fuzz/` (not a public API).
#[doc(hidden)]
pub mod __fuzz {
    pub use super::filter::fuzz::odata_filter;
}

pub use uuid;
