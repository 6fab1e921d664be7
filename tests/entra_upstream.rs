//! Entra ID bearer tokens on upstream events (issue 12, items 2 and 5):
//! a fake tenant (discovery document and key set) on 127.0.0.1, tokens
//! signed here with RS256, every refusal a `401` that never reaches the
//! handler.
#![cfg(feature = "entra")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::extract::{Path, State};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{call, call_count, call_logged, serve, Recorder, KEY};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use webpubsub::entra::EntraValidation;
use webpubsub::upstream::ValidateUpstreamLayer;
use webpubsub::{testing, ConfigError, EventRouter};

const TENANT: &str = "7a3c0c59-4c5c-4d2a-9d10-0c1f7c6a1111";
const AUDIENCE: &str = "api://chat-upstream";
const CALLER: &str = "0d9f3a4e-1111-4c2b-8a11-5e0f3c2b9d01";
/// A verified domain name of [`TENANT`].
const DOMAIN: &str = "contoso.example";

/// A signing key and its `kid`.
struct Signer {
    kid: String,
    pair: KeyPair,
}

impl Signer {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: KeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let public = PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({
            "kty": "RSA", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        })
    }

    /// `claims` signed with RS256 under `header` (whose `kid` defaults to this key's).
    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
}

/// The fake tenant: what its endpoints serve, and how often they were asked.
#[derive(Clone)]
struct Tenant {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    /// Answer `503` to everything.
    down: Arc<Mutex<bool>>,
    /// Wait this long before answering the key set.
    delay: Arc<Mutex<Duration>>,
    /// The discovery document's `issuer` instead of [`Tenant::issuer`].
    document_issuer: Arc<Mutex<Option<String>>>,
    /// The `{tenant}` path segment of each discovery request.
    asked_for: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Tenant {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let tenant = Self {
            keys: Arc::new(Mutex::new(keys)),
            fetches: Arc::default(),
            down: Arc::default(),
            delay: Arc::default(),
            document_issuer: Arc::default(),
            asked_for: Arc::default(),
            base,
        };
        let app = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(
                    |State(t): State<Tenant>, Path(asked): Path<String>| async move {
                        t.asked_for.lock().unwrap().push(asked);
                        if *t.down.lock().unwrap() {
                            return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        let issuer = t.document_issuer.lock().unwrap().clone();
                        Ok(json_body(json!({
                            "issuer": issuer.unwrap_or_else(|| t.issuer()),
                            "jwks_uri": format!("{}/{TENANT}/discovery/v2.0/keys", t.base),
                            "id_token_signing_alg_values_supported": ["RS256"],
                        })))
                    },
                ),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                get(|State(t): State<Tenant>| async move {
                    t.fetches.fetch_add(1, Ordering::SeqCst);
                    let delay = *t.delay.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    let keys = t.keys.lock().unwrap().clone();
                    json_body(json!({ "keys": keys }))
                }),
            )
            .with_state(tenant.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        tenant
    }

    fn issuer(&self) -> String {
        format!("{}/{TENANT}/v2.0", self.base)
    }

    fn validation(&self) -> EntraValidation {
        EntraValidation::new(TENANT)
            .authority(&self.base)
            .audience(AUDIENCE)
            .allowed_caller(CALLER)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// [`Tenant::validation`] with the tenant given by domain name.
    fn validation_by_domain(&self) -> EntraValidation {
        EntraValidation::new(DOMAIN)
            .authority(&self.base)
            .audience(AUDIENCE)
            .allowed_caller(CALLER)
    }

    /// Claims of a valid token from the Web PubSub identity.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "aud": AUDIENCE, "iss": self.issuer(), "tid": TENANT,
            "oid": CALLER, "azp": "a-client-id", "sub": CALLER,
            "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0",
        })
    }
}

/// A JSON response (the dev build of axum has no `Json`).
fn json_body(value: Value) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `claims` with `changes` applied (`null` removes a claim).
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn router(validation: EntraValidation) -> (EventRouter, common::Calls) {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .entra(validation)
        .build()
        .unwrap();
    (router, calls)
}

