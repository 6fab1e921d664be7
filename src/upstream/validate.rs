//! The tower middleware: abuse-protection handshake and `ce-signature` check.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::options::{validation_builder_methods, ValidationOptions, ValidationSettings};
use super::signature;
use crate::config::ConfigError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower [`Layer`] that guards an event-handler route.
///
/// The wrapped service sees only requests that passed:
///
/// - `OPTIONS` is the abuse-protection handshake and is answered here: `200`
///   with `WebHook-Allowed-Origin` (the matching request host, or `*` when
///   every origin is allowed), or `400` with an empty body when
///   `WebHook-Request-Origin` is missing or names no allowed host;
/// - `POST` must carry a `ce-signature` entry made with an access key of an
///   endpoint named by `WebHook-Request-Origin` (or with a key configured for
///   any origin), else `401` with a short text body (`400` without
///   `ce-connectionId`, the signed value; `401` for a `ce-connectionId`
///   shaped like a token's signed part, see below);
/// - other methods pass through untouched.
///
/// [`EventRouter`](crate::EventRouter) uses this layer itself; use it alone to
/// guard a route you decode yourself.
///
/// # Forged events from tokens
///
/// The access key signs more than events: client access tokens and REST
/// tokens are HS256 JWTs, whose signature is the HMAC-SHA256 of
/// `<header>.<payload>` under the same key, while `ce-signature` is the
/// HMAC-SHA256 of `ce-connectionId`. So a token's signature, in hex, is a
/// valid `ce-signature` for `ce-connectionId: <header>.<payload>`: anyone
/// who got one token from your `/negotiate` could otherwise send any event
/// as any user. A `POST` whose `ce-connectionId` has that shape (the part
/// before its first `.` is base64 of a JSON object) is therefore refused
/// with `401` before any signature is checked
/// ([`Rejection::TokenShapedConnectionId`](crate::upstream::Rejection::TokenShapedConnectionId)).
/// The service's connection ids never have that shape, and an MQTT client
/// id (chosen by the client) would have to be built to look like a token
/// header to be refused.
///
/// ```
/// use tower::ServiceExt;
/// use webpubsub::testing;
/// use webpubsub::upstream::ValidateUpstreamLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = ValidateUpstreamLayer::builder()
///     .connection_string("Endpoint=https://demo.webpubsub.azure.com;AccessKey=key-1")
///     .build()?;
/// let app = axum::Router::new()
///     .route("/events", axum::routing::post(|| async { "reached" }))
///     .layer(layer);
///
/// let good = testing::connected("chat", "c1").uri("/events").origin("demo.webpubsub.azure.com").sign("key-1");
/// let bad = testing::connected("chat", "c1").uri("/events").origin("demo.webpubsub.azure.com").sign("wrong");
/// assert_eq!(app.clone().oneshot(good).await?.status(), 200);
/// assert_eq!(app.oneshot(bad).await?.status(), 401);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ValidateUpstreamLayer {
    options: Arc<ValidationOptions>,
}

/// Collects the settings of a [`ValidateUpstreamLayer`]; see
/// [`ValidateUpstreamLayer::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ValidateUpstreamBuilder {
    settings: ValidationSettings,
}

