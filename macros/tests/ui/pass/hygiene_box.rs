//! A module with its own `Box` (as `postgres_protocol::types::Box` users
//! have) can still derive a handler: the generated code must not name the
//! prelude's `Box` unqualified.

#![allow(dead_code)]

mod app {
    struct Box;

    pub(crate) struct Chat;

    #[::webpubsub::event_handler]
    impl Chat {
        async fn connected(&self) {}

        #[user_event("ping")]
        async fn ping(&self) -> &'static str {
            let _ = Box;
            "pong"
        }
    }
}

fn main() {
    webpubsub::EventRouter::builder()
        .hub("chat", app::Chat)
        .access_key("k")
        .build()
        .unwrap();
}
