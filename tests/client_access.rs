//! Client access URLs (spec `service.md` §4.2) and the negotiate endpoint.
//!
//! Tokens are checked against the spec vector byte for byte, and against
//! `jsonwebtoken` in both directions: every token we sign decodes and
//! verifies with it (claims compared as JSON), its HMAC over our
//! `header.payload` is our signature, and a token it signs for the same
//! claims carries the same claims and passes our key's HMAC.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderName, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{call, call_logged, Answer, LogCapture};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use webpubsub::client_access::{
    ClientAccess, ClientAccessOptions, ClientAccessSigner, ClientProtocol, Negotiate, Permission,
    DEFAULT_TOKEN_LIFETIME,
};
use webpubsub::config::AccessKey;
use webpubsub::ConfigError;

/// The access key of the spec vectors (§4.1, §4.2).
const SPEC_KEY: &str = "0123456789abcdef0123456789abcdef";
/// The issue time of the §4.2 vector.
const IAT: u64 = 1_700_000_000;
/// One hour, the default lifetime the spec gives (§4.2, `exp`).
const HOUR: u64 = 3600;
/// The §4.2 client token.
const SPEC_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjpbIndlYnB1YnN1Yi5qb2luTGVhdmVHcm91cCIsIndlYnB1YnN1Yi5zZW5kVG9Hcm91cC5yb29tMSJdLCJ3ZWJwdWJzdWIuZ3JvdXAiOlsicm9vbTEiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODA4MC9jbGllbnQvaHVicy9jaGF0Iiwic3ViIjoiYWxpY2UifQ.bTkvVk9rpFRgvXoIaXxZRlYmyiuut37OnOmrgTtlnbE";
/// The §4.2 client payload.
const SPEC_PAYLOAD: &str = r#"{"role":["webpubsub.joinLeaveGroup","webpubsub.sendToGroup.room1"],"webpubsub.group":["room1"],"iat":1700000000,"exp":1700003600,"aud":"http://127.0.0.1:8080/client/hubs/chat","sub":"alice"}"#;
/// The header every token we sign starts with (§4.1).
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// The target the negotiate endpoint logs under.
const NEGOTIATE_TARGET: &str = "webpubsub::negotiate";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn signer(endpoint: &str, hub: &str) -> ClientAccessSigner {
    ClientAccessSigner::from_connection_string(
        &format!("Endpoint={endpoint};AccessKey={SPEC_KEY};Version=1.0;"),
        hub,
    )
    .unwrap_or_else(|e| panic!("signer for {endpoint} / {hub}: {e}"))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Options issued at [`IAT`], so tokens are reproducible.
fn fixed() -> ClientAccessOptions {
    ClientAccessOptions::new().issued_at(at(IAT))
}

/// The three segments of a compact JWS.
fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    match parts[..] {
        [header, payload, signature] => [header, payload, signature],
        _ => panic!("{token:?} does not have three segments"),
    }
}

/// A base64url segment, decoded.
fn segment_bytes(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|e| panic!("segment {segment:?} is not base64url without padding: {e}"))
}

fn segment_json(segment: &str) -> Value {
    serde_json::from_slice(&segment_bytes(segment)).expect("a JSON segment")
}

/// The validation the service does (§4.2) minus the clock: HS256, the
/// expected audience, `exp` present.
fn validation(aud: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[aud]);
    validation.validate_exp = false;
    validation
}

/// Decodes and verifies `token` with `jsonwebtoken`; returns its claims.
fn jwt_claims(
    token: &str,
    key: &str,
    validation: &Validation,
) -> jsonwebtoken::errors::Result<Value> {
    let data = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        validation,
    )?;
    assert_eq!(data.header.alg, Algorithm::HS256, "{token}");
    assert_eq!(data.header.typ.as_deref(), Some("JWT"), "{token}");
    Ok(data.claims)
}

/// `jsonwebtoken`'s HS256 signature (base64url) of `message` under `key`.
fn jwt_signature(message: &str, key: &str) -> String {
    jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(key.as_bytes()),
        Algorithm::HS256,
    )
    .expect("HS256 signs any message")
}

/// The token of a client URL (`…?access_token={token}`) and its base URL.
fn split_url(url: &str) -> (&str, &str) {
    url.split_once("?access_token=")
        .unwrap_or_else(|| panic!("{url:?} has no access_token"))
}

