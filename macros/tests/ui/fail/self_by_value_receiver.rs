//! Event methods take `&self`, not `self`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connected(self) {}
}

fn main() {}
