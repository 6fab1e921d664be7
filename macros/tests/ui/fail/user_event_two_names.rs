//! One name per `#[user_event]`: repeat the attribute for more.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("a", "b")]
    async fn a_or_b(&self) {}
}

fn main() {}
