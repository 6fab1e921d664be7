//! The live view: `/_emulator` shows hubs, connections and the latest
//! upstream calls, refreshed as they change.
//!
//! It is for this machine only. `/_emulator`, `/_emulator/` and
//! `/_emulator/api/state` answer only loopback peers, judged by the socket
//! address (`admin.rs`; else `403`), unless the emulator was built with
//! `insecure_allow_remote_admin(true)`; and only when the request's `Host` (port
//! ignored) is a loopback name — `localhost`, `*.localhost`, an address in
//! `127.0.0.0/8`, `[::1]` — or the host the emulator was built with
//! ([`EmulatorBuilder::host`](crate::EmulatorBuilder::host)). A web page
//! that rebinds its own DNS name to 127.0.0.1 sends its own name as `Host`,
//! so it gets `421 Misdirected Request`. A missing `Host` is `400`; a
//! request a browser marks `Sec-Fetch-Site: cross-site`, or whose `Origin`
//! is not the `Host` it was sent to, is `403`.
//!
//! What it never shows: the values of `ce-signature` (replaying one forges
//! events), `ce-connectionState`, `Authorization`, `Proxy-Authorization` and
//! `Cookie`, nor of `mqtt-*` headers (an MQTT client's user properties,
//! which carry credentials as often as not: `mqtt-authorization`) — only
//! that the header was sent and its length — and the values
//! of secret-looking query parameters in handler URLs (`access_token`,
//! `code`, `key`, `sig`, …) and URL passwords. Every shown text is cut to
//! [`SHOWN_VALUE`](crate::shown::SHOWN_VALUE) bytes ([`SHOWN_TEXT`](crate::shown::SHOWN_TEXT) for URLs and errors).
//!
//! Open group streams are listed oldest first, at most [`SHOWN_STREAMS`]
//! (of the asked hub) plus their total: hub, group, stream id, sending
//! connection and user, fragments so far, age and idle timeout; never
//! their data.
//!
//! Its answers have a bounded size: connections come a page at a time
//! (`?hub=&offset=&limit=`, [`DEFAULT_LIMIT`] by default, at most
//! [`MAX_LIMIT`]), each with at most [`SHOWN_GROUPS`](crate::shown::SHOWN_GROUPS) of its groups and
//! roles plus their counts, and the emulator keeps the last 200 upstream
//! calls and the last 200 invocations (`invoke` frames: event, connection,
//! invocation id, latency and outcome, never their payload).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::response::{Html, IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, X_CONTENT_TYPE_OPTIONS};
use http::request::Parts;
use http::{HeaderMap, HeaderName, StatusCode, Uri};

use super::admin::{is_loopback, AdminPeer};
use crate::service::Shared;

/// The page; it long-polls [`state`].
const PAGE: &str = include_str!("live.html");
/// How long a poll waits for a change before answering anyway.
const POLL: Duration = Duration::from_secs(25);
/// Connections per answer unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub(crate) const MAX_LIMIT: usize = 500;
/// Open group streams listed per answer (oldest first); the answer counts the rest.
pub(crate) const SHOWN_STREAMS: usize = 100;

/// Why the live view refused a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// No `Host` header (nor an HTTP/2 authority).
    #[error("missing header Host")]
    MissingHost,
    /// `Host` names neither a loopback address nor the emulator's host.
    #[error("the live view answers only to a loopback Host (localhost, 127.0.0.1, [::1]) or the emulator's own host")]
    ForeignHost,
    /// A browser says the request comes from another site.
    #[error("the live view refuses cross-site requests")]
    CrossSite,
    /// A query parameter of `/_emulator/api/state` is malformed.
    #[error("{0}")]
    BadQuery(&'static str),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingHost | Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Self::CrossSite => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status(),
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.to_string(),
        )
            .into_response()
    }
}

/// Logs a refusal (the one place the live view does) and answers it.
fn refused(refusal: Refusal, path: &str) -> Response {
    tracing::warn!(target: "webpubsub_emulator::live", status = refusal.status().as_u16(),
        reason = %refusal, path, "refused live view request");
    refusal.into_response()
}

/// Proof that a request may see the live view: it came to a loopback host
/// or the emulator's own, and not from another site.
#[derive(Debug)]
pub(crate) struct Local;

impl FromRequestParts<Arc<Shared>> for Local {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        check(&parts.headers, &parts.uri, &shared.host)
            .map(|()| Local)
            .map_err(|refusal| refused(refusal, parts.uri.path()))
    }
}

