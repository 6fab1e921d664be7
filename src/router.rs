//! The event router: a tower service that validates, decodes and dispatches
//! events to each hub's [`EventHandler`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tower_service::Service;

use crate::config::ConfigError;
use crate::events::{ConnectEventResponse, Event, EventErrorResponse, UserEventResponse};
use crate::handler::EventHandler;
use crate::state::ConnectionStates;
use crate::upstream::headers::{self, CE_HUB};
use crate::upstream::options::{validation_builder_methods, ValidationOptions, ValidationSettings};
use crate::upstream::Rejection;
use crate::upstream::{decode_scanned, encode, keep_headers, signature, ResponseFuture};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Serves the event handler URL of one or more hubs.
///
/// A tower [`Service`] to mount with axum's `nest_service` (or
/// `route_service`, or hyper directly). It answers the abuse-protection
/// handshake, checks `ce-signature` (see [`ValidateUpstreamLayer`](crate::upstream::ValidateUpstreamLayer)), routes
/// each event by its `ce-hub` header (case-insensitive) to that hub's
/// [`EventHandler`], and writes the handler's answer as the service expects.
/// Any path under the mount point is served, so the service's URL template
/// may contain `{hub}` and `{event}`.
///
/// Before the handler, it refuses (see [`Rejection`] for the messages):
///
/// - methods other than `POST` and `OPTIONS`: `405`;
/// - a wrong or missing signature: `401`;
/// - a body over the limit (default 1 MiB): `413`;
/// - a hub it does not serve: `404`;
/// - anything malformed (missing `ce-*` headers, unknown `ce-type`, bad JSON,
///   bad `ce-connectionState`, unsupported `Content-Type`, non-UTF-8 text): `400`.
///
/// A handler that panics answers `500`, and the router keeps serving.
///
/// ```
/// use tower::ServiceExt;
/// use webpubsub::{async_trait, testing, EventHandler, EventRouter};
///
/// struct Chat;
/// #[async_trait]
/// impl EventHandler for Chat {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let events = EventRouter::builder()
///     .hub("chat", Chat)
///     .connection_string("Endpoint=https://demo.webpubsub.azure.com;AccessKey=secret")
///     .build()?;
/// let app = axum::Router::new().nest_service("/eventhandler", events);
///
/// let request = testing::connect("chat", "conn-1")
///     .uri("/eventhandler")
///     .sign_as("Endpoint=https://demo.webpubsub.azure.com;AccessKey=secret");
/// let response = app.clone().oneshot(request).await?;
/// assert_eq!(response.status(), 204); // accepted, nothing changed
///
/// let request = testing::connect("chat", "conn-1")
///     .uri("/eventhandler")
///     .sign_as("Endpoint=https://demo.webpubsub.azure.com;AccessKey=not-the-key");
/// assert_eq!(app.oneshot(request).await?.status(), 401);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventRouter {
    inner: Arc<DispatchInner>,
}

/// Configures an [`EventRouter`]; see [`EventRouter::builder`].
#[must_use]
pub struct EventRouterBuilder {
    settings: ValidationSettings,
    hubs: Vec<(String, Arc<dyn EventHandler>)>,
    body_limit: usize,
}

