//! Client access URLs from a [`WebPubSubServiceClient`]: signed locally
//! with its access key, or issued by the service (`:generateToken`).

use http::Method;

use super::transport;
use super::{ServiceError, WebPubSubServiceClient};
use crate::client_access::{ClientAccess, ClientAccessOptions, ClientAccessSigner, ClientProtocol};

impl WebPubSubServiceClient {
    /// The signer of client access URLs for this hub.
    ///
    /// # Panics
    ///
    /// On a client built with a credential (feature `entra`), which has no
    /// key to sign with: use `issue_client_access` (feature `entra`)
    /// (or check with `try_signer`).
    #[must_use]
    pub fn signer(&self) -> &ClientAccessSigner {
        match self.key_signer() {
            Some(signer) => signer,
            None => panic!(
                "this WebPubSubServiceClient authenticates with a Microsoft Entra ID credential \
                 and has no access key to sign client URLs with: use `issue_client_access`"
            ),
        }
    }

    /// The signer of client access URLs, or `None` for a client built with
    /// a credential (it has no key).
    ///
    /// ```
    /// use webpubsub::WebPubSubServiceClient;
    ///
    /// let client = WebPubSubServiceClient::from_connection_string(
    ///     "Endpoint=http://localhost;Port=8080;AccessKey=local-key;Version=1.0;",
    ///     "chat",
    /// )?;
    /// assert!(client.try_signer().is_some());
    /// # Ok::<(), webpubsub::ConfigError>(())
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    #[must_use]
    pub fn try_signer(&self) -> Option<&ClientAccessSigner> {
        self.key_signer()
    }

    /// Signs a client access URL locally (no request is made); see
    /// [`ClientAccessSigner`].
    ///
    /// # Panics
    ///
    /// As [`signer`](Self::signer): on a client built with a credential.
    #[must_use]
    pub fn client_access(&self, options: &ClientAccessOptions) -> ClientAccess {
        self.signer().client_access(options)
    }

    /// Signs a client access token locally and returns the URL to connect to.
    ///
    /// # Panics
    ///
    /// As [`signer`](Self::signer): on a client built with a credential.
    #[must_use]
    pub fn client_access_url(&self, options: &ClientAccessOptions) -> String {
        self.signer().client_access_url(options)
    }

    /// A client access URL, however this client authenticates: signed
    /// locally with the access key (no request), or, for a client built
    /// with a credential, issued by the service
    /// (`POST /api/hubs/{hub}/:generateToken`, see
    /// [`generate_client_token`](Self::generate_client_token)).
    ///
    /// From the service the URL is `ws(s)://host/client/hubs/{hub}?access_token=<token>`
    /// (`/clients/mqtt/hubs/{hub}` for MQTT), as the Python and .NET SDKs
    /// build it. The user id, every role and every group are sent (groups
    /// on every path: the .NET SDK's sync path once dropped them); the
    /// lifetime in whole minutes, rounded up, at least one.
    ///
    /// What this follows, and where it comes from: `POST
    /// /api/hubs/{hub}/:generateToken` with query `userId`, repeated `role`,
    /// repeated `group`, `minutesToExpire` (minimum 1) and `clientType`
    /// (`Default` or `MQTT`), no body, answered `200 {"token": "…"}` (the
    /// REST reference page *Generate Client Token*); `0` minutes is refused
    /// by the service (Azure SDK for Go, PR #21929), so it is refused here
    /// first; the URL shape is the Python SDK's `get_client_access_token`
    /// and .NET's `GetClientAccessUri`. Not confirmed: the service's own
    /// default and maximum lifetime (this client always sends one, default
    /// 60 minutes).
    ///
    /// # Errors
    ///
    /// Locally signed: never. From the service: as
    /// [`generate_client_token`](Self::generate_client_token), and
    /// `InvalidArgument` for custom claims, which the service cannot add
    /// (refused rather than silently dropped).
    ///
    /// ```no_run
    /// # async fn run(client: webpubsub::WebPubSubServiceClient) -> Result<(), webpubsub::client::ServiceError> {
    /// use webpubsub::client_access::{ClientAccessOptions, Permission};
    ///
    /// let options = ClientAccessOptions::new()
    ///     .user_id("alice")
    ///     .role(Permission::JoinLeaveGroup.role())
    ///     .group("room1");
    /// let access = client.issue_client_access(&options).await?;
    /// assert!(access.url().contains("/client/hubs/chat?access_token="));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub async fn issue_client_access(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<ClientAccess, ServiceError> {
        if let Some(signer) = self.key_signer() {
            return Ok(signer.client_access(options));
        }
        if options.has_claims() {
            return Err(ServiceError::invalid(
                "generate_client_token",
                "custom claims cannot be added by the service (`:generateToken` has no \
                 parameter for them); remove them or sign with an access key",
            ));
        }
        let token = self.generate_client_token(options).await?;
        Ok(ClientAccess::from_service_token(
            self.endpoint(),
            self.hub(),
            options.protocol_value(),
            token,
        ))
    }

    /// The URL of [`issue_client_access`](Self::issue_client_access).
    ///
    /// # Errors
    ///
    /// As [`issue_client_access`](Self::issue_client_access).
    #[cfg(feature = "entra")]
    #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
    pub async fn issue_client_access_url(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<String, ServiceError> {
        self.issue_client_access(options)
            .await
            .map(ClientAccess::into_url)
    }

    /// Asks the service to sign a client token (`POST …/:generateToken`).
    ///
    /// Only needed when the service, not this application, must sign (as
    /// with a Microsoft Entra ID credential and no key);
    /// [`client_access`](Self::client_access) signs locally with the same
    /// result and no round trip. The query carries `userId`, one `role` and
    /// one `group` per value, `minutesToExpire` and `clientType`; no body.
    /// Custom claims are not sent (the API has no parameter for them); the
    /// lifetime is rounded up to whole minutes.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for the Socket.IO protocol, which
    /// the API cannot sign for, and for a zero lifetime (the service wants
    /// at least one minute).
    pub async fn generate_client_token(
        &self,
        options: &ClientAccessOptions,
    ) -> Result<String, ServiceError> {
        const OP: &str = "generate_client_token";
        let client_type = match options.protocol_value() {
            ClientProtocol::Default => "Default",
            ClientProtocol::Mqtt => "MQTT",
            _ => {
                return Err(ServiceError::invalid(
                    OP,
                    "the service signs tokens for the default and MQTT endpoints only; \
                     use `client_access` to sign locally",
                ))
            }
        };
        if options.lifetime().is_zero() {
            return Err(ServiceError::invalid(
                OP,
                "the token lifetime is zero; the service issues tokens for at least one minute",
            ));
        }
        let minutes = options.lifetime().as_secs().div_ceil(60).max(1).to_string();
        let call = self
            .call(OP, Method::POST)
            .literal(":generateToken")
            .query_opt("userId", options.user_id.as_deref())
            .query_all("role", options.role_list())
            .query_all("group", options.group_list())
            .query("minutesToExpire", &minutes)
            .query("clientType", client_type)
            .accept("application/json, text/json");
        let answer = self.transport().send(call).await?;
        let body =
            transport::read_body(OP, answer.response, 64 * 1024, self.transport().timeout).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
        }
        serde_json::from_slice::<Token>(&body)
            .map(|t| t.token)
            .map_err(|e| ServiceError::InvalidResponse {
                operation: OP,
                reason: format!("expected {{\"token\": \"…\"}}: {e}"),
            })
    }
}
