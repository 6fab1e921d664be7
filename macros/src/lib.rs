//! Procedural macros for [`webpubsub`](https://docs.rs/webpubsub).
//!
//! Nothing is exported yet: the `#[event_handler]` attribute macro arrives
//! with its own issue. The crate exists so the workspace layout is stable.
