//! Who may call the event handler: access keys, allowed origins and the
//! bearer check, collected by the builders and checked once.

use std::sync::Arc;

use super::bearer::{BearerCheck, BearerSetup};
use super::preflight::AllowedOrigins;
use crate::config::{AccessKey, ConfigError, ConnectionString};

/// Keys configured for one service host (or for every host when `host` is `None`).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: Option<Box<str>>,
    pub(crate) keys: Vec<AccessKey>,
}

/// The validated settings shared by the layer and the router.
#[derive(Debug, Clone)]
pub(crate) struct ValidationOptions {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) origins: AllowedOrigins,
    pub(crate) check_signatures: bool,
    /// The bearer-token check (Entra ID), when configured.
    pub(crate) bearer: Option<Arc<dyn BearerCheck>>,
}

impl ValidationOptions {
    /// Whether events need a bearer token checked (asynchronously: keys
    /// may have to be fetched).
    pub(crate) fn checks_bearer(&self) -> bool {
        self.bearer.is_some()
    }

    /// Checks the request's bearer token, when a bearer check is
    /// configured.
    pub(crate) async fn check_bearer(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<(), super::Rejection> {
        match &self.bearer {
            Some(bearer) => bearer.check(headers).await,
            None => Ok(()),
        }
    }

    /// The answer to an abuse-protection handshake (`OPTIONS`) with
    /// `headers`: the allowed origin, or the logged refusal.
    pub(crate) fn preflight(&self, headers: &http::HeaderMap) -> axum::response::Response {
        match super::preflight::answer(&self.origins, headers) {
            Ok(response) => response,
            Err(rejection) => rejection
                .into_logged_response(super::headers::for_log(headers, &super::headers::CE_HUB)),
        }
    }
}

/// Settings of the upstream validation, collected before they are checked.
///
/// Used by [`ValidateUpstreamLayer::builder`](crate::upstream::ValidateUpstreamLayer::builder)
/// and, through the same method names, by
/// [`EventRouterBuilder`](crate::router::EventRouterBuilder).
#[derive(Debug, Clone, Default)]
pub(crate) struct ValidationSettings {
    endpoints: Vec<Endpoint>,
    origins: Vec<Box<str>>,
    any_origin: bool,
    insecure: bool,
    error: Option<ConfigError>,
    bearer: Option<Arc<dyn BearerSetup>>,
}

impl ValidationSettings {
    pub(crate) fn connection(&mut self, conn: &ConnectionString) {
        self.add_origin(conn.host());
        if let Some(key) = conn.access_key() {
            self.add_key(Some(conn.host()), key.clone());
        }
    }

    /// Adds a connection string given as text; one that does not parse
    /// fails the build.
    pub(crate) fn connection_text(&mut self, text: &str) {
        match ConnectionString::parse(text) {
            Ok(conn) => self.connection(&conn),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }

    pub(crate) fn add_key(&mut self, host: Option<&str>, key: AccessKey) {
        let host = host.map(|h| h.to_ascii_lowercase().into_boxed_str());
        match self.endpoints.iter_mut().find(|e| e.host == host) {
            Some(endpoint) => endpoint.keys.push(key),
            None => self.endpoints.push(Endpoint {
                host,
                keys: vec![key],
            }),
        }
    }

    pub(crate) fn add_origin(&mut self, origin: &str) {
        let origin = origin.trim();
        if origin == "*" {
            self.any_origin = true;
            return;
        }
        let valid = !origin.is_empty()
            && origin
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            self.error.get_or_insert(ConfigError::InvalidOrigin {
                value: origin.to_owned(),
            });
            return;
        }
        let origin = origin.to_ascii_lowercase().into_boxed_str();
        if !self.origins.contains(&origin) {
            self.origins.push(origin);
        }
    }

    pub(crate) fn endpoint(&mut self, host: &str, key: &str) {
        self.add_origin(host);
        self.key_text(Some(host.trim()), key);
    }

