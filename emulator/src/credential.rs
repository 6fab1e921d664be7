//! [`EmulatorCredential`]: an `azure_core` `TokenCredential` that gets its
//! tokens from the emulator's token endpoint (feature `credential`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use time::OffsetDateTime;

use crate::sync::lock;

/// A cached token is fetched again when it has less than this left, in seconds.
const REFRESH_MARGIN: i64 = 5 * 60;

/// A [`TokenCredential`] of an app registration of the emulator's own
/// Microsoft Entra ID: it posts the client-credentials grant to the
/// emulator's token endpoint and caches each scope's token until 5
/// minutes before it expires.
///
/// Get one from a running emulator with
/// [`RunningEmulator::credential`](crate::RunningEmulator::credential), or
/// from the token endpoint's URL with [`new`](Self::new). Plain `http://`
/// only (the emulator's own listener). Its `Debug` output hides the secret.
///
/// ```no_run
/// # use webpubsub_emulator::{EmulatorCredential, DEFAULT_CLIENT_ID};
/// use azure_core::credentials::TokenCredential;
/// # async fn run() -> azure_core::Result<()> {
/// // The secret the emulator printed at startup (its `client_secret()`).
/// let secret = std::env::var("WPS_CLIENT_SECRET").unwrap_or_default();
/// let credential = EmulatorCredential::new(
///     "http://127.0.0.1:8080/0e3a0000-0000-4000-8000-000000000001/oauth2/v2.0/token",
///     DEFAULT_CLIENT_ID,
///     secret,
/// );
/// let token = credential.get_token(&["https://webpubsub.azure.com/.default"], None).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmulatorCredential {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    cache: Arc<Mutex<HashMap<String, AccessToken>>>,
}

impl fmt::Debug for EmulatorCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorCredential")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl EmulatorCredential {
    /// A credential of `client_id` / `client_secret` that asks
    /// `token_url` (`{base}/{tenant}/oauth2/v2.0/token`) for tokens.
    #[must_use]
    pub fn new(
        token_url: impl Into<String>,
        client_id: uuid::Uuid,
        client_secret: impl Into<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http: reqwest::Client::new(),
            token_url: token_url.into(),
            client_id: client_id.to_string(),
            client_secret: client_secret.into(),
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    async fn fetch(&self, scope: &str) -> azure_core::Result<AccessToken> {
        let credential_error =
            |message: String| azure_core::Error::with_message(ErrorKind::Credential, message);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("scope", scope)
            .finish();
        let response = self
            .http
            .post(&self.token_url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| credential_error(format!("calling {} failed: {e}", self.token_url)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| credential_error(format!("reading the token failed: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: Option<String>,
            expires_in: Option<i64>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            credential_error(format!(
                "the token endpoint answered {status} with no token: {e}"
            ))
        })?;
        match (answer.access_token, answer.expires_in) {
            (Some(token), Some(expires_in)) if status.is_success() => Ok(AccessToken::new(
                token,
                OffsetDateTime::now_utc() + time::Duration::seconds(expires_in),
            )),
            _ => Err(credential_error(format!(
                "the token endpoint answered {status}: {} {}",
                answer.error.unwrap_or_default(),
                answer.error_description.unwrap_or_default()
            ))),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for EmulatorCredential {
    /// A token for `scopes` (space-joined; the emulator takes exactly one,
    /// `https://webpubsub.azure.com/.default`), from the cache while it has
    /// more than 5 minutes left.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Credential` when the endpoint is unreachable or refuses
    /// (unknown client, wrong secret: `invalid_client`; bad scope: `invalid_scope`).
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.join(" ");
        let fresh_until = OffsetDateTime::now_utc() + time::Duration::seconds(REFRESH_MARGIN);
        if let Some(token) = lock(&self.cache).get(&scope) {
            if token.expires_on > fresh_until {
                return Ok(token.clone());
            }
        }
        let token = self.fetch(&scope).await?;
        lock(&self.cache).insert(scope, token.clone());
        Ok(token)
    }
}
