//! Methods for one event under different `#[cfg]`s are fine as long as at
//! most one is enabled; when both are, that is still a duplicate.

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    #[cfg(all())]
    #[user_event("x")]
    async fn first(&self) {}

    #[cfg(not(any()))]
    #[user_event("x")]
    async fn second(&self) {}

    #[user_event(fallback)]
    async fn third(&self) {}

    #[cfg(all())]
    #[user_event("*")]
    async fn fourth(&self) {}
}

fn main() {}
