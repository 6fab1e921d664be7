//! User-event methods take at most the context and one payload.

use webpubsub::ConnectionContext;

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message(&self, ctx: ConnectionContext, text: String, extra: String) {
        let _ = (ctx, text, extra);
    }
}

fn main() {}
