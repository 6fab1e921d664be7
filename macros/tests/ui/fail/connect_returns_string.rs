//! `connect` must answer with `ConnectEventResponse`, `()` or a `Result` of them.

use webpubsub::ConnectEventRequest;

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connect(&self, req: ConnectEventRequest) -> String {
        req.context.connection_id
    }
}

fn main() {}