fn keys(object: &Value) -> BTreeSet<&str> {
    object
        .as_object()
        .unwrap_or_else(|| panic!("{object} is not an object"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// One token to sign, and what the spec says it must be.
struct Case {
    name: &'static str,
    signer: ClientAccessSigner,
    options: ClientAccessOptions,
    /// The `ws(s)` URL without the token.
    base_url: &'static str,
    /// Every claim, exactly.
    claims: Value,
}

impl Case {
    /// The audience: the claims' `aud`.
    fn aud(&self) -> &str {
        self.claims["aud"].as_str().expect("every case has an aud")
    }

    fn access(&self) -> ClientAccess {
        self.signer.client_access(&self.options)
    }
}

/// Tokens whose claims follow from the spec's rules (§4.2) alone.
fn cases() -> Vec<Case> {
    let local = || signer("http://127.0.0.1:8080", "chat");
    let azure = || signer("https://demo.webpubsub.azure.com", "chat");
    vec![
        Case {
            name: "the spec vector",
            signer: local(),
            options: fixed()
                .user_id("alice")
                .role(Permission::JoinLeaveGroup.role())
                .role(Permission::SendToGroup.role_for("room1"))
                .group("room1"),
            base_url: "ws://127.0.0.1:8080/client/hubs/chat",
            claims: serde_json::from_str(SPEC_PAYLOAD).unwrap(),
        },
        Case {
            name: "anonymous",
            signer: local(),
            options: fixed(),
            base_url: "ws://127.0.0.1:8080/client/hubs/chat",
            claims: json!({
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "http://127.0.0.1:8080/client/hubs/chat",
            }),
        },
        Case {
            name: "https with a non-default port",
            signer: signer("https://demo.webpubsub.azure.com:8443", "chat"),
            options: fixed().user_id("bob"),
            base_url: "wss://demo.webpubsub.azure.com:8443/client/hubs/chat",
            claims: json!({
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "https://demo.webpubsub.azure.com:8443/client/hubs/chat",
                "sub": "bob",
            }),
        },
        Case {
            name: "MQTT",
            signer: azure(),
            options: fixed().user_id("device-1").protocol(ClientProtocol::Mqtt),
            base_url: "wss://demo.webpubsub.azure.com/clients/mqtt/hubs/chat",
            claims: json!({
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "https://demo.webpubsub.azure.com/clients/mqtt/hubs/chat",
                "sub": "device-1",
            }),
        },
        Case {
            name: "Socket.IO",
            signer: azure(),
            options: fixed().protocol(ClientProtocol::SocketIo).group("lobby"),
            base_url: "wss://demo.webpubsub.azure.com/clients/socketio/hubs/chat",
            claims: json!({
                "webpubsub.group": ["lobby"],
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "https://demo.webpubsub.azure.com/clients/socketio/hubs/chat",
            }),
        },
        Case {
            name: "custom claims, reserved names ignored",
            signer: azure(),
            options: fixed()
                .user_id("carol")
                .claim("tenant", "contoso")
                .claim("level", 3)
                .claim("beta", true)
                .claim("tags", vec!["a", "b"])
                .claim("profile", json!({ "lang": "fr", "age": null }))
                .claim("aud", "https://evil.example.com/client/hubs/chat")
                .claim("exp", IAT + 1_000_000)
                .claim("iat", 1)
                .claim("nbf", IAT + 10)
                .claim("sub", "mallory")
                .claim("role", json!(["webpubsub.sendToGroup"]))
                .claim("webpubsub.group", json!(["admins"])),
            base_url: "wss://demo.webpubsub.azure.com/client/hubs/chat",
            claims: json!({
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "https://demo.webpubsub.azure.com/client/hubs/chat",
                "sub": "carol",
                "tenant": "contoso",
                "level": 3,
                "beta": true,
                "tags": ["a", "b"],
                "profile": { "lang": "fr", "age": null },
            }),
        },
        Case {
            name: "ten minutes",
            signer: azure(),
            options: fixed()
                .user_id("dave")
                .expires_after(Duration::from_secs(10 * 60)),
            base_url: "wss://demo.webpubsub.azure.com/client/hubs/chat",
            claims: json!({
                "iat": IAT, "exp": IAT + 600,
                "aud": "https://demo.webpubsub.azure.com/client/hubs/chat",
                "sub": "dave",
            }),
        },
        Case {
            name: "unicode user, capitalised hub, trailing slash",
            signer: signer("https://Demo.WebPubSub.azure.com/", "ChatRoom_1"),
            options: fixed().user_id("Zoë 日本語 🚀 \"quoted\""),
            base_url: "wss://demo.webpubsub.azure.com/client/hubs/ChatRoom_1",
            claims: json!({
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "https://demo.webpubsub.azure.com/client/hubs/ChatRoom_1",
                "sub": "Zoë 日本語 🚀 \"quoted\"",
            }),
        },
        Case {
            name: "several roles and groups, in order",
            signer: local(),
            options: fixed()
                .roles([
                    Permission::SendToGroup.role(),
                    Permission::JoinLeaveGroup.role_for("b"),
                ])
                .role("webpubsub.sendToGroup.a")
                .groups(["b", "a"])
                .group("c"),
            base_url: "ws://127.0.0.1:8080/client/hubs/chat",
            claims: json!({
                "role": [
                    "webpubsub.sendToGroup",
                    "webpubsub.joinLeaveGroup.b",
                    "webpubsub.sendToGroup.a",
                ],
                "webpubsub.group": ["b", "a", "c"],
                "iat": IAT, "exp": IAT + HOUR,
                "aud": "http://127.0.0.1:8080/client/hubs/chat",
            }),
        },
    ]
}

// ---------------------------------------------------------------------------
// Fixed vectors
// ---------------------------------------------------------------------------

#[test]
fn token_for_the_spec_client_vector_is_the_spec_token_byte_for_byte() {
    let options = ClientAccessOptions::new()
        .user_id("alice")
        .role(Permission::JoinLeaveGroup.role())
        .role(Permission::SendToGroup.role_for("room1"))
        .group("room1")
        .issued_at(at(IAT));
    let access = signer("http://127.0.0.1:8080", "chat").client_access(&options);

    assert_eq!(access.token(), SPEC_TOKEN);
    let [header, payload, _] = segments(access.token());
    assert_eq!(segment_bytes(header), HEADER_JSON.as_bytes());
    assert_eq!(
        String::from_utf8(segment_bytes(payload)).unwrap(),
        SPEC_PAYLOAD
    );
    assert_eq!(access.base_url(), "ws://127.0.0.1:8080/client/hubs/chat");
    assert_eq!(
        access.url(),
        format!("ws://127.0.0.1:8080/client/hubs/chat?access_token={SPEC_TOKEN}")
    );
}

/// Checks the spec itself: its payload, header and signature agree with `jsonwebtoken`.
#[test]
fn spec_client_vector_is_what_jsonwebtoken_signs_and_verifies() {
    let [header, payload, signature] = segments(SPEC_TOKEN);
    assert_eq!(segment_bytes(header), HEADER_JSON.as_bytes());
    assert_eq!(segment_bytes(payload), SPEC_PAYLOAD.as_bytes());
    assert_eq!(
        jwt_signature(&format!("{header}.{payload}"), SPEC_KEY),
        signature
    );
    let claims = jwt_claims(
        SPEC_TOKEN,
        SPEC_KEY,
        &validation("http://127.0.0.1:8080/client/hubs/chat"),
    )
    .unwrap();
    assert_eq!(claims, serde_json::from_str::<Value>(SPEC_PAYLOAD).unwrap());
}

#[test]
fn signed_tokens_verify_with_jsonwebtoken_and_hold_exactly_the_expected_claims() {
    for case in cases() {
        let access = case.access();
        let claims =
            jwt_claims(access.token(), SPEC_KEY, &validation(case.aud())).unwrap_or_else(|e| {
                panic!(
                    "{}: jsonwebtoken refused {}: {e}",
                    case.name,
                    access.token()
                )
            });
        assert_eq!(claims, case.claims, "{}", case.name);
        assert_eq!(access.base_url(), case.base_url, "{}", case.name);
        let [header, _, _] = segments(access.token());
        assert_eq!(
            segment_bytes(header),
            HEADER_JSON.as_bytes(),
            "{}",
            case.name
        );
    }
}

#[test]
fn optional_claims_are_absent_when_not_set() {
    let access = signer("https://demo.webpubsub.azure.com", "chat").client_access(&fixed());
    let [_, payload, _] = segments(access.token());
    let claims = segment_json(payload);
    for absent in ["sub", "role", "webpubsub.group", "nbf"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }
    assert_eq!(keys(&claims), BTreeSet::from(["aud", "exp", "iat"]));
}

#[test]
fn jsonwebtoken_signature_over_our_header_and_payload_equals_ours() {
    for case in cases() {
        let access = case.access();
        let [header, payload, signature] = segments(access.token());
        assert_eq!(
            jwt_signature(&format!("{header}.{payload}"), SPEC_KEY),
            signature,
            "{}",
            case.name
        );
        let verified = jsonwebtoken::crypto::verify(
            signature,
            format!("{header}.{payload}").as_bytes(),
            &DecodingKey::from_secret(SPEC_KEY.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        assert!(verified, "{}", case.name);
    }
}

/// The crate has no public JWT verifier; the reverse direction goes through
/// [`AccessKey`], whose HMAC-SHA256 is the one the signer uses.
#[test]
fn jsonwebtoken_tokens_for_the_same_claims_carry_the_same_claims_and_pass_our_hmac() {
    let key = AccessKey::new(SPEC_KEY).unwrap();
    for case in cases() {
        let reference = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &case.claims,
            &EncodingKey::from_secret(SPEC_KEY.as_bytes()),
        )
        .unwrap();
        let ours = case.access();
        let validation = validation(case.aud());
        assert_eq!(
            jwt_claims(&reference, SPEC_KEY, &validation).unwrap(),
            jwt_claims(ours.token(), SPEC_KEY, &validation).unwrap(),
            "{}",
            case.name
        );
        let [header, payload, signature] = segments(&reference);
        assert_eq!(
            segment_json(payload),
            segment_json(segments(ours.token())[1])
        );
        let hex: String = segment_bytes(signature)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            key.signature(&format!("{header}.{payload}")),
            format!("sha256={hex}"),
            "{}",
            case.name
        );
    }
}

#[test]
fn tokens_fail_verification_under_another_key_or_audience() {
    for case in cases() {
        let access = case.access();
        let wrong_key = jwt_claims(
            access.token(),
            "0123456789abcdef0123456789abcdeF",
            &validation(case.aud()),
        )
        .unwrap_err();
        assert_eq!(
            wrong_key.kind(),
            &ErrorKind::InvalidSignature,
            "{}",
            case.name
        );

        let wrong_aud = jwt_claims(
            access.token(),
            SPEC_KEY,
            &validation("https://other.webpubsub.azure.com/client/hubs/chat"),
        )
        .unwrap_err();
        assert_eq!(
            wrong_aud.kind(),
            &ErrorKind::InvalidAudience,
            "{}",
            case.name
        );

        let [header, payload, signature] = segments(access.token());
        let mut claims = segment_json(payload);
        claims["sub"] = json!("mallory");
        let forged = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tampered = jwt_claims(&forged, SPEC_KEY, &validation(case.aud())).unwrap_err();
        assert_eq!(
            tampered.kind(),
            &ErrorKind::InvalidSignature,
            "{}",
            case.name
        );
    }
}

#[test]
fn token_issued_now_is_valid_for_an_hour_under_full_jsonwebtoken_validation() {
    assert_eq!(DEFAULT_TOKEN_LIFETIME, Duration::from_secs(HOUR));
    let before = unix_now();
    let access = signer("https://demo.webpubsub.azure.com", "chat")
        .client_access(&ClientAccessOptions::new().user_id("alice"));
    let after = unix_now();

    let mut validation = validation("https://demo.webpubsub.azure.com/client/hubs/chat");
    validation.validate_exp = true;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jwt_claims(access.token(), SPEC_KEY, &validation).unwrap();
    let iat = claims["iat"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&iat),
        "iat {iat} not in {before}..={after}"
    );
    assert_eq!(claims["exp"].as_u64(), Some(iat + HOUR));
    assert_eq!(claims["sub"], "alice");
}

#[test]
fn lifetime_is_counted_in_whole_seconds() {
    let signer = signer("https://demo.webpubsub.azure.com", "chat");
    for (lifetime, seconds) in [
        (Duration::from_millis(1500), 1),
        (Duration::from_millis(999), 0),
        (Duration::from_secs(24 * HOUR), 24 * HOUR),
    ] {
        let access = signer.client_access(&fixed().expires_after(lifetime));
        let claims = segment_json(segments(access.token())[1]);
        assert_eq!(claims["iat"].as_u64(), Some(IAT), "{lifetime:?}");
        assert_eq!(claims["exp"].as_u64(), Some(IAT + seconds), "{lifetime:?}");
    }
}

#[test]
fn reserved_claim_names_never_override_what_the_token_sets() {
    let signer = signer("https://demo.webpubsub.azure.com", "chat");
    let plain = signer.client_access(&fixed().user_id("alice").group("room1"));
    let mut options = fixed().user_id("alice").group("room1");
    for name in ["aud", "exp", "iat", "nbf", "sub", "role", "webpubsub.group"] {
        options = options.claim(name, "overridden");
    }
    let attempted = signer.client_access(&options);
    assert_eq!(attempted.token(), plain.token());
    assert!(!segment_bytes(segments(attempted.token())[1])
        .windows(b"overridden".len())
        .any(|w| w == b"overridden"));
}

/// RFC 7519 §4: "The Claim Names within a JWT Claims Set MUST be unique".
#[test]
fn repeating_a_custom_claim_name_writes_it_once_with_the_last_value() {
    let access = signer("https://demo.webpubsub.azure.com", "chat")
        .client_access(&fixed().claim("tenant", "first").claim("tenant", "second"));
    let payload = String::from_utf8(segment_bytes(segments(access.token())[1])).unwrap();
    assert_eq!(payload.matches("\"tenant\"").count(), 1, "{payload}");
    assert_eq!(
        segment_json(segments(access.token())[1])["tenant"],
        "second"
    );
}

#[test]
fn protocol_changes_only_the_path_never_adds_a_claim() {
    let signer = signer("https://demo.webpubsub.azure.com", "chat");
    let default = segment_json(segments(signer.client_access(&fixed()).token())[1]);
    for (protocol, path) in [
        (ClientProtocol::Default, "/client/hubs/chat"),
        (ClientProtocol::Mqtt, "/clients/mqtt/hubs/chat"),
        (ClientProtocol::SocketIo, "/clients/socketio/hubs/chat"),
    ] {
        let access = signer.client_access(&fixed().protocol(protocol));
        let claims = segment_json(segments(access.token())[1]);
        let mut expected = default.clone();
        expected["aud"] = json!(format!("https://demo.webpubsub.azure.com{path}"));
        assert_eq!(claims, expected, "{protocol:?}");
        assert_eq!(
            access.base_url(),
            format!("wss://demo.webpubsub.azure.com{path}"),
            "{protocol:?}"
        );
    }
    assert_eq!(ClientProtocol::default(), ClientProtocol::Default);
}

#[test]
fn hub_name_keeps_its_case_in_audience_and_url() {
    for hub in ["Chat", "CHAT", "myHub_2", "a.B[c]"] {
        let signer = signer("http://localhost:8080", hub);
        assert_eq!(signer.hub(), hub);
        let access = signer.client_access(&fixed());
        let aud = format!("http://localhost:8080/client/hubs/{hub}");
        let claims = jwt_claims(access.token(), SPEC_KEY, &validation(&aud))
            .unwrap_or_else(|e| panic!("{hub}: {e}"));
        assert_eq!(claims["aud"], aud.as_str());
        assert_eq!(
            access.base_url(),
            format!("ws://localhost:8080/client/hubs/{hub}")
        );
    }
}

// ---------------------------------------------------------------------------
// URLs, serialization, Debug, configuration
// ---------------------------------------------------------------------------

#[test]
fn endpoint_scheme_becomes_the_websocket_scheme_and_non_default_ports_are_kept() {
    // Connection string tail, expected `http(s)` origin, expected `ws(s)` origin.
    let rows = [
        ("http://localhost", "http://localhost", "ws://localhost"),
        (
            "http://localhost:8080",
            "http://localhost:8080",
            "ws://localhost:8080",
        ),
        ("http://localhost:80", "http://localhost", "ws://localhost"),
        (
            "http://localhost:443",
            "http://localhost:443",
            "ws://localhost:443",
        ),
        (
            "http://localhost;Port=5001",
            "http://localhost:5001",
            "ws://localhost:5001",
        ),
        (
            "https://demo.webpubsub.azure.com",
            "https://demo.webpubsub.azure.com",
            "wss://demo.webpubsub.azure.com",
        ),
        (
            "https://demo.webpubsub.azure.com:443",
            "https://demo.webpubsub.azure.com",
            "wss://demo.webpubsub.azure.com",
        ),
        (
            "https://demo.webpubsub.azure.com:8443",
            "https://demo.webpubsub.azure.com:8443",
            "wss://demo.webpubsub.azure.com:8443",
        ),
        (
            "https://X.webpubsub.azure.com/",
            "https://x.webpubsub.azure.com",
            "wss://x.webpubsub.azure.com",
        ),
        (
            "https://x.webpubsub.azure.com//",
            "https://x.webpubsub.azure.com",
            "wss://x.webpubsub.azure.com",
        ),
        (
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080",
            "ws://127.0.0.1:8080",
        ),
        ("http://[::1]:8080", "http://[::1]:8080", "ws://[::1]:8080"),
    ];
    for (endpoint, http_origin, ws_origin) in rows {
        let access = signer(endpoint, "chat").client_access(&fixed());
        assert_eq!(
            access.base_url(),
            format!("{ws_origin}/client/hubs/chat"),
            "{endpoint}"
        );
        let aud = format!("{http_origin}/client/hubs/chat");
        let claims = jwt_claims(access.token(), SPEC_KEY, &validation(&aud))
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        assert_eq!(claims["aud"], aud.as_str(), "{endpoint}");
    }
}

#[test]
fn url_is_the_base_url_with_the_token_as_access_token() {
    for case in cases() {
        let access = case.access();
        assert_eq!(
            access.url(),
            format!("{}?access_token={}", access.base_url(), access.token()),
            "{}",
            case.name
        );
        assert_eq!(split_url(access.url()), (access.base_url(), access.token()));
        assert_eq!(case.signer.client_access_url(&case.options), access.url());
        assert_eq!(access.clone().into_url(), access.url());
        assert!(!access.base_url().ends_with('/'), "{}", case.name);
        assert!(!access.base_url().contains("//client"), "{}", case.name);
    }
}

#[test]
fn client_access_serializes_to_exactly_base_url_token_and_url() {
    let access =
        signer("https://demo.webpubsub.azure.com", "chat").client_access(&fixed().user_id("alice"));
    let value = serde_json::to_value(&access).unwrap();
    assert_eq!(keys(&value), BTreeSet::from(["baseUrl", "token", "url"]));
    assert_eq!(value["baseUrl"], access.base_url());
    assert_eq!(value["token"], access.token());
    assert_eq!(value["url"], access.url());
}

#[test]
fn debug_output_shows_neither_the_token_nor_the_key() {
    let signer = signer("https://demo.webpubsub.azure.com", "chat");
    let access = signer.client_access(&fixed().user_id("alice"));
    let [_, _, signature] = segments(access.token());

    let access_debug = format!("{access:?} {access:#?}");
    assert!(!access_debug.contains(access.token()), "{access_debug}");
    assert!(!access_debug.contains(signature), "{access_debug}");
    assert!(access_debug.contains(access.base_url()), "{access_debug}");

    let negotiate = Negotiate::new(signer.clone()).user_id_from_query("id");
    for debug in [
        format!("{signer:?}"),
        format!("{signer:#?}"),
        format!("{negotiate:?}"),
    ] {
        assert!(!debug.contains(SPEC_KEY), "{debug}");
        assert!(debug.contains("chat"), "{debug}");
    }
}

#[test]
fn signer_refuses_a_connection_string_without_key_and_invalid_hub_names() {
    let err = ClientAccessSigner::from_connection_string("Endpoint=https://x.example.com", "chat")
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::MissingConnectionStringKey { key: "AccessKey" }
    );

    let long = format!("h{}", "a".repeat(128));
    for hub in [
        "",
        "9chat",
        "chat room",
        "chat/1",
        "_chat",
        "chät",
        long.as_str(),
    ] {
        let err = ClientAccessSigner::from_connection_string(
            &format!("Endpoint=https://x.example.com;AccessKey={SPEC_KEY}"),
            hub,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidHub {
                hub: hub.to_owned()
            },
            "{hub:?}"
        );
    }
}

#[test]
fn permission_roles_and_display_use_the_service_names() {
    let rows = [
        (Permission::SendToGroup, "sendToGroup"),
        (Permission::JoinLeaveGroup, "joinLeaveGroup"),
    ];
    for (permission, name) in rows {
        assert_eq!(permission.as_str(), name);
        assert_eq!(permission.to_string(), name);
        assert_eq!(format!("{permission}"), name);
        assert_eq!(permission.role(), format!("webpubsub.{name}"));
        assert_eq!(
            permission.role_for("room1"),
            format!("webpubsub.{name}.room1")
        );
        assert_eq!(permission.role_for("a.b"), format!("webpubsub.{name}.a.b"));
    }
    assert_ne!(
        Permission::SendToGroup.role(),
        Permission::JoinLeaveGroup.role()
    );
}

// ---------------------------------------------------------------------------
// Negotiate, through an axum Router driven with `oneshot`
// ---------------------------------------------------------------------------

/// The negotiate signer: `https://demo.webpubsub.azure.com`, hub `chat`.
fn demo() -> ClientAccessSigner {
    signer("https://demo.webpubsub.azure.com", "chat")
}

const DEMO_AUD: &str = "https://demo.webpubsub.azure.com/client/hubs/chat";
const DEMO_BASE: &str = "wss://demo.webpubsub.azure.com/client/hubs/chat";

fn app(negotiate: Negotiate) -> Router {
    Router::new().route_service("/negotiate", negotiate)
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Asserts a `200` negotiate answer and returns the verified claims of its token.
fn negotiated_claims(answer: &Answer) -> Value {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    let body = answer.json();
    assert_eq!(keys(&body), BTreeSet::from(["url"]), "{body}");
    let url = body["url"].as_str().expect("url is a string");
    let (base, token) = split_url(url);
    assert_eq!(base, DEMO_BASE);
    jwt_claims(token, SPEC_KEY, &validation(DEMO_AUD))
        .unwrap_or_else(|e| panic!("token of {url} does not verify: {e}"))
}

/// The one `refused negotiate` event of `capture`.
fn refusal_reason(capture: &LogCapture) -> String {
    let events = capture.with_target(NEGOTIATE_TARGET);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        events[0].field("message"),
        Some("refused negotiate"),
        "{events:#?}"
    );
    events[0]
        .field("reason")
        .unwrap_or_else(|| panic!("no reason in {events:#?}"))
        .to_owned()
}

#[tokio::test]
async fn negotiate_takes_the_user_id_from_the_query_url_decoded() {
    let app = app(Negotiate::new(demo()).user_id_from_query("id"));
    for (uri, user) in [
        ("/negotiate?id=alice", "alice"),
        ("/negotiate?id=alice%20b", "alice b"),
        ("/negotiate?id=alice+b", "alice b"),
        ("/negotiate?id=caf%C3%A9%20%E6%97%A5", "café 日"),
        ("/negotiate?lang=en&id=bob&x=1", "bob"),
        ("/negotiate?id=a%26b%3Dc", "a&b=c"),
    ] {
        let claims = negotiated_claims(&call(&app, get_request(uri)).await);
        assert_eq!(claims["sub"], user, "{uri}");
    }
}

#[tokio::test]
async fn negotiate_takes_the_user_id_from_a_header() {
    let app = app(Negotiate::new(demo()).user_id_from_header(HeaderName::from_static("x-user-id")));
    let request = Request::get("/negotiate?id=ignored")
        .header("x-user-id", "bob@contoso.com")
        .body(Body::empty())
        .unwrap();
    let claims = negotiated_claims(&call(&app, request).await);
    assert_eq!(claims["sub"], "bob@contoso.com");
}

/// What an authentication middleware leaves in the request extensions.
#[derive(Clone)]
struct SignedInUser(String);

/// A toy authentication middleware: `x-session: session-of-{user}` signs `user` in.
async fn sign_in(mut request: Request<Body>, next: Next) -> axum::response::Response {
    let user = request
        .headers()
        .get("x-session")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("session-of-"))
        .map(|user| SignedInUser(user.to_owned()));
    if let Some(user) = user {
        request.extensions_mut().insert(user);
    }
    next.run(request).await
}