/// A `connected` event with `authorization` (no `ce-signature`: keyless).
fn event(authorization: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let mut builder = testing::connected("chat", "conn-1");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.request()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_and_keys_are_fetched_once() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let (router, calls) = router(tenant.validation());
    for _ in 0..5 {
        let answer = call(
            &router,
            event(Some(&bearer(&signer.sign(&tenant.claims())))),
        )
        .await;
        assert_eq!(answer.status, 204, "{}", answer.text());
    }
    assert_eq!(call_count(&calls), 5);
    assert_eq!(
        tenant.fetches(),
        1,
        "keys are cached, not fetched per request"
    );
}

#[tokio::test]
async fn the_caller_may_be_named_by_oid_appid_or_azp() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let (router, calls) = router(tenant.validation());
    let base = with(tenant.claims(), json!({"oid": "someone-else", "azp": null}));
    for caller in [
        json!({"oid": CALLER}),
        json!({"appid": CALLER}),
        json!({"azp": CALLER.to_uppercase()}),
    ] {
        let token = signer.sign(&with(base.clone(), caller.clone()));
        assert_eq!(
            call(&router, event(Some(&bearer(&token)))).await.status,
            204,
            "{caller}"
        );
    }
    assert_eq!(call_count(&calls), 3);
}

/// Issue 12, item 5: each bad token is a `401` with its reason, logged,
/// and never reaches the handler.
#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_their_reason() {
    let signer = Signer::new("key-1");
    let impostor = Signer::new("key-1"); // same kid, other key
    let unknown = Signer::new("key-9");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let (router, calls) = router(tenant.validation());
    let now = now();
    let claims = tenant.claims();
    let hs256 = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"key-1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode("mac"))
    };
    let none = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"key-1"}"#);
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
    };
    let rs512 = signer.sign_with_header(&json!({"alg": "RS512", "kid": "key-1"}), &claims);
    let tampered = {
        let token = signer.sign(&claims);
        let (head, sig) = token.rsplit_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(
            with(
                claims.clone(),
                json!({"oid": CALLER, "aud": AUDIENCE, "exp": now + 7200}),
            )
            .to_string(),
        );
        let header = head.split('.').next().unwrap();
        format!("{header}.{other}.{sig}")
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        (
            "no Authorization",
            None,
            "missing Authorization: Bearer token",
        ),
        (
            "Basic scheme",
            Some("Basic dXNlcjpwdw==".into()),
            "missing Authorization: Bearer token",
        ),
        (
            "empty bearer",
            Some("Bearer ".into()),
            "bearer token refused: malformed",
        ),
        (
            "two parts",
            Some(bearer("a.b")),
            "bearer token refused: malformed",
        ),
        (
            "garbage",
            Some(bearer("!!.??.**")),
            "bearer token refused: malformed",
        ),
        (
            "alg none",
            Some(bearer(&none)),
            "bearer token refused: algorithm is not RS256",
        ),
        (
            "alg HS256",
            Some(bearer(&hs256)),
            "bearer token refused: algorithm is not RS256",
        ),
        (
            "alg RS512",
            Some(bearer(&rs512)),
            "bearer token refused: algorithm is not RS256",
        ),
        (
            "other key, same kid",
            Some(bearer(&impostor.sign(&claims))),
            "bearer token refused: bad signature",
        ),
        (
            "claims changed after signing",
            Some(bearer(&tampered)),
            "bearer token refused: bad signature",
        ),
        (
            "unknown kid",
            Some(bearer(&unknown.sign(&claims))),
            "bearer token refused: unknown signing key (kid)",
        ),
        (
            "expired",
            Some(bearer(
                &signer.sign(&with(claims.clone(), json!({"exp": now - 120}))),
            )),
            "bearer token refused: expired",
        ),
        (
            "no exp",
            Some(bearer(
                &signer.sign(&with(claims.clone(), json!({"exp": null}))),
            )),
            "bearer token refused: malformed",
        ),
        (
            "not yet valid",
            Some(bearer(
                &signer.sign(&with(claims.clone(), json!({"nbf": now + 600}))),
            )),
            "bearer token refused: not yet valid",
        ),
        (
            "wrong issuer",
            Some(bearer(&signer.sign(&with(
                claims.clone(),
                json!({"iss": "https://login.microsoftonline.com/other/v2.0"}),
            )))),
            "bearer token refused: wrong issuer or tenant",
        ),
        (
            "no issuer",
            Some(bearer(
                &signer.sign(&with(claims.clone(), json!({"iss": null}))),
            )),
            "bearer token refused: wrong issuer or tenant",
        ),
        (
            "wrong tenant",
            Some(bearer(&signer.sign(&with(
                claims.clone(),
                json!({"tid": "another-tenant"}),
            )))),
            "bearer token refused: wrong issuer or tenant",
        ),
        (
            "wrong audience",
            Some(bearer(&signer.sign(&with(
                claims.clone(),
                json!({"aud": "api://someone-else"}),
            )))),
            "bearer token refused: wrong audience",
        ),
        (
            "audience list without ours",
            Some(bearer(
                &signer.sign(&with(claims.clone(), json!({"aud": ["a", "b"]}))),
            )),
            "bearer token refused: wrong audience",
        ),
        (
            "wrong caller",
            Some(bearer(&signer.sign(&with(
                claims.clone(),
                json!({"oid": "x", "azp": "y", "appid": "z"}),
            )))),
            "bearer token refused: caller is not an allowed identity",
        ),
        (
            "no caller",
            Some(bearer(&signer.sign(&with(
                claims.clone(),
                json!({"oid": null, "azp": null}),
            )))),
            "bearer token refused: caller is not an allowed identity",
        ),
    ];
    for (name, authorization, body) in cases {
        let (answer, logs) = call_logged(&router, event(authorization.as_deref())).await;
        assert_eq!(answer.status, 401, "{name}: {}", answer.text());
        assert_eq!(answer.text(), body, "{name}");
        let logged = logs.rejections();
        assert_eq!(logged.len(), 1, "{name}: {logged:#?}");
        if let Some(token) = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            if token.len() > 8 {
                assert!(
                    !format!("{logged:?}").contains(token),
                    "{name}: the token is not logged"
                );
            }
        }
    }
    assert_eq!(
        call_count(&calls),
        0,
        "no refused event reaches the handler"
    );
    // The audience list that includes ours passes.
    let listed = signer.sign(&with(claims, json!({"aud": ["other", AUDIENCE]})));
    assert_eq!(
        call(&router, event(Some(&bearer(&listed)))).await.status,
        204
    );
}

