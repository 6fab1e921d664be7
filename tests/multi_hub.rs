//! Several hubs in one app: one handler per hub, or one handler serving
//! several hubs; `ce-hub` is matched case-insensitively.

mod common;

use common::{call, call_count, call_logged, Recorder, KEY};
use webpubsub::{testing, ConfigError, EventRouter, UserEventResponse};

fn named(name: &'static str) -> Recorder {
    Recorder::new().on_user_event(move |req| {
        Ok(UserEventResponse::text(format!(
            "{name} handled hub {}",
            req.context.hub
        )))
    })
}

#[tokio::test]
async fn each_hub_is_routed_to_its_own_handler() {
    let chat = named("chat-handler");
    let news = named("news-handler");
    let (chat_calls, news_calls) = (chat.calls(), news.calls());
    let router = EventRouter::builder()
        .hub("chat", chat)
        .hub("news", news)
        .access_key(KEY)
        .build()
        .unwrap();
    let cases = [
        ("chat", "chat-handler handled hub chat"),
        ("news", "news-handler handled hub news"),
        ("CHAT", "chat-handler handled hub CHAT"),
        ("News", "news-handler handled hub News"),
    ];
    for (hub, reply) in cases {
        let request = testing::user_event(hub, "c1", "message")
            .text("x")
            .sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(answer.status, 200, "{hub}");
        assert_eq!(answer.text(), reply);
    }
    assert_eq!((call_count(&chat_calls), call_count(&news_calls)), (2, 2));
}

#[tokio::test]
async fn hub_registered_with_capitals_matches_any_case() {
    let recorder = Recorder::new();
    let calls = recorder.calls();
    let router = EventRouter::builder()
        .hub("ChatRoom", recorder)
        .access_key(KEY)
        .build()
        .unwrap();
    for hub in ["chatroom", "CHATROOM", "ChatRoom"] {
        let answer = call(&router, testing::connect(hub, "c1").sign(KEY)).await;
        assert_eq!(answer.status, 204, "{hub}");
    }
    assert_eq!(call_count(&calls), 3);
}

#[tokio::test]
async fn one_handler_can_serve_several_hubs_and_tell_them_apart() {
    let handler =
        Recorder::new().on_user_event(|req| Ok(UserEventResponse::text(req.context.hub.clone())));
    let calls = handler.calls();
    let router = EventRouter::builder()
        .hubs(["chat", "news", "sports"], handler)
        .access_key(KEY)
        .build()
        .unwrap();
    for hub in ["chat", "news", "sports", "NEWS"] {
        let request = testing::user_event(hub, "c1", "message")
            .text("x")
            .sign(KEY);
        let answer = call(&router, request).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text()),
            (200, hub.to_owned())
        );
    }
    assert_eq!(call_count(&calls), 4);
}

#[tokio::test]
async fn hub_that_is_not_served_is_404_and_reaches_no_handler() {
    let (a, b) = (Recorder::new(), Recorder::new());
    let (a_calls, b_calls) = (a.calls(), b.calls());
    let router = EventRouter::builder()
        .hub("chat", a)
        .hubs(["news"], b)
        .access_key(KEY)
        .build()
        .unwrap();
    for hub in ["chats", "chat2", "new", "sport"] {
        let (answer, logs) = call_logged(&router, testing::connect(hub, "c1").sign(KEY)).await;
        assert_eq!(answer.status, 404, "{hub}");
        assert_eq!(answer.text(), format!("hub `{hub}` is not served here"));
        common::assert_one_rejection_logged(&logs, 404, tracing::Level::WARN);
        assert_eq!(logs.rejections()[0].field("hub"), Some(hub));
    }
    assert_eq!(call_count(&a_calls) + call_count(&b_calls), 0);
}

#[tokio::test]
async fn registering_a_hub_twice_is_a_configuration_error() {
    let err = EventRouter::builder()
        .hub("chat", Recorder::new())
        .hub("Chat", Recorder::new())
        .access_key(KEY)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::DuplicateHub { hub: "Chat".into() });
    assert!(err.to_string().contains("Chat"), "{err}");

    let err = EventRouter::builder()
        .hubs(["chat", "news"], Recorder::new())
        .hub("NEWS", Recorder::new())
        .access_key(KEY)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::DuplicateHub { hub: "NEWS".into() });

    let err = EventRouter::builder()
        .hubs(["a", "b", "A"], Recorder::new())
        .access_key(KEY)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::DuplicateHub { .. }), "{err:?}");
}

#[tokio::test]
async fn a_router_needs_at_least_one_valid_hub() {
    let err = EventRouter::builder().access_key(KEY).build().unwrap_err();
    assert_eq!(err, ConfigError::NoHub);

    for bad in ["", "1chat", "chat room", "chat/room", "chät"] {
        let err = EventRouter::builder()
            .hub(bad, Recorder::new())
            .access_key(KEY)
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidHub { hub: bad.into() }, "{bad:?}");
    }
}

#[tokio::test]
async fn routers_for_different_hubs_can_be_mounted_side_by_side() {
    let (chat, news) = (named("chat-handler"), named("news-handler"));
    let app = axum::Router::new()
        .nest_service(
            "/chat",
            EventRouter::builder()
                .hub("chat", chat)
                .access_key(KEY)
                .build()
                .unwrap(),
        )
        .nest_service(
            "/news",
            EventRouter::builder()
                .hub("news", news)
                .access_key("news-key")
                .build()
                .unwrap(),
        );
    let request = testing::user_event("chat", "c1", "m")
        .text("x")
        .uri("/chat")
        .sign(KEY);
    assert_eq!(
        call(&app, request).await.text(),
        "chat-handler handled hub chat"
    );
    let request = testing::user_event("news", "c1", "m")
        .text("x")
        .uri("/news/x")
        .sign("news-key");
    assert_eq!(
        call(&app, request).await.text(),
        "news-handler handled hub news"
    );
    // Each mount only serves its own hub, with its own key.
    let request = testing::user_event("news", "c1", "m")
        .text("x")
        .uri("/chat")
        .sign(KEY);
    assert_eq!(call(&app, request).await.status, 404);
    let request = testing::user_event("news", "c1", "m")
        .text("x")
        .uri("/news")
        .sign(KEY);
    assert_eq!(call(&app, request).await.status, 401);
}

#[tokio::test]
async fn router_debug_lists_hubs_without_secrets() {
    let router = EventRouter::builder()
        .hubs(["chat", "news"], Recorder::new())
        .access_key("very-secret-key")
        .build()
        .unwrap();
    let debug = format!("{router:?}");
    assert!(debug.contains("chat") && debug.contains("news"), "{debug}");
    assert!(!debug.contains("very-secret-key"), "{debug}");
}
