//! Client access: signed WebSocket URLs that let a client connect to a hub.
//!
//! - `options`: what a token grants ([`ClientAccessOptions`], [`Permission`],
//!   [`ClientProtocol`]);
//! - `signer`: signing URLs with an access key ([`ClientAccessSigner`],
//!   [`ClientAccess`]);
//! - `negotiate`: the ready-made `/negotiate` endpoint ([`Negotiate`]).

pub(crate) mod negotiate;
mod options;
mod signer;

pub use negotiate::{Negotiate, NegotiateFuture};
pub use options::{ClientAccessOptions, ClientProtocol, Permission, DEFAULT_TOKEN_LIFETIME};
pub use signer::{ClientAccess, ClientAccessSigner};