#[tokio::test]
async fn unknown_kids_fetch_at_most_once_per_refresh_interval_and_rotation_is_picked_up() {
    let old = Signer::new("old");
    let new = Signer::new("new");
    let made_up = Signer::new("made-up");
    let tenant = Tenant::start(vec![old.jwk()]).await;
    let (router, _) = router(
        tenant
            .validation()
            .key_refresh_interval(Duration::from_secs(3600)),
    );
    assert_eq!(
        call(&router, event(Some(&bearer(&old.sign(&tenant.claims())))))
            .await
            .status,
        204
    );
    assert_eq!(tenant.fetches(), 1);
    // The tenant rolls its key, and tokens with made-up kids arrive: within
    // the refresh interval none of them makes a fetch.
    tenant.keys.lock().unwrap().push(new.jwk());
    let forged = bearer(&made_up.sign(&tenant.claims()));
    for _ in 0..50 {
        let answer = call(&router, event(Some(&forged))).await;
        assert_eq!(
            answer.text(),
            "bearer token refused: unknown signing key (kid)"
        );
    }
    assert_eq!(
        tenant.fetches(),
        1,
        "made-up kids make no fetch within the interval"
    );
    let rolled = bearer(&new.sign(&tenant.claims()));
    assert_eq!(call(&router, event(Some(&rolled))).await.status, 401);
    assert_eq!(tenant.fetches(), 1);

    // Once the interval has passed (here: a router whose interval is zero),
    // a token with the new key makes one fetch and passes; the old key too.
    let (eager, _) = router_with(tenant.validation().key_refresh_interval(Duration::ZERO));
    assert_eq!(call(&eager, event(Some(&rolled))).await.status, 204);
    assert_eq!(tenant.fetches(), 2);
    assert_eq!(
        call(&eager, event(Some(&bearer(&old.sign(&tenant.claims())))))
            .await
            .status,
        204
    );
    assert_eq!(tenant.fetches(), 2, "known kids make no fetch");
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    *tenant.delay.lock().unwrap() = Duration::from_millis(100);
    let (router, calls) = router(tenant.validation());
    let token = bearer(&signer.sign(&tenant.claims()));
    let answers = futures_util_join(&router, &token, 16).await;
    assert!(answers.iter().all(|s| *s == 204), "{answers:?}");
    assert_eq!(call_count(&calls), 16);
    assert_eq!(tenant.fetches(), 1);
}

