//! With two arguments, the context comes first: `(ctx: ConnectionContext, payload)`.

use webpubsub::ConnectionContext;

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("message")]
    async fn message(&self, text: String, ctx: ConnectionContext) {
        let _ = (text, ctx);
    }
}

fn main() {}
