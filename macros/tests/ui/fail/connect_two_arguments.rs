//! `connect` takes exactly its request.

use webpubsub::{ConnectEventRequest, ConnectionContext};

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connect(&self, ctx: ConnectionContext, req: ConnectEventRequest) {
        let _ = (ctx, req);
    }
}

fn main() {}
