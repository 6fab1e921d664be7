//! Fake, correctly signed upstream requests, and readers for the answers,
//! so handlers can be tested with `tower::ServiceExt::oneshot` and no network.
//!
//! ```
//! use tower::ServiceExt;
//! use webpubsub::{async_trait, testing, ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventHandler, EventRouter};
//!
//! struct Chat;
//! #[async_trait]
//! impl EventHandler for Chat {
//!     async fn connect(&self, req: ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse> {
//!         let user = req.query_value("user").ok_or_else(|| EventErrorResponse::unauthorized("who are you?"))?;
//!         Ok(ConnectEventResponse::new().user_id(user).groups(["lobby"]))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = EventRouter::builder().hub("chat", Chat).access_key("k").build()?;
//!
//! let response = app.clone().oneshot(testing::connect("chat", "c1").query("user", "alice").sign("k")).await?;
//! let accepted = testing::read_connect_response(response).await.expect("accepted");
//! assert_eq!(accepted.user_id.as_deref(), Some("alice"));
//!
//! let response = app.oneshot(testing::connect("chat", "c2").sign("k")).await?;
//! let refused = testing::read_connect_response(response).await.unwrap_err();
//! assert_eq!((refused.status().as_u16(), refused.message.as_str()), (401, "who are you?"));
//! # Ok(()) }
//! ```

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::config::{AccessKey, ConnectionString};
use crate::events::{
    ClientCertificate, ConnectEventResponse, ErrorCode, EventData, EventErrorResponse,
    MqttConnectProperties, UserEventResponse,
};
use crate::state::{ConnectionStates, StateChanges};
use crate::wire::headers::{CE_CONNECTION_STATE, CE_PHYSICAL_CONNECTION_ID, CE_SUBPROTOCOL};
use crate::wire::{
    preflight_headers, CloudEvent, ConnectBody, ConnectedBody, DisconnectedBody, EventType,
    GroupBody, MqttConnectRefusal, PREFLIGHT_METHOD,
};

/// A fake upstream event being built; see the [module docs](self).
///
/// Finish it with [`sign`](Self::sign) (one key), [`key`](Self::key) +
/// [`request`](Self::request) (several keys), [`request`](Self::request)
/// alone (unsigned), or [`into_parts`](Self::into_parts) to call
/// [`decode_event`](crate::upstream::decode_event) directly.
#[derive(Debug, Clone)]
#[must_use]
pub struct TestEvent {
    ce_type: String,
    event_name: String,
    hub: String,
    connection_id: String,
    user_id: Option<String>,
    origin: Option<String>,
    uri: String,
    states: ConnectionStates,
    state_header: Option<String>,
    keys: Vec<AccessKey>,
    extra: Vec<(HeaderName, HeaderValue)>,
    /// The `connect` body, when the body is one.
    connect: Option<ConnectBody>,
    content_type: Option<String>,
    body: Bytes,
}

/// The multi-valued maps of a `connect` body.
#[derive(Debug, Clone, Copy)]
enum Multi {
    Claims,
    Query,
    Headers,
}

fn event(hub: &str, connection_id: &str, kind: EventType<'_>) -> TestEvent {
    TestEvent {
        ce_type: kind.ce_type().into_owned(),
        event_name: kind.event_name().to_owned(),
        hub: hub.to_owned(),
        connection_id: connection_id.to_owned(),
        user_id: None,
        origin: None,
        uri: "/".to_owned(),
        states: ConnectionStates::default(),
        state_header: None,
        keys: Vec::new(),
        extra: Vec::new(),
        connect: None,
        content_type: Some("application/json".to_owned()),
        body: Bytes::new(),
    }
}

/// A `connect` event: the client `connection_id` asks to join `hub`.
pub fn connect(hub: &str, connection_id: &str) -> TestEvent {
    let mut e = event(hub, connection_id, EventType::Connect);
    e.connect = Some(ConnectBody::default());
    e
}

/// A `connected` event.
pub fn connected(hub: &str, connection_id: &str) -> TestEvent {
    event(hub, connection_id, EventType::Connected).body_json(&ConnectedBody::new())
}

/// A `disconnected` event (set the reason with [`TestEvent::reason`]).
pub fn disconnected(hub: &str, connection_id: &str) -> TestEvent {
    event(hub, connection_id, EventType::Disconnected).body_json(&DisconnectedBody::new(None))
}

/// A user event `name` (set its data with `text`, `json` or `binary`; empty text by default).
pub fn user_event(hub: &str, connection_id: &str, name: &str) -> TestEvent {
    event(hub, connection_id, EventType::User(name)).text("")
}

