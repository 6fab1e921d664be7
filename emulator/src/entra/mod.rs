//! The emulator's own Microsoft Entra ID: one tenant, one RS256 signing
//! key made at startup, one app registration that may ask for tokens with
//! the client-credentials grant, and the emulator's own managed identity,
//! whose tokens go to event handlers configured with
//! [`managed_identity`](crate::EventHandlerSettings::managed_identity).
//!
//! * `signing_key.rs`: the RSA key (sign, JWK, verify);
//! * `identity.rs`: the issuer — its URLs, the tokens it mints, the
//!   tokens it accepts, the cache of upstream tokens;
//! * `routes.rs`: the discovery document, the keys and the token endpoint.

mod identity;
mod routes;
mod signing_key;

pub(crate) use identity::{AppRegistration, Entra};
pub(crate) use routes::routes;
pub(crate) use signing_key::{algorithm, EntraError, SigningKey};

/// The audience the REST API requires of bearer tokens, as the service does.
pub const WEBPUBSUB_AUDIENCE: &str = "https://webpubsub.azure.com";

/// The tenant id of the emulator's Entra ID unless
/// [`tenant_id`](crate::EmulatorBuilder::tenant_id) sets another.
pub const DEFAULT_TENANT_ID: uuid::Uuid = uuid::uuid!("0e3a0000-0000-4000-8000-000000000001");

/// The client id of the app registration that may ask for tokens unless
/// [`app_registration`](crate::EmulatorBuilder::app_registration) sets another.
pub const DEFAULT_CLIENT_ID: uuid::Uuid = uuid::uuid!("0e3a0000-0000-4000-8000-000000000002");

/// The client secret of the default app registration ([`DEFAULT_CLIENT_ID`]).
pub const DEFAULT_CLIENT_SECRET: &str = "webpubsub-emulator-dev-client-secret";

/// The object id (`oid`) of the app registration's service principal
/// unless [`app_registration`](crate::EmulatorBuilder::app_registration)'s
/// caller sets another with [`app_object_id`](crate::EmulatorBuilder::app_object_id).
pub const DEFAULT_APP_OBJECT_ID: uuid::Uuid = uuid::uuid!("0e3a0000-0000-4000-8000-000000000003");

/// The client id (`azp`) of the emulator's own managed identity unless
/// [`managed_identity`](crate::EmulatorBuilder::managed_identity) sets another.
pub const DEFAULT_MANAGED_IDENTITY_CLIENT_ID: uuid::Uuid =
    uuid::uuid!("0e3a0000-0000-4000-8000-000000000004");

/// The object id (`oid`, `sub`) of the emulator's own managed identity
/// unless [`managed_identity`](crate::EmulatorBuilder::managed_identity) sets another.
pub const DEFAULT_MANAGED_IDENTITY_OBJECT_ID: uuid::Uuid =
    uuid::uuid!("0e3a0000-0000-4000-8000-000000000005");
