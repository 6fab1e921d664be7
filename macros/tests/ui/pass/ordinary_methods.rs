//! Methods that are not events stay ordinary methods, whatever their shape.

use webpubsub::EventRouter;

#[derive(Default)]
struct Chat {
    count: u32,
}

#[webpubsub::event_handler]
impl Chat {
    const NAME: &'static str = "chat";

    fn new() -> Self {
        Self::default()
    }

    fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    fn into_count(self) -> u32 {
        self.count
    }

    fn generic<T: Into<u32>>(&self, t: T) -> u32 {
        self.count + t.into()
    }

    async fn helper(&self) -> u32 {
        self.count
    }

    /// Not `connect`: the name differs in case.
    #[allow(non_snake_case)]
    fn Connect(&self) -> bool {
        true
    }

    #[user_event("count")]
    async fn count(&self) -> String {
        self.helper().await.to_string()
    }
}

fn main() {
    let mut chat = Chat::new();
    assert_eq!(chat.bump(), 1);
    assert_eq!(chat.generic(2u8), 3);
    assert!(chat.Connect());
    assert_eq!(Chat::NAME, "chat");
    let _ = chat.helper();
    assert_eq!(Chat::new().into_count(), 0);
    EventRouter::builder()
        .hub(Chat::NAME, chat)
        .access_key("k")
        .build()
        .unwrap();
}