/// Checks `Host` (or the HTTP/2 authority), `Sec-Fetch-Site` and `Origin`.
fn check(headers: &HeaderMap, uri: &Uri, configured: &str) -> Result<(), Refusal> {
    let host = match headers.get(HOST) {
        Some(value) => value.to_str().map_err(|_| Refusal::ForeignHost)?,
        None => uri.authority().ok_or(Refusal::MissingHost)?.as_str(),
    };
    if !is_local(host, configured) {
        return Err(Refusal::ForeignHost);
    }
    let fetch_site = HeaderName::from_static("sec-fetch-site");
    if headers
        .get_all(fetch_site)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(Refusal::CrossSite);
    }
    for origin in headers.get_all(ORIGIN) {
        let same = origin.to_str().ok().is_some_and(|origin| {
            ["http://", "https://"].iter().any(|scheme| {
                origin
                    .get(..scheme.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                    && origin
                        .get(scheme.len()..)
                        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
            })
        });
        if !same {
            return Err(Refusal::CrossSite);
        }
    }
    Ok(())
}

/// The host of a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`),
/// and whether it was bracketed; `None` if it is malformed.
fn split_host(authority: &str) -> Option<(&str, bool)> {
    let is_port = |p: &str| p.parse::<u16>().is_ok() && p.bytes().all(|b| b.is_ascii_digit());
    let (host, bracketed) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
                return None;
            }
            (inside, true)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) if is_port(port) => (host, false),
            Some(_) => return None,
            None => (authority, false),
        },
    };
    (!host.is_empty()).then_some((host, bracketed))
}

/// Whether `authority` names this machine: a loopback name or address, or
/// the emulator's configured host.
fn is_local(authority: &str, configured: &str) -> bool {
    let Some((host, bracketed)) = split_host(authority) else {
        return false;
    };
    let loopback = if bracketed {
        host.parse::<Ipv6Addr>()
            .is_ok_and(|ip| is_loopback(IpAddr::V6(ip)))
    } else {
        let lower = host.to_ascii_lowercase();
        lower == "localhost"
            || lower
                .strip_suffix(".localhost")
                .is_some_and(|label| !label.is_empty() && !label.ends_with('.'))
            || host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| is_loopback(IpAddr::V4(ip)))
    };
    let configured = split_host(configured).map_or(configured, |(host, _)| host);
    loopback || (!configured.is_empty() && host.eq_ignore_ascii_case(configured))
}

