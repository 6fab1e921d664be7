//! Helpers shared by the integration tests: a recording handler, a router
//! built around it, a real server on 127.0.0.1, and a tracing layer that
//! captures what the crate logs.
#![allow(dead_code)] // each test file uses a different subset

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use bytes::Bytes;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use webpubsub::events::{Event, GroupJoinedEventRequest, GroupLeftEventRequest};
use webpubsub::{
    async_trait, ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest,
    DisconnectedEventRequest, EventErrorResponse, EventHandler, EventRouter, UserEventRequest,
    UserEventResponse,
};

/// The access key most tests sign with (a spec test vector, §3.1).
pub(crate) const KEY: &str = "primary-key-1";
/// The second key of the spec test vectors.
pub(crate) const SECONDARY_KEY: &str = "secondary-key-2";
/// The service host of [`CONN_STR`].
pub(crate) const HOST: &str = "demo.webpubsub.azure.com";
/// A connection string for [`HOST`] with [`KEY`].
pub(crate) const CONN_STR: &str =
    "Endpoint=https://demo.webpubsub.azure.com;AccessKey=primary-key-1";

/// Every event a [`Recorder`] received, in order.
pub(crate) type Calls = Arc<Mutex<Vec<Event>>>;

type ConnectFn =
    dyn Fn(&ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse> + Send + Sync;
type UserEventFn =
    dyn Fn(&UserEventRequest) -> Result<UserEventResponse, EventErrorResponse> + Send + Sync;
type NotifyFn = dyn Fn(&Event) + Send + Sync;

/// A handler that records every event it gets and answers blocking events
/// with the closures it was given (the trait defaults otherwise).
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    calls: Calls,
    connect: Option<Arc<ConnectFn>>,
    user_event: Option<Arc<UserEventFn>>,
    notify: Option<Arc<NotifyFn>>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The shared list of received events (keep it before handing the recorder over).
    pub(crate) fn calls(&self) -> Calls {
        Arc::clone(&self.calls)
    }

    pub(crate) fn on_connect(
        mut self,
        f: impl Fn(&ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.connect = Some(Arc::new(f));
        self
    }

    pub(crate) fn on_user_event(
        mut self,
        f: impl Fn(&UserEventRequest) -> Result<UserEventResponse, EventErrorResponse>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.user_event = Some(Arc::new(f));
        self
    }

    /// Runs `f` for non-blocking events (connected, disconnected, group presence).
    pub(crate) fn on_notification(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.notify = Some(Arc::new(f));
        self
    }

    fn record(&self, event: Event) {
        if let Some(notify) = &self.notify {
            if !matches!(event, Event::Connect(_) | Event::UserEvent(_)) {
                notify(&event);
            }
        }
        self.calls.lock().unwrap().push(event);
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        self.record(Event::Connect(req.clone()));
        match &self.connect {
            Some(f) => f(&req),
            None => Ok(ConnectEventResponse::new()),
        }
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        self.record(Event::Connected(req));
    }

    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        self.record(Event::UserEvent(req.clone()));
        match &self.user_event {
            Some(f) => f(&req),
            None => Ok(UserEventResponse::none()),
        }
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        self.record(Event::Disconnected(req));
    }

    async fn group_joined(&self, req: GroupJoinedEventRequest) {
        self.record(Event::GroupJoined(req));
    }

    async fn group_left(&self, req: GroupLeftEventRequest) {
        self.record(Event::GroupLeft(req));
    }
}

/// A router serving hub `chat` with `handler`, checking signatures made with [`KEY`].
pub(crate) fn router(handler: impl EventHandler) -> EventRouter {
    EventRouter::builder()
        .hub("chat", handler)
        .access_key(KEY)
        .build()
        .expect("a valid router")
}

/// A router serving hub `chat` with `handler`, configured from the connection
/// string of an endpoint on 127.0.0.1 with `key`.
pub(crate) fn local_router(handler: impl EventHandler, key: &str) -> EventRouter {
    EventRouter::builder()
        .hub("chat", handler)
        .connection_string(&format!("Endpoint=http://127.0.0.1;AccessKey={key}"))
        .build()
        .expect("a valid router")
}

/// An app serving `events` at `/eventhandler`.
pub(crate) fn at_eventhandler(events: EventRouter) -> axum::Router {
    axum::Router::new().nest_service("/eventhandler", events)
}