fn extension_app() -> Router {
    let negotiate = Negotiate::new(demo())
        .user_id_with(|parts| parts.extensions.get::<SignedInUser>().map(|u| u.0.clone()));
    app(negotiate).layer(axum::middleware::from_fn(sign_in))
}

#[tokio::test]
async fn negotiate_takes_the_user_id_from_a_request_extension() {
    let request = Request::post("/negotiate?id=ignored")
        .header("x-session", "session-of-carol")
        .body(Body::empty())
        .unwrap();
    let claims = negotiated_claims(&call(&extension_app(), request).await);
    assert_eq!(claims["sub"], "carol");
}

#[tokio::test]
async fn negotiate_without_a_user_is_refused_with_400_naming_where_it_looked() {
    let by_query = app(Negotiate::new(demo()).user_id_from_query("id"));
    let by_header =
        app(Negotiate::new(demo()).user_id_from_header(HeaderName::from_static("x-user-id")));
    let by_extension = extension_app();
    // App, request, fragment the body must hold.
    let rows: [(&Router, Request<Body>, &str); 7] = [
        (&by_query, get_request("/negotiate"), "`id`"),
        (&by_query, get_request("/negotiate?id="), "`id`"),
        (&by_query, get_request("/negotiate?id=%20%20"), "`id`"),
        (&by_query, get_request("/negotiate?user=alice"), "`id`"),
        (&by_header, get_request("/negotiate?id=alice"), "x-user-id"),
        (
            &by_header,
            Request::get("/negotiate")
                .header("x-user-id", " ")
                .body(Body::empty())
                .unwrap(),
            "x-user-id",
        ),
        (&by_extension, get_request("/negotiate?id=alice"), "user id"),
    ];
    for (app, request, fragment) in rows {
        let uri = request.uri().clone();
        let (answer, capture) = call_logged(app, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("text/plain; charset=utf-8"),
            "{uri}"
        );
        assert!(
            answer.text().contains(fragment),
            "{uri}: {:?}",
            answer.text()
        );
        assert!(!answer.text().contains("access_token"), "{uri}");
        assert_eq!(refusal_reason(&capture), answer.text(), "{uri}");
    }
}