/// `GET /_emulator` and `/_emulator/`: the page.
pub(crate) async fn page(_: AdminPeer, _: Local) -> Response {
    (
        [
            (CACHE_CONTROL, "no-store"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// The parameters of `/_emulator/api/state`.
#[derive(Debug, PartialEq, Eq)]
struct StateQuery {
    since: Option<u64>,
    hub: Option<String>,
    offset: usize,
    limit: usize,
}

/// Reads `since`, `hub`, `offset` and `limit`; other parameters are ignored.
fn parse_query(query: Option<&str>) -> Result<StateQuery, Refusal> {
    let (mut since, mut hub, mut offset, mut limit) = (None, None, None, None);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let twice = match &*name {
            "since" => since
                .replace(value.parse::<u64>().map_err(|_| {
                    Refusal::BadQuery("since must be a whole number from 0 to 18446744073709551615 (the version of the last answer)")
                })?)
                .is_some(),
            "hub" => {
                if !value.is_empty() && !webpubsub::names::HubName::is_valid(&value) {
                    return Err(Refusal::BadQuery(
                        "hub must be a hub name: a letter, then up to 127 letters, digits or _`,.[]",
                    ));
                }
                hub.replace(value.to_ascii_lowercase()).is_some()
            }
            "offset" => offset
                .replace(value.parse::<usize>().map_err(|_| {
                    Refusal::BadQuery("offset must be a whole number (connections to skip)")
                })?)
                .is_some(),
            "limit" => limit
                .replace(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or(Refusal::BadQuery("limit must be a whole number from 1 to 500"))?,
                )
                .is_some(),
            _ => false,
        };
        if twice {
            return Err(Refusal::BadQuery(
                "since, hub, offset and limit may each be given once",
            ));
        }
    }
    Ok(StateQuery {
        since,
        hub: hub.filter(|h| !h.is_empty()),
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(DEFAULT_LIMIT),
    })
}

/// `GET /_emulator/api/state[?since=N][&hub=H][&offset=O][&limit=L]`: one
/// page of connections (in hub, then connection id order; `hub` keeps to
/// one hub), each hub's totals, and the recent upstream calls and
/// invocations, as JSON.
/// With `since`, answers once the version passes N (or after 25 s).
pub(crate) async fn state(
    _: AdminPeer,
    _: Local,
    State(shared): State<Arc<Shared>>,
    uri: Uri,
) -> Response {
    let query = match parse_query(uri.query()) {
        Ok(query) => query,
        Err(refusal) => return refused(refusal, uri.path()),
    };
    if let Some(since) = query.since {
        let mut changes = shared.upstream.changes.subscribe();
        let _ = tokio::time::timeout(POLL, changes.wait_for(|v| *v > since)).await;
    }
    let version = *shared.upstream.changes.borrow();
    let open_streams = shared
        .hubs
        .open_streams(query.hub.as_deref(), SHOWN_STREAMS);
    let page = shared
        .hubs
        .snapshot(query.hub.as_deref(), query.offset, query.limit);
    let shown: usize = page.hubs.values().map(Vec::len).sum();
    let next = query
        .offset
        .checked_add(shown)
        .filter(|next| shown > 0 && *next < page.connections);
    let body = serde_json::json!({
        "version": version,
        "host": shared.host,
        "page": {
            "hub": query.hub,
            "offset": query.offset,
            "limit": query.limit,
            "connections": page.connections,
            "hubs": page.hub_count,
            "nextOffset": next,
        },
        "hubs": page.hubs,
        "hubTotals": page.hub_totals,
        "upstreamCalls": shared.upstream.recent(),
        "invocations": shared.upstream.recent_invocations(),
        "streams": {
            "open": open_streams.0,
            "total": open_streams.1,
        },
    });
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn loopback_names_and_the_configured_host_are_local() {
        for (host, local) in [
            ("localhost", true),
            ("LOCALHOST:8080", true),
            ("chat.localhost:3000", true),
            ("127.0.0.1", true),
            ("127.8.9.10:80", true),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("[::ffff:127.0.0.1]:1", true),
            ("emu.test:9", true),
            ("EMU.TEST", true),
            ("evil.example", false),
            ("attacker.com:8080", false),
            ("localhost.evil.example", false),
            ("evil-localhost", false),
            (".localhost", false),
            ("a..localhost", false),
            ("localhost.", false),
            ("0.0.0.0", false),
            ("128.0.0.1", false),
            ("127.1", false),
            ("::1", false),
            ("[::2]:80", false),
            ("[localhost]", false),
            ("[::1]x", false),
            ("localhost:", false),
            ("localhost:99999", false),
            ("localhost:+80", false),
            (":8080", false),
            ("", false),
        ] {
            assert_eq!(is_local(host, "emu.test"), local, "{host}");
        }
        assert!(is_local("[::1]", "[::1]"));
        assert!(!is_local("", ""));
    }

    #[test]
    fn cross_site_requests_and_foreign_origins_are_refused() {
        let uri = Uri::from_static("/_emulator");
        let check = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            check(&headers, &uri, "localhost").map_err(|r| r.status().as_u16())
        };
        assert_eq!(check(&[]), Err(400));
        assert_eq!(check(&[("host", "evil.example")]), Err(421));
        assert_eq!(check(&[("host", "localhost:1")]), Ok(()));
        assert_eq!(
            check(&[("host", "localhost:1"), ("sec-fetch-site", "same-origin")]),
            Ok(())
        );
        assert_eq!(
            check(&[("host", "localhost:1"), ("sec-fetch-site", "cross-site")]),
            Err(403)
        );
        assert_eq!(
            check(&[("host", "localhost:1"), ("origin", "http://localhost:1")]),
            Ok(())
        );
        for origin in [
            "http://evil.example",
            "http://localhost:2",
            "null",
            "ftp://localhost:1",
        ] {
            assert_eq!(
                check(&[("host", "localhost:1"), ("origin", origin)]),
                Err(403),
                "{origin}"
            );
        }
        assert_eq!(
            check(&[("host", "evil.example"), ("origin", "http://evil.example")]),
            Err(421)
        );
        let h2 = Uri::from_static("http://127.0.0.1:5/_emulator");
        assert!(self::check(&HeaderMap::new(), &h2, "localhost").is_ok());
    }

    #[test]
    fn state_parameters_are_range_checked() {
        assert_eq!(
            parse_query(None).unwrap(),
            StateQuery {
                since: None,
                hub: None,
                offset: 0,
                limit: DEFAULT_LIMIT
            }
        );
        assert_eq!(
            parse_query(Some("since=7&hub=Chat&offset=200&limit=500&x=1")).unwrap(),
            StateQuery {
                since: Some(7),
                hub: Some("chat".to_owned()),
                offset: 200,
                limit: 500
            }
        );
        assert_eq!(parse_query(Some("hub=")).unwrap().hub, None);
        for bad in [
            "since=-1",
            "since=abc",
            "since=18446744073709551616",
            "since=",
            "offset=-1",
            "offset=1e3",
            "offset=99999999999999999999999",
            "limit=0",
            "limit=501",
            "limit=",
            "hub=1chat",
            "hub=%00",
            "limit=1&limit=2",
        ] {
            assert!(
                matches!(parse_query(Some(bad)), Err(Refusal::BadQuery(_))),
                "{bad}"
            );
        }
    }
}
