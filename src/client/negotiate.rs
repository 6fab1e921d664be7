//! [`Negotiate`] with a service client: URLs signed with the client's key,
//! or issued by the service for a client without one (feature `entra`).

use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode};

use super::{ServiceError, WebPubSubServiceClient};
use crate::client_access::negotiate::{text, url_response, IssueClientAccess};
use crate::client_access::{ClientAccessOptions, Negotiate};

impl Negotiate {
    /// Gets URLs through `client`, however it authenticates: signed locally
    /// when it has an access key (as [`new`](Self::new) with its
    /// [`signer`](crate::client::WebPubSubServiceClient::signer)), issued by
    /// the service (`:generateToken`) when it was built from a Microsoft
    /// Entra ID credential; see
    /// [`issue_client_access`](crate::client::WebPubSubServiceClient::issue_client_access).
    /// Custom claims in [`options`](Self::options) cannot be sent to the
    /// service: such requests are answered `500`.
    ///
    /// ```
    /// use webpubsub::WebPubSubServiceClient;
    /// use webpubsub::client_access::{ClientAccessOptions, Negotiate, Permission};
    ///
    /// # #[derive(Clone)] struct SignedIn(String);
    /// # #[derive(Debug)] struct Fake;
    /// # #[webpubsub::async_trait]
    /// # impl azure_core::credentials::TokenCredential for Fake {
    /// #     async fn get_token(&self, _: &[&str], _: Option<azure_core::credentials::TokenRequestOptions<'_>>)
    /// #         -> azure_core::Result<azure_core::credentials::AccessToken> { unimplemented!() }
    /// # }
    /// # let credential = std::sync::Arc::new(Fake);
    /// // `credential`: e.g. `azure_identity::ManagedIdentityCredential::new(None)?`.
    /// let client = WebPubSubServiceClient::from_credential(
    ///     "https://demo.webpubsub.azure.com",
    ///     "chat",
    ///     credential,
    /// )?;
    /// let negotiate = Negotiate::from_client(client)
    ///     .user_id_with(|parts| parts.extensions.get::<SignedIn>().map(|user| user.0.clone()))
    ///     .options(ClientAccessOptions::new().role(Permission::JoinLeaveGroup.role()));
    /// let app: axum::Router = axum::Router::new().route_service("/negotiate", negotiate);
    /// # let _ = app;
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub fn from_client(client: WebPubSubServiceClient) -> Self {
        match client.try_signer() {
            Some(signer) => Self::new(signer.clone()),
            None => Self::issued_by(Arc::new(client)),
        }
    }
}

#[async_trait::async_trait]
impl IssueClientAccess for WebPubSubServiceClient {
    /// The answer with a URL the service issued, or why there is none.
    async fn answer(&self, options: &ClientAccessOptions) -> Response<Body> {
        let client = self;
        match client.issue_client_access(options).await {
            Ok(access) => {
                tracing::debug!(target: "webpubsub::negotiate", user = options.user_id.as_deref(),
                hub = client.hub(), "the service issued a client access URL");
                url_response(&access)
            }
            Err(error) => {
                tracing::warn!(target: "webpubsub::negotiate", user = options.user_id.as_deref(),
                hub = client.hub(), %error, "no client access URL from the service");
                match error {
                    ServiceError::InvalidArgument { .. } | ServiceError::Credential { .. } => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot get a client access URL: see the server log",
                    ),
                    _ => text(
                        StatusCode::BAD_GATEWAY,
                        "the Web PubSub service issued no client access URL",
                    ),
                }
            }
        }
    }
}
