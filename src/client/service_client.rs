//! [`WebPubSubServiceClient`]: the client of the REST API of one hub, and
//! how it makes a call. Its operations are in `operations`, its client
//! access URLs in `access`, its constructors with the builder.

use std::fmt;
use std::sync::Arc;

use http::Method;

use super::paths::{self, Part};
use super::transport::{Call, Transport};
use super::ServiceError;
use crate::client_access::ClientAccessSigner;

/// Calls the Web PubSub REST API for one hub: send messages, manage groups,
/// close connections, check existence, grant permissions, and sign client
/// access URLs.
///
/// Cheap to clone (one `Arc`): build it once, keep it in your handler or
/// axum state, clone it into tasks. Requests are authenticated with
/// short-lived HS256 tokens signed with the access key or, with feature
/// `entra`, with Microsoft Entra ID tokens from any `azure_core`
/// `TokenCredential` (`from_credential`). They use API version
/// [`API_VERSION`](super::API_VERSION), and count as successful only with
/// the exact status the API documents; anything else is a [`ServiceError`].
/// Idempotent calls are retried on connection errors and `5xx` (see
/// [`RetryPolicy`](super::RetryPolicy)).
///
/// Calls with options return a request to configure and `.await`:
///
/// ```no_run
/// use webpubsub::WebPubSubServiceClient;
/// use webpubsub::client::{Filter, Message};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = WebPubSubServiceClient::from_connection_string(
///     "Endpoint=https://demo.webpubsub.azure.com;AccessKey=<key>;Version=1.0;",
///     "chat",
/// )?;
/// client.send_to_all("alice joined").await?;
/// client
///     .send_to_group("room1", Message::json(&serde_json::json!({ "from": "alice" }))?)
///     .exclude("conn-of-alice")
///     .filter(Filter::user_id_ne("bot"))
///     .await?;
/// client.add_user_to_group("room1", "bob").await?;
/// if client.user_exists("bob").await? {
///     client.close_user_connections("bob").reason("banned").await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WebPubSubServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    hub: String,
    transport: Transport,
    /// `None` for a client built with a credential: it has no key.
    signer: Option<ClientAccessSigner>,
}

impl WebPubSubServiceClient {
    /// The hub this client calls.
    #[must_use]
    pub fn hub(&self) -> &str {
        &self.inner.hub
    }

    /// The service endpoint, `http(s)://host[:port]`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.inner.transport.endpoint
    }

    /// The client [`ServiceClientBuilder::build`] hands out.
    pub(super) fn from_parts(
        hub: String,
        transport: Transport,
        signer: Option<ClientAccessSigner>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                transport,
                signer,
            }),
        }
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The access key's signer; `None` for a client built with a credential.
    pub(super) fn key_signer(&self) -> Option<&ClientAccessSigner> {
        self.inner.signer.as_ref()
    }

    /// A call to `/api/hubs/{hub}` (more path to be appended).
    pub(super) fn call(&self, operation: &'static str, method: Method) -> Call {
        Call::hub(operation, method, &self.inner.hub)
    }

    /// A call to `/api/hubs/{hub}/…`, its caller-supplied parts checked and encoded.
    pub(crate) fn call_to(
        &self,
        operation: &'static str,
        method: Method,
        path: &[Part<'_>],
    ) -> Result<Call, ServiceError> {
        paths::append(self.call(operation, method), operation, path)
    }

    /// Sends `call`; whether the resource exists, for an existence check.
    pub(super) async fn run(&self, call: Call) -> Result<bool, ServiceError> {
        self.inner.transport.send(call).await.map(|a| a.exists)
    }
}

impl fmt::Debug for WebPubSubServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPubSubServiceClient")
            .field("endpoint", &self.inner.transport.endpoint)
            .field("hub", &self.inner.hub)
            .field("retry", &self.inner.transport.retry)
            .field("timeout", &self.inner.transport.timeout)
            .finish_non_exhaustive()
    }
}
