//! The Entra ID's well-known ids (tenant, app registration, managed
//! identity), the REST API's audience, and fresh client secrets.

/// The audience the REST API requires of bearer tokens, as the service does.
pub const WEBPUBSUB_AUDIENCE: &str = "https://webpubsub.azure.com";

/// The tenant id of the emulator's Entra ID unless
/// [`tenant_id`](crate::EmulatorBuilder::tenant_id) sets another.
pub const DEFAULT_TENANT_ID: uuid::Uuid = uuid::uuid!("0e3a0000-0000-4000-8000-000000000001");

/// The client id of the app registration that may ask for tokens unless
/// [`app_registration`](crate::EmulatorBuilder::app_registration) sets another.
pub const DEFAULT_CLIENT_ID: uuid::Uuid = uuid::uuid!("0e3a0000-0000-4000-8000-000000000002");

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

/// A fresh client secret from the system's random source: two v4 UUIDs,
/// 64 hex digits holding 244 random bits.
pub(crate) fn random_client_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `resource` (an audience, or a scope ending in `/.default`)
/// names the REST API's audience: ASCII case ignored, with or without
/// trailing `/` or `/.default`, surrounding white space ignored.
pub(crate) fn is_rest_audience(resource: &str) -> bool {
    let resource = resource.trim();
    let resource = resource.strip_suffix("/.default").unwrap_or(resource);
    resource
        .trim_end_matches('/')
        .eq_ignore_ascii_case(WEBPUBSUB_AUDIENCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_audience_is_recognised_in_its_spellings() {
        for (resource, rest) in [
            ("https://webpubsub.azure.com", true),
            ("https://webpubsub.azure.com/", true),
            ("https://webpubsub.azure.com//", true),
            ("HTTPS://WebPubSub.Azure.COM/.default", true),
            ("https://webpubsub.azure.com//.default", true),
            (" https://webpubsub.azure.com ", true),
            ("https://webpubsub.azure.com.evil.example", false),
            ("https://webpubsub.azure.com/x", false),
            ("api://my-app", false),
            ("", false),
        ] {
            assert_eq!(is_rest_audience(resource), rest, "{resource:?}");
        }
    }

    #[test]
    fn random_secrets_are_long_and_differ() {
        let (a, b) = (random_client_secret(), random_client_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
