//! Methods for one event behind complementary `#[cfg]`s are not duplicates:
//! each is compiled under its own condition, and the enabled one answers.
//! (`cfg(all())` is always on, `cfg(any())` always off, as with
//! `feature = "x"` / `not(feature = "x")`.)

use tower::ServiceExt;
use webpubsub::{testing, ConnectEventRequest, ConnectEventResponse, EventRouter};

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[cfg(any())]
    #[user_event("which")]
    async fn which_off(&self) -> &'static str {
        "off"
    }

    #[cfg(all())]
    #[user_event("which")]
    async fn which_on(&self) -> &'static str {
        "on"
    }

    #[cfg(all())]
    #[user_event(fallback)]
    async fn fallback_on(&self) -> &'static str {
        "fallback on"
    }

    #[cfg(any())]
    #[user_event("*")]
    async fn fallback_off(&self) -> &'static str {
        "fallback off"
    }

    #[cfg(all())]
    async fn connect(&self, _req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id("on")
    }

    #[cfg(any())]
    async fn connect(&self, _req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id("off")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = EventRouter::builder()
        .hub("chat", Chat)
        .access_key("k")
        .build()
        .unwrap();
    for (event, body) in [("which", "on"), ("other", "fallback on")] {
        let request = testing::user_event("chat", "c1", event).sign("k");
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, bytes) = testing::read_body(response).await;
        assert_eq!(parts.status, 200, "{event}");
        assert_eq!(bytes, body, "{event}");
    }
    let response = app
        .oneshot(testing::connect("chat", "c1").sign("k"))
        .await
        .unwrap();
    let (parts, bytes) = testing::read_body(response).await;
    assert_eq!(parts.status, 200);
    assert_eq!(bytes, r#"{"userId":"on"}"#);
}