    /// Adds a key given as text; a blank key fails the build.
    pub(crate) fn key_text(&mut self, host: Option<&str>, key: &str) {
        match AccessKey::new(key) {
            Ok(key) => self.add_key(host, key),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }

    pub(crate) fn insecure_skip_signature_check(&mut self) {
        self.insecure = true;
    }

    /// Checks every event's bearer token with `setup` (the last one given).
    pub(crate) fn bearer(&mut self, setup: Arc<dyn BearerSetup>) {
        self.bearer = Some(setup);
    }

    pub(crate) fn build(self) -> Result<ValidationOptions, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let has_key = self.endpoints.iter().any(|e| !e.keys.is_empty());
        let bearer = match &self.bearer {
            Some(setup) => Some(setup.build()?),
            None => None,
        };
        let has_identity = bearer.is_some();
        if !has_key && !has_identity && !self.insecure {
            return Err(ConfigError::NoAccessKey);
        }
        let origins = if self.any_origin || self.origins.is_empty() {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::Hosts(self.origins)
        };
        Ok(ValidationOptions {
            endpoints: self.endpoints,
            origins,
            // Each configured check must pass; a keyless (Entra ID only)
            // setup gets no `ce-signature` from the service.
            check_signatures: has_key && !self.insecure,
            bearer,
        })
    }
}

/// Builder methods shared by the layer's and the router's builders.
macro_rules! validation_builder_methods {
    ($($field:ident).+) => {
        /// Adds the service endpoint and access key of a connection string
        /// (`Endpoint=https://<host>;AccessKey=<key>;…`): the endpoint's host
        /// becomes an allowed origin, the key checks requests from that host.
        /// May be called several times (several resources, or primary and
        /// secondary keys).
        ///
        /// A string that does not parse makes `build()` fail with the
        /// [`ConfigError`](crate::config::ConfigError) naming what is wrong
        /// with it, like every other bad value given to this builder.
        pub fn connection_string(mut self, connection_string: &str) -> Self {
            self.$($field).+.connection_text(connection_string);
            self
        }

        /// Adds an already parsed [`ConnectionString`](crate::config::ConnectionString).
        pub fn connection(mut self, connection_string: &crate::config::ConnectionString) -> Self {
            self.$($field).+.connection(connection_string);
            self
        }

        /// Adds an access key that checks requests from any origin. Call it
        /// again for a second key (key rotation: either key's signature passes).
        /// An empty or blank key makes `build()` fail with
        /// [`ConfigError::EmptyAccessKey`](crate::config::ConfigError::EmptyAccessKey).
        pub fn access_key(mut self, key: impl AsRef<str>) -> Self {
            self.$($field).+.key_text(None, key.as_ref());
            self
        }

        /// Adds a service host (as sent in `WebHook-Request-Origin`, e.g.
        /// `demo.webpubsub.azure.com`) with the access key that checks its
        /// requests; the host also becomes an allowed origin. An empty or
        /// blank key makes `build()` fail with
        /// [`ConfigError::EmptyAccessKey`](crate::config::ConfigError::EmptyAccessKey).
        pub fn endpoint(mut self, host: &str, key: impl AsRef<str>) -> Self {
            self.$($field).+.endpoint(host, key.as_ref());
            self
        }

        /// Allows the abuse-protection handshake from `host` (a bare host name
        /// such as `demo.webpubsub.azure.com`), or from every host with `*`.
        /// With no allowed origin configured at all, every host is allowed.
        pub fn allowed_origin(mut self, host: &str) -> Self {
            self.$($field).+.add_origin(host);
            self
        }

        /// Checks every event's bearer token with `setup` (how
        /// [`entra`](crate::entra) plugs in its check).
        #[allow(dead_code, reason = "used by the `entra` feature only")]
        pub(crate) fn bearer_check(
            mut self,
            setup: std::sync::Arc<dyn crate::upstream::bearer::BearerSetup>,
        ) -> Self {
            self.$($field).+.bearer(setup);
            self
        }

        /// Accepts requests without checking `ce-signature` — **anyone who can
        /// reach the URL can then impersonate the service.** Only for local
        /// experiments; without this, building fails when no key is configured.
        pub fn insecure_skip_signature_check(mut self) -> Self {
            self.$($field).+.insecure_skip_signature_check();
            self
        }
    };
}
pub(crate) use validation_builder_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_refuses_to_build_unless_insecure() {
        assert_eq!(
            ValidationSettings::default().build().unwrap_err(),
            ConfigError::NoAccessKey
        );
        let mut s = ValidationSettings::default();
        s.insecure_skip_signature_check();
        let options = s.build().unwrap();
        assert!(!options.check_signatures);
        assert_eq!(options.origins, AllowedOrigins::Any);
    }

    #[test]
    fn blank_keys_refuse_to_build_even_when_insecure() {
        for blank in ["", "   "] {
            let mut s = ValidationSettings::default();
            s.key_text(None, "good");
            s.key_text(None, blank);
            assert_eq!(s.build().unwrap_err(), ConfigError::EmptyAccessKey);
            let mut s = ValidationSettings::default();
            s.insecure_skip_signature_check();
            s.endpoint("a.example.com", blank);
            assert_eq!(s.build().unwrap_err(), ConfigError::EmptyAccessKey);
        }
    }

    #[test]
    fn connection_strings_for_one_host_share_an_endpoint() {
        let mut s = ValidationSettings::default();
        s.connection(
            &ConnectionString::parse("Endpoint=https://A.example.com;AccessKey=one").unwrap(),
        );
        s.connection(
            &ConnectionString::parse("Endpoint=https://a.example.com:444;AccessKey=two").unwrap(),
        );
        let options = s.build().unwrap();
        assert_eq!(options.endpoints.len(), 1);
        assert_eq!(options.endpoints[0].keys.len(), 2);
        assert_eq!(
            options.origins,
            AllowedOrigins::Hosts(vec!["a.example.com".into()])
        );
    }

    #[test]
    fn origins_must_be_bare_hosts() {
        for bad in ["https://a.com", "a.com:80", "", "a b"] {
            let mut s = ValidationSettings::default();
            s.key_text(None, "k");
            s.add_origin(bad);
            assert!(
                matches!(s.build(), Err(ConfigError::InvalidOrigin { .. })),
                "{bad:?}"
            );
        }
    }
}
