//! Event methods may be `pub`, and may be compiled out with `#[cfg]`: a
//! method that is not compiled handles nothing.

use tower::ServiceExt;
use webpubsub::{testing, ConnectEventRequest, EventRouter};

pub struct Chat;

#[webpubsub::event_handler]
impl Chat {
    pub async fn connect(&self, _req: ConnectEventRequest) {}

    #[user_event("public")]
    pub async fn public(&self) -> &'static str {
        "public"
    }

    #[user_event("crate_visible")]
    pub(crate) async fn crate_visible(&self) -> &'static str {
        "crate_visible"
    }

    #[cfg(all())]
    #[user_event("compiled")]
    async fn compiled(&self) -> &'static str {
        "compiled"
    }

    #[cfg(any())]
    #[user_event("compiled_out")]
    async fn compiled_out(&self) -> &'static str {
        "compiled_out"
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = EventRouter::builder()
        .hub("chat", Chat)
        .access_key("k")
        .build()
        .unwrap();
    for (name, status) in [
        ("public", 200),
        ("crate_visible", 200),
        ("compiled", 200),
        ("compiled_out", 204),
    ] {
        let request = testing::user_event("chat", "c1", name).sign("k");
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{name}");
    }
}
