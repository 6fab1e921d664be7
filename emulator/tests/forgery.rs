//! Attack suite, upstream side (issue 10, findings 1, 3 and 6): nothing that
//! the crate or the emulator signs with the access key can be replayed as a
//! `ce-signature`, and no empty key is ever accepted.
//!
//! Client access tokens and REST tokens are HS256 JWTs: their signature is
//! `HMAC(key, "<header>.<payload>")`, and `ce-signature` is
//! `HMAC(key, ce-connectionId)`. Before the guard, anyone holding one token
//! sent `ce-connectionId: <header>.<payload>` with the token's signature in
//! hex and any `ce-userId`, and the router called the handler.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Request;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::emulator::{self, Env};
use common::{
    assert_one_rejection_logged, call, call_count, call_logged, local_router, Recorder, KEY,
};
use proptest::prelude::*;
use webpubsub::client_access::{
    ClientAccessOptions, ClientAccessSigner, ClientProtocol, Negotiate, Permission,
};
use webpubsub::config::{AccessKey, ConnectionString};
use webpubsub::upstream::ValidateUpstreamLayer;
use webpubsub::{testing, ConfigError, EventRouter, WebPubSubServiceClient};
use webpubsub_emulator::Emulator;

const CONN_STR: &str = "Endpoint=http://127.0.0.1;AccessKey=primary-key-1";
const GUARD_BODY: &str =
    "ce-connectionId has the shape of a signed token and is never signed by the service";

/// `ce-connectionId` and `ce-signature` that replay `token`'s signature.
fn forge(token: &str) -> (String, String) {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let tag = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    (signed.to_owned(), format!("sha256={}", hex::encode(tag)))
}

/// Every event type, forged from `token`, as `user`.
fn forged_events(token: &str, user: &str) -> Vec<Request<axum::body::Body>> {
    let (id, signature) = forge(token);
    [
        testing::connect("chat", &id),
        testing::connected("chat", &id),
        testing::user_event("chat", &id, "message").text("hi"),
        testing::disconnected("chat", &id),
    ]
    .into_iter()
    .map(|event| {
        event
            .user(user)
            .header("ce-signature", &signature)
            .request()
    })
    .collect()
}

/// Tokens as the crate signs them for clients, in the shapes apps use.
fn client_tokens() -> Vec<String> {
    let signer = ClientAccessSigner::from_connection_string(CONN_STR, "chat").unwrap();
    [
        ClientAccessOptions::new().user_id("mallory"),
        ClientAccessOptions::new(),
        ClientAccessOptions::new()
            .user_id("mallory")
            .role(Permission::SendToGroup.role())
            .groups(["room", "lobby"])
            .expires_after(Duration::from_secs(60)),
        ClientAccessOptions::new()
            .user_id("device-1")
            .protocol(ClientProtocol::Mqtt),
        ClientAccessOptions::new()
            .user_id("mallory")
            .claim("tenant", "contoso"),
    ]
    .iter()
    .map(|options| signer.client_access(options).token().to_owned())
    .collect()
}

#[test]
fn a_forged_signature_is_a_valid_hmac_of_the_forged_connection_id() {
    // The premise of the attack: without the guard, the signature check passes.
    let key = AccessKey::new(KEY).unwrap();
    for token in client_tokens() {
        let (id, signature) = forge(&token);
        assert_eq!(key.signature(&id), signature);
    }
}

#[tokio::test]
async fn events_forged_from_a_client_token_are_refused_by_the_router() {
    common::init_tracing();
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = local_router(recorder, KEY);
    for token in client_tokens() {
        for request in forged_events(&token, "admin") {
            let (answer, log) = call_logged(&router, request).await;
            assert_eq!(answer.status, 401, "{}", answer.text());
            assert_eq!(answer.text(), GUARD_BODY);
            assert_one_rejection_logged(&log, 401, tracing::Level::WARN);
        }
    }
    assert_eq!(call_count(&calls), 0, "no forged event reached the handler");
}

