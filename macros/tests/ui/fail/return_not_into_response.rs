//! A user-event method must return something `IntoUserEventResponse`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("count")]
    async fn count(&self) -> u32 {
        1
    }
}

fn main() {}
