//! The REST data plane (`/api/…`), with the paths, `api-version`, token
//! check and exact status codes of the service.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::auth;
use crate::entra;
use crate::filter::ODataFilter;
use crate::hub::{lock, Data, Envelope, Origin, Outbound, Refusal, Target};
use crate::lifecycle::finish;
use crate::permissions::Action;
use crate::service::Shared;
use webpubsub::client_access::{ClientAccessOptions, ClientProtocol};
use webpubsub::events::DataType;
use webpubsub::names::GroupName;

/// API versions accepted (the stable ones).
const API_VERSIONS: [&str; 5] = [
    "2021-10-01",
    "2022-11-01",
    "2023-07-01",
    "2024-01-01",
    "2024-12-01",
];
/// The largest request body read.
const BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The longest lifetime `:generateToken` signs: one year, in minutes. The
/// service documents no maximum; this one keeps `exp` far from overflow.
const MAX_TOKEN_MINUTES: u64 = 365 * 24 * 60;

/// A refusal with the service's JSON error body (401s have no body).
fn error(status: StatusCode, message: &str) -> Response {
    tracing::info!(target: "webpubsub_emulator::rest", status = status.as_u16(), %message, "refused REST call");
    if status == StatusCode::UNAUTHORIZED {
        return status.into_response();
    }
    let code = match status {
        StatusCode::NOT_FOUND => "Error.NotFound",
        StatusCode::FORBIDDEN => "Error.Forbidden",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Error.UnsupportedMediaType",
        StatusCode::PAYLOAD_TOO_LARGE => "Error.PayloadTooLarge",
        StatusCode::INTERNAL_SERVER_ERROR => "Error.InternalServerError",
        _ => "Error.BadRequest",
    };
    let body = serde_json::json!({ "code": code, "message": message, "target": "Request" });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-ms-error-code", HeaderValue::from_static(code));
    response
}

fn status(status: StatusCode) -> Response {
    status.into_response()
}

fn bool_status(yes: bool) -> Response {
    status(if yes {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// Serves everything under `/api/`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.as_str().to_owned());

    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(token) = token else {
        return error(StatusCode::UNAUTHORIZED, "no bearer token");
    };
    // RS256: a bearer token of the emulator's Entra ID (any valid one may
    // call every API: no RBAC). Anything else: an access-key token.
    if entra::algorithm(token).as_deref() == Some("RS256") {
        if let Err(e) = shared.entra.verify_rest(token) {
            return error(StatusCode::UNAUTHORIZED, &e.to_string());
        }
    } else {
        let claims = match shared.verify_token(token) {
            Ok(claims) => claims,
            Err(e) => return error(StatusCode::UNAUTHORIZED, &e.to_string()),
        };
        let accepted = [
            format!("http://{host}{path_and_query}"),
            format!("http://{host}{path}"),
            format!("https://{host}{path_and_query}"),
            format!("https://{host}{path}"),
        ];
        let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
        if let Err(e) = auth::check_audience(&claims, &accepted) {
            return error(StatusCode::UNAUTHORIZED, &e.to_string());
        }
    }

    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    match query.iter().find(|(k, _)| k == "api-version") {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "the api-version query parameter is required",
            )
        }
        Some((_, v)) if !API_VERSIONS.contains(&v.as_str()) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("api-version `{v}` is not supported"),
            )
        }
        Some(_) => {}
    }

    let segments: Vec<String> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
    };
    let call = Call {
        shared: &shared,
        host: &host,
        path: &path,
        query: &query,
        headers: &parts.headers,
        body,
    };
    call.route(&parts.method, &segments)
}

