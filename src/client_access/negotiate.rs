//! A ready-made `/negotiate` endpoint: one fetch gives a web page its WebSocket URL.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::IntoResponse;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use tower_service::Service;

use super::options::ClientAccessOptions;
use super::signer::{ClientAccess, ClientAccessSigner};

/// Serves `{"url": "wss://…/client/hubs/{hub}?access_token=…"}` for the user
/// a request names, so a page connects with one `fetch`.
///
/// A tower service to mount with axum's `route_service`. Each `GET` (or
/// `POST`) is answered with a fresh URL: signed locally with the access key
/// ([`new`](Self::new); no request to the service), or, with feature
/// `entra` and a service client built from a Microsoft Entra ID credential,
/// issued by the service (`Negotiate::from_client`, one `:generateToken`
/// call per answer). **Whoever gets a URL connects as the user it names**, so the
/// user id must come from something the caller cannot choose:
///
/// - [`user_id_with`](Self::user_id_with) (**the trusted way**): your code
///   reads the user your authentication layer verified, e.g. from the
///   request extensions;
/// - [`user_id_from_header`](Self::user_id_from_header): a header set by an
///   authenticating reverse proxy that strips it from client requests;
/// - [`user_id_from_query`](Self::user_id_from_query) (**demos only**): a
///   query parameter (`/negotiate?id=alice`), so every caller picks any
///   identity it likes, `admin` included.
///
/// Roles, groups and lifetime for every token come from
/// [`options`](Self::options). Refusals:
///
/// - no user id found: `400` (unless [`allow_anonymous`](Self::allow_anonymous));
/// - a method other than `GET`/`POST`: `405`;
/// - (from the service only) options it cannot take, such as custom claims,
///   or a credential that gives no token: `500`; the service refusing or
///   unreachable: `502`. The reason is logged (target
///   `webpubsub::negotiate`), never sent.
///
/// ```
/// use axum::{middleware, Router};
/// use tower::ServiceExt;
/// use webpubsub::client_access::{ClientAccessOptions, ClientAccessSigner, Negotiate, Permission};
///
/// /// Who your authentication layer verified (a session cookie, an OIDC token…).
/// #[derive(Clone)]
/// struct SignedIn(String);
///
/// /// A stand-in for real authentication: trusts a session id it knows.
/// async fn authenticate(mut request: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
///     if request.headers().get("cookie").is_some_and(|c| c == "session=s3cr3t") {
///         request.extensions_mut().insert(SignedIn("alice".to_owned()));
///     }
///     next.run(request).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let signer = ClientAccessSigner::from_connection_string(
///     "Endpoint=https://demo.webpubsub.azure.com;AccessKey=secret;Version=1.0;",
///     "chat",
/// )?;
/// let negotiate = Negotiate::new(signer)
///     .user_id_with(|parts| parts.extensions.get::<SignedIn>().map(|user| user.0.clone()))
///     .options(ClientAccessOptions::new().role(Permission::JoinLeaveGroup.role()));
/// let app = Router::new()
///     .route_service("/negotiate", negotiate)
///     .layer(middleware::from_fn(authenticate));
///
/// let signed_in = http::Request::get("/negotiate").header("cookie", "session=s3cr3t");
/// let response = app.clone().oneshot(signed_in.body(axum::body::Body::empty())?).await?;
/// assert_eq!(response.status(), 200);
/// let body = axum::body::to_bytes(response.into_body(), 4096).await?;
/// let json: serde_json::Value = serde_json::from_slice(&body)?;
/// assert!(json["url"].as_str().unwrap().starts_with("wss://demo.webpubsub.azure.com/client/hubs/chat?access_token="));
///
/// // Not signed in: no user, no URL (a query parameter changes nothing).
/// let stranger = http::Request::get("/negotiate?id=alice").body(axum::body::Body::empty())?;
/// assert_eq!(app.oneshot(stranger).await?.status(), 400);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Negotiate {
    inner: Arc<Settings>,
}

#[derive(Clone)]
struct Settings {
    issuer: Issuer,
    source: UserSource,
    options: ClientAccessOptions,
    anonymous: bool,
}

