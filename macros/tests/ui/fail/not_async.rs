//! Event methods are `async fn`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    fn message(&self) {}
}

fn main() {}
