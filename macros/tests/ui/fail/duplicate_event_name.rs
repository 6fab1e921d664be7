//! One method per user event name.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("x")]
    async fn first(&self) {}

    #[user_event("x")]
    async fn second(&self) {}
}

fn main() {}
