//! `connect` takes a `ConnectEventRequest`, not another event's request.

use webpubsub::UserEventRequest;

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connect(&self, req: UserEventRequest) {
        let _ = req;
    }
}

fn main() {}
