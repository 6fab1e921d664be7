//! Event methods take `&self`, not `&mut self`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message(&mut self) {}
}

fn main() {}
