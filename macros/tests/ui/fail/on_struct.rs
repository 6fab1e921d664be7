//! `#[event_handler]` goes on an `impl` block.

#[webpubsub::event_handler]
struct Chat;

fn main() {}