async fn futures_util_join(router: &EventRouter, token: &str, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let router = router.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            router
                .oneshot(event(Some(&token)))
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn a_discovery_endpoint_that_is_down_or_slow_means_401_not_a_hang() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    *tenant.down.lock().unwrap() = true;
    let (router, calls) = router(tenant.validation().key_refresh_interval(Duration::ZERO));
    let token = bearer(&signer.sign(&tenant.claims()));
    let answer = call(&router, event(Some(&token))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.text(),
        "bearer token refused: the tenant's signing keys are unavailable"
    );

    *tenant.down.lock().unwrap() = false;
    *tenant.delay.lock().unwrap() = Duration::from_secs(30);
    let (slow, _) = router_with(
        tenant
            .validation()
            .fetch_timeout(Duration::from_millis(200)),
    );
    let started = Instant::now();
    let answer = call(&slow, event(Some(&token))).await;
    assert_eq!(answer.status, 401);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Nothing listening at all.
    let closed = EntraValidation::new(TENANT)
        .authority("http://127.0.0.1:1")
        .audience(AUDIENCE)
        .allowed_caller(CALLER);
    let (closed, _) = router_with(closed);
    assert_eq!(call(&closed, event(Some(&token))).await.status, 401);

    // Back up: the next fetch (interval zero) succeeds.
    *tenant.delay.lock().unwrap() = Duration::ZERO;
    assert_eq!(call(&router, event(Some(&token))).await.status, 204);
    assert_eq!(call_count(&calls), 1);
}

fn router_with(validation: EntraValidation) -> (EventRouter, common::Calls) {
    router(validation)
}

#[tokio::test]
async fn with_access_keys_too_both_checks_must_pass() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .access_key(KEY)
        .entra(tenant.validation())
        .build()
        .unwrap();
    let token = bearer(&signer.sign(&tenant.claims()));
    let signed_only = testing::connected("chat", "c1").sign(KEY);
    assert_eq!(call(&router, signed_only).await.status, 401);
    let bearer_only = testing::connected("chat", "c1")
        .header("authorization", &token)
        .request();
    assert_eq!(
        call(&router, bearer_only).await.text(),
        "missing header ce-signature"
    );
    let both = testing::connected("chat", "c1")
        .header("authorization", &token)
        .sign(KEY);
    assert_eq!(call(&router, both).await.status, 204);
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn the_abuse_protection_handshake_needs_no_token() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let (router, _) = router(tenant.validation());
    let answer = call(&router, testing::preflight("demo.webpubsub.azure.com")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(tenant.fetches(), 0, "the handshake fetches no keys");
}

