//! A handler that panics answers `500` (logged at `error`), and the router
//! keeps serving (issue item 6, STYLE §3).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{call, call_logged, router, Recorder, KEY};
use webpubsub::events::Event;
use webpubsub::{testing, ConnectEventResponse, UserEventResponse};

/// Panics on the first `n` blocking events, then answers normally.
fn panics_first(n: usize) -> Recorder {
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_user = Arc::clone(&seen);
    Recorder::new()
        .on_connect(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < n {
                panic!("handler bug in connect");
            }
            Ok(ConnectEventResponse::new().user_id("ok"))
        })
        .on_user_event(move |req| {
            if seen_user.fetch_add(1, Ordering::SeqCst) < n {
                panic!("handler bug in user_event");
            }
            Ok(req.data.clone().into())
        })
}

#[tokio::test]
async fn a_panicking_connect_handler_answers_500_and_the_next_request_works() {
    let router = router(panics_first(1));
    let (answer, logs) = call_logged(&router, testing::connect("chat", "c1").sign(KEY)).await;
    assert_eq!(answer.status, 500);
    assert!(
        !answer.text().contains("handler bug"),
        "panic message is not leaked: {answer:?}"
    );
    let errors: Vec<_> = logs
        .events()
        .into_iter()
        .filter(|e| e.level == tracing::Level::ERROR)
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "one error log for the panic: {:#?}",
        logs.events()
    );
    assert!(errors[0].target.starts_with("webpubsub"), "{errors:?}");

    let answer = call(&router, testing::connect("chat", "c2").sign(KEY)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), serde_json::json!({"userId": "ok"}));
}

#[tokio::test]
async fn a_panicking_user_event_handler_answers_500_and_the_next_request_works() {
    let router = router(panics_first(2));
    for _ in 0..2 {
        let request = testing::user_event("chat", "c1", "message")
            .text("boom")
            .sign(KEY);
        assert_eq!(call(&router, request).await.status, 500);
    }
    let request = testing::user_event("chat", "c1", "message")
        .text("fine")
        .sign(KEY);
    let answer = call(&router, request).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (200, "fine")
    );
}

#[tokio::test]
async fn a_panicking_notification_handler_answers_500_and_the_next_request_works() {
    let router = router(Recorder::new().on_notification(|event| {
        if let Event::Disconnected(req) = event {
            if req.reason.as_deref() == Some("boom") {
                panic!("handler bug in disconnected");
            }
        }
    }));
    let request = testing::disconnected("chat", "c1").reason("boom").sign(KEY);
    assert_eq!(call(&router, request).await.status, 500);
    let request = testing::disconnected("chat", "c1").reason("fine").sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
    let request = testing::connected("chat", "c1").sign(KEY);
    assert_eq!(call(&router, request).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panics_in_concurrent_requests_do_not_disturb_the_others() {
    let router = router(Recorder::new().on_user_event(|req| {
        if req.data.as_text() == Some("boom") {
            panic!("handler bug");
        }
        Ok(UserEventResponse::text("ok"))
    }));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let text = if i % 2 == 0 { "boom" } else { "fine" };
            let request = testing::user_event("chat", "c1", "message")
                .text(text)
                .sign(KEY);
            (text, call(&router, request).await)
        }));
    }
    for task in tasks {
        let (text, answer) = task.await.expect("the task itself never panics");
        match text {
            "boom" => assert_eq!(answer.status, 500),
            _ => assert_eq!(
                (answer.status.as_u16(), answer.text().as_str()),
                (200, "ok")
            ),
        }
    }
}