struct Call<'a> {
    shared: &'a Arc<Shared>,
    host: &'a str,
    path: &'a str,
    query: &'a [(String, String)],
    headers: &'a http::HeaderMap,
    body: Bytes,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn params(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn route(&self, method: &Method, segments: &[&str]) -> Response {
        use Method as M;
        let hubs = &self.shared.hubs;
        let segs = match segments {
            ["health"] if method == M::HEAD || method == M::GET => return status(StatusCode::OK),
            ["hubs", hub, rest @ ..] => {
                if !webpubsub::names::HubName::is_valid(hub) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid hub name `{hub}`"),
                    );
                }
                (*hub, rest)
            }
            _ => return error(StatusCode::NOT_FOUND, "no such operation"),
        };
        let (hub, rest) = segs;
        for (i, seg) in rest.iter().enumerate() {
            let is_group = i > 0 && rest.get(i - 1) == Some(&"groups");
            if is_group && !GroupName::is_valid(seg) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "group names are 1-1024 characters, not only whitespace",
                );
            }
            if seg.is_empty() {
                return error(StatusCode::BAD_REQUEST, "an empty path segment");
            }
        }
        match (method, rest) {
            (&M::POST, [":send"]) => self.send(hub, Target::All, None),
            (&M::POST, ["groups", group, ":send"]) => {
                self.send(hub, Target::Group(group), Some(group))
            }
            (&M::POST, ["users", user, ":send"]) => self.send(hub, Target::User(user), None),
            (&M::POST, ["connections", id, ":send"]) => {
                self.send(hub, Target::Connection(id), None)
            }
            (&M::POST, [":closeConnections"]) => self.close(hub, Target::All),
            (&M::POST, ["groups", group, ":closeConnections"]) => {
                self.close(hub, Target::Group(group))
            }
            (&M::POST, ["users", user, ":closeConnections"]) => self.close(hub, Target::User(user)),
            (&M::DELETE, ["connections", id]) => self.close(hub, Target::Connection(id)),
            (&M::HEAD, ["connections", id]) => bool_status(hubs.connection_exists(hub, id)),
            (&M::HEAD, ["groups", group]) => bool_status(hubs.group_exists(hub, group)),
            (&M::HEAD, ["users", user]) => bool_status(hubs.user_exists(hub, user)),
            (&M::PUT, ["groups", group, "connections", id]) => match hubs.join(hub, id, group) {
                Ok(()) => {
                    self.shared.changed();
                    status(StatusCode::OK)
                }
                Err(Refusal::UnknownConnection) => error(
                    StatusCode::NOT_FOUND,
                    &format!("Connection id '{id}' doesn't exist."),
                ),
                Err(refusal) => error(StatusCode::FORBIDDEN, &refusal.to_string()),
            },
            (&M::DELETE, ["groups", group, "connections", id]) => {
                hubs.leave(hub, id, group);
                self.shared.changed();
                status(StatusCode::NO_CONTENT)
            }
            (&M::DELETE, ["connections", id, "groups"]) => {
                hubs.leave_all(hub, id);
                self.shared.changed();
                status(StatusCode::NO_CONTENT)
            }
            (&M::PUT, ["users", user, "groups", group]) => {
                let (connections, refused) = hubs.user_join(hub, user, group);
                if connections == 0 {
                    return error(
                        StatusCode::NOT_FOUND,
                        &format!("User `{user}` is not found."),
                    );
                }
                if refused > 0 {
                    tracing::info!(target: "webpubsub_emulator::rest", hub, refused,
                        "connections in too many groups were not added to the group");
                }
                self.shared.changed();
                status(StatusCode::OK)
            }
            (&M::DELETE, ["users", user, "groups", group]) => {
                hubs.user_leave(hub, user, Some(group));
                self.shared.changed();
                status(StatusCode::NO_CONTENT)
            }
            (&M::DELETE, ["users", user, "groups"]) => {
                hubs.user_leave(hub, user, None);
                self.shared.changed();
                status(StatusCode::NO_CONTENT)
            }
            (&M::POST, [":addToGroups"]) => self.bulk(hub, true),
            (&M::POST, [":removeFromGroups"]) => self.bulk(hub, false),
            (_, ["permissions", permission, "connections", id]) => {
                self.permission(method, hub, permission, id)
            }
            (&M::POST, [":generateToken"]) => self.generate_token(hub),
            (&M::GET, ["groups", group, "connections"]) => self.list(hub, group),
            _ => error(StatusCode::NOT_FOUND, "no such operation"),
        }
    }

    /// A filter from its text (none when empty); `Err` is the 400 message.
    fn filter(text: Option<&str>) -> Result<Option<ODataFilter>, String> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => ODataFilter::parse(text)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    fn send(&self, hub: &str, target: Target<'_>, group: Option<&str>) -> Response {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let kind = match essence.as_str() {
            "text/plain" => DataType::Text,
            "application/json" => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&self.body).is_err() {
                    return error(StatusCode::BAD_REQUEST, "the body is not valid JSON");
                }
                DataType::Json
            }
            "application/octet-stream" => DataType::Binary,
            _ => {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "use text/plain, application/json or application/octet-stream",
                )
            }
        };
        if let Some(ttl) = self.param("messageTtlSeconds") {
            if !ttl.parse::<u32>().is_ok_and(|t| t <= 300) {
                return error(StatusCode::BAD_REQUEST, "messageTtlSeconds must be 0-300");
            }
        }
        let filter = match Self::filter(self.param("filter")) {
            Ok(filter) => filter,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let excluded = self.params("excluded");
        let origin = match group {
            Some(group) => Origin::Group {
                group: Arc::from(group),
                from_user: None,
                stream: None,
            },
            None => Origin::Server,
        };
        let envelope = Envelope::new(
            origin,
            Data {
                kind,
                bytes: self.body.clone(),
            },
        );
        let targets = self
            .shared
            .hubs
            .targets(hub, target, &excluded, filter.as_ref());
        tracing::debug!(target: "webpubsub_emulator::rest", hub, recipients = targets.len(), "send");
        for conn in targets {
            conn.send(Outbound::Message(envelope.clone()));
        }
        status(StatusCode::ACCEPTED)
    }

    fn close(&self, hub: &str, target: Target<'_>) -> Response {
        let reason = self
            .param("reason")
            .filter(|r| !r.is_empty())
            .unwrap_or("Closed by REST API.")
            .to_owned();
        let excluded = self.params("excluded");
        for conn in self.shared.hubs.targets(hub, target, &excluded, None) {
            // A reliable connection waiting for recovery has no socket to tell.
            let parked = lock(&conn.parked).take().is_some();
            if parked {
                finish(self.shared, &conn, Some(reason.clone()));
            } else {
                conn.send(Outbound::Close {
                    reason: reason.clone(),
                });
            }
        }
        status(StatusCode::NO_CONTENT)
    }

    fn bulk(&self, hub: &str, add: bool) -> Response {
        let essence = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json",
            );
        }
        #[derive(serde::Deserialize)]
        struct Body {
            groups: Vec<String>,
            #[serde(default)]
            filter: Option<String>,
        }
        let body: Body = match serde_json::from_slice(&self.body) {
            Ok(body) => body,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
        };
        if body.groups.is_empty() || !body.groups.iter().all(|g| GroupName::is_valid(g)) {
            return error(
                StatusCode::BAD_REQUEST,
                "groups must be a non-empty list of valid group names",
            );
        }
        let filter = match Self::filter(body.filter.as_deref()) {
            Ok(filter) => filter,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let refused = self
            .shared
            .hubs
            .bulk(hub, &body.groups, filter.as_ref(), add);
        if refused > 0 {
            tracing::info!(target: "webpubsub_emulator::rest", hub, refused,
                "connections in too many groups were not added to some groups");
        }
        self.shared.changed();
        status(StatusCode::OK)
    }

    fn permission(&self, method: &Method, hub: &str, permission: &str, id: &str) -> Response {
        let Some(action) = Action::from_rest(permission) else {
            return error(
                StatusCode::BAD_REQUEST,
                "permission must be sendToGroup or joinLeaveGroup",
            );
        };
        let target = self.param("targetName");
        if target.is_some_and(|t| !GroupName::is_valid(t)) {
            return error(
                StatusCode::BAD_REQUEST,
                "targetName is not a valid group name",
            );
        }
        let Some(conn) = self.shared.hubs.get(hub, id) else {
            return if method == Method::HEAD {
                status(StatusCode::NOT_FOUND)
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    &format!("Connection id '{id}' doesn't exist."),
                )
            };
        };
        let mut permissions = lock(&conn.permissions);
        match *method {
            Method::PUT => {
                permissions.grant(action, target);
                status(StatusCode::OK)
            }
            Method::DELETE => {
                permissions.revoke(action, target);
                status(StatusCode::NO_CONTENT)
            }
            Method::HEAD => bool_status(permissions.check(action, target)),
            _ => error(StatusCode::NOT_FOUND, "no such operation"),
        }
    }

    fn generate_token(&self, hub: &str) -> Response {
        let minutes = match self.param("minutesToExpire") {
            None => 60,
            Some(m) => match m.parse::<u64>() {
                Ok(m) if (1..=MAX_TOKEN_MINUTES).contains(&m) => m,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("minutesToExpire must be 1-{MAX_TOKEN_MINUTES} (one year)"),
                    )
                }
            },
        };
        // The client type changes the token's audience: the MQTT path
        // `/clients/mqtt/hubs/{hub}` for `MQTT`.
        let protocol = match self.param("clientType") {
            None => ClientProtocol::Default,
            Some(t) if t.eq_ignore_ascii_case("default") => ClientProtocol::Default,
            Some(t) if t.eq_ignore_ascii_case("mqtt") => ClientProtocol::Mqtt,
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "clientType must be Default or MQTT",
                )
            }
        };
        let endpoint = match url::Url::parse(&format!("http://{}", self.host)) {
            Ok(endpoint) if endpoint.host_str().is_some() => endpoint,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the Host header is not a host name",
                )
            }
        };
        // The hub name was checked when the path was routed. With local auth
        // off, the internal key signs (and names itself with a `kid`).
        let key = if self.shared.local_auth {
            self.shared.key.clone()
        } else {
            self.shared.client_key.access_key().clone()
        };
        let signer = webpubsub::__emulator::client_access_signer(key, &endpoint, hub.to_owned());
        let mut options = ClientAccessOptions::new()
            .protocol(protocol)
            .roles(self.params("role"))
            .groups(self.params("group"))
            .expires_after(std::time::Duration::from_secs(minutes.saturating_mul(60)));
        if let Some(user) = self.param("userId") {
            options = options.user_id(user);
        }
        let access = signer.client_access(&options);
        let token = if self.shared.local_auth {
            Some(access.token().to_owned())
        } else {
            self.shared.client_key.resign(access.token())
        };
        let Some(token) = token else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing the token failed",
            );
        };
        let body = serde_json::json!({ "token": token }).to_string();
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    fn list(&self, hub: &str, group: &str) -> Response {
        let page_size = match self.param("maxpagesize") {
            None => 200,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=200).contains(&n) => n,
                _ => return error(StatusCode::BAD_REQUEST, "maxpagesize must be 1-200"),
            },
        };
        let top = match self.param("top") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return error(StatusCode::BAD_REQUEST, "top must be at least 1"),
            },
        };
        let start = match self.param("continuationToken") {
            None => 0,
            Some(t) => match t.parse::<usize>() {
                Ok(n) => n,
                _ => return error(
                    StatusCode::BAD_REQUEST,
                    "continuationToken is not valid: pass the one of the previous page's nextLink",
                ),
            },
        };
        let members = self.shared.hubs.list_group(hub, group);
        let take = top.map_or(page_size, |t| t.min(page_size));
        let page: Vec<_> = members.iter().skip(start).take(take).cloned().collect();
        let next = start.saturating_add(page.len());
        let remaining = top.map(|t| t.saturating_sub(page.len()));
        let mut body = serde_json::json!({ "value": page });
        if next < members.len() && remaining != Some(0) {
            let mut link = format!(
                "http://{}{}?api-version=2024-12-01&maxpagesize={page_size}&continuationToken={next}",
                self.host, self.path
            );
            if let Some(remaining) = remaining {
                link.push_str(&format!("&top={remaining}"));
            }
            if let Value::Object(map) = &mut body {
                map.insert("nextLink".to_owned(), Value::String(link));
            }
        }
        let mut response = Response::new(Body::from(body.to_string()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