#[tokio::test]
async fn negotiate_signs_anonymous_tokens_only_when_allowed() {
    let options = ClientAccessOptions::new().user_id("from-options");
    let anonymous = app(Negotiate::new(demo())
        .user_id_from_query("id")
        .allow_anonymous()
        .options(options.clone()));
    let claims = negotiated_claims(&call(&anonymous, get_request("/negotiate")).await);
    assert!(claims.get("sub").is_none(), "{claims}");
    let claims = negotiated_claims(&call(&anonymous, get_request("/negotiate?id=erin")).await);
    assert_eq!(claims["sub"], "erin");

    // Without a source of user ids every token is anonymous.
    let no_source = app(Negotiate::new(demo()).options(options));
    let claims = negotiated_claims(&call(&no_source, get_request("/negotiate?id=erin")).await);
    assert!(claims.get("sub").is_none(), "{claims}");
}

#[tokio::test]
async fn negotiate_refuses_other_methods_with_405_and_an_allow_header() {
    let app = app(Negotiate::new(demo()).user_id_from_query("id"));
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let request = Request::builder()
            .method(method.clone())
            .uri("/negotiate?id=alice")
            .body(Body::empty())
            .unwrap();
        let (answer, capture) = call_logged(&app, request).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(
            answer.header("allow").as_deref(),
            Some("GET, POST"),
            "{method}"
        );
        assert!(!answer.text().contains("access_token"), "{method}");
        let events = capture.with_target(NEGOTIATE_TARGET);
        assert_eq!(events.len(), 1, "{method}: {events:#?}");
        assert_eq!(events[0].field("method"), Some(method.as_str()));
    }
}

