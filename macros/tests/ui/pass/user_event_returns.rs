//! Every return form of a `#[user_event]` method.

use bytes::Bytes;
use webpubsub::{EventErrorResponse, EventRouter, UserEventResponse};
use webpubsub::events::{EventData, InvalidData};
use webpubsub::extract::Json;

#[derive(serde::Serialize)]
struct Pong {
    pong: bool,
}

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[user_event("response")]
    async fn response(&self) -> UserEventResponse {
        UserEventResponse::text("hi")
    }

    #[user_event("unit")]
    async fn unit(&self) {}

    #[user_event("explicit_unit")]
    async fn explicit_unit(&self) -> () {}

    #[user_event("string")]
    async fn string(&self) -> String {
        "hi".to_owned()
    }

    #[user_event("str")]
    async fn str(&self) -> &'static str {
        "hi"
    }

    #[user_event("json")]
    async fn json(&self) -> Json<Pong> {
        Json(Pong { pong: true })
    }

    #[user_event("bytes")]
    async fn bytes(&self) -> Bytes {
        Bytes::from_static(b"\x00\x01")
    }

    #[user_event("vec")]
    async fn vec(&self) -> Vec<u8> {
        vec![0, 1]
    }

    #[user_event("data")]
    async fn data(&self) -> EventData {
        EventData::text("hi")
    }

    #[user_event("option")]
    async fn option(&self) -> Option<String> {
        None
    }

    #[user_event("result")]
    async fn result(&self) -> Result<UserEventResponse, EventErrorResponse> {
        Ok(UserEventResponse::none())
    }

    #[user_event("result_of_json")]
    async fn result_of_json(&self) -> Result<Json<Pong>, EventErrorResponse> {
        Ok(Json(Pong { pong: true }))
    }

    #[user_event("result_invalid_data")]
    async fn result_invalid_data(&self, text: String) -> Result<&'static str, InvalidData> {
        serde_json::from_str::<u32>(&text).map_err(InvalidData)?;
        Ok("a number")
    }

    #[user_event("option_of_result")]
    async fn option_of_result(&self) -> Option<Result<String, EventErrorResponse>> {
        Some(Ok("hi".to_owned()))
    }

    #[user_event("impl_trait")]
    async fn impl_trait(&self) -> impl webpubsub::reply::IntoUserEventResponse {
        "hi"
    }
}

fn main() {
    EventRouter::builder()
        .hub("chat", Chat)
        .access_key("k")
        .build()
        .unwrap();
}
