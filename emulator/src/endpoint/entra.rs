//! The Entra ID endpoints, under `/{tenant}/`: the v2.0 discovery
//! document, the signing keys, and the token endpoint (client-credentials
//! grant only). All three answer loopback peers only ([`AdminPeer`]) unless
//! the emulator was built with `insecure_allow_remote_admin(true)`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use super::admin::AdminPeer;
use crate::entra::{TOKEN_LIFETIME, WEBPUBSUB_AUDIENCE};
use crate::service::Shared;

/// The largest token request read.
const FORM_LIMIT: usize = 64 * 1024;

/// The three routes of the emulator's tenant.
pub(crate) fn routes(tenant: uuid::Uuid) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            get(openid_configuration),
        )
        .route(&format!("/{tenant}/discovery/v2.0/keys"), get(keys))
        .route(&format!("/{tenant}/oauth2/v2.0/token"), post(token))
}

fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn openid_configuration(_: AdminPeer, State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.entra.openid_configuration())
}

async fn keys(_: AdminPeer, State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.entra.jwks())
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2), logged here.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    tracing::info!(target: "webpubsub_emulator::entra", status = status.as_u16(), error,
        reason = description, "refused token request");
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut response = json(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"webpubsub-emulator\""),
        );
    }
    response
}

/// `POST /{tenant}/oauth2/v2.0/token`, form body `grant_type=client_credentials`,
/// `client_id`, `client_secret`, `scope` (`https://webpubsub.azure.com/.default`).
/// Refuses:
///
/// - a peer that is not loopback: `403` ([`AdminPeer`]);
/// - a body over 64 KiB, not a form, or missing a field: `400 invalid_request`;
/// - another grant: `400 unsupported_grant_type`;
/// - an unknown client id or a wrong secret: `401 invalid_client`;
/// - a scope that is not the REST API's `.default` scope: `400 invalid_scope`
///   (the emulator serves one resource, so it mints tokens for no other).
async fn token(_: AdminPeer, State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let essence = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if essence.as_deref() != Some("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body exceeds 65536 bytes",
        );
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(grant), Some(client_id), Some(secret), Some(scope)) = (
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
        field("scope"),
    ) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type, client_id, client_secret and scope are required",
        );
    };
    if grant != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is emulated",
        );
    }
    let app = &shared.entra.app;
    let known = uuid::Uuid::parse_str(client_id).is_ok_and(|id| id == app.client_id);
    if !known {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no application with this client_id is registered in the emulator's tenant",
        );
    }
    let secret_ok = !secret.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            secret.as_bytes(),
            app.secret.as_bytes(),
        )
        .is_ok();
    if !secret_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client_secret is not the app registration's secret",
        );
    }
    // `https://webpubsub.azure.com/.default`, as the Azure SDKs ask; also
    // with the audience's trailing `/` (`…azure.com//.default`), the form
    // Entra ID derives from an audience written with one.
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let rest_scope = match scopes.as_slice() {
        [one] => one.strip_suffix("/.default").is_some_and(|resource| {
            resource
                .trim_end_matches('/')
                .eq_ignore_ascii_case(WEBPUBSUB_AUDIENCE)
        }),
        _ => false,
    };
    if !rest_scope {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the emulator's Entra ID issues tokens for its REST API only: \
             ask for the scope https://webpubsub.azure.com/.default",
        );
    }
    let Some((token, _)) = shared
        .entra
        .mint(WEBPUBSUB_AUDIENCE, app.object_id, app.client_id)
    else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing the token failed",
        );
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME - 1,
            "ext_expires_in": TOKEN_LIFETIME - 1,
            "access_token": token,
        }),
    )
}
