//! `connected`, `disconnected`, `group_joined` and `group_left`, with and
//! without the event's request.

use webpubsub::{ConnectedEventRequest, DisconnectedEventRequest, EventRouter};
use webpubsub::events::{GroupJoinedEventRequest, GroupLeftEventRequest};

struct WithRequest;

#[webpubsub::event_handler]
impl WithRequest {
    async fn connected(&self, req: ConnectedEventRequest) {
        let _ = req.context;
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let _ = req.reason;
    }

    async fn group_joined(&self, req: GroupJoinedEventRequest) {
        let _ = req.group;
    }

    async fn group_left(&self, req: GroupLeftEventRequest) -> () {
        let _ = req.group;
    }
}

struct WithoutRequest;

#[webpubsub::event_handler]
impl WithoutRequest {
    async fn connected(&self) {}

    async fn disconnected(&self) {}

    async fn group_joined(&self) {}

    async fn group_left(&self) {}
}

struct Nothing;

#[webpubsub::event_handler]
impl Nothing {}

fn main() {
    EventRouter::builder()
        .hub("with", WithRequest)
        .hub("without", WithoutRequest)
        .hub("nothing", Nothing)
        .access_key("k")
        .build()
        .unwrap();
}