impl ValidateUpstreamBuilder {
    validation_builder_methods!(settings);

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoAccessKey`] when no access key was configured and
    /// [`insecure_skip_signature_check`](Self::insecure_skip_signature_check)
    /// was not called; [`ConfigError::InvalidOrigin`] for a malformed origin.
    pub fn build(self) -> Result<ValidateUpstreamLayer, ConfigError> {
        Ok(ValidateUpstreamLayer {
            options: Arc::new(self.settings.build()?),
        })
    }
}

impl ValidateUpstreamLayer {
    /// Starts configuring the layer.
    pub fn builder() -> ValidateUpstreamBuilder {
        ValidateUpstreamBuilder::default()
    }
}

impl<S> Layer<S> for ValidateUpstreamLayer {
    type Service = ValidateUpstream<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidateUpstream {
            inner,
            options: Arc::clone(&self.options),
        }
    }
}

/// The service made by [`ValidateUpstreamLayer`].
///
/// The wrapped service must be `Clone + Send + 'static` (every axum
/// `Router`, route and `MethodRouter` is): when a bearer token is checked
/// (feature `entra`) the check may wait for the tenant's keys, and the
/// service made ready is then called from the check's future while a
/// clone takes its place.
#[derive(Debug, Clone)]
pub struct ValidateUpstream<S> {
    inner: S,
    options: Arc<ValidationOptions>,
}

impl<S> ValidateUpstream<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The answer to `request` if this layer answers it itself (handshake or
    /// refusal); `None` when it passes.
    fn intercept(&self, headers: &http::HeaderMap, method: &Method) -> Option<Response<Body>> {
        if *method == Method::OPTIONS {
            return Some(self.options.preflight(headers));
        }
        if *method == Method::POST && self.options.check_signatures {
            if let Err(rejection) = signature::verify(&self.options.endpoints, headers) {
                return Some(rejection.into_logged_response(super::headers::for_log(
                    headers,
                    &super::headers::CE_HUB,
                )));
            }
        }
        None
    }
}

impl<S, B, ResBody> Service<Request<B>> for ValidateUpstream<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some(response) = self.intercept(request.headers(), request.method()) {
            return ResponseFuture::answered(response);
        }
        if request.method() == Method::POST && self.options.checks_bearer() {
            // The bearer check may wait for the tenant's keys: the inner
            // service (the one made ready) is called once it passes.
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            return ResponseFuture::checking(check_then_call(
                Arc::clone(&self.options),
                ready,
                request,
            ));
        }
        ResponseFuture::inner(self.inner.call(request))
    }
}

/// Checks the bearer token of `request`, then calls `inner` with it.
fn check_then_call<S, B>(
    options: Arc<ValidationOptions>,
    mut inner: S,
    request: Request<B>,
) -> Checking<S::Future>
where
    S: Service<Request<B>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    Box::pin(async move {
        match options.check_bearer(request.headers()).await {
            Ok(()) => Ok(inner.call(request)),
            Err(rejection) => Err(rejection.into_logged_response(super::headers::for_log(
                request.headers(),
                &super::headers::CE_HUB,
            ))),
        }
    })
}

/// A bearer check under way: the inner service's future once it passes,
/// the refusal otherwise.
type Checking<F> = Pin<Box<dyn Future<Output = Result<F, Response<Body>>> + Send>>;

pin_project! {
    /// The future of [`ValidateUpstream`]: the wrapped service's answer, or
    /// this layer's own.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Answered { .. } => "answered",
            Kind::Checking { .. } => "checking",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    /// A future that answers `response`.
    pub(crate) fn answered(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Answered {
                response: Some(response),
            },
        }
    }

    /// A future that answers what `future` answers.
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// A future that checks first, then answers what the inner future
    /// answers, or the refusal.
    fn checking(check: Checking<F>) -> Self {
        Self {
            kind: Kind::Checking { check },
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Answered { response: Option<Response<Body>> },
        Checking { check: Checking<F> },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut kind = self.as_mut().project().kind;
            match kind.as_mut().project() {
                KindProj::Inner { future } => return future.poll(cx).map_ok(|r| r.map(Body::new)),
                KindProj::Answered { response } => {
                    return match response.take() {
                        Some(response) => Poll::Ready(Ok(response)),
                        None => {
                            // Polled again after completion: answer with an
                            // empty 500 rather than panicking.
                            let mut response = Response::new(Body::empty());
                            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                            Poll::Ready(Ok(response))
                        }
                    };
                }
                KindProj::Checking { check } => match check.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(future)) => kind.set(Kind::Inner { future }),
                    Poll::Ready(Err(refusal)) => {
                        kind.set(Kind::Answered { response: None });
                        return Poll::Ready(Ok(refusal));
                    }
                },
            }
        }
    }
}
