//! Parsing of `Endpoint=…;AccessKey=…` connection strings.

use std::fmt;
use std::str::FromStr;

use url::Url;

use super::ConfigError;
use crate::config::AccessKey;

/// A parsed Web PubSub connection string.
///
/// The format is a list of `Key=Value` pairs separated by `;`, as shown in
/// the Azure portal:
///
/// ```text
/// Endpoint=https://demo.webpubsub.azure.com;AccessKey=<key>;Version=1.0;
/// ```
///
/// Parsing rules, chosen to accept what every official SDK accepts and never
/// to guess silently:
///
/// - parts are split on `;`, empty parts are skipped, each part is split at
///   its first `=` (so keys may contain `=`), keys and values are trimmed;
/// - keys are case-insensitive; `Version` and unknown keys are ignored;
/// - `Endpoint` is required and must be an absolute `http` or `https` URL;
///   a trailing `/` is dropped;
/// - `AccessKey` is optional here (identity-based set-ups have none), but the
///   upstream validation refuses to build without a key unless told otherwise;
/// - `Port`, when present, must be 1–65535 and replaces the endpoint's port;
/// - `Endpoint`, `AccessKey` and `Port` may each appear once.
///
/// The access key is never printed: `Debug` redacts it.
///
/// ```
/// use webpubsub::config::ConnectionString;
///
/// let conn: ConnectionString =
///     "Endpoint=http://localhost;Port=8080;AccessKey=secret;Version=1.0;".parse()?;
/// assert_eq!(conn.endpoint().as_str(), "http://localhost:8080/");
/// assert_eq!(conn.host(), "localhost");
/// assert!(conn.access_key().is_some());
/// assert!(!format!("{conn:?}").contains("secret"));
/// # Ok::<(), webpubsub::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConnectionString {
    endpoint: Url,
    host: String,
    access_key: Option<AccessKey>,
}

impl ConnectionString {
    /// Parses a connection string; see the type's documentation for the rules.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the missing or malformed key.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut endpoint = None;
        let mut access_key = None;
        let mut port = None;
        for part in s.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = if key.eq_ignore_ascii_case("endpoint") {
                &mut endpoint
            } else if key.eq_ignore_ascii_case("accesskey") {
                &mut access_key
            } else if key.eq_ignore_ascii_case("port") {
                &mut port
            } else {
                continue;
            };
            if slot.replace(value).is_some() {
                return Err(ConfigError::DuplicateConnectionStringKey {
                    key: key.to_owned(),
                });
            }
        }

        let raw = endpoint.ok_or(ConfigError::MissingConnectionStringKey { key: "Endpoint" })?;
        let invalid = |reason: &str| ConfigError::InvalidEndpoint {
            value: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let mut url = Url::parse(raw.trim_end_matches('/')).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("it has no host"))?
            .to_ascii_lowercase();
        if let Some(port) = port {
            let number = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| ConfigError::InvalidPort {
                    value: port.to_owned(),
                })?;
            url.set_port(Some(number))
                .map_err(|()| invalid("its port cannot be set"))?;
        }
        let access_key = match access_key {
            Some(key) => Some(AccessKey::new(key)?),
            None => None,
        };
        Ok(Self {
            endpoint: url,
            host,
            access_key,
        })
    }

    /// The service endpoint, with the `Port` applied (e.g. `https://demo.webpubsub.azure.com/`).
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The endpoint's host name, lower-cased and without port: the value the
    /// service sends in `WebHook-Request-Origin`.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The access key, if the connection string has one.
    #[must_use]
    pub fn access_key(&self) -> Option<&AccessKey> {
        self.access_key.as_ref()
    }
}

impl FromStr for ConnectionString {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key", &self.access_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_values_trimmed() {
        let c = ConnectionString::parse(" endpoint = https://Demo.WebPubSub.azure.com/ ; accesskey = k=with=eq ;version=1.0;Foo=bar")
            .unwrap();
        assert_eq!(c.endpoint().as_str(), "https://demo.webpubsub.azure.com/");
        assert_eq!(c.host(), "demo.webpubsub.azure.com");
        let expected = AccessKey::new("k=with=eq").unwrap().signature("c");
        assert_eq!(c.access_key().unwrap().signature("c"), expected);
    }

    #[test]
    fn port_replaces_the_endpoint_port() {
        let c = ConnectionString::parse("Endpoint=http://localhost:1234;Port=8080").unwrap();
        assert_eq!(c.endpoint().as_str(), "http://localhost:8080/");
        assert!(c.access_key().is_none());
    }

    #[test]
    fn malformed_strings_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("AccessKey=a", "no `Endpoint=`"),
            (
                "Endpoint=ftp://x;AccessKey=a",
                "scheme must be http or https",
            ),
            (
                "Endpoint=demo.webpubsub.azure.com;AccessKey=a",
                "not an http(s) URL",
            ),
            ("Endpoint=http://x;Port=0", "`Port=0`"),
            ("Endpoint=http://x;Port=99999", "`Port=99999`"),
            ("Endpoint=http://x;Port=abc", "`Port=abc`"),
            ("Endpoint=http://x;Endpoint=http://y", "`Endpoint=` twice"),
            ("Endpoint=http://x;AccessKey=", "access key is empty"),
            ("Endpoint=http://x;AccessKey= \t ", "access key is empty"),
        ];
        for (input, fragment) in cases {
            let err = ConnectionString::parse(input).unwrap_err().to_string();
            assert!(err.contains(fragment), "{input}: {err}");
        }
    }

    #[test]
    fn errors_never_contain_the_key() {
        let err = ConnectionString::parse("AccessKey=topsecret;Endpoint=nope").unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }
}
