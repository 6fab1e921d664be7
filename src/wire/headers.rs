//! The names of the headers of the upstream protocol, and how the service
//! spells each one (for messages).

use http::header::HeaderName;

/// `ce-type`.
pub const CE_TYPE: HeaderName = HeaderName::from_static("ce-type");
/// `ce-hub`.
pub const CE_HUB: HeaderName = HeaderName::from_static("ce-hub");
/// `ce-connectionid`.
pub const CE_CONNECTION_ID: HeaderName = HeaderName::from_static("ce-connectionid");
/// `ce-eventname`.
pub const CE_EVENT_NAME: HeaderName = HeaderName::from_static("ce-eventname");
/// `ce-userid`.
pub const CE_USER_ID: HeaderName = HeaderName::from_static("ce-userid");
/// `ce-id`.
pub const CE_ID: HeaderName = HeaderName::from_static("ce-id");
/// `ce-time`.
pub const CE_TIME: HeaderName = HeaderName::from_static("ce-time");
/// `ce-source`.
pub const CE_SOURCE: HeaderName = HeaderName::from_static("ce-source");
/// `ce-specversion`.
pub const CE_SPEC_VERSION: HeaderName = HeaderName::from_static("ce-specversion");
/// `ce-awpsversion`.
pub const CE_AWPS_VERSION: HeaderName = HeaderName::from_static("ce-awpsversion");
/// `ce-subprotocol`.
pub const CE_SUBPROTOCOL: HeaderName = HeaderName::from_static("ce-subprotocol");
/// `ce-connectionstate`.
pub const CE_CONNECTION_STATE: HeaderName = HeaderName::from_static("ce-connectionstate");
/// `ce-signature`.
pub const CE_SIGNATURE: HeaderName = HeaderName::from_static("ce-signature");
/// `ce-physicalconnectionid`.
pub const CE_PHYSICAL_CONNECTION_ID: HeaderName =
    HeaderName::from_static("ce-physicalconnectionid");
/// `ce-sessionid`.
pub const CE_SESSION_ID: HeaderName = HeaderName::from_static("ce-sessionid");
/// `webhook-request-origin`.
pub const WEBHOOK_REQUEST_ORIGIN: HeaderName = HeaderName::from_static("webhook-request-origin");
/// `webhook-allowed-origin`.
pub const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");

/// How the service spells each header, for messages.
pub(crate) fn display_name(name: &HeaderName) -> &'static str {
    match name.as_str() {
        "ce-type" => "ce-type",
        "ce-hub" => "ce-hub",
        "ce-connectionid" => "ce-connectionId",
        "ce-eventname" => "ce-eventName",
        "ce-userid" => "ce-userId",
        "ce-id" => "ce-id",
        "ce-time" => "ce-time",
        "ce-source" => "ce-source",
        "ce-specversion" => "ce-specversion",
        "ce-awpsversion" => "ce-awpsversion",
        "ce-subprotocol" => "ce-subprotocol",
        "ce-connectionstate" => "ce-connectionState",
        "ce-signature" => "ce-signature",
        "ce-physicalconnectionid" => "ce-physicalConnectionId",
        "ce-sessionid" => "ce-sessionId",
        "webhook-request-origin" => "WebHook-Request-Origin",
        "content-type" => "Content-Type",
        _ => "header",
    }
}
