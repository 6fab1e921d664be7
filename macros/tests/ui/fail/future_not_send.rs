//! Event methods run on a multi-threaded server: their futures must be `Send`.

use std::sync::Mutex;

struct Chat {
    count: Mutex<u32>,
}

async fn save() {}

#[webpubsub::event_handler]
impl Chat {
    #[user_event("count")]
    async fn count(&self) {
        let guard = self.count.lock().unwrap();
        save().await;
        drop(guard);
    }
}

fn main() {}
