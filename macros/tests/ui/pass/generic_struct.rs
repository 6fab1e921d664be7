//! A generic handler: the block's generics, bounds and where clause carry over.

use std::marker::PhantomData;

use webpubsub::{ConnectEventRequest, ConnectEventResponse, ConnectionContext, EventRouter};
use webpubsub::extract::Json;

trait Store: Send + Sync + 'static {
    type Item: serde::de::DeserializeOwned + serde::Serialize + Send;

    fn put(&self, item: Self::Item) -> usize;
}

#[derive(Default)]
struct Memory(std::sync::Mutex<Vec<String>>);

impl Store for Memory {
    type Item = String;

    fn put(&self, item: String) -> usize {
        let mut items = self.0.lock().unwrap();
        items.push(item);
        items.len()
    }
}

struct Chat<S: Store> {
    store: S,
}

#[webpubsub::event_handler]
impl<S: Store> Chat<S> {
    async fn connect(&self, _req: ConnectEventRequest) -> ConnectEventResponse {
        ConnectEventResponse::new()
    }

    #[user_event("put")]
    async fn put(&self, _ctx: ConnectionContext, Json(item): Json<S::Item>) -> String {
        self.store.put(item).to_string()
    }
}

struct Tagged<'a, T, const N: usize>
where
    T: Send + Sync,
{
    tag: &'a str,
    _t: PhantomData<[T; N]>,
}

#[webpubsub::event_handler]
impl<'a, T, const N: usize> Tagged<'a, T, N>
where
    T: Send + Sync + 'static,
    'a: 'static,
{
    #[user_event("tag")]
    async fn tag(&self) -> &'static str {
        self.tag
    }
}

/// No bounds on the block: the generated impl applies where `Self` is
/// `Send + Sync + 'static`.
struct Plain<T> {
    value: T,
}

#[webpubsub::event_handler]
impl<T> Plain<T> {
    #[user_event("value")]
    async fn value(&self) -> Option<&'static str> {
        let _ = &self.value;
        None
    }
}

fn main() {
    EventRouter::builder()
        .hub(
            "chat",
            Chat {
                store: Memory::default(),
            },
        )
        .hub(
            "tagged",
            Tagged::<'static, u8, 3> {
                tag: "t",
                _t: PhantomData,
            },
        )
        .hub("plain", Plain { value: 1_u8 })
        .access_key("k")
        .build()
        .unwrap();
}
