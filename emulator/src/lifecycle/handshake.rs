//! The handshake steps every client protocol shares: read the upgrade
//! request, check the token, the identity it names; and how a step refuses
//! the client ([`Refusal`]); the limits of every upgraded socket
//! ([`configure`]).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt as _;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Map, Value};

use crate::auth;
use crate::service::Shared;
use crate::upstream::UpstreamError;
use webpubsub::names::{GroupName, HubName};

/// The largest client message accepted, and the largest frame: 1 MiB (the
/// service's limit). A frame announcing more is refused from its header,
/// before its payload is buffered, with close code 1009.
pub(crate) const MAX_FRAME: usize = 1024 * 1024;
/// Bytes read from a socket at a time. Every socket holds this much for its
/// life (tungstenite's default, 128 KiB, would be 128 KiB per idle client),
/// and tungstenite zeroes it before each read. Client frames are mostly
/// small; a larger one grows the buffer while it is read.
const READ_BUFFER: usize = 1024;
/// Bytes of frames gathered before they are written to the socket.
const WRITE_BUFFER: usize = 16 * 1024;
/// Whether a read failed because the peer sent a message or frame over
/// the socket's limit ([`MAX_FRAME`], set by [`configure`]). axum hides
/// tungstenite's error type, so this reads its message: `Space limit
/// exceeded: Message too long: … > …`.
pub(crate) fn too_big(error: &axum::Error) -> bool {
    error.to_string().contains("Space limit exceeded")
}

/// Sets the WebSocket limits of every socket the emulator upgrades.
///
/// The write buffer needs no cap of its own (`max_write_buffer_size`):
/// the writer waits for each flush, so it holds at most `WRITE_BUFFER` plus
/// one frame, and the queue in front of it is bounded by bytes.
pub(crate) fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
}

/// The send half of an upgraded socket.
pub(crate) type Sink = SplitSink<WebSocket, Message>;
/// The receive half of an upgraded socket.
pub(crate) type Source = SplitStream<WebSocket>;

/// An upgraded socket in its two halves, for every protocol. Split in the
/// `on_upgrade` callback, before the connection's future is made: a whole
/// `WebSocket` held by that long-lived future would size it by several
/// hundred bytes more, for nothing.
pub(crate) fn halves(socket: WebSocket) -> (Sink, Source) {
    socket.split()
}

/// Why the handshake refuses a client.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The emulator refuses: this status, with the reason as the body (a
    /// `401` has none).
    Emulator { status: StatusCode, reason: String },
    /// The `connect` handler refused, failed or could not be reached: its
    /// status (`500` unless it answered one); no body when it refused,
    /// else one naming the cause in general terms
    /// ([`UpstreamError::client_message`]).
    Upstream { hub: String, error: UpstreamError },
}

impl Refusal {
    /// The emulator refuses with `status` and `reason`.
    pub(crate) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self::Emulator {
            status,
            reason: reason.into(),
        }
    }

    /// Logs the refusal once, where it becomes the answer.
    pub(crate) fn log(&self) {
        match self {
            Self::Emulator { status, reason } => {
                tracing::info!(target: "webpubsub_emulator::client", status = status.as_u16(), %reason, "refused client");
            }
            Self::Upstream { hub, error } => {
                tracing::info!(target: "webpubsub_emulator::client", hub = %hub, error = %error, "connect failed: {}", error.summary());
            }
        }
    }
}

impl Refusal {
    /// A handshake's answer: its upgrade, or its refusal (logged once).
    pub(crate) fn answer(result: Result<Response, Refusal>) -> Response {
        match result {
            Ok(upgrade) => upgrade,
            Err(refusal) => {
                refusal.log();
                refusal.into_response()
            }
        }
    }
}

/// Step: the request must ask for a WebSocket upgrade. Refuses others (400).
pub(crate) fn upgrade_request(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, Refusal> {
    ws.map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request",
        )
    })
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Emulator { status, .. } if status == StatusCode::UNAUTHORIZED => {
                status.into_response()
            }
            Self::Emulator { status, reason } => (status, reason).into_response(),
            Self::Upstream { error, .. } => match error.client_message() {
                Some(message) => (error.handshake_status(), message).into_response(),
                None => error.handshake_status().into_response(),
            },
        }
    }
}

