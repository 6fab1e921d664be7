//! The REST data plane (`/api/…`), with the paths, `api-version`, token
//! check and exact status codes of the service.
//!
//! * `mod.rs`: the request: token, `api-version`, body, and the route to
//!   each operation;
//! * `operations.rs`: what each operation does to the hubs (send, close,
//!   groups, permissions, listings);
//! * `token.rs`: `:generateToken`, client tokens.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod operations;
mod token;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

use crate::auth;
use crate::entra;
use crate::hub::{Refusal, Target};
use crate::service::Shared;
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
/// A refusal with the service's JSON error body (401s have no body).
pub(super) fn error(status: StatusCode, message: &str) -> Response {
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

/// An answer with no body.
fn status(status: StatusCode) -> Response {
    status.into_response()
}

/// `200` if `yes`, else `404` (the `HEAD` checks).
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
}