#[tokio::test]
async fn events_forged_from_a_client_token_are_refused_by_the_validation_layer_alone() {
    let reached = Arc::new(Mutex::new(0));
    let counter = reached.clone();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::post(move || {
                *counter.lock().unwrap() += 1;
                async { "reached" }
            }),
        )
        .layer(
            ValidateUpstreamLayer::builder()
                .connection_string(CONN_STR)
                .build()
                .unwrap(),
        );
    for token in client_tokens() {
        for request in forged_events(&token, "admin") {
            let answer = call(&app, request).await;
            assert_eq!(answer.status, 401);
            assert_eq!(answer.text(), GUARD_BODY);
        }
    }
    assert_eq!(*reached.lock().unwrap(), 0);
    // The layer still lets the service's own events through.
    let genuine = testing::connected("chat", "0f9c97a2f0bf4706afe87a14e0797b11")
        .origin("127.0.0.1")
        .sign(KEY);
    assert_eq!(call(&app, genuine).await.status, 200);
    assert_eq!(*reached.lock().unwrap(), 1);
}

/// The finding as reported: a token from the app's own `/negotiate`, replayed
/// over HTTP against the same app's event handler.
#[tokio::test]
async fn a_token_from_negotiate_cannot_forge_events_over_http() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let events = local_router(recorder, KEY);
    let signer = ClientAccessSigner::from_connection_string(CONN_STR, "chat").unwrap();
    let app = common::at_eventhandler(events).route_service(
        "/negotiate",
        Negotiate::new(signer).user_id_from_query("id"),
    );
    let addr = common::serve(app).await;

    let http = reqwest::Client::new();
    let negotiated = http
        .get(format!("http://{addr}/negotiate?id=mallory"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let negotiated: serde_json::Value = serde_json::from_slice(&negotiated).unwrap();
    let url = url::Url::parse(negotiated["url"].as_str().unwrap()).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    for request in forged_events(&token, "admin") {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let answer = http
            .post(format!("http://{addr}/eventhandler"))
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(answer.text().await.unwrap(), GUARD_BODY);
    }
    assert_eq!(call_count(&calls), 0);
}

/// REST tokens (the service client's `Authorization: Bearer`) are HS256 JWTs
/// under the same key: whoever sees one (a proxy, a log) cannot forge events.
#[tokio::test]
async fn a_rest_token_seen_on_the_wire_cannot_forge_events() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let fake_service = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        if let Some(auth) = headers.get("authorization") {
            record
                .lock()
                .unwrap()
                .push(auth.to_str().unwrap().to_owned());
        }
        async { axum::http::StatusCode::ACCEPTED }
    });
    let addr = common::serve(fake_service).await;
    let conn = format!(
        "Endpoint=http://127.0.0.1;Port={};AccessKey={KEY}",
        addr.port()
    );
    let client = WebPubSubServiceClient::from_connection_string(&conn, "chat").unwrap();
    client.send_to_all("hello").await.unwrap();
    let bearer = seen.lock().unwrap().first().cloned().expect("a REST call");
    let token = bearer.strip_prefix("Bearer ").unwrap();

    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = common::router(recorder);
    for request in forged_events(token, "admin") {
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.text(), GUARD_BODY);
    }
    assert_eq!(call_count(&calls), 0);
}

/// The emulator's reliable `reconnectionToken` was `HMAC(key, "reconnect:<id>")`:
/// sent with `ce-connectionId: reconnect:<id>`, the app accepted it. Now it is
/// no HMAC under the access key of anything, so neither that id nor the
/// connection's own id can carry it as a signature.
#[tokio::test]
async fn the_emulators_reconnection_token_is_no_signature_under_the_access_key() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let events = common::router(recorder);
    let upstream = common::serve(common::at_eventhandler(events.clone())).await;
    let Env { emulator, service } = emulator::start(
        Emulator::builder()
            .access_key(KEY)
            .host("127.0.0.1")
            .hub(emulator::chat_hub(format!(
                "http://{upstream}/eventhandler"
            ))),
        "chat",
    )
    .await;
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("mallory"));
    let (_ws, connected) =
        emulator::connect(&url, emulator::RELIABLE, Duration::from_secs(10)).await;
    assert_eq!(connected["event"], "connected");
    let id = connected["connectionId"].as_str().unwrap().to_owned();
    let token = connected["reconnectionToken"].as_str().unwrap().to_owned();
    let before = call_count(&calls);

    let tag = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let as_signature = format!("sha256={}", hex::encode(&tag));
    let key = AccessKey::new(KEY).unwrap();
    for forged_id in [format!("reconnect:{id}"), id.clone()] {
        assert_ne!(key.signature(&forged_id), as_signature);
        let request = testing::user_event("chat", &forged_id, "message")
            .user("admin")
            .text("hi")
            .header("ce-signature", &as_signature)
            .request();
        let answer = call(&events, request).await;
        assert_eq!(answer.status, 401, "{forged_id}");
        assert_eq!(
            answer.text(),
            "ce-signature does not match any configured access key"
        );
    }
    // Only the genuine `connect`/`connected` of this client got through.
    assert_eq!(call_count(&calls), before);
    emulator.shutdown().await;
}