/// Who makes the tokens.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per `Negotiate`, behind its `Arc`
enum Issuer {
    /// Signed here with the access key.
    Key(ClientAccessSigner),
    /// Issued by the service, for a client without a key.
    #[cfg(feature = "entra")]
    Service(Arc<dyn IssueClientAccess>),
}

/// Where a [`Negotiate`] without an access key gets its URLs: the service
/// client (`:generateToken`), which implements it beside itself so this
/// module does not depend on the client.
#[cfg(feature = "entra")]
#[async_trait::async_trait]
pub(crate) trait IssueClientAccess: fmt::Debug + Send + Sync {
    /// The answer to one negotiate request: `{"url": …}` (see
    /// [`url_response`]) or why there is none.
    async fn answer(&self, options: &ClientAccessOptions) -> Response<Body>;
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(signer) => signer.fmt(f),
            #[cfg(feature = "entra")]
            Self::Service(client) => client.fmt(f),
        }
    }
}

type UserFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

#[derive(Clone)]
enum UserSource {
    None,
    Query(String),
    Header(HeaderName),
    With(Arc<UserFn>),
}

/// The future of [`Negotiate`]: already complete when URLs are signed
/// locally or the request is refused; waiting for the service otherwise.
#[must_use = "futures do nothing unless polled"]
pub struct NegotiateFuture {
    state: FutureState,
}

enum FutureState {
    Ready(Option<Response<Body>>),
    #[cfg(feature = "entra")]
    Service(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl NegotiateFuture {
    fn ready(response: Response<Body>) -> Self {
        Self {
            state: FutureState::Ready(Some(response)),
        }
    }
}

impl Future for NegotiateFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        #[cfg(not(feature = "entra"))]
        let _ = cx;
        match &mut self.get_mut().state {
            FutureState::Ready(response) => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                text(StatusCode::INTERNAL_SERVER_ERROR, "polled after completion")
            }))),
            #[cfg(feature = "entra")]
            FutureState::Service(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl fmt::Debug for NegotiateFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            FutureState::Ready(_) => "ready",
            #[cfg(feature = "entra")]
            FutureState::Service(_) => "waiting for the service",
        };
        f.debug_struct("NegotiateFuture")
            .field("state", &state)
            .finish()
    }
}

impl Negotiate {
    /// Signs URLs with `signer`. Until a user id source is set every token
    /// is anonymous (no `sub`).
    pub fn new(signer: ClientAccessSigner) -> Self {
        Self::with_issuer(Issuer::Key(signer))
    }

    /// Gets URLs from `issuer` (the service, for a client without a key).
    #[cfg(feature = "entra")]
    pub(crate) fn issued_by(issuer: Arc<dyn IssueClientAccess>) -> Self {
        Self::with_issuer(Issuer::Service(issuer))
    }

    fn with_issuer(issuer: Issuer) -> Self {
        Self {
            inner: Arc::new(Settings {
                issuer,
                source: UserSource::None,
                options: ClientAccessOptions::new(),
                anonymous: false,
            }),
        }
    }

