//! `:generateToken`: a client access token for a hub, signed as the
//! service signs it (the access key, or the internal key when local auth
//! is off).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

use webpubsub::client_access::{ClientAccessOptions, ClientProtocol};

use super::{error, Call};

/// The longest lifetime `:generateToken` signs: one year, in minutes. The
/// service documents no maximum; this one keeps `exp` far from overflow.
const MAX_TOKEN_MINUTES: u64 = 365 * 24 * 60;

impl Call<'_> {
    pub(super) fn generate_token(&self, hub: &str) -> Response {
        let minutes = match self.param("minutesToExpire") {
            None => 60,
            Some(m) => match m.parse::<u64>() {
                Ok(m) if (1..=MAX_TOKEN_MINUTES).contains(&m) => m,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("minutesToExpire must be 1-{MAX_TOKEN_MINUTES} (one year)"),
                    )
                }
            },
        };
        // The client type changes the token's audience: the MQTT path
        // `/clients/mqtt/hubs/{hub}` for `MQTT`.
        let protocol = match self.param("clientType") {
            None => ClientProtocol::Default,
            Some(t) if t.eq_ignore_ascii_case("default") => ClientProtocol::Default,
            Some(t) if t.eq_ignore_ascii_case("mqtt") => ClientProtocol::Mqtt,
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "clientType must be Default or MQTT",
                )
            }
        };
        let endpoint = match url::Url::parse(&format!("http://{}", self.host)) {
            Ok(endpoint) if endpoint.host_str().is_some() => endpoint,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the Host header is not a host name",
                )
            }
        };
        // The hub name was checked when the path was routed. With local auth
        // off, the internal key signs (and names itself with a `kid`).
        let key = if self.shared.local_auth {
            self.shared.key.clone()
        } else {
            self.shared.client_key.access_key().clone()
        };
        let Ok(signer) =
            webpubsub::client_access::ClientAccessSigner::with_key(key, &endpoint, hub)
        else {
            return error(StatusCode::BAD_REQUEST, "invalid hub name");
        };
        let mut options = ClientAccessOptions::new()
            .protocol(protocol)
            .roles(self.params("role"))
            .groups(self.params("group"))
            .expires_after(std::time::Duration::from_secs(minutes.saturating_mul(60)));
        if let Some(user) = self.param("userId") {
            options = options.user_id(user);
        }
        let access = signer.client_access(&options);
        let token = if self.shared.local_auth {
            Some(access.token().to_owned())
        } else {
            self.shared.client_key.resign(access.token())
        };
        let Some(token) = token else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing the token failed",
            );
        };
        let body = serde_json::json!({ "token": token }).to_string();
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
