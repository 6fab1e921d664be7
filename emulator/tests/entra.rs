//! The emulator as a local Microsoft Entra ID, over real HTTP on
//! 127.0.0.1: discovery and keys, the token endpoint, bearer tokens on the
//! REST API, managed-identity bearer tokens upstream, disabled local auth,
//! the HTTPS listener and `EmulatorCredential`. Tokens are checked with
//! `jsonwebtoken` against the served keys, independently of the emulator.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use webpubsub_emulator::{
    Emulator, EmulatorBuilder, EventHandlerSettings, HubSettings, RunningEmulator,
    DEFAULT_ACCESS_KEY, DEFAULT_APP_OBJECT_ID, DEFAULT_CLIENT_ID,
    DEFAULT_MANAGED_IDENTITY_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_OBJECT_ID, DEFAULT_TENANT_ID,
    WEBPUBSUB_AUDIENCE,
};

const SCOPE: &str = "https://webpubsub.azure.com/.default";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn builder() -> EmulatorBuilder {
    Emulator::builder()
        .host("127.0.0.1")
        .upstream_retry_delays([Duration::from_millis(10)])
}

async fn start(builder: EmulatorBuilder) -> RunningEmulator {
    builder
        .build()
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get_json(url: &str) -> Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    json_of(response).await
}

/// Posts the client-credentials form; the status and the JSON answer.
/// A client-credentials token request with these fields.
async fn client_credentials(
    emulator: &RunningEmulator,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ];
    token_request(emulator, &form).await
}

async fn token_request(emulator: &RunningEmulator, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = http()
        .post(emulator.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), json_of(response).await)
}

