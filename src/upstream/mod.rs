//! The upstream side: validate, decode and answer what the service sends.

mod decode;
pub(crate) mod encode;
pub(crate) mod headers;
pub(crate) mod options;
mod preflight;
mod rejection;
mod signature;
mod validate;

pub use decode::decode_event;
pub use rejection::Rejection;
pub(crate) use rejection::excerpt;
pub use validate::{ResponseFuture, ValidateUpstream, ValidateUpstreamBuilder, ValidateUpstreamLayer};
