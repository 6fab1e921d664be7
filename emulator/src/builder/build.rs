//! [`EmulatorBuilder::build`]: the settings checked (hub names, event
//! handler URLs and identities, the app registration's secret), then the
//! service they describe assembled ([`Shared`]).

use std::collections::HashMap;
use std::sync::Arc;

use webpubsub::config::{AccessKey, ConfigError};

use super::EmulatorBuilder;
use crate::entra::{self, AppRegistration, Entra, SigningKey};
use crate::server::Emulator;
use crate::service::Shared;
use crate::settings::{self, HubSettings};
use crate::{auth, hub, tls, upstream};

impl EmulatorBuilder {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::EmptyAccessKey`] for an empty or blank key (primary or secondary);
    /// - [`ConfigError::InvalidHub`] / [`ConfigError::DuplicateHub`] for a bad or repeated hub;
    /// - [`ConfigError::InvalidSetting`] for an event handler URL that is
    ///   not `http(s)` with a host, a blank
    ///   [managed identity](crate::EventHandlerSettings::managed_identity)
    ///   resource, a managed identity resource
    ///   that is the REST API's audience ([`WEBPUBSUB_AUDIENCE`](crate::WEBPUBSUB_AUDIENCE),
    ///   any case, with or without a trailing `/` or `/.default`: a bearer
    ///   for the REST API is never sent to an event handler), an empty or
    ///   blank [client secret](Self::app_registration), or a
    ///   [managed identity](Self::managed_identity) whose client id is the
    ///   app registration's;
    /// - [`ConfigError::HttpClient`] when the HTTP client, the signing key
    ///   or the HTTPS certificate cannot be set up.
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
            check_handlers(&hub)?;
            let key = hub.name.to_ascii_lowercase();
            if settings.contains_key(&key) {
                return Err(ConfigError::DuplicateHub { hub: hub.name });
            }
            settings.insert(key, hub);
        }
        let secret = match self.app_secret {
            None => entra::random_client_secret(),
            Some(secret) if secret.trim().is_empty() => {
                return Err(ConfigError::InvalidSetting {
                    setting: "EmulatorBuilder::app_registration (--client-secret)",
                    reason: "the client secret is empty or blank: give a secret of your own, \
                             or none to get a random one (Emulator::client_secret)"
                        .to_owned(),
                });
            }
            Some(secret) => secret,
        };
        if self.identity.0 == self.app_client_id {
            return Err(ConfigError::InvalidSetting {
                setting: "EmulatorBuilder::managed_identity (--managed-identity-client-id)",
                reason: format!(
                    "its client id {} is the app registration's: the REST API tells their \
                     tokens apart by it; give the managed identity another one",
                    self.app_client_id
                ),
            });
        }
        let app = AppRegistration {
            client_id: self.app_client_id,
            secret,
            object_id: self.app_object_id,
        };
        let setup = |reason: String| ConfigError::HttpClient { reason };
        let signing_key = SigningKey::generate()
            .ok_or_else(|| setup("generating the Entra ID signing key failed".to_owned()))?;
        let entra = Arc::new(Entra::new(
            self.tenant,
            signing_key,
            app,
            self.identity,
            format!("http://{}", self.host),
        ));
        let https = match self.https_port {
            None => None,
            Some(port) => Some((port, tls::SelfSigned::generate().map_err(setup)?)),
        };
        let mut keys = Vec::new();
        if self.local_auth {
            keys.push(key.clone());
            keys.extend(secondary.clone());
        }
        let upstream = upstream::Upstream::new(
            keys,
            entra.clone(),
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
                local_auth: self.local_auth,
                remote_admin: self.remote_admin,
                client_key: auth::ClientKey::random(),
                entra,
                https,
                bound_ports: std::sync::OnceLock::new(),
                host: self.host,
                settings,
                hubs: hub::Hubs::new(hub::Caps {
                    connections_per_user: self.connections_per_user,
                    groups_per_connection: self.groups_per_connection,
                    detached: self.max_detached,
                }),
                upstream,
                queue: self.queue,
                queue_bytes: self.queue_bytes,
                detached_bytes: self.detached_bytes.min(self.queue_bytes),
                ack_ids: self.ack_ids,
                client_timeout: self.client_timeout,
                listener: settings::ListenerLimits {
                    max_connections: self.max_connections,
                    header_read_timeout: self.header_read_timeout,
                },
                reconnect_key: auth::ReconnectKey::random(),
                recovery_window: self.recovery_window,
                mqtt_session_expiry: self.mqtt_session_expiry,
            }),
        })
    }
}

/// Each event handler of `hub`: an http(s) URL with a host, and a managed
/// identity resource that is neither blank nor the REST API's audience.
fn check_handlers(hub: &HubSettings) -> Result<(), ConfigError> {
    for handler in &hub.handlers {
        let sample = upstream::expand(&handler.url_template, &hub.name, "connect");
        let ok = url::Url::parse(&sample)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok {
            return Err(ConfigError::InvalidSetting {
                setting: "EventHandlerSettings::new (--hub NAME=URL)",
                reason: format!(
                    "hub `{}`: `{}` is not an http(s) URL with a host; write it in \
                     full, e.g. http://127.0.0.1:3000/eventhandler",
                    hub.name,
                    webpubsub::upstream::excerpt(&handler.url_template)
                ),
            });
        }
        if handler
            .auth_resource
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            return Err(ConfigError::InvalidSetting {
                setting: "EventHandlerSettings::managed_identity (--hub-auth)",
                reason: format!(
                    "hub `{}`: the managed identity resource (the token audience) is \
                     blank; give your app's audience, e.g. api://my-app",
                    hub.name
                ),
            });
        }
        if let Some(resource) = handler
            .auth_resource
            .as_deref()
            .filter(|r| entra::is_rest_audience(r))
        {
            return Err(ConfigError::InvalidSetting {
                setting: "EventHandlerSettings::managed_identity (--hub-auth)",
                reason: format!(
                    "hub `{}`: `{}` is the REST API's audience, and a bearer for the \
                     REST API is never sent to an event handler; use your app's own \
                     audience, e.g. api://my-app",
                    hub.name,
                    webpubsub::upstream::excerpt(resource)
                ),
            });
        }
    }
    Ok(())
}
