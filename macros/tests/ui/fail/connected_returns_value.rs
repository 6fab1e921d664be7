//! `connected` returns nothing: the service ignores answers to it.

use webpubsub::ConnectedEventRequest;

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connected(&self, req: ConnectedEventRequest) -> bool {
        req.context.user_id.is_some()
    }
}

fn main() {}
