//! Event methods take `&self` first.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message(text: String) -> String {
        text
    }
}

fn main() {}
