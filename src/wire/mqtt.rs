//! The MQTT parts of event bodies and answers (for MQTT clients of Web
//! PubSub): CONNECT properties, the CONNACK answer or refusal, the
//! `disconnected` details and user properties.

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
///
/// Written as the service writes it: `userProperties` is `null` for MQTT
/// 3.1.1 (`protocol_version` 4), which has no user properties, and a list
/// for MQTT 5.0 (`../shared/protocol/upstream.md` §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

impl Serialize for MqttConnectProperties {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Written<'a> {
            protocol_version: u8,
            username: &'a Option<String>,
            password: &'a Option<String>,
            user_properties: Option<&'a [MqttUserProperty]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            clean_start: Option<bool>,
        }
        Written {
            protocol_version: self.protocol_version,
            username: &self.username,
            password: &self.password,
            user_properties: (self.protocol_version >= 5).then_some(&self.user_properties[..]),
            clean_start: self.clean_start,
        }
        .serialize(serializer)
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl MqttDisconnectedProperties {
    /// The details of a session that ended: whether the client sent the
    /// DISCONNECT, and the packet when one was exchanged.
    #[must_use]
    pub fn new(initiated_by_client: bool, disconnect_packet: Option<MqttDisconnectPacket>) -> Self {
        Self {
            initiated_by_client,
            disconnect_packet,
        }
    }
}

impl MqttDisconnectPacket {
    /// A DISCONNECT with reason `code` and, when the client sent it, its
    /// user properties.
    #[must_use]
    pub fn new(code: u8, user_properties: Option<Vec<MqttUserProperty>>) -> Self {
        Self {
            code,
            user_properties,
        }
    }
}

/// The body of a refused MQTT `connect`: `{"mqtt":{"code":…,"reason":…,
/// "userProperties":[…]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MqttConnectRefusal {
    /// The CONNACK code, reason and user properties.
    pub mqtt: MqttConnectError,
}

impl MqttConnectRefusal {
    /// The refusal with `mqtt`.
    #[must_use]
    pub fn new(mqtt: MqttConnectError) -> Self {
        Self { mqtt }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `value` written, read back equal, and written as `spec` says.
    fn round_trip<T>(value: &T, spec: &str)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(
            json,
            serde_json::from_str::<serde_json::Value>(spec).unwrap()
        );
        assert_eq!(&serde_json::from_value::<T>(json).unwrap(), value);
    }

    #[test]
    fn mqtt_bodies_read_what_they_write_with_the_spec_field_names() {
        // mqtt.md §4.1 (the `connect` body's `mqtt` object).
        let mut connect = MqttConnectProperties::new(5);
        connect.clean_start = Some(true);
        connect.username = Some("u".to_owned());
        connect.password = Some("cA==".to_owned());
        connect
            .user_properties
            .push(MqttUserProperty::new("n", "v"));
        round_trip(
            &connect,
            r#"{"protocolVersion":5,"cleanStart":true,"username":"u","password":"cA==",
                "userProperties":[{"name":"n","value":"v"}]}"#,
        );
        // mqtt.md §4.1: 3.1.1 has no user properties: `null`, read as none.
        let mut v4 = MqttConnectProperties::new(4);
        v4.clean_start = Some(false);
        round_trip(
            &v4,
            r#"{"protocolVersion":4,"cleanStart":false,"username":null,"password":null,
                "userProperties":null}"#,
        );
        // §4.1 success: `mqtt.userProperties` of the answer.
        round_trip(
            &MqttConnectResponse {
                user_properties: vec![MqttUserProperty::new("n", "v")],
            },
            r#"{"userProperties":[{"name":"n","value":"v"}]}"#,
        );
        // §4.1 failure.
        round_trip(
            &MqttConnectRefusal::new(MqttConnectError {
                code: 138,
                reason: Some("banned by server".to_owned()),
                user_properties: vec![MqttUserProperty::new("n", "v")],
            }),
            r#"{"mqtt":{"code":138,"reason":"banned by server","userProperties":[{"name":"n","value":"v"}]}}"#,
        );
        // §4.4: the packet the service sent has no user properties.
        round_trip(
            &MqttDisconnectedProperties::new(false, Some(MqttDisconnectPacket::new(142, None))),
            r#"{"initiatedByClient":false,"disconnectPacket":{"code":142,"userProperties":null}}"#,
        );
        round_trip(
            &MqttDisconnectedProperties::new(false, None),
            r#"{"initiatedByClient":false,"disconnectPacket":null}"#,
        );
    }
}
