//! `#[user_event]` needs a name (or `fallback`).

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event]
    async fn message(&self) {}
}

fn main() {}