#[tokio::test]
async fn the_validation_layer_checks_tokens_before_the_inner_service() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new()
        .route(
            "/eventhandler",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "inner" }
            }),
        )
        .layer(
            ValidateUpstreamLayer::builder()
                .entra(tenant.validation())
                .build()
                .unwrap(),
        );
    let addr = serve(app).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/eventhandler");
    let send = |authorization: Option<String>| {
        let mut request = client.post(&url).header("ce-connectionId", "conn-1");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let ok = send(Some(bearer(&signer.sign(&tenant.claims()))))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "inner");
    let expired = signer.sign(&with(tenant.claims(), json!({"exp": now() - 3600})));
    let refused = send(Some(bearer(&expired))).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.text().await.unwrap(),
        "bearer token refused: expired"
    );
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn builders_refuse_incomplete_entra_settings() {
    let incomplete = EntraValidation::new(TENANT).audience(AUDIENCE);
    let error = EventRouter::builder()
        .hub("chat", Recorder::new())
        .entra(incomplete)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, ConfigError::InvalidEntraValidation { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("allowed_caller"), "{error}");
    let insecure = EntraValidation::new(TENANT)
        .authority("http://login.example.com")
        .audience(AUDIENCE)
        .allowed_caller(CALLER);
    let error = ValidateUpstreamLayer::builder()
        .entra(insecure)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
    // Neither keys nor Entra ID: still refused, and the message names both ways.
    let error = EventRouter::builder()
        .hub("chat", Recorder::new())
        .build()
        .unwrap_err();
    assert_eq!(error, ConfigError::NoAccessKey);
    assert!(error.to_string().contains(".entra("), "{error}");
}

#[tokio::test]
async fn a_remembered_token_is_still_refused_once_expired_or_its_key_withdrawn() {
    let first = Signer::new("first");
    let second = Signer::new("second");
    let tenant = Tenant::start(vec![first.jwk()]).await;
    let (router, _) = router(
        tenant
            .validation()
            .clock_skew(Duration::ZERO)
            .key_refresh_interval(Duration::ZERO),
    );
    // Passes, and is remembered; it expires in a second.
    let short = bearer(&first.sign(&with(tenant.claims(), json!({"exp": now() + 1}))));
    assert_eq!(call(&router, event(Some(&short))).await.status, 204);
    assert_eq!(call(&router, event(Some(&short))).await.status, 204);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        call(&router, event(Some(&short))).await.text(),
        "bearer token refused: expired"
    );

    // The tenant withdraws the first key: a token it signed, remembered as
    // valid, is checked again after the next fetch, and refused.
    let long = bearer(&first.sign(&tenant.claims()));
    assert_eq!(call(&router, event(Some(&long))).await.status, 204);
    *tenant.keys.lock().unwrap() = vec![second.jwk()];
    let rolled = bearer(&second.sign(&tenant.claims()));
    assert_eq!(call(&router, event(Some(&rolled))).await.status, 204);
    assert_eq!(
        call(&router, event(Some(&long))).await.text(),
        "bearer token refused: unknown signing key (kid)"
    );
}

/// Issue 22, item 1: a tenant given by a verified domain name. Entra ID
/// answers the discovery document asked for by domain with the tenant's
/// GUID in `issuer`, and signs `tid` as that GUID: the validator learns the
/// GUID there and checks `iss` and `tid` against it.
#[tokio::test]
async fn a_tenant_given_by_domain_name_is_checked_against_the_guid_its_discovery_document_names() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    let (router, calls) = router(tenant.validation_by_domain());
    let claims = tenant.claims();
    assert_eq!(claims["iss"], format!("{}/{TENANT}/v2.0", tenant.base));
    assert_eq!(claims["tid"], TENANT);
    let answer = call(&router, event(Some(&bearer(&signer.sign(&claims))))).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert_eq!(call_count(&calls), 1);
    assert_eq!(
        *tenant.asked_for.lock().unwrap(),
        [DOMAIN],
        "the discovery document is asked for by domain name"
    );

    let other_tenant = "5b1d2c3e-2222-4d3c-9b22-6f1e4d3cae02";
    let refused = [
        ("another tenant's tid", json!({"tid": other_tenant})),
        ("tid written as the domain", json!({"tid": DOMAIN})),
        (
            "iss of another tenant",
            json!({"iss": format!("{}/{other_tenant}/v2.0", tenant.base)}),
        ),
        (
            "iss naming the domain",
            json!({"iss": format!("{}/{DOMAIN}/v2.0", tenant.base)}),
        ),
        (
            "iss of the public cloud's v2.0 form, not this document's",
            json!({"iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0")}),
        ),
    ];
    for (name, change) in refused {
        let token = signer.sign(&with(claims.clone(), change));
        let (answer, logs) = call_logged(&router, event(Some(&bearer(&token)))).await;
        assert_eq!(answer.status, 401, "{name}");
        assert_eq!(
            answer.text(),
            "bearer token refused: wrong issuer or tenant",
            "{name}"
        );
        let logged = logs.rejections();
        assert_eq!(logged.len(), 1, "{name}: {logged:#?}");
        assert_eq!(
            logged[0].field("reason"),
            Some("bearer token refused: wrong issuer or tenant"),
            "{name}"
        );
    }
    assert_eq!(
        call_count(&calls),
        1,
        "no refused event reaches the handler"
    );
    assert_eq!(tenant.fetches(), 1);
}

