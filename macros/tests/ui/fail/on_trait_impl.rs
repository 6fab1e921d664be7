//! `#[event_handler]` goes on an inherent `impl` block, not a trait impl.

use webpubsub::{async_trait, EventHandler};

struct Chat;

#[webpubsub::event_handler]
#[async_trait]
impl EventHandler for Chat {}

fn main() {}