/// A token of the default app registration for `scope`.
async fn app_token(emulator: &RunningEmulator, scope: &str) -> String {
    let client_id = DEFAULT_CLIENT_ID.to_string();
    let (status, body) =
        client_credentials(emulator, &client_id, emulator.client_secret(), scope).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Verifies `token` against the emulator's served keys, with `jsonwebtoken`.
async fn verify_with_jwks(emulator: &RunningEmulator, token: &str, audience: &str) -> Value {
    let config = get_json(&emulator.openid_configuration_url()).await;
    let keys = get_json(config["jwks_uri"].as_str().unwrap()).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the token's kid is in the key set");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[config["issuer"].as_str().unwrap()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// `POST /api/hubs/chat/:send` with `authorization`; its status.
async fn rest_send(base: &str, client: &reqwest::Client, authorization: &str) -> StatusCode {
    client
        .post(format!("{base}/api/hubs/chat/:send?api-version=2024-12-01"))
        .header("authorization", authorization)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap()
        .status()
}

/// An HS256 token signed with `key` (the way access-key REST tokens are).
fn hs256(key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn discovery_document_and_keys_have_the_entra_v2_shapes() {
    let emulator = start(builder()).await;
    let base = format!("http://{}", emulator.local_addr());
    let tenant = DEFAULT_TENANT_ID;
    assert_eq!(emulator.entra_base(), base);
    let config = get_json(&format!(
        "{base}/{tenant}/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(config["issuer"], format!("{base}/{tenant}/v2.0"));
    assert_eq!(
        config["jwks_uri"],
        format!("{base}/{tenant}/discovery/v2.0/keys")
    );
    assert_eq!(
        config["token_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/token")
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );

    let keys = get_json(&format!("{base}/{tenant}/discovery/v2.0/keys")).await;
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["use"], &key["alg"]),
        (&json!("RSA"), &json!("sig"), &json!("RS256"))
    );
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    for part in ["n", "e"] {
        let text = key[part].as_str().unwrap();
        assert!(
            !text.contains(['=', '+', '/']),
            "{part} is base64url without padding"
        );
        URL_SAFE_NO_PAD.decode(text).unwrap();
    }
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );

    // Another tenant is not served.
    let other = http()
        .get(format!(
            "{base}/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_token_from_the_token_endpoint_verifies_against_the_served_keys() {
    let emulator = start(builder()).await;
    let client_id = DEFAULT_CLIENT_ID.to_string();
    let (status, body) =
        client_credentials(&emulator, &client_id, emulator.client_secret(), SCOPE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let claims = verify_with_jwks(&emulator, token, WEBPUBSUB_AUDIENCE).await;
    assert_eq!(claims["aud"], WEBPUBSUB_AUDIENCE);
    assert_eq!(claims["iss"], emulator.issuer());
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID.to_string());
    assert_eq!(claims["oid"], DEFAULT_APP_OBJECT_ID.to_string());
    assert_eq!(claims["sub"], claims["oid"]);
    assert_eq!(claims["azp"], client_id);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["idtyp"], "app");
    let (iat, nbf, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!((nbf, exp - iat), (iat, 3600));
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_token_requests_get_oauth_errors() {
    let secret = "the-secret-of-my-app";
    let client = uuid::Uuid::new_v4();
    let emulator = start(builder().app_registration(client, secret)).await;
    let id = client.to_string();
    let default_id = DEFAULT_CLIENT_ID.to_string();
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret),
        ("scope", SCOPE),
    ];
    let with = |name: &str, value: &'static str| {
        let mut form = ok.to_vec();
        form.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value;
        form
    };
    let mut default_client = ok.to_vec();
    default_client[1].1 = default_id.as_str();
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let rows: Vec<(Form<'_>, StatusCode, &str)> = vec![
        (
            with("client_secret", "wrong"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with("client_secret", ""),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            with("client_id", "not-a-guid"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (default_client, StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            with("grant_type", "password"),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            with("scope", "https://webpubsub.azure.com"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            with("scope", "a/.default b/.default"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (ok[..3].to_vec(), StatusCode::BAD_REQUEST, "invalid_request"),
    ];
    for (form, status, error) in rows {
        let (got, body) = token_request(&emulator, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}"
        );
        assert!(body["error_description"].is_string());
    }
    let (status, _) = token_request(&emulator, &ok).await;
    assert_eq!(status, StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn rest_calls_take_the_issuers_bearer_tokens_and_refuse_others() {
    let emulator = start(builder()).await;
    let other = start(builder()).await;
    let base = format!("http://{}", emulator.local_addr());
    let client = http();
    let good = app_token(&emulator, SCOPE).await;
    assert_eq!(
        rest_send(&base, &client, &format!("Bearer {good}")).await,
        StatusCode::ACCEPTED
    );

    let t = now();
    let iss = emulator.issuer();
    let entra = |claims: Value| emulator.__sign_entra_token(&claims).unwrap();
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD
            .encode(json!({"aud": WEBPUBSUB_AUDIENCE, "iss": iss, "exp": t + 600}).to_string())
    );
    let app = DEFAULT_CLIENT_ID.to_string();
    let tenant = DEFAULT_TENANT_ID.to_string();
    let rows = [
        (
            "wrong audience",
            entra(json!({"aud": "api://other", "iss": iss, "exp": t + 600,
                "azp": app, "tid": tenant, "idtyp": "app"})),
        ),
        (
            "expired",
            entra(json!({"aud": WEBPUBSUB_AUDIENCE, "iss": iss, "nbf": t - 7200, "exp": t - 600})),
        ),
        (
            "not yet valid",
            entra(json!({"aud": WEBPUBSUB_AUDIENCE, "iss": iss, "nbf": t + 600, "exp": t + 3600})),
        ),
        (
            "no exp",
            entra(json!({"aud": WEBPUBSUB_AUDIENCE, "iss": iss})),
        ),
        (
            "other issuer, own key",
            entra(json!({"aud": WEBPUBSUB_AUDIENCE, "iss": other.issuer(), "exp": t + 600})),
        ),
        ("other issuer's token", app_token(&other, SCOPE).await),
        (
            "HS256 with the emulator's key",
            hs256(
                DEFAULT_ACCESS_KEY,
                &json!({"aud": WEBPUBSUB_AUDIENCE, "iss": iss, "exp": t + 600}),
            ),
        ),
        ("alg none", none_token),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (case, token) in rows {
        assert_eq!(
            rest_send(&base, &client, &format!("Bearer {token}")).await,
            StatusCode::UNAUTHORIZED,
            "{case}"
        );
    }

    // Key-signed REST tokens keep working while local auth is on.
    let url = format!("{base}/api/hubs/chat/:send?api-version=2024-12-01");
    let key_token = hs256(DEFAULT_ACCESS_KEY, &json!({"aud": url, "exp": t + 600}));
    assert_eq!(
        rest_send(&base, &client, &format!("Bearer {key_token}")).await,
        StatusCode::ACCEPTED
    );
    other.shutdown().await;
    emulator.shutdown().await;
}

/// One request an upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    event: String,
    headers: HeaderMap,
}

/// An event handler on 127.0.0.1 that allows every origin, answers every
/// event with 204 and records what it received; its URL template.
async fn upstream() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/eventhandler/{event}",
        axum::routing::any(
            move |method: Method,
                  axum::extract::Path(event): axum::extract::Path<String>,
                  headers: HeaderMap| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(Seen {
                        method,
                        event,
                        headers,
                    });
                    (StatusCode::NO_CONTENT, [("WebHook-Allowed-Origin", "*")])
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/eventhandler/{{event}}"), seen)
}

/// `:generateToken` for hub `chat` with a bearer of the emulator's issuer.
async fn generate_client_token(emulator: &RunningEmulator) -> String {
    let bearer = app_token(emulator, SCOPE).await;
    let response = http()
        .post(format!(
            "http://{}/api/hubs/chat/:generateToken?api-version=2024-12-01&userId=alice",
            emulator.local_addr()
        ))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = json_of(response).await;
    body["token"].as_str().unwrap().to_owned()
}

/// Connects a plain WebSocket client with `token`; waits until the
/// upstream saw `connected`.
async fn connect_client(emulator: &RunningEmulator, token: &str, seen: &Mutex<Vec<Seen>>) {
    let url = format!(
        "ws://{}/client/hubs/chat?access_token={token}",
        emulator.local_addr()
    );
    let (ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.lock().unwrap().iter().any(|s| s.event == "connected") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the upstream got `connected`");
    drop(ws);
}

fn bearer_of(seen: &Seen) -> Option<String> {
    seen.headers.get("authorization").map(|v| {
        v.to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned()
    })
}

#[tokio::test]
async fn a_managed_identity_handler_gets_a_valid_bearer_but_options_gets_none() {
    let (template, seen) = upstream().await;
    let handler = EventHandlerSettings::new(template).managed_identity("api://my-app");
    let emulator = start(builder().hub(HubSettings::new("chat").event_handler(handler))).await;
    let token = generate_client_token(&emulator).await;
    connect_client(&emulator, &token, &seen).await;

    let seen = seen.lock().unwrap().clone();
    let options: Vec<_> = seen
        .iter()
        .filter(|s| s.method == Method::OPTIONS)
        .collect();
    assert_eq!(options.len(), 1);
    assert_eq!(
        bearer_of(options[0]),
        None,
        "no bearer on the abuse-protection OPTIONS"
    );
    let events: Vec<_> = seen.iter().filter(|s| s.method == Method::POST).collect();
    assert!(events.len() >= 2, "connect and connected: {seen:?}");
    let mut tokens = Vec::new();
    for event in &events {
        assert!(
            event.headers.contains_key("ce-signature"),
            "local auth is on"
        );
        tokens.push(bearer_of(event).expect("every event carries a bearer"));
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "the token is cached and reused"
    );
    drop(seen);

    let claims = verify_with_jwks(&emulator, &tokens[0], "api://my-app").await;
    assert_eq!(claims["iss"], emulator.issuer());
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID.to_string());
    assert_eq!(
        claims["oid"],
        DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string()
    );
    assert_eq!(
        claims["azp"],
        DEFAULT_MANAGED_IDENTITY_CLIENT_ID.to_string()
    );
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["idtyp"], "app");
    // Not a token the REST API takes.
    let base = format!("http://{}", emulator.local_addr());
    assert_eq!(
        rest_send(&base, &http(), &format!("Bearer {}", tokens[0])).await,
        StatusCode::UNAUTHORIZED
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn with_local_auth_disabled_only_entra_tokens_work_and_nothing_is_signed() {
    let (template, seen) = upstream().await;
    let emulator = start(
        builder()
            .disable_local_auth(true)
            .hub(HubSettings::new("chat").event_handler(EventHandlerSettings::new(template))),
    )
    .await;
    assert!(!emulator.connection_string().contains("AccessKey"));
    let base = format!("http://{}", emulator.local_addr());
    let url = format!("{base}/api/hubs/chat/:send?api-version=2024-12-01");
    let key_token = hs256(DEFAULT_ACCESS_KEY, &json!({"aud": url, "exp": now() + 600}));
    assert_eq!(
        rest_send(&base, &http(), &format!("Bearer {key_token}")).await,
        StatusCode::UNAUTHORIZED,
        "HS256 REST tokens are refused"
    );
    let bearer = app_token(&emulator, SCOPE).await;
    assert_eq!(
        rest_send(&base, &http(), &format!("Bearer {bearer}")).await,
        StatusCode::ACCEPTED
    );

    let token = generate_client_token(&emulator).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert!(
        header.kid.is_some_and(|k| !k.is_empty()),
        "signed by a named internal key"
    );
    // Not with the access key.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    assert!(jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(DEFAULT_ACCESS_KEY.as_bytes()),
        &validation
    )
    .is_err());
    connect_client(&emulator, &token, &seen).await;

    // A client token signed with the access key does not connect.
    let aud = format!("{base}/client/hubs/chat");
    let keyed = hs256(DEFAULT_ACCESS_KEY, &json!({"aud": aud, "exp": now() + 600}));
    let refused = tokio_tungstenite::connect_async(format!(
        "ws://{}/client/hubs/chat?access_token={keyed}",
        emulator.local_addr()
    ))
    .await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == StatusCode::UNAUTHORIZED),
        "{refused:?}"
    );

    let seen = seen.lock().unwrap().clone();
    let events: Vec<_> = seen.iter().filter(|s| s.method == Method::POST).collect();
    assert!(!events.is_empty());
    for event in events {
        assert!(!event.headers.contains_key("ce-signature"), "{event:?}");
        assert!(
            !event.headers.contains_key("authorization"),
            "no managed identity set"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_https_listener_serves_the_same_routes_with_its_certificate() {
    let emulator = start(builder().https_port(0)).await;
    let https = emulator.https_addr().unwrap();
    assert_eq!(
        emulator.https_endpoint().unwrap(),
        format!("https://127.0.0.1:{}", https.port())
    );
    let pem = emulator.certificate_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let bearer = app_token(&emulator, SCOPE).await;
    for host in ["127.0.0.1", "localhost"] {
        let base = format!("https://{host}:{}", https.port());
        assert_eq!(
            rest_send(&base, &client, &format!("Bearer {bearer}")).await,
            StatusCode::ACCEPTED,
            "{base}"
        );
    }
    let config: Value = client
        .get(format!(
            "https://127.0.0.1:{}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration",
            https.port()
        ))
        .send()
        .await
        .map(json_of)
        .unwrap()
        .await;
    assert_eq!(
        config["issuer"],
        emulator.issuer(),
        "one issuer on both listeners"
    );
    // A client that does not trust the certificate refuses it.
    assert!(http()
        .get(format!("https://127.0.0.1:{}/api/health", https.port()))
        .send()
        .await
        .is_err());
    emulator.shutdown().await;
}

/// One service, two listeners: a client token asked for over HTTPS (its
/// `aud` names the TLS port) connects on the plain port too, as `ws://`
/// and `wss://` share a host on Azure; a third port is not accepted.
#[tokio::test]
async fn a_client_token_from_either_listener_connects_on_the_other() {
    let (template, seen) = upstream().await;
    let emulator = start(
        builder()
            .https_port(0)
            .hub(HubSettings::new("chat").event_handler(EventHandlerSettings::new(template))),
    )
    .await;
    let https = emulator.https_addr().unwrap();
    let pem = emulator.certificate_pem().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let bearer = app_token(&emulator, SCOPE).await;
    let response = client
        .post(format!(
            "https://127.0.0.1:{}/api/hubs/chat/:generateToken?api-version=2024-12-01&userId=alice",
            https.port()
        ))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token = json_of(response).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    connect_client(&emulator, &token, &seen).await;

    // A token for another port of this machine is still refused.
    let other = hs256(
        DEFAULT_ACCESS_KEY,
        &json!({
            "aud": format!("http://127.0.0.1:{}/client/hubs/chat", https.port() ^ 1),
            "sub": "mallory", "exp": now() + 600,
        }),
    );
    let url = format!(
        "ws://{}/client/hubs/chat?access_token={other}",
        emulator.local_addr()
    );
    let refused = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    emulator.shutdown().await;
}

#[cfg(feature = "credential")]
#[tokio::test]
async fn emulator_credential_gets_tokens_the_rest_api_accepts() {
    use azure_core::credentials::TokenCredential as _;
    let emulator = start(builder()).await;
    let credential = emulator.credential();
    let token = credential.get_token(&[SCOPE], None).await.unwrap();
    let again = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(token.token.secret(), again.token.secret(), "cached");
    assert!(token.expires_on > time::OffsetDateTime::now_utc() + time::Duration::minutes(55));
    let base = format!("http://{}", emulator.local_addr());
    assert_eq!(
        rest_send(&base, &http(), &format!("Bearer {}", token.token.secret())).await,
        StatusCode::ACCEPTED
    );
    assert!(!format!("{credential:?}").contains(emulator.client_secret()));

    let wrong = webpubsub_emulator::EmulatorCredential::new(
        emulator.token_endpoint(),
        DEFAULT_CLIENT_ID,
        "wrong",
    );
    let error = wrong.get_token(&[SCOPE], None).await.unwrap_err();
    assert_eq!(*error.kind(), azure_core::error::ErrorKind::Credential);
    assert!(error.to_string().contains("invalid_client"), "{error}");
    emulator.shutdown().await;
}

/// The secret the emulator once documented as its default.
const FORMER_DEFAULT_SECRET: &str = "webpubsub-emulator-dev-client-secret";

#[tokio::test]
async fn the_formerly_published_default_secret_is_refused() {
    let emulator = start(builder()).await;
    let client_id = DEFAULT_CLIENT_ID.to_string();
    let (status, body) =
        client_credentials(&emulator, &client_id, FORMER_DEFAULT_SECRET, SCOPE).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    emulator.shutdown().await;
}

#[test]
fn a_blank_client_secret_is_refused_at_build() {
    for secret in ["", " ", "\t\n"] {
        let error = builder()
            .app_registration(DEFAULT_CLIENT_ID, secret)
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("app_registration"), "{error}");
        assert!(error.contains("--client-secret"), "{error}");
        assert!(error.contains("blank"), "{error}");
    }
}

#[tokio::test]
async fn the_token_endpoint_issues_tokens_only_for_the_web_pubsub_audience() {
    let secret = "the-secret-of-my-app";
    let emulator = start(builder().app_registration(DEFAULT_CLIENT_ID, secret)).await;
    let client_id = DEFAULT_CLIENT_ID.to_string();
    let ask = |scope: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret),
            ("scope", scope),
        ]
    };
    for scope in [
        "api://my-app/.default",
        "https://management.azure.com/.default",
        "https://webpubsub.azure.com.evil.example/.default",
        "https://webpubsub.azure.com/x/.default",
    ] {
        let (status, body) = token_request(&emulator, &ask(scope)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope")),
            "{scope}: {body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(SCOPE), "{description}");
    }
    // The forms the Azure SDKs send; the audience is always the REST API's.
    for scope in [SCOPE, "https://webpubsub.azure.com//.default"] {
        let (status, body) = token_request(&emulator, &ask(scope)).await;
        assert_eq!(status, StatusCode::OK, "{scope}: {body}");
        let token = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(&emulator, token, WEBPUBSUB_AUDIENCE).await;
        assert_eq!(claims["aud"], WEBPUBSUB_AUDIENCE);
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn rest_tokens_must_be_issued_to_the_app_registration() {
    let emulator = start(builder()).await;
    let base = format!("http://{}", emulator.local_addr());
    let t = now();
    let app = DEFAULT_CLIENT_ID.to_string();
    let tenant = DEFAULT_TENANT_ID.to_string();
    let claims = |azp: &str, tid: &str, idtyp: &str| {
        json!({
            "aud": WEBPUBSUB_AUDIENCE, "iss": emulator.issuer(), "nbf": t, "exp": t + 600,
            "azp": azp, "tid": tid, "idtyp": idtyp, "oid": DEFAULT_APP_OBJECT_ID.to_string(),
        })
    };
    let managed_identity = DEFAULT_MANAGED_IDENTITY_CLIENT_ID.to_string();
    let mut managed_identity_claims = claims(&managed_identity, &tenant, "app");
    managed_identity_claims["oid"] = json!(DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string());
    let mut no_azp = claims(&app, &tenant, "app");
    no_azp.as_object_mut().unwrap().remove("azp");
    let mut v1_appid = claims(&app, &tenant, "app");
    v1_appid.as_object_mut().unwrap().remove("azp");
    v1_appid["appid"] = json!(app);
    let rows = [
        (
            "the managed identity's, for the REST audience",
            managed_identity_claims,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "another client",
            claims(&uuid::Uuid::new_v4().to_string(), &tenant, "app"),
            StatusCode::UNAUTHORIZED,
        ),
        ("no azp nor appid", no_azp, StatusCode::UNAUTHORIZED),
        (
            "another tenant",
            claims(&app, &uuid::Uuid::new_v4().to_string(), "app"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a user token",
            claims(&app, &tenant, "user"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the app's (v2 azp)",
            claims(&app, &tenant, "app"),
            StatusCode::ACCEPTED,
        ),
        ("the app's (v1 appid)", v1_appid, StatusCode::ACCEPTED),
    ];
    for (case, claims, expected) in rows {
        let token = emulator.__sign_entra_token(&claims).unwrap();
        assert_eq!(
            rest_send(&base, &http(), &format!("Bearer {token}")).await,
            expected,
            "{case}"
        );
    }
    emulator.shutdown().await;
}

#[test]
fn a_hub_whose_handler_would_get_a_rest_token_is_refused_at_build() {
    for resource in [
        "https://webpubsub.azure.com",
        "https://webpubsub.azure.com/",
        "HTTPS://WebPubSub.Azure.com/.default",
        " https://webpubsub.azure.com/.default ",
    ] {
        let handler =
            EventHandlerSettings::new("http://127.0.0.1:9/eventhandler").managed_identity(resource);
        let error = builder()
            .hub(HubSettings::new("chat").event_handler(handler))
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("REST API"), "{resource}: {error}");
        assert!(error.contains("chat"), "{resource}: {error}");
    }
    // A managed identity may not share the app registration's client id.
    let error = builder()
        .managed_identity(DEFAULT_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_OBJECT_ID)
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("client id"), "{error}");
}

#[cfg(feature = "credential")]
#[tokio::test]
async fn each_build_gets_its_own_random_secret_and_the_credential_uses_it() {
    use azure_core::credentials::TokenCredential as _;
    let (a, b) = (start(builder()).await, start(builder()).await);
    assert_ne!(a.client_secret(), b.client_secret());
    assert!(a.client_secret().len() >= 32, "at least 128 bits");
    assert_ne!(a.client_secret(), FORMER_DEFAULT_SECRET);
    assert_eq!(a.client_id(), DEFAULT_CLIENT_ID);
    let token = a.credential().get_token(&[SCOPE], None).await.unwrap();
    let base = format!("http://{}", a.local_addr());
    assert_eq!(
        rest_send(&base, &http(), &format!("Bearer {}", token.token.secret())).await,
        StatusCode::ACCEPTED
    );
    // One emulator's secret is not the other's.
    let client_id = DEFAULT_CLIENT_ID.to_string();
    let (status, _) = client_credentials(&a, &client_id, b.client_secret(), SCOPE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_rest_callers_bearer_never_reaches_an_event_handler() {
    let (template, seen) = upstream().await;
    let emulator = start(
        builder().hub(HubSettings::new("chat").event_handler(EventHandlerSettings::new(template))),
    )
    .await;
    let token = generate_client_token(&emulator).await;
    let bearer = app_token(&emulator, SCOPE).await;
    let url = format!(
        "ws://{}/client/hubs/chat?access_token={token}",
        emulator.local_addr()
    );
    let (_ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // REST calls that raise events: closing the connection (`disconnected`).
    let response = http()
        .post(format!(
            "http://{}/api/hubs/chat/:closeConnections?api-version=2024-12-01",
            emulator.local_addr()
        ))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.event == "disconnected")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the upstream got `disconnected`");
    for event in seen.lock().unwrap().iter() {
        assert!(!event.headers.contains_key("authorization"), "{event:?}");
        for value in event.headers.values() {
            assert!(!value.to_str().unwrap_or("").contains(&bearer), "{event:?}");
        }
    }
    emulator.shutdown().await;
}
