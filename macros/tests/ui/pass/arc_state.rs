//! State shared through an `Arc`, and the handler itself handed over as an `Arc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use webpubsub::EventRouter;

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
}

#[derive(Clone, Default)]
struct Chat {
    counters: Arc<Counters>,
}

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message(&self) -> String {
        (self.counters.messages.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }
}

fn main() {
    let chat = Arc::new(Chat::default());
    let counters = Arc::clone(&chat.counters);
    EventRouter::builder()
        .hub("chat", Arc::clone(&chat))
        .hub("news", Chat { counters })
        .access_key("k")
        .build()
        .unwrap();
}
