//! Configuration errors, reported when something is built, never while serving.

/// Why a connection string, a [`ValidateUpstreamLayer`](crate::upstream::ValidateUpstreamLayer)
/// or an [`EventRouter`](crate::EventRouter) could not be built.
///
/// Secrets are never part of the message: a bad access key is named, not shown.
/// An invalid hub name ([`InvalidName`](crate::names::InvalidName) of a hub)
/// converts into [`ConfigError::InvalidHub`].
///
/// ```
/// use webpubsub::ConfigError;
/// use webpubsub::config::ConnectionString;
///
/// let err = ConnectionString::parse("AccessKey=abc").unwrap_err();
/// assert!(matches!(err, ConfigError::MissingConnectionStringKey { key: "Endpoint" }));
/// assert_eq!(err.to_string(), "connection string has no `Endpoint=`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required `Key=Value` pair is missing from a connection string.
    #[error("connection string has no `{key}=`")]
    MissingConnectionStringKey {
        /// The missing key, spelled as in the documentation (`Endpoint`, `AccessKey`).
        key: &'static str,
    },
    /// A key appears twice in a connection string where that would be ambiguous.
    #[error("connection string has `{key}=` twice; keep one")]
    DuplicateConnectionStringKey {
        /// The repeated key as spelled in the string.
        key: String,
    },
    /// The `Endpoint` of a connection string is not an absolute `http(s)` URL.
    #[error("connection string `Endpoint={value}` is not an http(s) URL with a host: {reason}")]
    InvalidEndpoint {
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `Port` of a connection string is not a number from 1 to 65535.
    #[error("connection string `Port={value}` is not a port number (1-65535)")]
    InvalidPort {
        /// The offending value.
        value: String,
    },
    /// An access key is empty or only white space: in a connection string
    /// (`AccessKey=`), or given to a builder or [`AccessKey::new`](crate::config::AccessKey::new).
    #[error("access key is empty or blank (`AccessKey=` or a key given to a builder)")]
    EmptyAccessKey,
    /// An allowed origin is not a bare host name (or `*`).
    #[error(
        "allowed origin `{value}` must be a host name such as `demo.webpubsub.azure.com`, or `*`"
    )]
    InvalidOrigin {
        /// The offending value.
        value: String,
    },
    /// Requests cannot be checked: neither an access key nor Entra ID
    /// validation was configured.
    #[error(
        "no access key configured: add a connection string or an access key \
         (or, with feature `entra`, Entra ID validation with `.entra(..)`), \
         or call `insecure_skip_signature_check()` to accept unsigned requests"
    )]
    NoAccessKey,
    /// The Entra ID validation settings cannot work (feature `entra`).
    #[error("Entra ID validation: {reason}")]
    InvalidEntraValidation {
        /// What is wrong, and what to do.
        reason: String,
    },
    /// An [`EventRouter`](crate::EventRouter) was built without any hub.
    #[error("no hub configured: add one with `.hub(\"name\", handler)`")]
    NoHub,
    /// Two handlers were registered for the same hub (hub names are case-insensitive).
    #[error("hub `{hub}` is registered twice (hub names are case-insensitive)")]
    DuplicateHub {
        /// The hub name as given the second time.
        hub: String,
    },
    /// A reverse proxy URL is not an absolute `http(s)` URL.
    #[error("reverse proxy `{value}` is not an http(s) URL: {reason}")]
    InvalidReverseProxy {
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client of the service client could not be set up.
    #[error("the HTTP client could not be set up: {reason}")]
    HttpClient {
        /// The underlying error.
        reason: String,
    },
    /// A hub name is empty or contains characters the service never sends.
    #[error("hub name `{hub}` is invalid: use a letter followed by letters, digits or `_`")]
    InvalidHub {
        /// The offending hub name.
        hub: String,
    },
    /// A setting cannot be used as given (the emulator's builder reports
    /// its own settings with this).
    #[error("{setting}: {reason}")]
    InvalidSetting {
        /// The setting, as the builder method and command-line flag name it.
        setting: &'static str,
        /// What is wrong, and what to do instead (never a secret's value).
        reason: String,
    },
    /// A group name breaks the service's rule (see [`GroupName`](crate::names::GroupName)).
    #[error("group name `{group}` is invalid: use 1 to 1024 characters, not only white space")]
    InvalidGroup {
        /// The offending group name.
        group: String,
    },
}

impl From<crate::names::InvalidName> for ConfigError {
    fn from(invalid: crate::names::InvalidName) -> Self {
        match invalid.kind() {
            crate::names::NameKind::Group => Self::InvalidGroup {
                group: invalid.into_name(),
            },
            _ => Self::InvalidHub {
                hub: invalid.into_name(),
            },
        }
    }
}