/// What the upgrade request asks for.
pub(crate) struct ClientRequest {
    /// The hub, lower-cased as the service does (`ce-hub`, `{hub}`).
    pub(crate) hub: String,
    /// The hub as the client spelled it; tokens keep that spelling.
    pub(crate) named_hub: String,
    /// The query, decoded.
    pub(crate) query: Vec<(String, String)>,
    /// The subprotocols the client offers, in its order.
    pub(crate) offered: Vec<String>,
}

impl ClientRequest {
    /// Step: the hub (from the path or `?hub=`), the query and the offered
    /// subprotocols. Refuses a missing or invalid hub name (400).
    pub(crate) fn read(
        hub: Option<String>,
        uri: &Uri,
        ws: &WebSocketUpgrade,
    ) -> Result<Self, Refusal> {
        let query = query_pairs(uri.query());
        let hub_name = hub.or_else(|| first(&query, "hub").map(str::to_owned));
        let Some(named_hub) = hub_name.filter(|h| HubName::is_valid(h)) else {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "missing or invalid hub name",
            ));
        };
        let offered = ws
            .requested_protocols()
            .filter_map(|p| p.to_str().ok())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            hub: named_hub.to_ascii_lowercase(),
            named_hub,
            query,
            offered,
        })
    }

    /// The first value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }
}

/// The raw query as decoded pairs.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first value of `name` among `pairs`.
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Step: the access token (`?access_token=` or `Authorization: Bearer …`)
/// must be signed with an access key of the emulator (or, from
/// `:generateToken` with local auth disabled, its internal key) and meant for this
/// hub's URL; its claims. Refuses with 401.
pub(crate) fn authenticate(
    shared: &Shared,
    request: &ClientRequest,
    uri: &Uri,
    headers: &HeaderMap,
    prefix: &str,
) -> Result<Map<String, Value>, Refusal> {
    let token = request.param("access_token").or_else(|| {
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
    });
    let Some(token) = token else {
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, "no access token"));
    };
    let claims = shared
        .verify_client_token(token)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let named_hub = &request.named_hub;
    let path_hub = uri
        .path()
        .strip_prefix(prefix)
        .map_or(named_hub.as_str(), |h| h.trim_end_matches('/'));
    let sibling = shared.sibling_host(host);
    let accepted: Vec<String> = std::iter::once(host)
        .chain(sibling.as_deref())
        .flat_map(|host| {
            [
                format!("http://{host}{prefix}{path_hub}"),
                format!("https://{host}{prefix}{path_hub}"),
                format!("http://{host}{prefix}{named_hub}"),
            ]
        })
        .collect();
    let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
    auth::check_audience(&claims, &accepted)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok(claims)
}

/// Who the client is: from its token, then as the `connect` handler has it.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The user, if any.
    pub(crate) user_id: Option<String>,
    /// Its roles (permissions).
    pub(crate) roles: Vec<String>,
    /// The groups it joins on connecting.
    pub(crate) groups: Vec<String>,
}

impl Identity {
    /// Step: the user (`sub`), roles (`role`) and groups
    /// (`webpubsub.group`) the token names, within the limits. Refuses
    /// invalid or too many groups (400) and a user with no room left (429).
    pub(crate) fn from_claims(
        shared: &Shared,
        hub: &str,
        claims: &Map<String, Value>,
    ) -> Result<Self, Refusal> {
        let identity = Self {
            user_id: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            roles: auth::string_list(claims, "role"),
            groups: auth::string_list(claims, "webpubsub.group"),
        };
        if identity.groups.iter().any(|g| !GroupName::is_valid(g)) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid group name in the token",
            ));
        }
        if let Some(refusal) = shared.hubs.too_many_groups(&identity.groups) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The token names {} groups. {refusal}",
                    identity.groups.len()
                ),
            ));
        }
        // Checked before the upstream hears of it, and again after it for
        // the user id the `connect` handler may pick.
        identity.check_user_room(shared, hub)?;
        Ok(identity)
    }

    /// Refuses (429) a user who has as many connections as allowed.
    pub(crate) fn check_user_room(&self, shared: &Shared, hub: &str) -> Result<(), Refusal> {
        match self
            .user_id
            .as_deref()
            .and_then(|u| shared.hubs.user_full(hub, u))
        {
            Some(refusal) => Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                refusal.to_string(),
            )),
            None => Ok(()),
        }
    }
}
