//! The headers of the upstream protocol, in one table: each name as sent
//! (lower case), how the service spells it (for messages), and where the
//! request scan keeps its value.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use http::header::{HeaderName, HeaderValue};

/// The table. Each line: the constant, the name in lower case (a header
/// map's spelling), the service's spelling, and for a header that must
/// come at most once, its field in [`SingleHeaders`]. Headers that may come
/// several times (`ce-signature`, the origins) have no field: their readers
/// take every line.
macro_rules! header_table {
    ($(
        $(#[$doc:meta])*
        $constant:ident = $lower:literal as $display:literal $(=> $field:ident)?;
    )*) => {
        $(
            $(#[$doc])*
            pub const $constant: HeaderName = HeaderName::from_static($lower);
        )*

        /// How the service spells each header, for messages (`"header"`
        /// for a name outside the table).
        pub(crate) fn display_name(name: &HeaderName) -> &'static str {
            match name.as_str() {
                $( $lower => $display, )*
                _ => "header",
            }
        }

        /// The first value of each single-valued header of one request.
        #[derive(Debug, Default)]
        pub(crate) struct SingleHeaders<'a> {
            $($(
                #[doc = concat!("`", $display, "`.")]
                pub(crate) $field: Option<&'a HeaderValue>,
            )?)*
        }

        impl<'a> SingleHeaders<'a> {
            /// Where the value of `name` goes; `None` for a header that is
            /// not single-valued or not in the table.
            pub(crate) fn slot(&mut self, name: &HeaderName) -> Option<&mut Option<&'a HeaderValue>> {
                match name.as_str() {
                    $($( $lower => Some(&mut self.$field), )?)*
                    _ => None,
                }
            }
        }
    };
}

header_table! {
    /// `ce-type`: which event (see [`EventType`](super::EventType)).
    CE_TYPE = "ce-type" as "ce-type" => ce_type;
    /// `ce-hub`.
    CE_HUB = "ce-hub" as "ce-hub" => hub;
    /// `ce-connectionId`.
    CE_CONNECTION_ID = "ce-connectionid" as "ce-connectionId" => connection_id;
    /// `ce-eventName`.
    CE_EVENT_NAME = "ce-eventname" as "ce-eventName" => event_name;
    /// `ce-userId`.
    CE_USER_ID = "ce-userid" as "ce-userId" => user_id;
    /// `ce-id`.
    CE_ID = "ce-id" as "ce-id" => id;
    /// `ce-time`.
    CE_TIME = "ce-time" as "ce-time" => time;
    /// `ce-source` (see [`ce_source`](super::ce_source)).
    CE_SOURCE = "ce-source" as "ce-source" => source;
    /// `ce-specversion`.
    CE_SPEC_VERSION = "ce-specversion" as "ce-specversion" => spec_version;
    /// `ce-awpsversion`.
    CE_AWPS_VERSION = "ce-awpsversion" as "ce-awpsversion" => awps_version;
    /// `ce-subprotocol`.
    CE_SUBPROTOCOL = "ce-subprotocol" as "ce-subprotocol" => subprotocol;
    /// `ce-connectionState`.
    CE_CONNECTION_STATE = "ce-connectionstate" as "ce-connectionState" => connection_state;
    /// `ce-signature`: one `sha256=…` entry per access key.
    CE_SIGNATURE = "ce-signature" as "ce-signature";
    /// `ce-physicalConnectionId`: MQTT clients only.
    CE_PHYSICAL_CONNECTION_ID = "ce-physicalconnectionid" as "ce-physicalConnectionId" => physical_connection_id;
    /// `ce-sessionId`: MQTT clients only.
    CE_SESSION_ID = "ce-sessionid" as "ce-sessionId" => session_id;
    /// `WebHook-Request-Origin`: the service's host (events and preflight).
    WEBHOOK_REQUEST_ORIGIN = "webhook-request-origin" as "WebHook-Request-Origin";
    /// `WebHook-Allowed-Origin`: the preflight's answer.
    WEBHOOK_ALLOWED_ORIGIN = "webhook-allowed-origin" as "WebHook-Allowed-Origin";
    /// `Content-Type` of an event's body.
    CONTENT_TYPE = "content-type" as "Content-Type" => content_type;
}

/// `mqtt-`: the prefix of the headers that carry the user properties of an
/// MQTT client's PUBLISH (on a user event), and of the answer's.
pub const MQTT_USER_PROPERTY_PREFIX: &str = "mqtt-";

/// The header that carries MQTT user property `name` (`mqtt-{name}`);
/// `None` when `name` cannot be part of a header name.
///
/// ```
/// use webpubsub::wire::headers::mqtt_user_property_header;
///
/// assert_eq!(mqtt_user_property_header("region").unwrap().as_str(), "mqtt-region");
/// assert!(mqtt_user_property_header("no spaces").is_none());
/// ```
#[must_use]
pub fn mqtt_user_property_header(name: &str) -> Option<HeaderName> {
    HeaderName::try_from(format!("{MQTT_USER_PROPERTY_PREFIX}{name}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_lower_case_and_spelled_as_the_spec_does() {
        for (name, display) in [
            (CE_CONNECTION_ID, "ce-connectionId"),
            (CE_CONNECTION_STATE, "ce-connectionState"),
            (CE_PHYSICAL_CONNECTION_ID, "ce-physicalConnectionId"),
            (WEBHOOK_REQUEST_ORIGIN, "WebHook-Request-Origin"),
            (CONTENT_TYPE, "Content-Type"),
        ] {
            assert_eq!(display_name(&name), display);
            assert_eq!(name.as_str(), display.to_ascii_lowercase());
        }
        assert_eq!(display_name(&HeaderName::from_static("x-other")), "header");
    }

    #[test]
    fn only_single_valued_headers_have_a_slot() {
        let mut single = SingleHeaders::default();
        assert!(single.slot(&CE_HUB).is_some());
        assert!(single.slot(&CE_SIGNATURE).is_none());
        assert!(single.slot(&WEBHOOK_REQUEST_ORIGIN).is_none());
        assert!(single.slot(&http::header::CONTENT_LENGTH).is_none());
    }
}
