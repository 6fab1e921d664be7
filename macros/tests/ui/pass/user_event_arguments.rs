//! Every argument form of a `#[user_event]` method: none, the whole request,
//! one payload of each `FromEventData` type, and the context plus a payload.

use bytes::Bytes;
use webpubsub::{ConnectionContext, EventRouter, UserEventRequest};
use webpubsub::events::EventData;
use webpubsub::extract::Json;

#[derive(serde::Deserialize)]
struct Typing {
    typing: bool,
}

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("none")]
    async fn none(&self) {}

    #[user_event("request")]
    async fn request(&self, req: UserEventRequest) {
        let _ = req.context.connection_id;
    }

    #[user_event("string")]
    async fn string(&self, text: String) {
        let _ = text.len();
    }

    #[user_event("bytes")]
    async fn bytes(&self, data: Bytes) {
        let _ = data.len();
    }

    #[user_event("vec")]
    async fn vec(&self, data: Vec<u8>) {
        let _ = data.len();
    }

    #[user_event("value")]
    async fn value(&self, value: serde_json::Value) {
        let _ = value.is_null();
    }

    #[user_event("data")]
    async fn data(&self, data: EventData) {
        let _ = data.data_type();
    }

    #[user_event("json")]
    async fn json(&self, body: Json<Typing>) {
        let _ = body.0.typing;
    }

    #[user_event("pattern")]
    async fn pattern(&self, Json(Typing { typing }): Json<Typing>) {
        let _ = typing;
    }

    #[user_event("ignored")]
    async fn ignored(&self, _: String) {}

    #[user_event("context_and_text")]
    async fn context_and_text(&self, ctx: ConnectionContext, text: String) {
        let _ = (ctx.user_id, text);
    }

    #[user_event("context_and_json")]
    async fn context_and_json(&self, ctx: ConnectionContext, body: Json<Typing>) {
        let _ = (ctx.connection_id, body.0.typing);
    }

    #[user_event("context_and_bytes")]
    async fn context_and_bytes(&self, _ctx: ConnectionContext, data: Bytes) {
        let _ = data;
    }

    #[user_event("context_and_value")]
    async fn context_and_value(&self, _ctx: ConnectionContext, value: serde_json::Value) {
        let _ = value;
    }

    #[user_event("context_and_data")]
    async fn context_and_data(&self, _ctx: ConnectionContext, data: EventData) {
        let _ = data;
    }

    #[user_event("context_and_vec")]
    async fn context_and_vec(&self, _ctx: ConnectionContext, data: Vec<u8>) {
        let _ = data;
    }
}

fn main() {
    EventRouter::builder()
        .hub("chat", Chat)
        .access_key("k")
        .build()
        .unwrap();
}
