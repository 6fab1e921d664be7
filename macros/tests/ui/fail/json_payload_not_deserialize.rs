//! `Json<T>` needs `T: DeserializeOwned`.

use webpubsub::extract::Json;

struct Typing {
    typing: bool,
}

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("typing")]
    async fn typing(&self, body: Json<Typing>) {
        let _ = body.0.typing;
    }
}

fn main() {}
