//! `connect` takes its request: `req: ConnectEventRequest`.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connect(&self) {}
}

fn main() {}
