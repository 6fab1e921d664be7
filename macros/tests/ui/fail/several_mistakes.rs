//! Every mistake in a block is reported at once, each at its own tokens.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("a")]
    fn not_async(&self) {}

    #[user_event("b")]
    async fn mutable(&mut self) {}

    #[user_event("a")]
    async fn again(&self) {}

    #[user_event(other)]
    async fn unknown(&self) {}
}

fn main() {}