#[test]
fn empty_and_blank_keys_are_refused_everywhere_a_key_enters() {
    let empty = Some(ConfigError::EmptyAccessKey);
    for blank in ["", " ", "\t"] {
        let router = EventRouter::builder()
            .hub("chat", Recorder::new())
            .access_key(blank)
            .build();
        assert_eq!(router.err(), empty, "router access_key({blank:?})");
        let router = EventRouter::builder()
            .hub("chat", Recorder::new())
            .access_key(KEY)
            .access_key(blank)
            .build();
        assert_eq!(router.err(), empty, "a second, blank key");
        let router = EventRouter::builder()
            .hub("chat", Recorder::new())
            .endpoint("demo.webpubsub.azure.com", blank)
            .insecure_skip_signature_check()
            .build();
        assert_eq!(router.err(), empty, "router endpoint(.., {blank:?})");
        let layer = ValidateUpstreamLayer::builder().access_key(blank).build();
        assert_eq!(layer.err(), empty, "layer access_key({blank:?})");
        assert_eq!(AccessKey::new(blank).err(), empty);
        let conn = ConnectionString::parse(&format!("Endpoint=http://x;AccessKey={blank}"));
        assert_eq!(conn.err(), empty);
        let emulator = Emulator::builder().access_key(blank).build();
        assert_eq!(emulator.err(), empty, "emulator access_key({blank:?})");
        let emulator = Emulator::builder().secondary_access_key(blank).build();
        assert_eq!(emulator.err(), empty, "emulator secondary_access_key");
    }
}

#[test]
fn no_debug_output_shows_a_key() {
    let key = "very-secret-key-0123456789";
    let second = "other-secret-key-9876543210";
    let outputs = [
        format!("{:?}", AccessKey::new(key).unwrap()),
        format!(
            "{:?}",
            ConnectionString::parse(&format!("Endpoint=http://x;AccessKey={key}")).unwrap()
        ),
        format!(
            "{:?}",
            Emulator::builder()
                .access_key(key)
                .secondary_access_key(second)
        ),
        format!(
            "{:?}",
            Emulator::builder()
                .access_key(key)
                .secondary_access_key(second)
                .build()
                .unwrap()
        ),
        format!(
            "{:?}",
            EventRouter::builder()
                .hub("chat", Recorder::new())
                .access_key(key)
        ),
        format!(
            "{:?}",
            ClientAccessSigner::from_connection_string(
                &format!("Endpoint=http://x;AccessKey={key}"),
                "chat"
            )
            .unwrap()
        ),
    ];
    for output in outputs {
        assert!(
            !output.contains(key) && !output.contains(second),
            "{output}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever a token says (user, roles, groups, custom claims), replaying
    /// it is refused; events the service would send still pass.
    #[test]
    fn any_client_token_is_refused_and_any_service_id_passes(
        user in "[a-zA-Z0-9@._-]{1,40}",
        role in "[a-zA-Z.]{0,30}",
        group in "[a-z]{1,10}",
        claim in "[ -~]{0,40}",
        id in "[A-Za-z0-9_-]{8,48}",
    ) {
        let signer = ClientAccessSigner::from_connection_string(CONN_STR, "chat").unwrap();
        let token = signer.client_access(
            &ClientAccessOptions::new().user_id(&user).role(role).group(group).claim("c", claim),
        );
        let (forged_id, _) = forge(token.token());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let router = common::router(Recorder::new());
        runtime.block_on(async {
            for request in forged_events(token.token(), &user) {
                prop_assert_eq!(call(&router, request).await.status, 401);
            }
            let genuine = testing::connected("chat", &id).user(&user).sign(KEY);
            prop_assert_eq!(call(&router, genuine).await.status, 204);
            Ok(())
        })?;
        prop_assert!(forged_id.contains('.'));
    }
}