    fn settings(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.inner)
    }

    /// Takes the user id from this query parameter (URL-decoded): **for
    /// demos only**. The caller chooses the parameter, so anyone can get a
    /// URL for any user (`/negotiate?id=admin`). Anything real reads a
    /// verified identity with [`user_id_with`](Self::user_id_with).
    ///
    /// ```
    /// # use webpubsub::client_access::{ClientAccessSigner, Negotiate};
    /// # let signer = ClientAccessSigner::from_connection_string("Endpoint=http://localhost;AccessKey=k", "chat")?;
    /// // A local demo: `GET /negotiate?id=alice`.
    /// let negotiate = Negotiate::new(signer).user_id_from_query("id");
    /// # let _ = negotiate;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn user_id_from_query(mut self, name: impl Into<String>) -> Self {
        self.settings().source = UserSource::Query(name.into());
        self
    }

    /// Takes the user id from this request header. Only safe behind a
    /// reverse proxy that authenticates every request, sets this header
    /// itself and drops it from what clients send.
    pub fn user_id_from_header(mut self, name: HeaderName) -> Self {
        self.settings().source = UserSource::Header(name);
        self
    }

    /// Takes the user id from your function of the request head (`None`:
    /// no user): the trusted way, reading the identity your authentication
    /// layer verified.
    ///
    /// ```
    /// use webpubsub::client_access::{ClientAccessSigner, Negotiate};
    ///
    /// #[derive(Clone)]
    /// struct SignedInUser(String);
    ///
    /// # let signer = ClientAccessSigner::from_connection_string("Endpoint=http://localhost;AccessKey=k", "chat")?;
    /// let negotiate = Negotiate::new(signer)
    ///     .user_id_with(|parts| parts.extensions.get::<SignedInUser>().map(|u| u.0.clone()));
    /// # let _ = negotiate;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    pub fn user_id_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.settings().source = UserSource::With(Arc::new(f));
        self
    }

    /// Roles, groups, lifetime and claims given to every token (the user id
    /// set here is replaced by the request's).
    pub fn options(mut self, options: ClientAccessOptions) -> Self {
        self.settings().options = options;
        self
    }

    /// Signs an anonymous token when the request names no user, instead of answering `400`.
    pub fn allow_anonymous(mut self) -> Self {
        self.settings().anonymous = true;
        self
    }

    /// The user id the request names, or why there is none.
    fn user_id(&self, parts: &http::request::Parts) -> Result<Option<String>, String> {
        let found = match &self.inner.source {
            UserSource::None => return Ok(None),
            UserSource::Query(name) => parts.uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name.as_str())
                    .map(|(_, v)| v.into_owned())
            }),
            UserSource::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                .map(str::to_owned),
            UserSource::With(f) => f(parts),
        }
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
        match found {
            Some(user) => Ok(Some(user)),
            None if self.inner.anonymous => Ok(None),
            None => Err(match &self.inner.source {
                UserSource::Query(name) => {
                    format!("missing query parameter `{name}` (the user id)")
                }
                UserSource::Header(name) => format!("missing header {name} (the user id)"),
                _ => "no user id for this request".to_owned(),
            }),
        }
    }

    fn answer(&self, parts: &http::request::Parts) -> NegotiateFuture {
        if parts.method != Method::GET && parts.method != Method::POST {
            tracing::debug!(target: "webpubsub::negotiate", method = %parts.method, "refused negotiate");
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return NegotiateFuture::ready(response);
        }
        let user = match self.user_id(parts) {
            Ok(user) => user,
            Err(reason) => {
                tracing::debug!(target: "webpubsub::negotiate", %reason, "refused negotiate");
                return NegotiateFuture::ready(text(StatusCode::BAD_REQUEST, &reason));
            }
        };
        let mut options = self.inner.options.clone();
        options.user_id = user;
        match &self.inner.issuer {
            Issuer::Key(signer) => {
                let access = signer.client_access(&options);
                tracing::debug!(target: "webpubsub::negotiate", user = options.user_id.as_deref(),
                    hub = signer.hub(), "signed a client access URL");
                NegotiateFuture::ready(url_response(&access))
            }
            #[cfg(feature = "entra")]
            Issuer::Service(issuer) => {
                let issuer = Arc::clone(issuer);
                NegotiateFuture {
                    state: FutureState::Service(Box::pin(
                        async move { issuer.answer(&options).await },
                    )),
                }
            }
        }
    }
}

/// `{"url": …}`, never cached.
pub(crate) fn url_response(access: &ClientAccess) -> Response<Body> {
    json_response(serde_json::json!({ "url": access.url() }).to_string())
}

/// A plain text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A `200` JSON answer that no cache keeps (it holds a token).
fn json_response(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<B> Service<Request<B>> for Negotiate {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = NegotiateFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, _body) = request.into_parts();
        self.answer(&parts)
    }
}

impl fmt::Debug for Negotiate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            UserSource::None => "none".to_owned(),
            UserSource::Query(name) => format!("query `{name}`"),
            UserSource::Header(name) => format!("header {name}"),
            UserSource::With(_) => "function".to_owned(),
        };
        f.debug_struct("Negotiate")
            .field("issuer", &self.inner.issuer)
            .field("user_id_from", &source)
            .field("options", &self.inner.options)
            .field("allow_anonymous", &self.inner.anonymous)
            .finish()
    }
}

/// Answers `200` with `{"baseUrl", "token", "url"}` as JSON, never cached,
/// so an axum handler can return a [`ClientAccess`] directly.
impl IntoResponse for ClientAccess {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::to_string(&self).unwrap_or_default();
        json_response(body)
    }
}