/// A group presence event: the connection joined `group`.
pub fn group_joined(hub: &str, connection_id: &str, group: &str) -> TestEvent {
    event(hub, connection_id, EventType::GroupJoined).body_json(&GroupBody::new(group))
}

/// A group presence event: the connection left `group`.
pub fn group_left(hub: &str, connection_id: &str, group: &str) -> TestEvent {
    event(hub, connection_id, EventType::GroupLeft).body_json(&GroupBody::new(group))
}

/// The abuse-protection handshake the service sends before delivering
/// events: `OPTIONS /` with `WebHook-Request-Origin: <origin>`.
#[must_use]
pub fn preflight(origin: &str) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.method_mut() = PREFLIGHT_METHOD;
    *request.headers_mut() = preflight_headers(origin);
    request
}

impl TestEvent {
    /// Sets `ce-userId`.
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    /// Sets `WebHook-Request-Origin` (the service's host name).
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// Sets the request path (default `/`).
    pub fn uri(mut self, uri: &str) -> Self {
        self.uri = uri.to_owned();
        self
    }

    /// Adds connection state `key` (sent as `ce-connectionState`).
    pub fn state(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.states.insert(key, value);
        self
    }

    /// Sends `value` verbatim as `ce-connectionState` (e.g. a value an
    /// earlier response returned), instead of the states set with [`state`](Self::state).
    pub fn state_header(mut self, value: &str) -> Self {
        self.state_header = Some(value.to_owned());
        self
    }

