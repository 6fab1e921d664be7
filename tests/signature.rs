//! `ce-signature` (spec §3, issue decision 2): HMAC-SHA256 of `ce-connectionId`
//! under any configured key; refusals are `401` with a short text body and
//! never reach the handler.

mod common;

use axum::http::HeaderValue;
use common::{
    assert_one_rejection_logged, call, call_count, call_logged, router, Recorder, CONN_STR, HOST,
    KEY, SECONDARY_KEY,
};
use webpubsub::config::AccessKey;
use webpubsub::upstream::ValidateUpstreamLayer;
use webpubsub::{testing, ConfigError, EventRouter};

/// The spec's test vectors (§3.1): key, connection id, expected entry.
const VECTORS: [(&str, &str, &str); 4] = [
    (
        "7aab239577fd4f24bc919802fb629f5f",
        "0f9c97a2f0bf4706afe87a14e0797b11",
        "sha256=7767effcb3946f3e1de039df4b986ef02c110b1469d02c0a06f41b3b727ab561",
    ),
    (
        "primary-key-1",
        "conn-1",
        "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
    ),
    (
        "secondary-key-2",
        "conn-1",
        "sha256=29bc37a6b8b4a59dc07cfe0d3f9a557af2329100d6ce96f240de256e36b0dea4",
    ),
    (
        "ключ",
        "conn-ü",
        "sha256=6ca32c466a6a8d8cb84eaf6afbfeb2b339e14b55a62208515a57b2f32e60c8a1",
    ),
];

const MISMATCH_BODY: &str = "ce-signature does not match any configured access key";

fn router_with_keys(keys: &[&str]) -> (EventRouter, common::Calls) {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let mut builder = EventRouter::builder().hub("chat", recorder);
    for key in keys {
        builder = builder.access_key(*key);
    }
    (builder.build().unwrap(), calls)
}

/// Flips the last hex digit of a `sha256=` entry.
fn tampered(entry: &str) -> String {
    let mut s = entry.to_owned();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

#[tokio::test]
async fn access_key_signatures_match_the_spec_vectors() {
    for (key, connection_id, expected) in VECTORS {
        assert_eq!(
            AccessKey::new(key).unwrap().signature(connection_id),
            expected,
            "key {key}"
        );
    }
}

#[tokio::test]
async fn spec_vector_signatures_are_accepted_by_the_router() {
    for (key, connection_id, entry) in VECTORS {
        let (router, calls) = router_with_keys(&[key]);
        let request = testing::connected("chat", connection_id)
            .header("ce-signature", entry)
            .request();
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 204, "key {key}: {answer:?}");
        assert_eq!(call_count(&calls), 1, "key {key}");
    }
}

#[tokio::test]
async fn spec_vector_with_one_wrong_digit_is_refused() {
    for (key, connection_id, entry) in VECTORS {
        let (router, calls) = router_with_keys(&[key]);
        let request = testing::connected("chat", connection_id)
            .header("ce-signature", &tampered(entry))
            .request();
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 401, "key {key}: {answer:?}");
        assert_eq!(call_count(&calls), 0, "key {key}");
    }
}

#[tokio::test]
async fn signature_made_with_primary_or_secondary_key_is_accepted() {
    let (router, calls) = router_with_keys(&[KEY, SECONDARY_KEY]);
    for key in [KEY, SECONDARY_KEY] {
        let answer = call(&router, testing::connected("chat", "conn-1").sign(key)).await;
        assert_eq!(answer.status, 204, "signed with {key}: {answer:?}");
    }
    assert_eq!(call_count(&calls), 2);
}

#[tokio::test]
async fn signature_made_with_previous_key_is_accepted_after_rotation() {
    // The service signs with both its keys; the app only knows the new one.
    let (router, calls) = router_with_keys(&[SECONDARY_KEY]);
    let request = testing::connected("chat", "conn-1")
        .key("rotated-out-key")
        .key(SECONDARY_KEY)
        .request();
    let joined = request.headers()["ce-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(joined.matches("sha256=").count(), 2, "{joined}");
    assert_eq!(call(&router, request).await.status, 204);

    // And the other way round: the app only knows the old key.
    let (router, _) = router_with_keys(&["rotated-out-key"]);
    let request = testing::connected("chat", "conn-1")
        .key("rotated-out-key")
        .key(SECONDARY_KEY)
        .request();
    assert_eq!(call(&router, request).await.status, 204);
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn comma_joined_entries_with_spaces_are_accepted() {
    let (router, _) = router_with_keys(&[SECONDARY_KEY]);
    let value = format!("{}, {}", tampered(VECTORS[1].2), VECTORS[2].2);
    let request = testing::connected("chat", "conn-1")
        .header("ce-signature", &value)
        .request();
    assert_eq!(call(&router, request).await.status, 204);
}

#[tokio::test]
async fn entries_on_separate_header_lines_are_accepted() {
    let (router, calls) = router_with_keys(&[SECONDARY_KEY]);
    let request = testing::connected("chat", "conn-1")
        .header("ce-signature", VECTORS[1].2) // primary: not configured here
        .header("ce-signature", VECTORS[2].2) // secondary: configured
        .request();
    assert_eq!(request.headers().get_all("ce-signature").iter().count(), 2);
    assert_eq!(call(&router, request).await.status, 204);
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn upper_case_hex_signature_is_accepted() {
    let (router, _) = router_with_keys(&[KEY]);
    let upper = format!(
        "sha256={}",
        VECTORS[1].2["sha256=".len()..].to_ascii_uppercase()
    );
    let request = testing::connected("chat", "conn-1")
        .header("ce-signature", &upper)
        .request();
    assert_eq!(call(&router, request).await.status, 204);
}

#[tokio::test]
async fn signature_made_with_a_wrong_key_is_refused_with_401_and_text_body() {
    let (router, calls) = router_with_keys(&[KEY]);
    let request = testing::connect("chat", "conn-1").sign("not-the-key");
    let (answer, logs) = call_logged(&router, request).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), MISMATCH_BODY);
    assert!(answer
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("text/plain")));
    assert_eq!(call_count(&calls), 0, "the handler is never called");
    assert_one_rejection_logged(&logs, 401, tracing::Level::WARN);
}