#[tokio::test]
async fn negotiate_answers_post_like_get() {
    let app = app(Negotiate::new(demo())
        .user_id_from_query("id")
        .options(fixed()));
    let get = call(&app, get_request("/negotiate?id=alice")).await;
    let post = call(
        &app,
        Request::post("/negotiate?id=alice")
            .body(Body::from("ignored body"))
            .unwrap(),
    )
    .await;
    assert_eq!(negotiated_claims(&post), negotiated_claims(&get));
    assert_eq!(post.body, get.body);
}

#[tokio::test]
async fn negotiate_tokens_carry_the_options_with_the_request_user_replacing_theirs() {
    let options = fixed()
        .user_id("from-options")
        .role(Permission::JoinLeaveGroup.role())
        .role(Permission::SendToGroup.role_for("room1"))
        .group("room1")
        .expires_after(Duration::from_secs(600))
        .claim("tenant", "contoso");
    let app = app(Negotiate::new(demo())
        .user_id_from_query("id")
        .options(options));
    let claims = negotiated_claims(&call(&app, get_request("/negotiate?id=alice")).await);
    assert_eq!(
        claims,
        json!({
            "role": ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.room1"],
            "webpubsub.group": ["room1"],
            "iat": IAT,
            "exp": IAT + 600,
            "aud": DEMO_AUD,
            "sub": "alice",
            "tenant": "contoso",
        })
    );
}

