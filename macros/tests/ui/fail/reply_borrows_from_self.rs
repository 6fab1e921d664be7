//! A reply cannot borrow from `self` (or the request): it is turned into an
//! owned answer, so the method returns `String` or `&'static str`.

use webpubsub::{ConnectEventRequest, ConnectEventResponse, EventErrorResponse};

struct Chat {
    name: String,
    answer: ConnectEventResponse,
}

#[webpubsub::event_handler]
impl Chat {
    async fn connect(&self, _req: ConnectEventRequest) -> &ConnectEventResponse {
        &self.answer
    }

    #[user_event("name")]
    async fn name(&self) -> &str {
        &self.name
    }

    #[user_event("maybe")]
    async fn maybe(&self) -> Result<Option<&str>, EventErrorResponse> {
        Ok(Some(&self.name))
    }

    #[user_event("fine")]
    async fn fine(&self) -> &'static str {
        "a static reply is fine"
    }
}

fn main() {}
