//! One REST call: URL, token, retries, and the answer checked against the
//! operation's documented success status.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

use super::error::{ApiError, ERROR_BODY_LIMIT};
use super::retry::{retryable_status, RetryPolicy};
use super::ServiceError;
use crate::config::AccessKey;
use crate::jwt;

/// The REST API version this client speaks.
pub const API_VERSION: &str = "2024-12-01";

/// How long a REST request token is valid.
const REST_TOKEN_LIFETIME: u64 = 5 * 60;

/// Characters left as they are in path segments and query values: RFC 3986
/// unreserved. Everything else is percent-encoded (`/` → `%2F`, ` ` → `%20`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The connection to one service, shared by clones of the client.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    /// `http(s)://host[:port]`, no trailing `/`; what tokens are signed for.
    pub(crate) endpoint: String,
    /// Where requests are sent instead, if a reverse proxy is configured.
    pub(crate) proxy: Option<Url>,
    pub(crate) auth: Auth,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
}

/// How requests prove who sends them.
#[derive(Debug)]
pub(crate) enum Auth {
    /// A short-lived HS256 JWT signed with the access key, per request, for
    /// exactly the URL the service sees.
    Key(AccessKey),
    /// A Microsoft Entra ID access token from a credential, cached.
    #[cfg(feature = "entra")]
    Bearer(super::bearer::BearerTokens),
}

impl Auth {
    /// The `Authorization` value for one attempt at `audience`.
    async fn authorization(
        &self,
        operation: &'static str,
        audience: &str,
    ) -> Result<HeaderValue, ServiceError> {
        match self {
            Self::Key(key) => {
                let iat = jwt::unix_now();
                let token = jwt::sign(
                    key,
                    &jwt::RestClaims {
                        aud: audience,
                        iat,
                        exp: iat + REST_TOKEN_LIFETIME,
                    },
                );
                let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|e| ServiceError::invalid(operation, e.to_string()))?;
                value.set_sensitive(true);
                Ok(value)
            }
            #[cfg(feature = "entra")]
            Self::Bearer(tokens) => tokens.authorization(operation).await,
        }
    }

    /// Called when the service answered `401` to `authorization`.
    fn unauthorized(&self, authorization: &HeaderValue) {
        match self {
            Self::Key(_) => {}
            #[cfg(feature = "entra")]
            Self::Bearer(tokens) => tokens.rejected(authorization),
        }
        let _ = authorization;
    }
}

/// The expected answers of an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// Exactly this status is success.
    Status(StatusCode),
    /// `200` is `true`, `404` is `false` (HEAD checks).
    Exists,
}

/// A REST call, described before it is sent.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    path: String,
    query: String,
    body: Option<(HeaderValue, Bytes)>,
    accept: Option<&'static str>,
    pub(crate) idempotent: bool,
    expect: Expect,
}

impl Call {
    /// A call to `/api/hubs/{hub}`; add path segments with [`Self::literal`] and [`Self::segment`].
    pub(crate) fn hub(operation: &'static str, method: Method, hub: &str) -> Self {
        Self::root(operation, method, "/api/hubs").segment(hub)
    }

    /// A call outside any hub, e.g. `/api/health`.
    pub(crate) fn root(operation: &'static str, method: Method, path: &str) -> Self {
        Self {
            operation,
            accept: (method != Method::HEAD).then_some("application/json"),
            method,
            path: path.to_owned(),
            query: String::new(),
            body: None,
            idempotent: true,
            expect: Expect::Status(StatusCode::OK),
        }
    }

    /// Appends a fixed path segment such as `groups` or `:send`.
    pub(crate) fn literal(mut self, segment: &str) -> Self {
        self.path.push('/');
        self.path.push_str(segment);
        self
    }

    /// Appends a caller-supplied path segment, percent-encoded.
    pub(crate) fn segment(mut self, value: &str) -> Self {
        self.path.push('/');
        self.path.extend(utf8_percent_encode(value, ENCODE));
        self
    }

    /// Appends `&name=value` to the query, the value percent-encoded.
    pub(crate) fn query(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.query, "&{name}={}", utf8_percent_encode(value, ENCODE));
        self
    }

    /// Appends the query parameter when there is a value.
    pub(crate) fn query_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// Appends the parameter once per value (`excluded=a&excluded=b`).
    pub(crate) fn query_all(mut self, name: &str, values: &[String]) -> Self {
        for value in values {
            self = self.query(name, value);
        }
        self
    }

    pub(crate) fn body(mut self, content_type: HeaderValue, body: Bytes) -> Self {
        self.body = Some((content_type, body));
        self
    }

    pub(crate) fn accept(mut self, accept: &'static str) -> Self {
        self.accept = Some(accept);
        self
    }

    pub(crate) fn expect(mut self, status: StatusCode) -> Self {
        self.expect = Expect::Status(status);
        self
    }

    pub(crate) fn exists(mut self) -> Self {
        self.expect = Expect::Exists;
        self
    }

    /// Marks the call as not safe to repeat once the service may have seen it.
    pub(crate) fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }

    /// The path and query after the endpoint, as sent.
    pub(crate) fn path_and_query(&self) -> String {
        format!("{}?api-version={API_VERSION}{}", self.path, self.query)
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// `false` only for an `Expect::Exists` call answered `404`.
    pub(crate) exists: bool,
    pub(crate) response: reqwest::Response,
}

impl Transport {
    /// Sends `call` to the endpoint, with retries.
    pub(crate) async fn send(&self, call: Call) -> Result<Answer, ServiceError> {
        let url = format!("{}{}", self.endpoint, call.path_and_query());
        self.send_to(call, &url).await
    }