#[tokio::test]
async fn negotiate_signs_a_fresh_token_valid_for_the_default_hour() {
    let app = app(Negotiate::new(demo()).user_id_from_query("id"));
    let before = unix_now();
    let answer = call(&app, get_request("/negotiate?id=alice")).await;
    let after = unix_now();
    let claims = negotiated_claims(&answer);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&iat),
        "iat {iat} not in {before}..={after}"
    );
    assert_eq!(claims["exp"].as_u64(), Some(iat + HOUR));
}

// ---------------------------------------------------------------------------
// Negotiate behind a real HTTP/1.1 server
// ---------------------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

/// A raw HTTP/1.1 answer: status line, headers (names lower-cased), body.
#[derive(Debug)]
struct RawResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends `raw` and reads the answer until the server closes the connection.
async fn exchange(addr: SocketAddr, raw: &str) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let rest = &bytes[split + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(rest.len(), |(_, v)| v.parse().unwrap());
    RawResponse {
        status_line,
        headers,
        body: rest[..length].to_vec(),
    }
}

#[tokio::test]
async fn negotiate_over_a_real_server_answers_get_and_refuses_put() {
    let options = ClientAccessOptions::new().group("lobby");
    let server = serve(app(Negotiate::new(demo())
        .user_id_from_query("id")
        .options(options)))
    .await;

    let response = exchange(
        server.addr,
        "GET /negotiate?id=alice%20b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    assert_eq!(response.header("content-type"), ["application/json"]);
    assert_eq!(response.header("cache-control"), ["no-store"]);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(keys(&body), BTreeSet::from(["url"]));
    let (base, token) = split_url(body["url"].as_str().unwrap());
    assert_eq!(base, DEMO_BASE);
    let claims = jwt_claims(token, SPEC_KEY, &validation(DEMO_AUD)).unwrap();
    assert_eq!(claims["sub"], "alice b");
    assert_eq!(claims["webpubsub.group"], json!(["lobby"]));

    let response = exchange(
        server.addr,
        "PUT /negotiate?id=alice HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        response.status_line, "HTTP/1.1 405 Method Not Allowed",
        "{response:?}"
    );
    assert_eq!(response.header("allow"), ["GET, POST"]);

    let response = exchange(
        server.addr,
        "GET /negotiate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        response.status_line, "HTTP/1.1 400 Bad Request",
        "{response:?}"
    );
    assert!(
        String::from_utf8_lossy(&response.body).contains("`id`"),
        "{response:?}"
    );
}

// ---------------------------------------------------------------------------
// ClientAccess as a handler's answer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn client_access_returned_by_a_handler_is_uncached_json_with_base_url_token_and_url() {
    let signer = demo();
    let app = Router::new().route(
        "/access",
        get(move || {
            let signer = signer.clone();
            async move { signer.client_access(&ClientAccessOptions::new().user_id("alice")) }
        }),
    );
    let answer = call(&app, get_request("/access")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    let body = answer.json();
    assert_eq!(keys(&body), BTreeSet::from(["baseUrl", "token", "url"]));
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["baseUrl"], DEMO_BASE);
    assert_eq!(body["url"], format!("{DEMO_BASE}?access_token={token}"));
    let claims = jwt_claims(token, SPEC_KEY, &validation(DEMO_AUD)).unwrap();
    assert_eq!(claims["sub"], "alice");
}
