//! `entra-default-secret` (issue 21, 2): the emulator's local Entra ID
//! mints a token for its app registration with the public default secret,
//! and the REST API takes that token.
//!
//! `POST /<tenant>/oauth2/v2.0/token` (client credentials, scope
//! `https://webpubsub.azure.com/.default`) with the default secret, then
//! `POST /api/hubs/<hub>/:send` with the token as bearer; the same token
//! request with a wrong secret, for comparison.
//!
//! Knobs: `ENTRA_TENANT` (0e3a0000-0000-4000-8000-000000000001),
//! `ENTRA_CLIENT_ID` (0e3a0000-0000-4000-8000-000000000002),
//! `ENTRA_SECRET` (webpubsub-emulator-dev-client-secret).

use std::time::Duration;

use serde_json::Value;
use tokio::time::timeout;

use crate::knobs::knob;
use crate::target::{Target, API_VERSION};
use crate::wire;

pub async fn run(target: &Target) -> String {
    let tenant: String = knob(
        "ENTRA_TENANT",
        "0e3a0000-0000-4000-8000-000000000001".to_owned(),
    );
    let client_id: String = knob(
        "ENTRA_CLIENT_ID",
        "0e3a0000-0000-4000-8000-000000000002".to_owned(),
    );
    let secret: String = knob(
        "ENTRA_SECRET",
        "webpubsub-emulator-dev-client-secret".to_owned(),
    );
    let (status, token) = token_request(target, &tenant, &client_id, &secret).await;
    let (wrong, _) = token_request(target, &tenant, &client_id, "not-the-secret").await;
    let send = match &token {
        Some(token) => {
            let path = format!("/api/hubs/{}/:send?{API_VERSION}", target.hub);
            match timeout(
                Duration::from_secs(10),
                wire::request(
                    target.addr,
                    "POST",
                    &path,
                    token,
                    "text/plain",
                    b"from the default secret",
                ),
            )
            .await
            {
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(e)) => format!("{:?}", e.kind()),
                Err(_) => "timeout".to_owned(),
            }
        }
        None => "not tried (no token)".to_owned(),
    };
    format!(
        "token request with the public default secret: {status} ({}); REST :send with it: {send}; \
         token request with a wrong secret: {wrong}",
        if token.is_some() {
            "token issued"
        } else {
            "no token"
        }
    )
}

/// The token endpoint's status and the access token it issued, if any.
async fn token_request(
    target: &Target,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (String, Option<String>) {
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let form = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={secret}\
         &scope=https%3A%2F%2Fwebpubsub.azure.com%2F.default"
    );
    let answer = timeout(
        Duration::from_secs(10),
        wire::request_with_body(
            target.addr,
            "POST",
            &path,
            "",
            "application/x-www-form-urlencoded",
            form.as_bytes(),
        ),
    )
    .await;
    match answer {
        Ok(Ok((status, body))) => {
            // The JSON object of the body (chunked or not).
            let json = match (body.find('{'), body.rfind('}')) {
                (Some(start), Some(end)) if start < end => &body[start..=end],
                _ => "",
            };
            let token = serde_json::from_str::<Value>(json)
                .ok()
                .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned));
            (status.to_string(), token)
        }
        Ok(Err(e)) => (format!("{:?}", e.kind()), None),
        Err(_) => ("timeout".to_owned(), None),
    }
}