#[tokio::test]
async fn request_without_ce_signature_is_refused_with_401() {
    let (router, calls) = router_with_keys(&[KEY]);
    let (answer, logs) = call_logged(&router, testing::connect("chat", "conn-1").request()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), "missing header ce-signature");
    assert_eq!(call_count(&calls), 0);
    assert_one_rejection_logged(&logs, 401, tracing::Level::WARN);
}

#[tokio::test]
async fn empty_or_malformed_signatures_are_refused_with_401() {
    let (router, calls) = router_with_keys(&[KEY]);
    for value in [
        "",
        "sha256=",
        "sha256=zz",
        "md5=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
        "9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a",
        "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236",
        "sha256=9d67a902d0f59a8d6d6d8ff5639a943f249a5992f0ec4ea30d3c31cd766c236a00",
        ",,, ,",
    ] {
        let request = testing::connected("chat", "conn-1")
            .header("ce-signature", value)
            .request();
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 401, "{value:?}: {answer:?}");
    }
    assert_eq!(call_count(&calls), 0);
}

#[tokio::test]
async fn signature_of_another_connection_is_refused() {
    let (router, calls) = router_with_keys(&[KEY]);
    let mut request = testing::user_event("chat", "conn-1", "message")
        .text("hi")
        .sign(KEY);
    request
        .headers_mut()
        .insert("ce-connectionid", HeaderValue::from_static("conn-2"));
    let answer = call(&router, request).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (401, MISMATCH_BODY)
    );
    assert_eq!(call_count(&calls), 0);
}

#[tokio::test]
async fn request_from_an_origin_that_is_not_configured_is_refused_with_401() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = host_router(recorder);
    // Right key, but sent from a host the router does not know.
    let request = testing::connect("chat", "conn-1")
        .origin("other.webpubsub.azure.com")
        .sign(KEY);
    let (answer, logs) = call_logged(&router, request).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(
        answer.text().contains("WebHook-Request-Origin"),
        "{answer:?}"
    );
    assert_eq!(call_count(&calls), 0);
    assert_one_rejection_logged(&logs, 401, tracing::Level::WARN);

    // The same request from the configured host passes.
    let answer = call(
        &router,
        testing::connect("chat", "conn-1").sign_as(CONN_STR),
    )
    .await;
    assert_eq!(answer.status, 204);
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn request_without_origin_is_refused_with_401_when_keys_belong_to_hosts() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = host_router(recorder);
    let request = testing::connect("chat", "conn-1").sign(KEY); // no origin
    assert!(request.headers().get("webhook-request-origin").is_none());
    let answer = call(&router, request).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (401, "missing header WebHook-Request-Origin")
    );
    assert_eq!(call_count(&calls), 0);
}

#[tokio::test]
async fn each_host_accepts_only_its_own_key() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .endpoint("a.webpubsub.azure.com", "key-a")
        .endpoint("b.webpubsub.azure.com", "key-b")
        .build()
        .unwrap();
    let cases = [
        ("a.webpubsub.azure.com", "key-a", 204),
        ("b.webpubsub.azure.com", "key-b", 204),
        ("a.webpubsub.azure.com", "key-b", 401),
        ("b.webpubsub.azure.com", "key-a", 401),
        ("A.WEBPUBSUB.AZURE.COM", "key-a", 204),
        // Several hosts listed: the configured one's key applies.
        ("x.example.com, b.webpubsub.azure.com", "key-b", 204),
    ];
    for (origin, key, status) in cases {
        let request = testing::connected("chat", "c1").origin(origin).sign(key);
        assert_eq!(
            call(&router, request).await.status,
            status,
            "{origin} / {key}"
        );
    }
    assert_eq!(call_count(&calls), 4);
}

