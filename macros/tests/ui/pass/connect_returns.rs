//! `connect` may return `ConnectEventResponse`, `()` or a `Result`.

use webpubsub::{ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventRouter};
use webpubsub::events::InvalidData;

struct Response;

#[webpubsub::event_handler]
impl Response {
    async fn connect(&self, req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new().user_id(req.context.connection_id)
    }
}

struct Unit;

#[webpubsub::event_handler]
impl Unit {
    async fn connect(&self, _req: ConnectEventRequest) {}
}

struct ExplicitUnit;

#[webpubsub::event_handler]
impl ExplicitUnit {
    async fn connect(&self, _req: ConnectEventRequest) -> () {}
}

struct Fallible;

#[webpubsub::event_handler]
impl Fallible {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .query_value("user")
            .ok_or_else(|| EventErrorResponse::unauthorized("who?"))?;
        Ok(ConnectEventResponse::new().user_id(user))
    }
}

struct FallibleUnit;

#[webpubsub::event_handler]
impl FallibleUnit {
    async fn connect(&self, req: ConnectEventRequest) -> Result<(), InvalidData> {
        let _: Option<u32> = req.context.state("n").map_err(InvalidData)?;
        Ok(())
    }
}

fn main() {
    EventRouter::builder()
        .hub("response", Response)
        .hub("unit", Unit)
        .hub("explicit_unit", ExplicitUnit)
        .hub("fallible", Fallible)
        .hub("fallible_unit", FallibleUnit)
        .access_key("k")
        .build()
        .unwrap();
}