impl EventRouter {
    /// Starts configuring a router.
    pub fn builder() -> EventRouterBuilder {
        EventRouterBuilder {
            settings: ValidationSettings::default(),
            hubs: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl EventRouterBuilder {
    validation_builder_methods!(settings);

    /// Serves hub `name` with `handler` (an `H: EventHandler` or an `Arc<H>`).
    pub fn hub(mut self, name: impl Into<String>, handler: impl EventHandler) -> Self {
        self.hubs.push((name.into(), Arc::new(handler)));
        self
    }

    /// Serves every hub of `names` with the same `handler`; it tells them
    /// apart by `req.context.hub`.
    pub fn hubs<I, S>(mut self, names: I, handler: impl EventHandler) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let handler: Arc<dyn EventHandler> = Arc::new(handler);
        for name in names {
            self.hubs.push((name.into(), Arc::clone(&handler)));
        }
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB); larger
    /// ones are refused with `413` before they are read.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Checks the configuration and builds the router.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::NoHub`] without any hub;
    /// - [`ConfigError::InvalidHub`] / [`ConfigError::DuplicateHub`] for a bad or repeated hub name;
    /// - [`ConfigError::NoAccessKey`] when no access key is configured and
    ///   [`insecure_skip_signature_check`](Self::insecure_skip_signature_check) was not called;
    /// - [`ConfigError::InvalidOrigin`] for a malformed allowed origin.
    pub fn build(self) -> Result<EventRouter, ConfigError> {
        if self.hubs.is_empty() {
            return Err(ConfigError::NoHub);
        }
        let mut hubs: Vec<(Box<str>, Arc<dyn EventHandler>)> = Vec::with_capacity(self.hubs.len());
        for (name, handler) in self.hubs {
            let name = String::from(crate::names::HubName::new(name)?);
            if hubs
                .iter()
                .any(|(existing, _)| existing.eq_ignore_ascii_case(&name))
            {
                return Err(ConfigError::DuplicateHub { hub: name });
            }
            hubs.push((name.into_boxed_str(), handler));
        }
        Ok(EventRouter {
            inner: Arc::new(DispatchInner {
                hubs,
                body_limit: self.body_limit,
                validation: self.settings.build()?,
            }),
        })
    }
}

impl fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("EventRouter")
            .field(
                "hubs",
                &inner.hubs.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("body_limit", &inner.body_limit)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for EventRouterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRouterBuilder")
            .field(
                "hubs",
                &self.hubs.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("body_limit", &self.body_limit)
            .field("validation", &self.settings)
            .finish()
    }
}

/// The future an [`EventRouter`] returns.
pub type EventRouterFuture = ResponseFuture<DispatchFuture>;

/// The boxed future of the dispatching step.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for EventRouter
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = EventRouterFuture;

    /// Always ready: the router holds no resource that could run out.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// The abuse-protection handshake is answered at once; anything else
    /// is checked, decoded and dispatched in one boxed future.
    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() == Method::OPTIONS {
            return ResponseFuture::answered(self.inner.validation.preflight(request.headers()));
        }
        ResponseFuture::inner(Box::pin(Arc::clone(&self.inner).handle(request)))
    }
}

struct DispatchInner {
    hubs: Vec<(Box<str>, Arc<dyn EventHandler>)>,
    body_limit: usize,
    validation: ValidationOptions,
}

impl DispatchInner {
    /// The whole answer to one request. Its future is boxed once per
    /// request, so it is kept small: the handler's (already boxed) future
    /// is awaited through [`Pending`], not through nested `async fn`s that
    /// would each hold a copy of the event.
    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Result<Response<Body>, Infallible>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        let (pending, log) = match self.prepare(&mut parts, body).await {
            Ok(started) => started,
            Err(rejection) => {
                return Ok(rejection.into_logged_response(headers::for_log(&parts.headers, &CE_HUB)))
            }
        };
        Ok(pending.finish(&log).await)
    }

    /// Every check before the handler (method, signature, hub, size,
    /// decoding), then the handler's call started. The request's header map
    /// moves into the event.
    async fn prepare<B>(
        &self,
        parts: &mut http::request::Parts,
        body: B,
    ) -> Result<(Pending<'_>, PanicLog<'_>), Rejection>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if parts.method != Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        // One pass over the headers serves the signature, the hub check
        // and decoding.
        let found = headers::EventHeaders::scan(&parts.headers);
        if self.validation.check_signatures {
            signature::verify_scanned(&self.validation.endpoints, &parts.headers, &found)?;
        }
        if self.validation.checks_bearer() {
            // Boxed: the bearer check's future is large (it may fetch
            // signing keys), and unboxed it would make this future, which
            // every request allocates, too large for the allocator's
            // per-thread cache even when no bearer is checked.
            Box::pin(self.validation.check_bearer(&parts.headers)).await?;
        }
        if found.hub_repeated {
            return Err(Rejection::RepeatedHeader(headers::display_name(&CE_HUB)));
        }
        let hub = headers::text_required(found.single.hub, &CE_HUB)?;
        let (hub, handler) = self
            .hubs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(hub))
            .ok_or_else(|| Rejection::UnknownHub(crate::upstream::excerpt(hub)))?;
        let declared = found
            .content_length
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.body_limit as u64) {
            return Err(Rejection::PayloadTooLarge(self.body_limit));
        }
        let bytes = read_body(body, self.body_limit).await?;
        let mut event = decode_scanned(&found, bytes)?;
        let log = PanicLog {
            hub,
            event_name: found.single.event_name.cloned(),
        };
        let more_origins = found.more_origins;
        keep_headers(&mut event, std::mem::take(&mut parts.headers), more_origins);
        // Started here, not by the caller: the event moves once, into the
        // handler's future, rather than out through this future's result.
        Ok((Pending::start(&**handler, event), log))
    }
}

/// What the log of a handler's panic names, kept apart from the event
/// (which the handler owns): the hub as configured, the event's name.
struct PanicLog<'a> {
    hub: &'a str,
    event_name: Option<http::HeaderValue>,
}