#[tokio::test]
async fn hosts_on_separate_origin_lines_each_bring_their_keys() {
    let router = EventRouter::builder()
        .hub("chat", Recorder::new())
        .endpoint("a.webpubsub.azure.com", "key-a")
        .endpoint("b.webpubsub.azure.com", "key-b")
        .build()
        .unwrap();
    for (key, status) in [("key-b", 204), ("key-a", 401), ("key-c", 401)] {
        let request = testing::connected("chat", "c1")
            .origin("x.example.com")
            .header("webhook-request-origin", "b.webpubsub.azure.com")
            .sign(key);
        assert_eq!(
            request
                .headers()
                .get_all("webhook-request-origin")
                .iter()
                .count(),
            2
        );
        assert_eq!(call(&router, request).await.status, status, "{key}");
    }
}

#[tokio::test]
async fn key_without_host_accepts_requests_from_any_origin() {
    let (router, _) = router_with_keys(&[KEY]);
    for origin in [None, Some("anything.example.com"), Some(HOST)] {
        let mut event = testing::connected("chat", "c1");
        if let Some(origin) = origin {
            event = event.origin(origin);
        }
        assert_eq!(
            call(&router, event.sign(KEY)).await.status,
            204,
            "{origin:?}"
        );
    }
}

#[tokio::test]
async fn insecure_skip_signature_check_accepts_unsigned_requests() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("chat", recorder)
        .insecure_skip_signature_check()
        .build()
        .unwrap();
    let answer = call(&router, testing::connect("chat", "c1").request()).await;
    assert_eq!(answer.status, 204);
    let answer = call(&router, testing::connect("chat", "c1").sign("whatever")).await;
    assert_eq!(answer.status, 204);
    assert_eq!(call_count(&calls), 2);
}

#[tokio::test]
async fn building_without_an_access_key_is_refused() {
    let err = EventRouter::builder()
        .hub("chat", Recorder::new())
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::NoAccessKey);
    assert!(
        err.to_string().contains("insecure_skip_signature_check"),
        "{err}"
    );

    // An origin or a key-less connection string is not a key.
    let err = EventRouter::builder()
        .hub("chat", Recorder::new())
        .allowed_origin(HOST)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::NoAccessKey);
    let err = EventRouter::builder()
        .hub("chat", Recorder::new())
        .connection_string("Endpoint=https://demo.webpubsub.azure.com;Version=1.0;")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::NoAccessKey);

    let err = ValidateUpstreamLayer::builder().build().unwrap_err();
    assert_eq!(err, ConfigError::NoAccessKey);
}

#[tokio::test]
async fn signatures_are_checked_on_every_event_kind() {
    let (router, calls) = router_with_keys(&[KEY]);
    let events = [
        testing::connect("chat", "c1"),
        testing::connected("chat", "c1"),
        testing::user_event("chat", "c1", "message").text("hi"),
        testing::disconnected("chat", "c1"),
        testing::group_joined("chat", "c1", "g"),
        testing::group_left("chat", "c1", "g"),
    ];
    for event in events {
        let answer = call(&router, event.clone().sign("wrong")).await;
        assert_eq!(answer.status, 401, "{event:?}");
        let answer = call(&router, event.clone().sign(KEY)).await;
        assert_eq!(answer.status, 204, "{event:?}");
    }
    assert_eq!(call_count(&calls), 6);
}

#[tokio::test]
async fn refusal_logs_never_contain_keys_or_signatures() {
    let (router, _) = router_with_keys(&[KEY]);
    let request = testing::connect("chat", "conn-1").sign("wrong-key-xyz");
    let sent = request.headers()["ce-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let hex = sent.trim_start_matches("sha256=").to_owned();
    let (answer, logs) = call_logged(&router, request).await;
    assert_eq!(answer.status, 401);
    let events = logs.events();
    assert!(!events.is_empty());
    for event in events {
        for value in event.fields.values() {
            for secret in [KEY, "wrong-key-xyz", hex.as_str(), &VECTORS[1].2[7..]] {
                assert!(!value.contains(secret), "log leaks a secret: {event:?}");
            }
        }
    }
}

#[tokio::test]
async fn sign_as_a_connection_string_is_accepted_by_a_router_built_from_it() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = host_router(recorder);
    let request = testing::user_event("chat", "c1", "message")
        .text("hi")
        .sign_as(CONN_STR);
    assert_eq!(call(&router, request).await.status, 204);
    let wrong = "Endpoint=https://demo.webpubsub.azure.com;AccessKey=nope";
    let request = testing::user_event("chat", "c1", "message")
        .text("hi")
        .sign_as(wrong);
    assert_eq!(call(&router, request).await.status, 401);
    assert_eq!(call_count(&calls), 1);
}

#[tokio::test]
async fn router_built_with_the_common_helper_checks_signatures() {
    // Guards the helper the other test files rely on.
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = router(recorder);
    assert_eq!(
        call(&router, testing::connect("chat", "c1").request())
            .await
            .status,
        401
    );
    assert_eq!(
        call(&router, testing::connect("chat", "c1").sign(KEY))
            .await
            .status,
        204
    );
    assert_eq!(call_count(&calls), 1);
}

/// A router whose only key belongs to the host of `CONN_STR`.
fn host_router(handler: Recorder) -> EventRouter {
    EventRouter::builder()
        .hub("chat", handler)
        .connection_string(CONN_STR)
        .build()
        .expect("a valid router")
}