/// Serves `app` over HTTP/1.1 on a free port of 127.0.0.1: its address, and
/// the server's task (to abort; it ends with the test's runtime otherwise).
pub(crate) async fn spawn_server(app: axum::Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test; its address.
pub(crate) async fn serve(app: axum::Router) -> SocketAddr {
    spawn_server(app).await.0
}

/// Sends one request through `service` (a router, or an axum app).
pub(crate) async fn send<S>(service: &S, request: Request<Body>) -> Response<Body>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send,
    S::Future: Send,
{
    init_tracing();
    match service.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A response read to the end.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) async fn read(response: Response<Body>) -> Self {
        let (parts, body) = webpubsub::testing::read_body(response).await;
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.text()))
    }

    /// Every value of header `name`, as text.
    pub(crate) fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The single value of header `name`, if present.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let all = self.header_all(name);
        assert!(all.len() <= 1, "header {name} appears {} times", all.len());
        all.into_iter().next()
    }
}

/// Sends `request` and reads the whole answer.
pub(crate) async fn call<S>(service: &S, request: Request<Body>) -> Answer
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send,
    S::Future: Send,
{
    Answer::read(send(service, request).await).await
}

/// One event the crate logged.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    pub(crate) target: String,
    pub(crate) level: tracing::Level,
    pub(crate) fields: BTreeMap<String, String>,
}

impl LogEvent {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Keeps in memory every event logged while a future runs under [`LogCapture::run`].
#[derive(Clone, Default)]
pub(crate) struct LogCapture {
    events: Arc<Mutex<Vec<LogEvent>>>,
}

struct FieldsVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl LogCapture {
    fn record(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsVisitor(&mut fields));
        let metadata = event.metadata();
        self.events.lock().unwrap().push(LogEvent {
            target: metadata.target().to_owned(),
            level: *metadata.level(),
            fields,
        });
    }

    /// Everything logged so far.
    pub(crate) fn events(&self) -> Vec<LogEvent> {
        self.events.lock().unwrap().clone()
    }

    /// The events logged under `target`.
    pub(crate) fn with_target(&self, target: &str) -> Vec<LogEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.target == target)
            .collect()
    }

    /// The refusals logged (target `webpubsub::rejection`).
    pub(crate) fn rejections(&self) -> Vec<LogEvent> {
        self.with_target("webpubsub::rejection")
    }

    /// Runs `future`, capturing what it logs while it is polled on this thread.
    pub(crate) async fn run<F: Future>(&self, future: F) -> F::Output {
        init_tracing();
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let previous = CURRENT_CAPTURE.with(|c| c.replace(Some(self.clone())));
            let poll = future.as_mut().poll(cx);
            CURRENT_CAPTURE.with(|c| c.replace(previous));
            poll
        })
        .await
    }
}

thread_local! {
    /// The capture of the request being polled on this thread, if any.
    static CURRENT_CAPTURE: RefCell<Option<LogCapture>> = const { RefCell::new(None) };
}

/// The process-wide subscriber: hands each event to this thread's current capture.
///
/// One global subscriber, installed before any request is sent, rather than
/// scoped ones: scoped dispatchers race with tracing's per-callsite interest
/// cache when tests run in parallel, and events then go missing.
struct ToCurrentCapture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ToCurrentCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        CURRENT_CAPTURE.with(|c| {
            if let Some(capture) = &*c.borrow() {
                capture.record(event);
            }
        });
    }
}

/// Installs the global subscriber (once per test binary). Called before any
/// request is sent, so no callsite is registered before it exists.
pub(crate) fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(ToCurrentCapture);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
}

/// Sends `request` with a fresh log capture; returns the answer and what was logged.
pub(crate) async fn call_logged<S>(service: &S, request: Request<Body>) -> (Answer, LogCapture)
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send,
    S::Future: Send,
{
    let capture = LogCapture::default();
    let answer = capture.run(call(service, request)).await;
    (answer, capture)
}

/// Asserts that exactly one refusal with `status` was logged, at `level`.
pub(crate) fn assert_one_rejection_logged(
    capture: &LogCapture,
    status: u16,
    level: tracing::Level,
) {
    let rejections = capture.rejections();
    assert_eq!(
        rejections.len(),
        1,
        "expected one webpubsub::rejection event, got {rejections:#?}"
    );
    let event = &rejections[0];
    assert_eq!(
        event.field("status"),
        Some(status.to_string().as_str()),
        "{event:#?}"
    );
    assert_eq!(event.level, level, "{event:#?}");
    assert!(
        event.field("reason").is_some_and(|r| !r.is_empty()),
        "a refusal log says why: {event:#?}"
    );
}

/// The one event a recorder got; panics when it got none or several.
pub(crate) fn only_call(calls: &Calls) -> Event {
    let calls = calls.lock().unwrap();
    assert_eq!(
        calls.len(),
        1,
        "expected exactly one handler call, got {calls:#?}"
    );
    calls[0].clone()
}

/// How many events a recorder got.
pub(crate) fn call_count(calls: &Calls) -> usize {
    calls.lock().unwrap().len()
}
