//! `#[user_event]` takes a name string or `fallback`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event(foo)]
    async fn foo(&self) {}
}

fn main() {}
