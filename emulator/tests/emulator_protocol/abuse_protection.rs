//! The abuse protection handshake: once per handler URL, shared by
//! concurrent first connections, and retried until the upstream allows it.

use http::Method;
use serde_json::json;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub_emulator::{EventHandlerSettings, HubSettings};

use crate::common::emulator::{ok_ack, open, refused_handshake, JSON};
use crate::helpers::{builder, env, start};
use crate::recording_upstream::{default_reply, Reply, Req, Upstream};

#[tokio::test]
async fn the_abuse_protection_handshake_runs_once_per_handler_url_with_the_emulator_host() {
    let up = Upstream::start().await;
    let other = EventHandlerSettings::new(format!("http://{}/other/{{event}}", up.addr));
    let env = start(
        builder()
            .hub(HubSettings::new("chat").event_handler(up.handler()))
            .hub(HubSettings::new("other").event_handler(other)),
    )
    .await;
    for user in ["a", "b"] {
        let mut c = env
            .json_client(ClientAccessOptions::new().user_id(user))
            .await;
        c.send(json!({"type": "event", "event": "echo", "data": 1, "ackId": 1}))
            .await;
        assert_eq!(c.next_json().await["type"], "message");
        assert_eq!(c.next_json().await, ok_ack(1));
    }
    let other_service = env.service_for("other");
    let url = other_service.client_access_url(&ClientAccessOptions::new().user_id("o"));
    let _o = env.client_at(url, JSON).await;

    let requests = up.requests();
    let preflights: Vec<&Req> = requests
        .iter()
        .filter(|r| r.method == Method::OPTIONS)
        .collect();
    let mut paths: Vec<&str> = preflights.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/eh/chat/validate", "/other/validate"]);
    for preflight in &preflights {
        assert_eq!(
            preflight.header("WebHook-Request-Origin"),
            Some("127.0.0.1")
        );
        assert_eq!(preflight.header("ce-awpsversion"), Some("1.0"));
        assert!(preflight.header("ce-signature").is_none());
        assert!(preflight.body.is_empty());
    }
    // Each validation came before the first event to that URL.
    let first_options = requests
        .iter()
        .position(|r| r.path == "/eh/chat/validate")
        .unwrap();
    let first_post = requests
        .iter()
        .position(|r| r.path.starts_with("/eh/chat/") && r.method == Method::POST)
        .unwrap();
    assert!(first_options < first_post);
}

#[tokio::test]
async fn concurrent_first_connections_share_one_abuse_protection_handshake() {
    let up = Upstream::start().await;
    let env = env(&up).await;
    let connects = (0..5).map(|i| {
        let url = env.url(&ClientAccessOptions::new().user_id(format!("c{i}")));
        async move { open(&url, &[JSON]).await.map(|(ws, _)| ws) }
    });
    let sockets = futures_util::future::join_all(connects).await;
    assert!(sockets.iter().all(Result::is_ok));
    assert_eq!(up.preflights().len(), 1);
}

#[tokio::test]
async fn a_failing_abuse_protection_handshake_refuses_connects_until_the_upstream_is_fixed() {
    let up = Upstream::with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(400)
        } else {
            default_reply(req)
        }
    })
    .await;
    let env = env(&up).await;
    let url = env.url(&ClientAccessOptions::new().user_id("u"));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);

    // 200 without WebHook-Allowed-Origin, or allowing another host: still refused.
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200)
        } else {
            default_reply(req)
        }
    });
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200).header("WebHook-Allowed-Origin", "elsewhere.example.com")
        } else {
            default_reply(req)
        }
    });
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 500);
    assert!(
        up.requests().iter().all(|r| r.method == Method::OPTIONS),
        "no event is sent to an unvalidated URL"
    );

    // Fixed (one header line per allowed origin): validated anew, then cached.
    up.respond_with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(200)
                .header("WebHook-Allowed-Origin", "elsewhere.example.com")
                .header("WebHook-Allowed-Origin", "127.0.0.1")
        } else {
            default_reply(req)
        }
    });
    env.json_client(ClientAccessOptions::new().user_id("u"))
        .await;
    env.json_client(ClientAccessOptions::new().user_id("v"))
        .await;
    assert_eq!(up.preflights().len(), 4);
}

#[tokio::test]
async fn any_2xx_with_an_allowed_origin_passes_the_abuse_protection_handshake() {
    let up = Upstream::with(|req| {
        if req.method == Method::OPTIONS {
            Reply::status(204).header("WebHook-Allowed-Origin", "*")
        } else {
            default_reply(req)
        }
    })
    .await;
    let env = env(&up).await;
    env.json_client(ClientAccessOptions::new().user_id("u"))
        .await;
}
