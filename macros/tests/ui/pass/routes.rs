//! One method for several names, and both spellings of the fallback.

use webpubsub::{EventRouter, UserEventRequest};

struct Star;

#[webpubsub::event_handler]
impl Star {
    #[user_event("ping")]
    #[user_event("PING")]
    #[user_event("ping.v2")]
    async fn ping(&self) -> &'static str {
        "pong"
    }

    #[user_event("*")]
    async fn other(&self, req: UserEventRequest) -> String {
        req.context.event_name
    }
}

struct Keyword;

#[webpubsub::event_handler]
impl Keyword {
    /// Doc comments and other attributes stay on event methods.
    #[inline]
    #[user_event(fallback)]
    #[allow(clippy::unused_async)]
    async fn other(&self) {}
}

struct FallbackOnly;

#[webpubsub::event_handler]
impl FallbackOnly {
    #[user_event(fallback)]
    #[user_event("named")]
    async fn everything(&self, text: String) -> String {
        text
    }
}

fn main() {
    EventRouter::builder()
        .hub("star", Star)
        .hub("keyword", Keyword)
        .hub("fallback_only", FallbackOnly)
        .access_key("k")
        .build()
        .unwrap();
}