    /// Adds a header (later values are appended, not replaced).
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("valid header name");
        let value = HeaderValue::try_from(value).expect("valid header value");
        self.extra.push((name, value));
        self
    }

    /// `connect`: adds a value of claim `name` (e.g. `sub`, `role`).
    pub fn claim(self, name: &str, value: &str) -> Self {
        self.push_multi(Multi::Claims, name, value)
    }

    /// `connect`: adds a value of query parameter `name`.
    pub fn query(self, name: &str, value: &str) -> Self {
        self.push_multi(Multi::Query, name, value)
    }

    /// `connect`: adds a value of the client's request header `name`.
    pub fn client_header(self, name: &str, value: &str) -> Self {
        self.push_multi(Multi::Headers, name, value)
    }

    /// `connect`: the subprotocols the client offered.
    pub fn subprotocols<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        subprotocols: I,
    ) -> Self {
        let list: Vec<String> = subprotocols.into_iter().map(Into::into).collect();
        self.connect_body().subprotocols = list;
        self
    }

    /// `connect`: adds a client certificate.
    pub fn client_certificate(mut self, thumbprint: &str, content: Option<&str>) -> Self {
        self.connect_body()
            .client_certificates
            .push(ClientCertificate {
                thumbprint: thumbprint.to_owned(),
                content: content.map(str::to_owned),
            });
        self
    }

    /// Makes the event come from an MQTT client (`ce-subprotocol: mqtt`, a
    /// physical connection id) and, for `connect`, adds the `mqtt` object with
    /// `protocol_version` (`4` or `5`).
    pub fn mqtt(mut self, protocol_version: u8) -> Self {
        self.extra
            .push((CE_SUBPROTOCOL, HeaderValue::from_static("mqtt")));
        self.extra.push((
            CE_PHYSICAL_CONNECTION_ID,
            HeaderValue::from_static("physical-1"),
        ));
        if self.ce_type.ends_with(".connect") {
            let mut mqtt = MqttConnectProperties::new(protocol_version);
            mqtt.username = Some("user".to_owned());
            mqtt.password = Some("cGFzcw==".to_owned());
            mqtt.clean_start = Some(true);
            self.connect_body().mqtt = Some(mqtt);
        }
        self
    }

    /// MQTT `connect` (after [`mqtt`](Self::mqtt)): the CONNECT user name
    /// and password (the password as raw bytes; the event carries it in
    /// base64, as the service sends it). `None` leaves the field out.
    ///
    /// ```
    /// # use webpubsub::testing;
    /// let (_, body) = testing::connect("devices", "thermo1")
    ///     .mqtt(5)
    ///     .mqtt_credentials(Some("thermo1"), Some(b"warm"))
    ///     .mqtt_user_property("firmware", "1.2")
    ///     .into_parts();
    /// let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(body["mqtt"]["username"], "thermo1");
    /// assert_eq!(body["mqtt"]["password"], "d2FybQ==");
    /// assert_eq!(body["mqtt"]["userProperties"][0]["name"], "firmware");
    /// ```
    ///
    /// # Panics
    ///
    /// When the event is not an MQTT `connect` (call `mqtt(version)` first).
    pub fn mqtt_credentials(mut self, username: Option<&str>, password: Option<&[u8]>) -> Self {
        let mqtt = self.mqtt_connect();
        mqtt.username = username.map(str::to_owned);
        mqtt.password = password.map(|p| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(p)
        });
        self
    }

    /// MQTT `connect` (after [`mqtt`](Self::mqtt)): adds a CONNECT user
    /// property (MQTT 5).
    ///
    /// # Panics
    ///
    /// When the event is not an MQTT `connect` (call `mqtt(version)` first).
    pub fn mqtt_user_property(mut self, name: &str, value: &str) -> Self {
        self.mqtt_connect()
            .user_properties
            .push(crate::events::MqttUserProperty::new(name, value));
        self
    }

    fn mqtt_connect(&mut self) -> &mut MqttConnectProperties {
        self.connect_body()
            .mqtt
            .as_mut()
            .expect("an MQTT connect event: call `.mqtt(version)` on `testing::connect` first")
    }

    /// `disconnected`: the reason.
    pub fn reason(self, reason: &str) -> Self {
        self.body_json(&DisconnectedBody::new(Some(reason.to_owned())))
    }

    /// A user event's data as text (`text/plain; charset=utf-8`).
    pub fn text(mut self, text: &str) -> Self {
        self.content_type = Some("text/plain; charset=utf-8".to_owned());
        self.body = Bytes::copy_from_slice(text.as_bytes());
        self
    }

    /// A user event's data as JSON (`application/json`).
    ///
    /// # Panics
    ///
    /// When `value` cannot be serialised.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        self.body_json(value)
    }

    /// A user event's data as bytes (`application/octet-stream`).
    pub fn binary(mut self, bytes: impl Into<Bytes>) -> Self {
        self.content_type = Some("application/octet-stream".to_owned());
        self.body = bytes.into();
        self
    }

    /// Replaces the body verbatim (for malformed-input tests).
    pub fn raw_body(mut self, body: impl Into<Bytes>) -> Self {
        self.connect = None;
        self.body = body.into();
        self
    }

    /// Sets `Content-Type` (`None` removes it).
    pub fn content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self
    }

    /// Adds an access key to sign with; each key adds one `sha256=` entry,
    /// as the service does for its primary and secondary keys. Any key is
    /// taken, the empty one included, so tests can sign as an attacker would.
    pub fn key(mut self, key: &str) -> Self {
        self.keys.push(AccessKey::unchecked(key));
        self
    }

    /// Signs with `key` and builds the request.
    #[must_use]
    pub fn sign(self, key: &str) -> Request<Body> {
        self.key(key).request()
    }

    /// Signs as the service of `connection_string` would: with its access key,
    /// and from its host (`WebHook-Request-Origin`).
    ///
    /// # Panics
    ///
    /// When the connection string does not parse or has no access key.
    #[must_use]
    pub fn sign_as(mut self, connection_string: &str) -> Request<Body> {
        let conn = ConnectionString::parse(connection_string).expect("a valid connection string");
        let key = conn
            .access_key()
            .expect("a connection string with an AccessKey")
            .clone();
        self.origin = Some(conn.host().to_owned());
        self.keys.push(key);
        self.request()
    }

    /// Builds the request, signed with the keys added by [`key`](Self::key) (if any).
    #[must_use]
    pub fn request(self) -> Request<Body> {
        let uri = self.uri.clone();
        let (headers, body) = self.into_parts();
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.parse().unwrap_or_default();
        *request.headers_mut() = headers;
        request
    }

    /// The headers and body of the request, for [`decode_event`](crate::upstream::decode_event).
    #[must_use]
    pub fn into_parts(self) -> (HeaderMap, Bytes) {
        let state = match &self.state_header {
            Some(raw) => Some(raw.clone()),
            None if !self.states.is_empty() => Some(self.states.to_header()),
            None => None,
        };
        let signature = (!self.keys.is_empty()).then(|| {
            let entries: Vec<String> = self
                .keys
                .iter()
                .map(|k| k.signature(&self.connection_id))
                .collect();
            entries.join(",")
        });
        let mut headers = CloudEvent {
            ce_type: &self.ce_type,
            event_name: &self.event_name,
            hub: &self.hub,
            connection_id: &self.connection_id,
            id: "1",
            time: "2024-01-01T00:00:00Z",
            user_id: self.user_id.as_deref(),
            subprotocol: None,
            state: state.as_deref(),
            signature: signature.as_deref(),
            origin: self.origin.as_deref(),
            content_type: self.content_type.as_deref(),
        }
        .headers();
        for (name, value) in self.extra {
            headers.append(name, value);
        }
        let body = match &self.connect {
            None => self.body,
            Some(connect) => Bytes::from(serde_json::to_vec(connect).unwrap_or_default()),
        };
        (headers, body)
    }

    /// The `connect` body, made empty first if the body is something else.
    fn connect_body(&mut self) -> &mut ConnectBody {
        self.connect.get_or_insert_with(ConnectBody::default)
    }

    fn push_multi(mut self, field: Multi, name: &str, value: &str) -> Self {
        let body = self.connect_body();
        let map = match field {
            Multi::Claims => &mut body.claims,
            Multi::Query => &mut body.query,
            Multi::Headers => &mut body.headers,
        };
        map.entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
        self
    }

    fn body_json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.connect = None;
        self.content_type = Some("application/json".to_owned());
        self.body = Bytes::from(serde_json::to_vec(value).expect("serialisable JSON"));
        self
    }
}

