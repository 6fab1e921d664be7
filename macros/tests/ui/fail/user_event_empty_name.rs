//! A user event name cannot be empty.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("")]
    async fn message(&self) {}
}

fn main() {}