    /// Sends `call` to an absolute URL of the service (a `nextLink`), with retries.
    pub(crate) async fn send_to(&self, call: Call, url: &str) -> Result<Answer, ServiceError> {
        let operation = call.operation;
        let url = Url::parse(url).map_err(|e| {
            ServiceError::invalid(operation, format!("cannot build a URL from `{url}`: {e}"))
        })?;
        // The token's audience is the URL as the service sees it; a reverse
        // proxy only changes where the request goes.
        let audience = url.as_str().to_owned();
        let target = match &self.proxy {
            Some(proxy) => {
                let mut target = url.clone();
                let _ = target.set_scheme(proxy.scheme());
                let _ = target.set_host(proxy.host_str());
                let _ = target.set_port(proxy.port());
                target
            }
            None => url,
        };

        let mut retry = 0;
        loop {
            // A credential error is returned as it is: nothing was sent.
            let authorization = self.auth.authorization(operation, &audience).await?;
            let started = Instant::now();
            let result = self.attempt(&call, &authorization, target.clone()).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            let can_retry = retry < self.retry.retries();
            match result {
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(
                        target: "webpubsub::client",
                        operation,
                        method = %call.method,
                        path = target.path(),
                        status = status.as_u16(),
                        elapsed_ms,
                        attempt = retry + 1,
                        "service answered"
                    );
                    match call.expect {
                        Expect::Status(expected) if status == expected => {
                            return Ok(Answer {
                                exists: true,
                                response,
                            })
                        }
                        Expect::Exists if status == StatusCode::OK => {
                            return Ok(Answer {
                                exists: true,
                                response,
                            })
                        }
                        Expect::Exists if status == StatusCode::NOT_FOUND => {
                            return Ok(Answer {
                                exists: false,
                                response,
                            })
                        }
                        _ => {}
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        // Never retried (a fresh token may be refused too):
                        // the next call starts from a new one.
                        self.auth.unauthorized(&authorization);
                    }
                    if can_retry && call.idempotent && retryable_status(status) {
                        let delay = self.retry.delay(retry, Some(response.headers()));
                        tracing::debug!(target: "webpubsub::client", operation, status = status.as_u16(),
                            delay_ms = delay.as_millis() as u64, "retrying");
                        tokio::time::sleep(delay).await;
                        retry += 1;
                        continue;
                    }
                    let error = read_error(operation, response).await;
                    tracing::warn!(target: "webpubsub::client", operation, error = %error, "call failed");
                    return Err(error.into());
                }
                Err(error) => {
                    let connect = error.is_connect();
                    let timeout = error.is_timeout();
                    tracing::debug!(target: "webpubsub::client", operation, error = %error,
                        elapsed_ms, attempt = retry + 1, "no answer from the service");
                    if can_retry
                        && (connect || (call.idempotent && (timeout || error.is_request())))
                    {
                        let delay = self.retry.delay(retry, None);
                        tokio::time::sleep(delay).await;
                        retry += 1;
                        continue;
                    }
                    let error = if timeout {
                        ServiceError::Timeout {
                            operation,
                            timeout: self.timeout,
                        }
                    } else {
                        ServiceError::Transport {
                            operation,
                            source: error,
                        }
                    };
                    tracing::warn!(target: "webpubsub::client", operation, error = %error, "call failed");
                    return Err(error);
                }
            }
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        authorization: &HeaderValue,
        target: Url,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .http
            .request(call.method.clone(), target)
            .timeout(self.timeout)
            .header(header::AUTHORIZATION, authorization.clone());
        if let Some(accept) = call.accept {
            request = request.header(header::ACCEPT, accept);
        }
        if let Some((content_type, body)) = &call.body {
            request = request
                .header(header::CONTENT_TYPE, content_type.clone())
                .body(body.clone());
        }
        request.send().await
    }
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of an error answer.
async fn read_error(operation: &'static str, mut response: reqwest::Response) -> ApiError {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = ERROR_BODY_LIMIT - body.len();
                body.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            Ok(None) | Err(_) => break,
        }
    }
    ApiError::new(operation, status, &headers, &body)
}

/// Reads a success body of at most `limit` bytes.
pub(crate) async fn read_body(
    operation: &'static str,
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ServiceError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(ServiceError::InvalidResponse {
                        operation,
                        reason: format!("the body exceeds {limit} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(source) if is_timeout(&source) => {
                return Err(ServiceError::Timeout { operation, timeout })
            }
            Err(source) => return Err(ServiceError::Transport { operation, source }),
        }
    }
}

/// Whether a body error is the request timeout running out (reqwest wraps
/// it in a decode error while the body streams).
fn is_timeout(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_query_values_are_percent_encoded() {
        let call = Call::hub("op", Method::POST, "chat")
            .literal("users")
            .segment("user 1/é")
            .literal(":send")
            .query_all("excluded", &["a b".to_owned(), "c&d".to_owned()])
            .query("filter", "userId eq 'o''k'");
        assert_eq!(
            call.path_and_query(),
            "/api/hubs/chat/users/user%201%2F%C3%A9/:send?api-version=2024-12-01\
             &excluded=a%20b&excluded=c%26d&filter=userId%20eq%20%27o%27%27k%27"
        );
    }

    #[test]
    fn head_calls_send_no_accept_header() {
        assert_eq!(Call::hub("op", Method::HEAD, "chat").accept, None);
        assert_eq!(
            Call::hub("op", Method::PUT, "chat").accept,
            Some("application/json")
        );
    }
}
