//! A system-event method compiled out with `#[cfg]` handles nothing: the
//! event keeps the trait's default (here: `connected` answers `204`). The
//! generated impl must not call the trait's own method in its place.

use tower::ServiceExt;
use webpubsub::{testing, EventRouter};

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[cfg(any())]
    async fn connected(&self, req: webpubsub::ConnectedEventRequest) {
        let _ = req;
    }

    #[user_event("ping")]
    async fn ping(&self) -> &'static str {
        "pong"
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = EventRouter::builder()
        .hub("chat", Chat)
        .access_key("k")
        .build()
        .unwrap();
    let response = app
        .oneshot(testing::connected("chat", "c1").sign("k"))
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}
