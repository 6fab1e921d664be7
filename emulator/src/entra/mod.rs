//! The emulator's own Microsoft Entra ID: one tenant, one RS256 signing
//! key made at startup, one app registration that may ask for tokens with
//! the client-credentials grant, and the emulator's own managed identity,
//! whose tokens go to event handlers configured with
//! [`managed_identity`](crate::EventHandlerSettings::managed_identity).
//!
//! * `names.rs`: its well-known ids, the REST API's audience, secrets;
//! * `signing_key.rs`: the RSA key (sign, JWK, verify);
//! * `identity.rs`: the issuer — its URLs, the tokens it mints, the
//!   tokens it accepts, the cache of upstream tokens;
//!
//! Its HTTP routes (the discovery document, the keys and the token
//! endpoint) are `endpoint/entra.rs`.
//!
//! What keeps its tokens apart (the emulator's choices; Azure's Entra ID is
//! remote and keeps them apart with its own app registrations):
//!
//! * the app registration's secret is random, made at build time, unless
//!   the caller sets one; there is no published default;
//! * the token endpoint mints tokens for one resource only, the REST API
//!   ([`WEBPUBSUB_AUDIENCE`]);
//! * the REST API takes only tokens minted for the app registration
//!   (`azp`/`appid`, `idtyp` `app`, `tid`), so the managed identity's
//!   tokens, which go to event handlers, are never REST tokens; and no
//!   event handler may ask for the REST audience;
//! * its endpoints answer loopback peers only (`endpoint/admin.rs`).

mod identity;
mod names;
mod signing_key;

pub(crate) use identity::{AppRegistration, Entra, TOKEN_LIFETIME};
pub(crate) use names::{is_rest_audience, random_client_secret};
pub use names::{
    DEFAULT_APP_OBJECT_ID, DEFAULT_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_CLIENT_ID,
    DEFAULT_MANAGED_IDENTITY_OBJECT_ID, DEFAULT_TENANT_ID, WEBPUBSUB_AUDIENCE,
};
pub(crate) use signing_key::{algorithm, SigningKey};
