//! A payload argument must be a `FromEventData` type.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("count")]
    async fn count(&self, n: u32) {
        let _ = n;
    }
}

fn main() {}
