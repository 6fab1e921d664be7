//! Event methods cannot have generic parameters of their own.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message<T: Default>(&self) {
        let _ = T::default();
    }
}

fn main() {}
