//! `#[event_handler]` takes no arguments.

struct Chat;

#[webpubsub::event_handler(foo)]
impl Chat {
    #[user_event("message")]
    async fn message(&self) {}
}

fn main() {}
