//! The upstream side: validate, decode and answer what the service sends.

pub(crate) mod bearer;
mod decode;
pub(crate) mod encode;
pub(crate) mod headers;
pub(crate) mod options;
mod preflight;
mod rejection;
pub(crate) mod signature;
mod validate;

pub use decode::decode_event;
pub(crate) use decode::{decode_scanned, keep_headers};
pub use rejection::{excerpt, BearerRefusal, Rejection};
pub(crate) use signature::is_token_signing_input;
pub use validate::{
    ResponseFuture, ValidateUpstream, ValidateUpstreamBuilder, ValidateUpstreamLayer,
};
