//! The MQTT parts of events and answers (for MQTT clients of Web PubSub).

use serde::{Deserialize, Serialize};

use super::serde_util::null_as_default;

/// One MQTT 5 user property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MqttUserProperty {
    /// The property name.
    pub name: String,
    /// The property value.
    pub value: String,
}

impl MqttUserProperty {
    /// A property `name = value`.
    #[must_use]
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The MQTT CONNECT packet's properties, in a `connect` event from an MQTT client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MqttConnectProperties {
    /// `4` for MQTT 3.1.1, `5` for MQTT 5.0.
    pub protocol_version: u8,
    /// The CONNECT user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The CONNECT password, base64 of its raw bytes as the service sends it.
    #[serde(default)]
    pub password: Option<String>,
    /// MQTT 5 user properties of the CONNECT packet.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_properties: Vec<MqttUserProperty>,
    /// The CONNECT's Clean Start (MQTT 5) / Clean Session (3.1.1) flag,
    /// when the service sends it (`cleanStart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_start: Option<bool>,
}

impl MqttConnectProperties {
    /// The properties of a CONNECT of `protocol_version` (`4` or `5`), with
    /// no user name, password or user property, for tools that write
    /// `connect` events (tests, emulators).
    ///
    /// ```
    /// use webpubsub::events::MqttConnectProperties;
    ///
    /// let mut props = MqttConnectProperties::new(5);
    /// props.username = Some("thermo1".into());
    /// props.clean_start = Some(true);
    /// let json = serde_json::to_value(&props).unwrap();
    /// assert_eq!(json["protocolVersion"], 5);
    /// assert_eq!(json["cleanStart"], true);
    /// ```
    #[must_use]
    pub fn new(protocol_version: u8) -> Self {
        Self {
            protocol_version,
            username: None,
            password: None,
            user_properties: Vec::new(),
            clean_start: None,
        }
    }
}

/// MQTT fields of a successful `connect` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MqttConnectResponse {
    /// User properties copied into the CONNACK (MQTT 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<MqttUserProperty>,
}

/// MQTT fields of a refused `connect`: the CONNACK code and reason.
///
/// `code` is an MQTT 3.1.1 return code (1–5) or an MQTT 5 reason code
/// (128 and up); the HTTP status of the answer follows from it (see
/// [`EventErrorResponse::mqtt`](crate::EventErrorResponse::mqtt)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MqttConnectError {
    /// The CONNACK return code (3.1.1) or reason code (5).
    pub code: u8,
    /// A reason string for MQTT 5 clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// User properties for MQTT 5 clients.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub user_properties: Vec<MqttUserProperty>,
}

/// The MQTT part of a `disconnected` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MqttDisconnectedProperties {
    /// Whether the client initiated the disconnection.
    #[serde(default)]
    pub initiated_by_client: bool,
    /// The DISCONNECT packet, when one was exchanged.
    #[serde(default)]
    pub disconnect_packet: Option<MqttDisconnectPacket>,
}

/// An MQTT DISCONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MqttDisconnectPacket {
    /// The reason code (always 0 for MQTT 3.1.1).
    #[serde(default)]
    pub code: u8,
    /// The packet's user properties (`None` when the server sent the packet).
    #[serde(default)]
    pub user_properties: Option<Vec<MqttUserProperty>>,
}
