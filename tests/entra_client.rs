//! `WebPubSubServiceClient` built from a Microsoft Entra ID `TokenCredential`
//! (feature `entra`), against a fake of the REST API: a real HTTP server on
//! `127.0.0.1:0` that records every request (method, raw path and query,
//! `Authorization`, body) and answers from a script, by default with the
//! operation's success status.
//!
//! The credential is a fake too: it counts its calls, hands out
//! `entra-token-1`, `entra-token-2`, … with lifetimes the test chooses, and
//! can be told to fail or to take its time.

#![cfg(feature = "entra")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;
use webpubsub::client::{RetryPolicy, ServiceClientBuilder, ServiceError};
use webpubsub::client_access::{ClientAccessOptions, ClientProtocol, Negotiate};
use webpubsub::{async_trait, ConfigError, WebPubSubServiceClient};

const SCOPE: &str = "https://webpubsub.azure.com/.default";

// ----- the fake credential -------------------------------------------------

#[derive(Debug, Default)]
struct FakeCredential {
    calls: AtomicUsize,
    /// Lifetimes of the next tokens, in order; one hour once empty.
    lifetimes: Mutex<VecDeque<Duration>>,
    /// How long each `get_token` takes.
    delay: Duration,
    /// When set, `get_token` fails with this message.
    failure: Option<&'static str>,
    /// The scopes of every call.
    scopes: Mutex<Vec<Vec<String>>>,
}

impl FakeCredential {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    fn failing(message: &'static str) -> Arc<Self> {
        Arc::new(Self {
            failure: Some(message),
            ..Self::default()
        })
    }

    fn with_lifetimes(lifetimes: impl IntoIterator<Item = Duration>) -> Arc<Self> {
        Arc::new(Self {
            lifetimes: Mutex::new(lifetimes.into_iter().collect()),
            ..Self::default()
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.scopes
            .lock()
            .unwrap()
            .push(scopes.iter().map(|s| (*s).to_owned()).collect());
        tokio::time::sleep(self.delay).await;
        if let Some(message) = self.failure {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                message,
            ));
        }
        let lifetime = self
            .lifetimes
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Duration::from_secs(3600));
        let expires_on = OffsetDateTime::now_utc()
            + azure_core::time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap());
        Ok(AccessToken::new(format!("entra-token-{n}"), expires_on))
    }
}

// ----- the fake service ----------------------------------------------------

/// One request as the fake service received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: bytes::Bytes,
}

