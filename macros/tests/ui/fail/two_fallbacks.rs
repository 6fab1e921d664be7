//! Only one method may be the fallback (`fallback` and `"*"` are the same).

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event(fallback)]
    async fn first(&self) {}

    #[user_event("*")]
    async fn second(&self) {}
}

fn main() {}
