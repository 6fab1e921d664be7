//! Keyless upstream: Microsoft Entra ID bearer tokens on event requests
//! (feature `entra`).
//!
//! A hub's event handler can be set to authenticate with the Web PubSub
//! resource's managed identity (`auth` type `ManagedIdentity` with a
//! *resource*, the token's audience). The service then sends
//! `Authorization: Bearer <token>` on every event request: an access token
//! issued by Microsoft Entra ID for that resource, signed with RS256 by
//! the tenant's keys. When local auth is disabled on the resource the
//! access keys are deleted and `ce-signature` is no longer sent, so this
//! token is the only proof that an event comes from the service (Microsoft
//! Learn: "Disable local (access key) authentication with Azure Web
//! PubSub Service" and "How to use managed identities for Azure Web PubSub
//! Service").
//!
//! [`EntraValidation`] checks that token, on the
//! [`EventRouter`](crate::EventRouter) and the
//! [`ValidateUpstreamLayer`](crate::upstream::ValidateUpstreamLayer)
//! (`.entra(...)` on their builders):
//!
//! - the signature, RS256 only (any other `alg`, `none` included, is
//!   refused), with a key of the tenant's OpenID discovery document
//!   (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`), fetched
//!   as [the key cache](#keys) describes, never per request;
//! - `iss`: exactly the document's issuer (`https://login.microsoftonline.com/{tenant GUID}/v2.0`
//!   for v2.0 tokens) or, with the public cloud's authority, the v1.0
//!   issuer of the same tenant, `https://sts.windows.net/{tenant GUID}/`
//!   (the version a token gets depends on the resource application's
//!   `accessTokenAcceptedVersion`); no other form, the domain-name form
//!   included. `tid`, when present, must be the tenant's GUID. A tenant
//!   given by domain name is resolved to its GUID through the discovery
//!   document (see [`EntraValidation::new`]);
//! - `exp` and `nbf`, with a clock skew (default 60 s);
//! - `aud`: one of the configured audiences (the resource set on the event
//!   handler: an application ID URI or a client id);
//! - **the caller**: `oid`, `appid` (v1.0) or `azp` (v2.0) must be one of
//!   the allowed callers: the Web PubSub resource's managed identity
//!   (its object id or client id). An audience alone is not enough: any
//!   application in the tenant may be able to get a token for it.
//!
//! Every refusal is `401` with a short text body, logged with its reason.
//!
//! # With access keys
//!
//! Each configured check must pass: access keys configured → a valid
//! `ce-signature` is required; Entra ID configured → a valid bearer token
//! is required; both → both. A keyless resource (local auth disabled)
//! sends no signature: configure Entra ID only. A builder with neither
//! still refuses to build unless `insecure_skip_signature_check()` is
//! called. The abuse-protection `OPTIONS` handshake is answered without
//! either: Microsoft's documentation does not say that the service sends
//! a token there, and the answer (the allowed origin) reveals nothing.
//!
//! # Keys
//!
//! The first event fetches the discovery document and its `jwks_uri`. A
//! token whose `kid` is not cached makes a new fetch at most once per
//! [`key_refresh_interval`](EntraValidation::key_refresh_interval)
//! (default 5 minutes), so made-up `kid`s cannot make the server fetch per
//! request; keys older than 24 hours are fetched again before use. One
//! fetch runs at a time, with a timeout (default 5 s): when the endpoint
//! is down or slow, events are refused with `401` after at most that long.
//!
//! ```no_run
//! use webpubsub::entra::EntraValidation;
//! use webpubsub::EventRouter;
//! # #[derive(Clone)] struct Chat;
//! # #[webpubsub::async_trait] impl webpubsub::EventHandler for Chat {}
//!
//! let router = EventRouter::builder()
//!     .hub("chat", Chat)
//!     .entra(
//!         EntraValidation::new("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!             // The resource set on the hub's event handler.
//!             .audience("api://my-chat-upstream")
//!             // The Web PubSub resource's managed identity (object id).
//!             .allowed_caller("6e7f1a52-0c35-4bde-9d5c-2b5a0c2d3a11"),
//!     )
//!     .build()?;
//! # Ok::<(), webpubsub::ConfigError>(())
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod keys;
mod settings;
pub(crate) mod token;
mod validator;

pub(crate) use settings::check_url;
pub(crate) use settings::is_guid;
pub use settings::{EntraValidation, PUBLIC_CLOUD};

/// The credential trait the service client takes
/// ([`WebPubSubServiceClient::from_credential`](crate::WebPubSubServiceClient::from_credential)),
/// and its crate (`azure_core` 1.x), so applications need not depend on
/// it themselves.
pub use azure_core::{self, credentials::TokenCredential};

use std::sync::Arc;

use crate::router::EventRouterBuilder;
use crate::upstream::ValidateUpstreamBuilder;

/// `entra(…)` on the builders of the router and of the validation layer.
macro_rules! entra_builder_method {
    ($($builder:ty),+) => {$(
        impl $builder {
            /// Checks every event's Microsoft Entra ID bearer token
            /// (`Authorization: Bearer`, sent when the hub's event handler
            /// authenticates with a managed identity). With access keys
            /// configured too, both checks must pass; see [`crate::entra`].
            /// `build()` fails with [`ConfigError::InvalidEntraValidation`](crate::config::ConfigError::InvalidEntraValidation)
            /// when `validation` is incomplete or its tenant is not a GUID or a
            /// domain name ([`EntraValidation::new`] says how a domain name
            /// is resolved to the tenant's GUID).
            #[cfg_attr(docsrs, doc(cfg(feature = "entra")))]
            pub fn entra(self, validation: EntraValidation) -> Self {
                self.bearer_check(Arc::new(validation))
            }
        }
    )+};
}

entra_builder_method!(EventRouterBuilder, ValidateUpstreamBuilder);