/// Issue 22, item 1: without a GUID in the discovery document's issuer the
/// tenant given by domain is unknown, and no token is accepted; the log
/// says why.
#[tokio::test]
async fn a_tenant_given_by_domain_name_accepts_no_token_when_the_discovery_issuer_has_no_guid() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    for document_issuer in [
        format!("{}/{DOMAIN}/v2.0", tenant.base),
        format!("{}/{{tenantid}}/v2.0", tenant.base),
        format!("{}/v2.0", tenant.base),
        "not a url".to_owned(),
    ] {
        *tenant.document_issuer.lock().unwrap() = Some(document_issuer.clone());
        // Interval zero: every token makes a fetch, and a log line.
        let (router, calls) = router(
            tenant
                .validation_by_domain()
                .key_refresh_interval(Duration::ZERO),
        );
        // Whatever the token says: its own issuer, or the GUID form.
        for iss in [document_issuer.clone(), tenant.issuer()] {
            let token = signer.sign(&with(tenant.claims(), json!({ "iss": iss })));
            let (answer, logs) = call_logged(&router, event(Some(&bearer(&token)))).await;
            assert_eq!(answer.status, 401, "{document_issuer}");
            assert_eq!(
                answer.text(),
                "bearer token refused: the tenant's signing keys are unavailable",
                "{document_issuer}"
            );
            assert_eq!(logs.rejections().len(), 1, "{document_issuer}");
            let why = logs.with_target("webpubsub::entra");
            assert!(
                why.iter().any(|e| e.level == tracing::Level::WARN
                    && e.field("message")
                        .is_some_and(|m| m.contains("names no tenant GUID")
                            && m.contains(DOMAIN)
                            && m.contains(&document_issuer))),
                "{document_issuer}: {why:#?}"
            );
        }
        assert_eq!(call_count(&calls), 0, "{document_issuer}");
    }
}

/// A tenant given by GUID is checked as it always was: its own id, even
/// when the discovery document's issuer is the multi-tenant template.
#[tokio::test]
async fn a_tenant_given_by_guid_fills_a_templated_discovery_issuer_with_its_own_id() {
    let signer = Signer::new("key-1");
    let tenant = Tenant::start(vec![signer.jwk()]).await;
    *tenant.document_issuer.lock().unwrap() = Some(format!("{}/{{tenantid}}/v2.0", tenant.base));
    let (router, calls) = router(tenant.validation());
    let token = signer.sign(&tenant.claims());
    assert_eq!(
        call(&router, event(Some(&bearer(&token)))).await.status,
        204
    );
    let other = signer.sign(&with(
        tenant.claims(),
        json!({"tid": "5b1d2c3e-2222-4d3c-9b22-6f1e4d3cae02"}),
    ));
    assert_eq!(
        call(&router, event(Some(&bearer(&other)))).await.status,
        401
    );
    assert_eq!(call_count(&calls), 1);
    assert_eq!(*tenant.asked_for.lock().unwrap(), [TENANT]);
}
