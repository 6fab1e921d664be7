//! The `connect` event's body and the field names of its answer, as the
//! service writes and reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::mqtt::MqttConnectProperties;
use super::serde_util::{multimap, null_as_default, string_list};

/// A client certificate of a `connect` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientCertificate {
    /// SHA-1 thumbprint, hex.
    #[serde(default, deserialize_with = "null_as_default")]
    pub thumbprint: String,
    /// The certificate as PEM text, when the service sends it.
    #[serde(default)]
    pub content: Option<String>,
}

/// The JSON body of a `connect` event, as the service sends it: read by the
/// decoder, written by [`testing`](crate::testing) and the emulator.
///
/// The multi-valued maps accept a single string where a list is expected,
/// and `null` where a map or list is expected, as the service's bodies
/// vary; they are written as lists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectBody {
    /// The claims of the client's access token.
    #[serde(default, deserialize_with = "multimap")]
    pub claims: BTreeMap<String, Vec<String>>,
    /// The query of the client's connect request.
    #[serde(default, deserialize_with = "multimap")]
    pub query: BTreeMap<String, Vec<String>>,
    /// The headers of the client's connect request.
    #[serde(default, deserialize_with = "multimap")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// The WebSocket subprotocols the client offered.
    #[serde(default, deserialize_with = "string_list")]
    pub subprotocols: Vec<String>,
    /// The client's certificates, when the service asks for them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub client_certificates: Vec<ClientCertificate>,
    /// The MQTT CONNECT packet's properties, for an MQTT client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConnectProperties>,
}

impl ConnectBody {
    /// The JSON field names of a `connect` body, in the order of the
    /// struct's fields: what [`ConnectBody`]'s serde impls use, for readers
    /// that walk the text themselves.
    pub const FIELDS: [&'static str; 6] = [
        "claims",
        "query",
        "headers",
        "subprotocols",
        "clientCertificates",
        "mqtt",
    ];
}

/// The JSON field names of an accepted `connect`'s answer (`200`), in the
/// order they are written: what
/// [`ConnectEventResponse`](crate::ConnectEventResponse)'s serde impls use,
/// for writers that write the text themselves.
pub const CONNECT_ANSWER_FIELDS: [&str; 5] = ["userId", "groups", "roles", "subprotocol", "mqtt"];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mqtt::MqttUserProperty;
    use super::*;

    #[test]
    fn a_connect_body_reads_what_it_writes_with_the_spec_field_names() {
        let mut mqtt = MqttConnectProperties::new(5);
        mqtt.username = Some("device-7".to_owned());
        mqtt.user_properties
            .push(MqttUserProperty::new("fw", "1.2"));
        let body = ConnectBody {
            claims: BTreeMap::from([("sub".to_owned(), vec!["alice".to_owned()])]),
            query: BTreeMap::new(),
            headers: BTreeMap::from([("Connection".to_owned(), vec!["Upgrade".to_owned()])]),
            subprotocols: vec!["mqtt".to_owned()],
            client_certificates: vec![ClientCertificate {
                thumbprint: "ab12".to_owned(),
                content: None,
            }],
            mqtt: Some(mqtt),
        };
        let json = serde_json::to_value(&body).unwrap();
        let back: ConnectBody = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        // Spec (upstream.md §6.1, mqtt.md §4.1): the names the service sends.
        let names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = ConnectBody::FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(
            json["clientCertificates"],
            serde_json::json!([{"thumbprint": "ab12", "content": null}])
        );
        assert_eq!(json["mqtt"]["protocolVersion"], 5);
    }
}
