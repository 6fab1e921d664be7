//! The service's shared state: what every endpoint's request handlers
//! share ([`Shared`]): keys, settings, the hubs' state and the upstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use webpubsub::config::AccessKey;

use crate::settings::{self, HubSettings};
use crate::{auth, entra, hub, tls, upstream};

/// What every request handler of the emulator shares.
pub(crate) struct Shared {
    pub(crate) key: AccessKey,
    pub(crate) secondary: Option<AccessKey>,
    pub(crate) key_text: String,
    /// Whether the access keys are on (Azure's `disableLocalAuth: false`).
    pub(crate) local_auth: bool,
    /// Whether the admin routes answer peers on other hosts too.
    pub(crate) remote_admin: bool,
    /// Signs `:generateToken`'s client tokens when local auth is off.
    pub(crate) client_key: auth::ClientKey,
    pub(crate) entra: Arc<entra::Entra>,
    /// The HTTPS listener's port and certificate, when on.
    pub(crate) https: Option<(u16, tls::SelfSigned)>,
    /// The ports actually bound, plain and TLS, once started: a client
    /// token made for one listener is good on the other (one service,
    /// as on Azure, where `ws://`, `wss://` and `https://` share a host).
    pub(crate) bound_ports: std::sync::OnceLock<(u16, Option<u16>)>,
    pub(crate) host: String,
    pub(crate) settings: HashMap<String, HubSettings>,
    pub(crate) hubs: hub::Hubs,
    pub(crate) upstream: upstream::Upstream,
    pub(crate) queue: usize,
    pub(crate) queue_bytes: usize,
    /// Most bytes a detached connection may hold ([`hub::Connection::hold`]).
    pub(crate) detached_bytes: usize,
    pub(crate) ack_ids: usize,
    pub(crate) client_timeout: Duration,
    pub(crate) listener: settings::ListenerLimits,
    /// Signs reconnection tokens; random, made at build time.
    pub(crate) reconnect_key: auth::ReconnectKey,
    pub(crate) recovery_window: Duration,
    /// The longest an MQTT session outlives its network connection.
    pub(crate) mqtt_session_expiry: Duration,
}

impl Shared {
    pub(crate) fn settings(&self, hub: &str) -> Option<&HubSettings> {
        self.settings.get(&hub.to_ascii_lowercase())
    }

    /// `host` (a `Host` header: `name:port`) with the other listener's
    /// port, when its port is one of the two listeners'.
    pub(crate) fn sibling_host(&self, host: &str) -> Option<String> {
        let (plain, tls) = *self.bound_ports.get()?;
        let tls = tls?;
        let (name, port) = host.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let other = if port == plain {
            tls
        } else if port == tls {
            plain
        } else {
            return None;
        };
        Some(format!("{name}:{other}"))
    }

    /// Verifies a token signed with the primary or the secondary key
    /// (refused when local auth is off).
    pub(crate) fn verify_token(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, auth::AuthError> {
        if !self.local_auth {
            return Err(auth::AuthError::LocalAuthDisabled);
        }
        match (auth::verify(token, &self.key), &self.secondary) {
            (Err(auth::AuthError::Signature), Some(secondary)) => auth::verify(token, secondary),
            (result, _) => result,
        }
    }

    /// Verifies a client token: one of `:generateToken` signed with the
    /// internal key (named by its `kid`), else one signed with an access key.
    pub(crate) fn verify_client_token(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, auth::AuthError> {
        if self.client_key.names(token) {
            return self.client_key.verify(token);
        }
        self.verify_token(token)
    }

    /// Tells the live view something changed.
    pub(crate) fn changed(&self) {
        self.upstream.changes.send_modify(|n| *n += 1);
    }
}