impl Recorded {
    /// `METHOD /path?query`.
    fn line(&self) -> String {
        match &self.query {
            Some(query) => format!("{} {}?{query}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    /// Statuses to answer next, before the default answers.
    script: Mutex<VecDeque<u16>>,
}

async fn record(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let header = |name: http::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let recorded = Recorded {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: header(http::header::AUTHORIZATION),
        content_type: header(http::header::CONTENT_TYPE),
        body,
    };
    let scripted = shared.script.lock().unwrap().pop_front();
    let user = recorded.query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "userId")
            .map(|(_, v)| v.into_owned())
    });
    let last = recorded
        .path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    shared.requests.lock().unwrap().push(recorded);
    let (status, body) = match (scripted, parts.method.as_str(), last.as_str()) {
        (Some(status), _, _) => (status, json!({ "code": "Scripted", "message": "scripted" })),
        (None, "POST", ":generateToken") => (
            200,
            json!({ "token": format!("service-token.for.{}", user.as_deref().unwrap_or("anonymous")) }),
        ),
        (None, "POST", ":send") => (202, json!(null)),
        (None, "HEAD", _) => (200, json!(null)),
        (None, "DELETE", _) => (204, json!(null)),
        (None, _, _) => (200, json!(null)),
    };
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// The fake service, stopped when dropped.
struct FakeService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeService {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>`: loopback, so plain http is allowed.
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn builder(&self, credential: Arc<FakeCredential>) -> ServiceClientBuilder {
        WebPubSubServiceClient::credential_builder(self.url(), "chat", credential).retry(
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(20)),
        )
    }

    fn client(&self, credential: Arc<FakeCredential>) -> WebPubSubServiceClient {
        self.builder(credential).build().unwrap()
    }

    /// Answers the next requests with these statuses.
    fn answer(&self, statuses: impl IntoIterator<Item = u16>) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    fn authorizations(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| r.authorization.unwrap_or_default())
            .collect()
    }
}

// ----- bearer tokens -------------------------------------------------------

#[tokio::test]
async fn rest_calls_carry_the_credentials_token_for_the_web_pubsub_scope() {
    let service = FakeService::start().await;
    let credential = FakeCredential::new();
    let client = service.client(credential.clone());

    client.send_to_all("hello").await.unwrap();

    let requests = service.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].line(),
        "POST /api/hubs/chat/:send?api-version=2024-12-01"
    );
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer entra-token-1")
    );
    assert_eq!(*credential.scopes.lock().unwrap(), vec![vec![SCOPE]]);
}

#[tokio::test]
async fn every_operation_kind_works_unchanged_with_a_credential() {
    let service = FakeService::start().await;
    let client = service.client(FakeCredential::new());

    client.send_to_group("room1", "hi").await.unwrap();
    client.add_user_to_group("room1", "alice").await.unwrap();
    client
        .remove_connection_from_group("room1", "c1")
        .await
        .unwrap();
    assert!(client.user_exists("alice").await.unwrap());
    client.health().await.unwrap();

    let lines: Vec<String> = service.requests().iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            "POST /api/hubs/chat/groups/room1/:send?api-version=2024-12-01",
            "PUT /api/hubs/chat/users/alice/groups/room1?api-version=2024-12-01",
            "DELETE /api/hubs/chat/groups/room1/connections/c1?api-version=2024-12-01",
            "HEAD /api/hubs/chat/users/alice?api-version=2024-12-01",
            "HEAD /api/health?api-version=2024-12-01",
        ]
    );
    assert!(service
        .authorizations()
        .iter()
        .all(|a| a == "Bearer entra-token-1"));
}

#[tokio::test]
async fn a_cached_token_is_reused_across_calls_and_clones() {
    let service = FakeService::start().await;
    let credential = FakeCredential::new();
    let client = service.client(credential.clone());

    for _ in 0..3 {
        client.send_to_all("again").await.unwrap();
    }
    client.clone().send_to_user("bob", "hi").await.unwrap();

    assert_eq!(credential.calls(), 1);
    assert_eq!(service.authorizations(), vec!["Bearer entra-token-1"; 4]);
}

#[tokio::test]
async fn a_token_with_less_than_five_minutes_left_is_refreshed() {
    let service = FakeService::start().await;
    // The first token has 4 minutes left (inside the 5-minute margin), the
    // second 6 minutes (outside it), the third an hour.
    let credential =
        FakeCredential::with_lifetimes([Duration::from_secs(4 * 60), Duration::from_secs(6 * 60)]);
    let client = service.client(credential.clone());

    for _ in 0..3 {
        client.send_to_all("tick").await.unwrap();
    }

    assert_eq!(credential.calls(), 2);
    assert_eq!(
        service.authorizations(),
        [
            "Bearer entra-token-1",
            "Bearer entra-token-2",
            "Bearer entra-token-2"
        ]
    );
}

#[tokio::test]
async fn twenty_concurrent_calls_with_an_empty_cache_ask_the_credential_once() {
    let service = FakeService::start().await;
    let credential = FakeCredential::slow(Duration::from_millis(100));
    let client = service.client(credential.clone());

    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.send_to_user(format!("user{i}"), "hi").await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }

    assert_eq!(credential.calls(), 1);
    assert_eq!(service.authorizations(), vec!["Bearer entra-token-1"; 20]);
}

#[tokio::test]
async fn a_credential_error_is_a_typed_error_and_nothing_is_sent() {
    let service = FakeService::start().await;
    let credential = FakeCredential::failing("managed identity is not enabled on this host");
    let client = service.client(credential.clone());

    let err = client.send_to_all("hello").await.unwrap_err();

    match &err {
        ServiceError::Credential { operation, source } => {
            assert_eq!(*operation, "send_to_all");
            assert!(source
                .to_string()
                .contains("managed identity is not enabled"));
        }
        other => panic!("expected ServiceError::Credential, got {other:?}"),
    }
    assert!(
        err.to_string().contains("Microsoft Entra ID token"),
        "{err}"
    );
    assert_eq!(err.status(), None);
    assert!(service.requests().is_empty());
    // Not retried like a network error: one question, one answer.
    assert_eq!(credential.calls(), 1);
}

#[tokio::test]
async fn a_401_is_not_retried_and_the_next_call_asks_for_a_new_token() {
    let service = FakeService::start().await;
    let credential = FakeCredential::new();
    let client = service.client(credential.clone());
    service.answer([401]);

    let err = client
        .add_user_to_group("room1", "alice")
        .await
        .unwrap_err();

    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(service.requests().len(), 1);
    client.add_user_to_group("room1", "alice").await.unwrap();
    assert_eq!(credential.calls(), 2);
    assert_eq!(
        service.authorizations(),
        ["Bearer entra-token-1", "Bearer entra-token-2"]
    );
}

// ----- endpoints -----------------------------------------------------------

#[test]
fn bearer_tokens_are_never_sent_over_http_to_a_remote_host() {
    let credential = FakeCredential::new();
    for (endpoint, allowed) in [
        ("https://demo.webpubsub.azure.com", true),
        ("https://demo.webpubsub.azure.com/", true),
        ("http://localhost:8080", true),
        ("http://127.0.0.1:8080", true),
        ("http://127.0.0.2", true),
        ("http://[::1]:8080", true),
        ("http://demo.webpubsub.azure.com", false),
        ("http://10.1.2.3:8080", false),
        ("http://[::2]", false),
        ("http://localhost.evil.example", false),
    ] {
        let result =
            WebPubSubServiceClient::credential_builder(endpoint, "chat", credential.clone())
                .build();
        match (result, allowed) {
            (Ok(_), true) => {}
            (Err(ConfigError::InvalidEndpoint { value, reason }), false) => {
                assert_eq!(value, endpoint);
                assert!(reason.contains("https"), "{endpoint}: {reason}");
            }
            (other, _) => panic!("{endpoint}: {other:?}"),
        }
    }
}

#[test]
fn a_credential_endpoint_must_be_a_bare_http_origin() {
    let credential = FakeCredential::new();
    for bad in [
        "demo.webpubsub.azure.com",
        "ftp://demo.webpubsub.azure.com",
        "https://demo.webpubsub.azure.com/api",
        "https://demo.webpubsub.azure.com/?a=b",
        "https://user:pass@demo.webpubsub.azure.com",
    ] {
        let err = WebPubSubServiceClient::credential_builder(bad, "chat", credential.clone())
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidEndpoint { .. }),
            "{bad}: {err}"
        );
    }
    let err = WebPubSubServiceClient::credential_builder(
        "https://demo.webpubsub.azure.com",
        "9chat",
        credential,
    )
    .build()
    .unwrap_err();
    assert!(matches!(err, ConfigError::InvalidHub { .. }), "{err}");
}

#[test]
fn a_reverse_proxy_over_http_to_a_remote_host_is_refused_too() {
    let credential = FakeCredential::new();
    let err = WebPubSubServiceClient::credential_builder(
        "https://demo.webpubsub.azure.com",
        "chat",
        credential.clone(),
    )
    .reverse_proxy("http://apim.example")
    .build()
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::InvalidReverseProxy { reason, .. } if reason.contains("https")),
        "{err}"
    );
    WebPubSubServiceClient::credential_builder(
        "https://demo.webpubsub.azure.com",
        "chat",
        credential,
    )
    .reverse_proxy("http://127.0.0.1:9000")
    .build()
    .unwrap();
}

#[test]
fn a_credential_client_has_no_local_signer() {
    let client = WebPubSubServiceClient::from_credential(
        "https://demo.webpubsub.azure.com",
        "chat",
        FakeCredential::new(),
    )
    .unwrap();
    assert!(client.try_signer().is_none());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = client.client_access(&ClientAccessOptions::new());
    }));
    assert!(panicked.is_err());
    // Debug names the endpoint, never a token.
    let debug = format!("{client:?}");
    assert!(debug.contains("demo.webpubsub.azure.com"), "{debug}");
}

// ----- client access through :generateToken --------------------------------

#[tokio::test]
async fn client_access_comes_from_generate_token_with_every_option_in_the_query() {
    let service = FakeService::start().await;
    let client = service.client(FakeCredential::new());
    let options = ClientAccessOptions::new()
        .user_id("alice")
        .role("webpubsub.joinLeaveGroup")
        .role("webpubsub.sendToGroup.room 1")
        .group("room1")
        .group("room 2")
        .expires_after(Duration::from_secs(5 * 60));

    let access = client.issue_client_access(&options).await.unwrap();

    let requests = service.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.line(),
        "POST /api/hubs/chat/:generateToken?api-version=2024-12-01&userId=alice\
         &role=webpubsub.joinLeaveGroup&role=webpubsub.sendToGroup.room%201\
         &group=room1&group=room%202&minutesToExpire=5&clientType=Default"
    );
    assert!(request.body.is_empty(), "no body: {:?}", request.body);
    assert_eq!(request.content_type, None);
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer entra-token-1")
    );

    let base = format!("ws://{}/client/hubs/chat", service.addr);
    assert_eq!(access.token(), "service-token.for.alice");
    assert_eq!(access.base_url(), base);
    assert_eq!(
        access.url(),
        format!("{base}?access_token=service-token.for.alice")
    );
    assert_eq!(
        client.issue_client_access_url(&options).await.unwrap(),
        access.url()
    );
}

#[tokio::test]
async fn mqtt_client_access_uses_the_mqtt_path_and_a_lifetime_rounded_up() {
    let service = FakeService::start().await;
    let client = service.client(FakeCredential::new());
    let options = ClientAccessOptions::new()
        .protocol(ClientProtocol::Mqtt)
        .expires_after(Duration::from_secs(61));

    let access = client.issue_client_access(&options).await.unwrap();

    assert_eq!(
        service.requests()[0].line(),
        "POST /api/hubs/chat/:generateToken?api-version=2024-12-01\
         &minutesToExpire=2&clientType=MQTT"
    );
    assert_eq!(
        access.url(),
        format!(
            "ws://{}/clients/mqtt/hubs/chat?access_token=service-token.for.anonymous",
            service.addr
        )
    );
}

#[tokio::test]
async fn options_the_service_cannot_take_are_refused_before_sending() {
    let service = FakeService::start().await;
    let credential = FakeCredential::new();
    let client = service.client(credential.clone());
    for (options, fragment) in [
        (
            ClientAccessOptions::new().expires_after(Duration::ZERO),
            "lifetime is zero",
        ),
        (
            ClientAccessOptions::new().claim("tenant", "contoso"),
            "custom claims",
        ),
        (
            ClientAccessOptions::new().protocol(ClientProtocol::SocketIo),
            "default and MQTT",
        ),
    ] {
        let err = client.issue_client_access(&options).await.unwrap_err();
        assert!(
            matches!(&err, ServiceError::InvalidArgument { reason, .. } if reason.contains(fragment)),
            "{fragment}: {err}"
        );
    }
    assert!(service.requests().is_empty());
    assert_eq!(credential.calls(), 0);
}

#[tokio::test]
async fn a_key_client_still_signs_client_access_locally() {
    let client = WebPubSubServiceClient::from_connection_string(
        "Endpoint=http://127.0.0.1;Port=1;AccessKey=local-key;Version=1.0;",
        "chat",
    )
    .unwrap();
    let options = ClientAccessOptions::new().user_id("alice");
    // Port 1: nothing listens, so any request would fail.
    let access = client.issue_client_access(&options).await.unwrap();
    assert!(access
        .url()
        .starts_with("ws://127.0.0.1:1/client/hubs/chat?access_token=ey"));
    assert!(client.try_signer().is_some());
}

// ----- negotiate -------------------------------------------------------------

async fn get(negotiate: &Negotiate, uri: &str) -> (StatusCode, String) {
    let request = http::Request::get(uri).body(Body::empty()).unwrap();
    let response = negotiate.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn negotiate_with_a_credential_client_answers_the_url_the_service_issued() {
    let service = FakeService::start().await;
    let client = service.client(FakeCredential::new());
    let negotiate = Negotiate::from_client(client)
        .user_id_from_query("id")
        .options(ClientAccessOptions::new().group("lobby"));

    let (status, body) = get(&negotiate, "/negotiate?id=alice").await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["url"],
        format!(
            "ws://{}/client/hubs/chat?access_token=service-token.for.alice",
            service.addr
        )
    );
    assert_eq!(
        service.requests()[0].line(),
        "POST /api/hubs/chat/:generateToken?api-version=2024-12-01&userId=alice\
         &group=lobby&minutesToExpire=60&clientType=Default"
    );
}

#[tokio::test]
async fn negotiate_with_a_credential_client_refuses_without_calling_the_service() {
    let service = FakeService::start().await;
    let client = service.client(FakeCredential::new());
    let negotiate = Negotiate::from_client(client).user_id_from_query("id");

    let (status, body) = get(&negotiate, "/negotiate").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("missing query parameter `id`"), "{body}");
    assert!(service.requests().is_empty());
}

#[tokio::test]
async fn negotiate_answers_502_when_the_service_refuses_and_500_when_the_credential_fails() {
    let service = FakeService::start().await;
    let negotiate = Negotiate::from_client(service.client(FakeCredential::new())).allow_anonymous();
    service.answer([403]);
    let (status, body) = get(&negotiate, "/negotiate").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        !body.contains("scripted"),
        "the service's reason stays in the log: {body}"
    );

    let failing = Negotiate::from_client(service.client(FakeCredential::failing("no identity")))
        .allow_anonymous();
    let (status, body) = get(&failing, "/negotiate").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("no identity"), "{body}");
}

#[tokio::test]
async fn negotiate_from_a_key_client_signs_locally() {
    let client = WebPubSubServiceClient::from_connection_string(
        "Endpoint=http://127.0.0.1;Port=1;AccessKey=local-key;Version=1.0;",
        "chat",
    )
    .unwrap();
    let negotiate = Negotiate::from_client(client).user_id_from_query("id");
    let (status, body) = get(&negotiate, "/negotiate?id=alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("ws://127.0.0.1:1/client/hubs/chat?access_token=ey"),
        "{body}"
    );
}
