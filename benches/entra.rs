//! What Entra ID bearer validation costs per event, next to the
//! `ce-signature` check (issue 12).
//!
//! - `entra/message_signed`: a text message through a router that checks
//!   `ce-signature` (HMAC-SHA256 of the connection id).
//! - `entra/message_bearer`: the same message through a router that checks
//!   an RS256 Entra ID token instead (keys cached after the first event;
//!   the fake tenant on 127.0.0.1 is not asked again during the run).
//! - `entra/message_bearer_and_signed`: both checks, as with local auth on.
//! - `entra/build_request_*`: building each request alone, to subtract.
//!
//! Run with `cargo bench --bench entra --features entra`.

// `criterion_group!` defines an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tower::ServiceExt as _;
use webpubsub::entra::EntraValidation;
use webpubsub::{
    async_trait, testing, EventErrorResponse, EventHandler, EventRouter, UserEventRequest,
    UserEventResponse,
};

/// A tenant id is a GUID (a domain name is resolved through the discovery document).
const TENANT: &str = "0b3e0000-0000-4000-8000-00000000be01";
const AUDIENCE: &str = "api://bench";
const CALLER: &str = "bench-identity";
const KEY: &str = "anAccessKeyForBenchmarks0123456789";

struct Echo;

#[async_trait]
impl EventHandler for Echo {
    async fn user_event(
        &self,
        req: UserEventRequest,
    ) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::from(req.data))
    }
}

fn json_body(value: serde_json::Value) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
    let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk = json!({"kty": "RSA", "use": "sig", "kid": "k1",
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let issuer = format!("{base}/{TENANT}/v2.0");
        let jwks_uri = format!("{base}/{TENANT}/keys");
        let app = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(move || {
                    let doc = json!({"issuer": issuer, "jwks_uri": jwks_uri});
                    async move { json_body(doc) }
                }),
            )
            .route(
                "/{tenant}/keys",
                get(move || {
                    let keys = json!({"keys": [jwk]});
                    async move { json_body(keys) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let claims = json!({"aud": AUDIENCE, "iss": format!("{base}/{TENANT}/v2.0"), "tid": TENANT,
        "oid": CALLER, "azp": "client", "iat": now, "nbf": now, "exp": now + 7200, "ver": "2.0"});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .expect("a signature");
    let authorization = format!("Bearer {signed}.{}", URL_SAFE_NO_PAD.encode(signature));

    let validation = || {
        EntraValidation::new(TENANT)
            .authority(&base)
            .audience(AUDIENCE)
            .allowed_caller(CALLER)
    };
    let signed_router = EventRouter::builder()
        .hub("chat", Echo)
        .access_key(KEY)
        .build()
        .expect("a router");
    let bearer_router = EventRouter::builder()
        .hub("chat", Echo)
        .entra(validation())
        .build()
        .expect("a router");
    let both_router = EventRouter::builder()
        .hub("chat", Echo)
        .access_key(KEY)
        .entra(validation())
        .build()
        .expect("a router");
    let message = || testing::user_event("chat", "bench-conn-0001", "message").text("hello");
    let signed_request = || message().sign(KEY);
    let bearer_request = || message().header("authorization", &authorization).request();
    let both_request = || message().header("authorization", &authorization).sign(KEY);

    // Every router answers 200 before it is timed (the bearer routers fetch
    // the keys here, once).
    for (router, request) in [
        (&signed_router, signed_request()),
        (&bearer_router, bearer_request()),
        (&both_router, both_request()),
    ] {
        let response = rt
            .block_on(router.clone().oneshot(request))
            .expect("infallible");
        assert_eq!(response.status(), 200);
    }

    let mut group = c.benchmark_group("entra");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("build_request_signed", |b| b.iter(signed_request));
    group.bench_function("build_request_bearer", |b| b.iter(bearer_request));
    for (name, router, request) in [
        (
            "message_signed",
            &signed_router,
            &signed_request as &dyn Fn() -> _,
        ),
        ("message_bearer", &bearer_router, &bearer_request),
        ("message_bearer_and_signed", &both_router, &both_request),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(router.clone().oneshot(request()).await.ok());
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