/// Reads the body, at most `limit` bytes. A body that arrives in one frame
/// (the usual case) is returned as it is, without copying.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Rejection>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let refuse = |e: BoxError| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            Rejection::PayloadTooLarge(limit)
        } else {
            Rejection::BodyUnreadable
        }
    };
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut first = Bytes::new();
    while first.is_empty() {
        match body.frame().await {
            None => return Ok(first),
            Some(Err(e)) => return Err(refuse(e)),
            Some(Ok(frame)) => first = frame.into_data().unwrap_or_default(),
        }
    }
    if body.is_end_stream() {
        return Ok(first);
    }
    let rest = body.collect().await.map_err(refuse)?.to_bytes();
    let mut all = Vec::with_capacity(first.len() + rest.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&rest);
    Ok(Bytes::from(all))
}

/// A handler call under way: its boxed future, and what encoding its
/// answer needs from the event (which the handler now owns).
enum Pending<'a> {
    Connect {
        answer: BoxFuture<'a, Result<ConnectEventResponse, EventErrorResponse>>,
        before: ConnectionStates,
        mqtt_version: Option<u8>,
    },
    UserEvent {
        answer: BoxFuture<'a, Result<UserEventResponse, EventErrorResponse>>,
        before: ConnectionStates,
    },
    /// Events answered `204` whatever the handler does.
    NoContent(BoxFuture<'a, ()>),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<'a> Pending<'a> {
    /// Calls the handler for `event`. Calling through the trait object
    /// itself matters: `Arc<dyn EventHandler>` is an `EventHandler` too, and
    /// calling through it would box a second future on every event.
    fn start(handler: &'a dyn EventHandler, event: Event) -> Self {
        match event {
            Event::Connect(req) => Pending::Connect {
                before: req.context.states.clone(),
                // Spec §6.6: only a client with `ce-physicalConnectionId`
                // is an MQTT client (and gets JSON refusals); an `mqtt`
                // object in the body alone does not make it one.
                mqtt_version: req
                    .mqtt
                    .as_ref()
                    .filter(|_| req.context.is_mqtt())
                    .map(|m| m.protocol_version),
                answer: handler.connect(req),
            },
            Event::UserEvent(req) => Pending::UserEvent {
                before: req.context.states.clone(),
                answer: handler.user_event(req),
            },
            Event::Connected(req) => Pending::NoContent(handler.connected(req)),
            Event::Disconnected(req) => Pending::NoContent(handler.disconnected(req)),
            Event::GroupJoined(req) => Pending::NoContent(handler.group_joined(req)),
            Event::GroupLeft(req) => Pending::NoContent(handler.group_left(req)),
        }
    }

    /// Runs the handler to its answer and encodes it; a panic becomes `500`
    /// (encoding runs outside the panic guard).
    async fn finish(self, log: &PanicLog<'_>) -> Response<Body> {
        let answered = match self {
            Pending::Connect {
                answer,
                before,
                mqtt_version,
            } => guarded(answer)
                .await
                .map(|answer| encode::connect(answer, &before, mqtt_version)),
            Pending::UserEvent { answer, before } => guarded(answer)
                .await
                .map(|answer| encode::user_event(answer, &before)),
            Pending::NoContent(done) => guarded(done).await.map(|()| encode::no_content()),
        };
        answered.unwrap_or_else(|HandlerPanicked| {
            let event_name = log.event_name.as_ref().map(http::HeaderValue::as_bytes);
            encode::handler_panicked(
                log.hub,
                std::str::from_utf8(event_name.unwrap_or_default()).unwrap_or_default(),
            )
        })
    }
}

/// The handler panicked while handling an event.
struct HandlerPanicked;

/// Runs one handler call, catching a panic.
async fn guarded<T>(call: impl Future<Output = T>) -> Result<T, HandlerPanicked> {
    AssertUnwindSafe(call)
        .catch_unwind()
        .await
        .map_err(|_| HandlerPanicked)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// glibc's per-thread cache serves chunks of up to 1,032 bytes; a
    /// larger one takes `malloc`'s slow path (with a consolidation of its
    /// free lists) on every request.
    const THREAD_CACHE_MAX: usize = 1032;

    /// The future `call` boxes for every event stays within the
    /// allocator's thread cache in every feature set. With feature `entra`
    /// the bearer check's future (880 bytes) used to sit inside it even
    /// when no bearer was checked, making it 1,616 bytes; callgrind counted
    /// 556 more instructions per `connect` for it.
    #[test]
    fn the_future_boxed_for_each_event_fits_the_allocators_thread_cache() {
        struct Quiet;
        #[async_trait::async_trait]
        impl EventHandler for Quiet {}
        let router = EventRouter::builder()
            .hub("chat", Quiet)
            .endpoint("localhost", "key")
            .build()
            .unwrap();
        let future = Arc::clone(&router.inner).handle(Request::new(Body::empty()));
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= THREAD_CACHE_MAX,
            "the per-event future is {size} bytes (at most {THREAD_CACHE_MAX})"
        );
    }
}