/// Reads a response's body to the end.
///
/// # Panics
///
/// When the body fails (in-memory bodies never do).
pub async fn read_body<B>(response: Response<B>) -> (http::response::Parts, Bytes)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("readable body").to_bytes();
    (parts, bytes)
}

/// The states a response sets (`ce-connectionState`), or `None` when it
/// leaves them unchanged. An empty header gives empty states.
///
/// # Panics
///
/// When the header is not in this crate's state format.
#[must_use]
pub fn response_states<B>(response: &Response<B>) -> Option<ConnectionStates> {
    state_of(&response.headers().clone())
}

fn state_of(headers: &HeaderMap) -> Option<ConnectionStates> {
    let value = headers.get(CE_CONNECTION_STATE)?;
    Some(
        ConnectionStates::from_header(value.to_str().expect("ASCII state"))
            .expect("valid state header"),
    )
}

fn refusal(status: StatusCode, parts: &http::response::Parts, body: &[u8]) -> EventErrorResponse {
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::UserError,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        _ => ErrorCode::ServerError,
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        if let Ok(MqttConnectRefusal { mqtt }) = serde_json::from_slice(body) {
            let mut err = EventErrorResponse::new(code, mqtt.reason.clone().unwrap_or_default());
            err.mqtt = Some(mqtt);
            return err;
        }
    }
    EventErrorResponse::new(code, String::from_utf8_lossy(body))
}

/// The parts, body and state changes of a success, or the refusal.
async fn read_answer<B>(
    response: Response<B>,
) -> Result<(http::response::Parts, Bytes, StateChanges), EventErrorResponse>
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = read_body(response).await;
    if !parts.status.is_success() {
        return Err(refusal(parts.status, &parts, &body));
    }
    let states = state_of(&parts.headers)
        .map(StateChanges::replace)
        .unwrap_or_default();
    Ok((parts, body, states))
}

/// Reads the answer to a `connect` event back into typed values: `Ok` for an
/// acceptance (with any `ce-connectionState` as a full replacement of the
/// states), `Err` for a refusal (its code from the status, its message from
/// the body).
///
/// # Panics
///
/// When a `200` body is not the JSON this crate writes.
pub async fn read_connect_response<B>(
    response: Response<B>,
) -> Result<ConnectEventResponse, EventErrorResponse>
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (_, body, states) = read_answer(response).await?;
    let mut accept = if body.is_empty() {
        ConnectEventResponse::new()
    } else {
        serde_json::from_slice(&body).expect("a connect answer in JSON")
    };
    accept.states = states;
    Ok(accept)
}

/// Reads the answer to a user event back into typed values: `Ok` with the
/// reply's data (typed by its `Content-Type`) and states, `Err` for a refusal.
pub async fn read_user_event_response<B>(
    response: Response<B>,
) -> Result<UserEventResponse, EventErrorResponse>
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body, states) = read_answer(response).await?;
    let mut reply = if parts.status == StatusCode::NO_CONTENT {
        UserEventResponse::none()
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if content_type.starts_with(b"text/plain") {
            UserEventResponse::from(EventData::Text(String::from_utf8_lossy(&body).into_owned()))
        } else if content_type.starts_with(b"application/json") {
            UserEventResponse::raw_json(body)
        } else {
            UserEventResponse::binary(body)
        }
    };
    reply.states = states;
    Ok(reply)
}
