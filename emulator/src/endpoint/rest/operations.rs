//! What each REST operation does to the hubs: send to everyone, a group,
//! a user or a connection (with filters), close connections, add and remove
//! group members, grant and check permissions, list a group's members.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::filter::ODataFilter;
use crate::hub::{lock, Data, Envelope, Origin, Outbound, Target};
use crate::lifecycle::finish;
use crate::permissions::Action;
use webpubsub::events::DataType;
use webpubsub::names::GroupName;

use super::{bool_status, error, status, Call};

impl Call<'_> {
    /// A filter from its text (none when empty); `Err` is the 400 message.
    pub(super) fn filter(text: Option<&str>) -> Result<Option<ODataFilter>, String> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => ODataFilter::parse(text)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    pub(super) fn send(&self, hub: &str, target: Target<'_>, group: Option<&str>) -> Response {
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
        let mut recipients = 0usize;
        self.shared
            .hubs
            .each_target(hub, target, &excluded, filter.as_ref(), |conn| {
                conn.send(Outbound::Message(envelope.clone()));
                recipients += 1;
            });
        tracing::debug!(target: "webpubsub_emulator::rest", hub, recipients, "send");
        status(StatusCode::ACCEPTED)
    }

    pub(super) fn close(&self, hub: &str, target: Target<'_>) -> Response {
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
                    reason: reason.as_str().into(),
                });
            }
        }
        status(StatusCode::NO_CONTENT)
    }

    pub(super) fn bulk(&self, hub: &str, add: bool) -> Response {
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

    pub(super) fn permission(
        &self,
        method: &Method,
        hub: &str,
        permission: &str,
        id: &str,
    ) -> Response {
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

    pub(super) fn list(&self, hub: &str, group: &str) -> Response {
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
